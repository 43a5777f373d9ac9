"""MkDocs hooks: the reference tables generated from the code at build time.

A page asks for a table with a marker on a line of its own; the table is made from the one
home of what it lists, so the site cannot drift from the code:

- ``<!-- pedsense:params -->``: every trainer's parameters, one section per
  :class:`pedsense.train.params.Spec` in ``SPECS`` (a new trainer appears by itself);
  ``<!-- pedsense:params resnet-lstm -->`` one trainer's.
- ``<!-- pedsense:presets -->``: every preset's overrides (``pedsense.train.presets``).
- ``<!-- pedsense:trainers-api -->``: the API reference of every trainer in ``SPECS``.
- ``<!-- pedsense:cli -->``: ``pedsense --help`` of every command and subcommand (the argparse
  parser of ``pedsense.cli``).

Nothing here imports torch or Streamlit: a build takes seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the hooks run inside `mkdocs`, not from the repository root
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"^<!-- pedsense:([\w-]+)(?: ([\w-]+))? -->$", re.MULTILINE)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each marker with its generated Markdown."""
    def render(match: re.Match) -> str:
        kind, argument = match.group(1), match.group(2)
        if kind not in RENDERERS:
            raise ValueError(f"{page.file.src_path}: unknown marker pedsense:{kind} "
                             f"(known: {', '.join(RENDERERS)})")
        return RENDERERS[kind](argument)

    return MARKER.sub(render, markdown)


# -- trainer parameters -------------------------------------------------------------------------
def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, (tuple, list)):
        return "`" + " ".join(str(v) for v in value) + "`"
    return f"`{value}`"


def params_table(model_type: str) -> str:
    """The Markdown section of one trainer: where it lives, then one row per parameter."""
    from pedsense.train.params import GROUPS, spec_for

    spec = spec_for(model_type)
    module, function = spec.trainer.split(":")
    lines = [f"## {model_type} {{#{model_type}}}", "",
             f"{spec.description[:1].upper()}{spec.description[1:]}: `{module}.{function}` "
             f"([API][{module}.{function}]), "
             f"`pedsense train {model_type}`, the dashboard's Train page.", ""]
    for group, params in spec.groups().items():
        lines += [f"**{GROUPS[group]}**", "",
                  "| Parameter, option | Default | Accepts | What it does |",
                  "|---|---|---|---|"]
        for param in params:
            default = param.none_label if param.default is None else _shown(param.default)
            option = "--" + param.name.replace("_", "-")
            if param.kind == "bool":
                option += f" / --no-{param.name.replace('_', '-')}"
            lines.append(f"| `{param.name}`<br>`{option}` | {_cell(default)} | "
                         f"{_cell(param.describe())} | {_cell(param.help)} |")
        lines.append("")
    return "\n".join(lines)


def render_trainers_api(_: str | None) -> str:
    """A mkdocstrings block per trainer of ``SPECS`` (a new trainer's reference appears by itself)."""
    from pedsense.train.params import SPECS

    return "\n\n".join(f"::: {spec.trainer.replace(':', '.')}" for spec in SPECS.values())


def render_params(model_type: str | None) -> str:
    from pedsense.train.params import SPECS

    types = [model_type] if model_type else list(SPECS)
    return "\n".join(params_table(t) for t in types)


# -- presets ------------------------------------------------------------------------------------
def render_presets(model_type: str | None) -> str:
    from pedsense.train.params import spec_for
    from pedsense.train.presets import PRESETS

    lines = []
    for kind in ([model_type] if model_type else list(PRESETS)):
        spec = spec_for(kind)
        lines += [f"### {kind} {{#presets-{kind}}}", "", "| Preset | Sets | Measured |", "|---|---|---|"]
        for preset in PRESETS[kind].values():
            values = ", ".join(f"`{name}={spec[name].none_label if value is None else value}`"
                               for name, value in preset.params.items())
            lines.append(f"| **{preset.label}** (`--preset {preset.key}`): {_cell(preset.description)} | "
                         f"{_cell(values) or 'nothing'} | {_cell(preset.reaches) or '—'} |")
        lines.append("")
    return "\n".join(lines)


# -- the command line ---------------------------------------------------------------------------
def commands(parser: argparse.ArgumentParser,
             path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command of ``parser`` with its words (``("preprocess", "frames")``), depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word, sub in action.choices.items():
                yield path + (word,), sub
                yield from commands(sub, path + (word,))


def render_cli(_: str | None) -> str:
    from pedsense.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps --help at $COLUMNS
    try:
        parser = build_parser()
        lines = ["## pedsense", "", "```text", parser.format_help().rstrip(), "```", ""]
        for words, sub in commands(parser):
            heading = "#" * min(2 + len(words) - 1, 4)
            lines += [f"{heading} pedsense {' '.join(words)}", "", "```text",
                      sub.format_help().rstrip(), "```", ""]
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(lines)


RENDERERS: dict[str, Callable[[str | None], str]] = {
    "params": render_params, "presets": render_presets, "cli": render_cli,
    "trainers-api": render_trainers_api,
}
