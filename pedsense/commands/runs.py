"""`pedsense runs`: list run folders with type, status, epochs and best metric."""

from __future__ import annotations

import argparse
import json

from pedsense.config import MODEL_TYPES

PREFERRED_METRICS = ("val_acc", "mAP50", "mAP50-95")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``runs`` to the `pedsense` parser."""
    runs = subparsers.add_parser("runs", help="list training runs (newest first)")
    runs.add_argument("--type", dest="model_type", choices=MODEL_TYPES, help="only this model type")
    runs.add_argument("--limit", type=int, default=50, help="show at most this many (default 50)")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    runs.set_defaults(func=cmd_runs)


def run_summary(run) -> dict:
    """What the runs table shows for one ``RunFolder``."""
    config, status = run.read_config(), run.read_status()
    params = config.get("parameters") or {}
    done = config.get("epochs_done", status.get("epochs_done"))
    if done is None:
        done = len(run.read_metrics())
    planned = params.get("epochs")
    if run.model_type == "hybrid" and params.get("yolo_epochs") and not params.get("yolo_model"):
        planned = (planned or 0) + params["yolo_epochs"]
    return {"run_id": run.run_id, "type": run.model_type, "status": status.get("status", "unknown"),
            "epochs_done": done, "epochs": planned, "best": format_best(config.get("best_metric")),
            "created": status.get("created_at") or "", "error": status.get("error"), "path": str(run.path)}


def format_best(best: dict | None) -> str:
    """``val_acc=0.912`` / ``mAP50=0.53`` from a config's ``best_metric``."""
    if not best:
        return "-"
    shown = [f"{k}={best[k]:.3f}" for k in PREFERRED_METRICS if isinstance(best.get(k), (int, float))]
    if "epoch" in best and shown:
        shown.append(f"@{best['epoch']}")
    return " ".join(shown) or "-"


def cmd_runs(args: argparse.Namespace) -> int:
    from pedsense.runs import list_runs

    types = (args.model_type,) if args.model_type else MODEL_TYPES
    rows = [run_summary(r) for r in list_runs(model_types=types)[: max(0, args.limit)]]
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
