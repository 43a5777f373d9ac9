"""`pedsense mlflow-export [RUN ...]`: pedsense runs into an MLflow store (``pedsense.mlflow_export``).

TensorBoard needs no command: every run writes its event files in its folder, so
``tensorboard --logdir models/`` shows them all.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mlflow-export`` to the `pedsense` parser."""
    export = subparsers.add_parser(
        "mlflow-export", help="log runs (parameters, per-epoch metrics, tags, weights) into MLflow",
        description="Log pedsense runs into an MLflow store: one MLflow run per pedsense run, updated "
                    "(never duplicated) when exported again. Without RUN: every finished run.")
    export.add_argument("runs", nargs="*", metavar="RUN", help="run id (<model_type>/<folder>), folder name or path")
    export.add_argument("--uri", help="MLflow tracking URI (default: the setting's, else "
                                      "sqlite:///<data home>/mlflow.db)")
    export.add_argument("--on-end", choices=("on", "off"),
                        help="from now on, export each run of this data home as it ends (on) or not (off); "
                             "--uri given with it is remembered")
    export.set_defaults(func=cmd_mlflow_export)


def cmd_mlflow_export(args: argparse.Namespace) -> int:
    from pedsense.mlflow_export import default_uri, export_runs, read_setting, write_setting
    from pedsense.runfolder import FINISHED_STATUSES, find_run, list_runs

    if args.on_end is not None:
        setting = write_setting(export_on_end=args.on_end == "on", uri=args.uri)
        where = setting.uri or default_uri()
        print(f"runs are {'exported to ' + where if setting.export_on_end else 'not exported'} as they end",
              file=sys.stderr)
        if not args.runs:
            return 0
    uri = args.uri or read_setting().uri or default_uri()
    runs = [find_run(r) for r in args.runs] if args.runs else \
        [r for r in list_runs() if r.status in FINISHED_STATUSES]
    if not runs:
        print("No finished run to export. Train one first (`pedsense train resnet-lstm --preset quick`).")
        return 0
    for done in export_runs(runs, uri):
        how = "created" if done.created else "updated"
        weights = f", weights/{done.weights}" if done.weights else ""
        print(f"{done.run_id} -> MLflow run {done.mlflow_run_id} ({how}: {done.metric_values} new metric "
              f"values{weights})")
    print(f"Open it: mlflow ui --backend-store-uri {uri}", file=sys.stderr)
    return 0
