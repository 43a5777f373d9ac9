"""`pedsense runs`: list run folders with type, status, epochs and best metric."""

from __future__ import annotations

import argparse
import json

from pedsense.config import MODEL_TYPES
from pedsense.runfolder import describe_best

def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``runs`` to the `pedsense` parser."""
    runs = subparsers.add_parser("runs", help="list training runs (newest first)")
    runs.add_argument("--type", dest="model_type", choices=MODEL_TYPES, help="only this model type")
    runs.add_argument("--limit", type=int, default=50, help="show at most this many (default 50)")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    runs.set_defaults(func=cmd_runs)


def run_row(summary) -> dict:
    """What the runs table shows for one ``RunSummary``."""
    return {"run_id": summary.run_id, "type": summary.model_type, "status": summary.status,
            "epochs_done": summary.epochs_done, "epochs": summary.epochs_total or None,
            "best": describe_best(summary.best_metric), "created": summary.started_at or "",
            "error": summary.error, "path": summary.path}


def cmd_runs(args: argparse.Namespace) -> int:
    from pedsense.runfolder import list_runs
    from pedsense.runs import disk_summary

    types = (args.model_type,) if args.model_type else MODEL_TYPES
    rows = [run_row(disk_summary(r)) for r in list_runs(model_types=types)[: max(0, args.limit)]]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No runs yet. Start one with `pedsense train resnet-lstm --preset quick`.")
        return 0
    headers = ("RUN", "TYPE", "STATUS", "EPOCHS", "BEST", "CREATED")
    table = [(r["run_id"], r["type"], r["status"], f"{r['epochs_done']}/{r['epochs'] or '?'}", r["best"],
              r["created"][:19].replace("T", " ")) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *table)]
    for line in (headers, *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    return 0
