"""`pedsense train yolo|resnet-lstm|hybrid`: every trainer parameter as an option.

Options come from the trainer's parameter spec (``pedsense.train.params``): names, types,
choices, help and defaults are written once there. The run is queued on the data home's queue
like a dashboard's (``pedsense.runqueue``), waits for a free slot (saying why), then trains in
this process: one line per epoch on stdout, a progress bar on stderr (terminals only), Ctrl-C
stops after the current batch (status ``stopped``, weights kept); a second Ctrl-C aborts at
once. Dashboards see it live and can stop it. ``--detach`` leaves it to a worker process instead
and returns at once.
"""

from __future__ import annotations

import argparse
from typing import Any

from pedsense.commands.launch import add_detach_option, detach, leave_queued, run_here
from pedsense.errors import ConfigError
from pedsense.train.params import SPECS, Param, spec_for


def _option_help(param: Param) -> str:
    default = param.none_label if param.default is None else param.default
    shown = {False: "false", True: "true"}.get(default, default) if isinstance(default, bool) else default
    rule = "" if param.kind in ("bool", "text", "choice") else f"; {param.describe()}"
    return f"{param.help.replace('%', '%%')}{rule} (default: {shown})"


def add_trainer_options(parser: argparse.ArgumentParser, model_type: str) -> None:
    """One ``--option`` per parameter of the trainer's spec; every default is None = "not given"."""
    for param in spec_for(model_type):
        flag = "--" + param.name.replace("_", "-")
        if param.kind == "bool":
            parser.add_argument(flag, dest=param.name, action=argparse.BooleanOptionalAction,
                                default=None, help=_option_help(param))
            continue
        choices = ([c if isinstance(c, str) else {None: "none", False: "false", True: "true"}[c]
                    for c in param.choices] if param.kind == "choice" else None)
        parser.add_argument(flag, dest=param.name, type=param.cli_value, default=None,
                            metavar="|".join(choices) if choices else param.name.upper(),
                            help=_option_help(param))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` (with yolo, resnet-lstm, hybrid) to the `pedsense` parser."""
    train = subparsers.add_parser("train", help="train a model (yolo, resnet-lstm, hybrid)")
    kinds = train.add_subparsers(dest="model_type", metavar="MODEL", required=True)
    for model_type, spec in SPECS.items():
        sub = kinds.add_parser(model_type, help=spec.description, description=spec.description)
        sub.add_argument("--preset", choices=("quick", "seed"), default=None,
                         help="start from a preset: quick (CPU, minutes) or seed (the seed defaults); "
                              "options given explicitly override it")
        add_trainer_options(sub, model_type)
        add_detach_option(sub)
        sub.set_defaults(func=cmd_train)


def resolve_params(model_type: str, args: argparse.Namespace) -> dict[str, Any]:
    """The preset's parameters, overridden by every option given on the command line."""
    from pedsense.train.presets import preset_params

    params = preset_params(model_type, args.preset) if args.preset else {}
    for name in spec_for(model_type).names:
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    return params


def cmd_train(args: argparse.Namespace) -> int:
    from pedsense.launches import queue_run

    params = resolve_params(args.model_type, args)
    if "run_dir" in params or "on_event" in params:
        raise ConfigError("run_dir/on_event cannot be set from the command line.")
    if args.queue:
        return leave_queued(queue_run(args.model_type, params))
    if args.detach:
        return detach(queue_run(args.model_type, params))
    from pedsense.procs import me

    return run_here(queue_run(args.model_type, params, reserved_by=me()))
