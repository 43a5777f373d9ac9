"""The ``pedsense`` command. Each group of subcommands lives in ``pedsense/commands/``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from pedsense.errors import PedsenseError

# Each module exposes ``register(subparsers)`` and sets ``func`` on the parsers it adds; the
# commands it adds are listed here, so running one registers only its module: `pedsense info`
# never imports the trainers (and with them torch), whose options ``train`` reads from them.
COMMAND_MODULES = {
    "pedsense.commands.data": ("setup", "demo-data", "get-annotations", "preprocess", "info", "windows"),
    "pedsense.commands.train": ("train",),
    "pedsense.commands.runs": ("runs", "resume", "extend", "stop", "tag", "note", "archive"),
    "pedsense.commands.infer": ("predict", "evaluate", "export"),
    "pedsense.commands.experiments": ("sweep", "sweep-worker", "sweeps", "leaderboard"),
    "pedsense.commands.tracking": ("mlflow-export",),
    "pedsense.commands.serve": ("serve", "worker-pool"),
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
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an unexpected error (default: one line "
                             "and the log file that holds it)")


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
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback in the log
        from pedsense.io import file_system_problem

        problem = file_system_problem(exc)
        if problem is not None and not args.debug:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        if args.debug:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        where = record_traceback(exc, argv)
        print(f"error: unexpected {type(exc).__name__}{': ' + first if first else ''} (a bug in "
              f"pedsense; the traceback is in {where}, `pedsense --debug ...` shows it here)",
              file=sys.stderr)
        return 1


def record_traceback(exc: BaseException, argv: list[str] | None) -> Path | str:
    """Append ``exc``'s traceback to ``<data home>/logs/pedsense.log`` (else the temporary
    folder's); returns the file, or a note when neither can be written."""
    import tempfile
    import traceback
    from datetime import datetime

    from pedsense.config import paths

    text = (f"{datetime.now().isoformat(timespec='seconds')} pedsense "
            f"{' '.join(sys.argv[1:] if argv is None else argv)}\n"
            + "".join(traceback.format_exception(exc)) + "\n")
    for folder in (paths().logs, Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / "pedsense.log", "a", encoding="utf-8") as f:
                f.write(text)
            return folder / "pedsense.log"
        except OSError:
            continue
    return "no log file (neither the data home's logs/ nor the temporary folder is writable)"
