"""The ``pedsense`` command. Each group of subcommands lives in ``pedsense/commands/``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pedsense.errors import PedsenseError

# Each module exposes ``register(subparsers)`` and sets ``func`` on the parsers it adds.
COMMAND_MODULES = (
    "pedsense.commands.data",
    "pedsense.commands.train",
    "pedsense.commands.runs",
    "pedsense.commands.infer",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pedsense",
        description="Train and inspect pedestrian crossing-intent models on JAAD.",
    )
    parser.add_argument("--home", help="data home (default: $PEDSENSE_HOME or the repository root)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
