"""The documentation: the site builds strictly, and the code's commands and pages are in it.

The lists of what must be documented come from the code (the ``pedsense`` argparse parser, the
files in ``pages/`` and ``app.py``'s navigation), so a new command or page without docs fails
here, naming it.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import built_once
from pedsense.cli import build_parser
from pedsense.train.params import SPECS

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
# Helpers' notes waiting to be folded into the site (excluded from it, see mkdocs.yml) and the
# pages generated from the code do not count as documentation written for a reader.
GENERATED = {DOCS / "reference" / "cli.md"}
# `pedsense sweep MODEL` takes every trainer: one description of `pedsense sweep` covers them.
ONE_ENTRY_FOR_EVERY_MODEL = {"sweep"}


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def written_docs() -> str:
    """The hand-written pages of the site, whitespace collapsed."""
    pages = [p for p in DOCS.rglob("*.md") if "notes" not in p.relative_to(DOCS).parts
             and p not in GENERATED]
    return re.sub(r"\s+", " ", "\n".join(p.read_text(encoding="utf-8") for p in pages))


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """``mkdocs build --strict`` of the repository's docs: a broken link, a missing page or a
    reference to a function that no longer exists fails it."""
    def build(out: Path) -> None:
        done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out),
                               "--config-file", str(REPO / "mkdocs.yml")], cwd=REPO, capture_output=True,
                              text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
        assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"

    return built_once(tmp_path_factory, "site", build)


def test_the_site_builds_strictly_with_the_generated_references(site):
    parameters = (site / "training" / "parameters" / "index.html").read_text(encoding="utf-8")
    for spec in SPECS.values():  # a trainer added to params.py appears without a docs edit
        assert f'id="{spec.model_type}"' in parameters
        for param in spec:
            assert f"<code>--{param.name.replace('_', '-')}" in parameters, (spec.model_type, param.name)
    assert "from 0 to 2147483647" in parameters  # the seed's bound as written, not 2.14748e+09
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for words, _ in load_hooks().commands(build_parser()):
        assert f">pedsense {' '.join(words)}<a class=\"headerlink\"" in cli, words
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="pedsense.train.resnet_trainer.train_resnet_lstm"' in api
    assert (site / "img" / "runs.png").is_file()


def test_every_cli_command_is_documented():
    text = written_docs()
    every = [words for words, _ in load_hooks().commands(build_parser())]
    leaves = [words for words in every if not any(other[:-1] == words for other in every)]
    missing = []
    for words in leaves:
        if words[0] in ONE_ENTRY_FOR_EVERY_MODEL:
            words = words[:1]
        if not re.search(r"pedsense (--home \S+ )?" + re.escape(" ".join(words)) + r"(?![\w-])", text):
            missing.append("pedsense " + " ".join(words))
    assert not missing, f"commands no page of docs/ describes: {missing}"


def navigation_titles() -> dict[str, str]:
    """``{"pages/x.py": title}`` from app.py's ``st.Page(PAGE_X, title=...)`` and ui/state.py."""
    constants = {}
    for node in ast.walk(ast.parse((REPO / "ui" / "state.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
    titles = {}
    for node in ast.walk(ast.parse((REPO / "app.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Page" and node.args:
            first = node.args[0]
            path = first.value if isinstance(first, ast.Constant) else constants.get(getattr(first, "id", ""))
            title = next((k.value.value for k in node.keywords if k.arg == "title"), None)
            if path and title:
                titles[path] = title
    return titles


def test_every_dashboard_page_is_documented():
    titles = navigation_titles()
    headings = set(re.findall(r"^#+ (.+?)\s*$", (DOCS / "dashboard" / "pages.md").read_text(encoding="utf-8"),
                              re.MULTILINE))
    problems = []
    for page in sorted((REPO / "pages").glob("*.py")):
        path = f"pages/{page.name}"
        if path not in titles:
            problems.append(f"{path} is not in app.py's navigation")
        elif titles[path] not in headings:
            problems.append(f"{path} ({titles[path]!r}) has no heading in docs/dashboard/pages.md")
    assert titles and not problems, problems


def test_the_readme_is_one_screen_and_its_links_hold():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for target in ("run", "test"):  # the two-command promise
        assert f"make {target}" in readme and re.search(rf"^{target}:", makefile, re.MULTILINE)
    # Error messages send users to "README, 'JAAD data'".
    assert re.search(r"^## JAAD data$", readme, re.MULTILINE)
    links = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", readme)
    assert links and not [link for link in links if not (REPO / link).exists()]
