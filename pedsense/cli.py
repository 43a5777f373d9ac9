"""The ``pedsense`` command. Each group of subcommands lives in ``pedsense/commands/``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pedsense.errors import PedsenseError

# Each module exposes ``register(subparsers)`` and sets ``func`` on the parsers it adds; the
# commands it adds are listed here, so running one registers only its module: `pedsense info`
# never imports the trainers (and with them torch), whose options ``train`` reads from them.
COMMAND_MODULES = {
    "pedsense.commands.data": ("setup", "demo-data", "preprocess", "info", "windows"),
    "pedsense.commands.train": ("train",),
    "pedsense.commands.runs": ("runs",),
    "pedsense.commands.infer": ("predict", "evaluate"),
    "pedsense.commands.experiments": ("sweep", "sweep-worker", "sweeps", "leaderboard"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `pedsense` parser: every command, or only the module that adds ``command``."""
    parser = argparse.ArgumentParser(
        prog="pedsense",
        description="Train and inspect pedestrian crossing-intent models on JAAD.",
    )
    _add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    owner = next((m for m, commands in COMMAND_MODULES.items() if command in commands), None)
    for module in COMMAND_MODULES:
        if owner is None or module == owner:
            importlib.import_module(module).register(subparsers)
    return parser


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="data home (default: $PEDSENSE_HOME or the repository root)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")


def _command_in(argv: list[str] | None) -> str | None:
    """The command word of ``argv`` (after the global options), or None (e.g. ``--help``)."""
    globals_only = argparse.ArgumentParser(add_help=False)
    _add_global_options(globals_only)
    _, rest = globals_only.parse_known_args(argv)
    return rest[0] if rest and not rest[0].startswith("-") else None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s")
    if args.home:
        import os

        os.environ["PEDSENSE_HOME"] = args.home
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except PedsenseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
