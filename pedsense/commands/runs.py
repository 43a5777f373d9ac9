"""`pedsense runs` (list runs, queue settings), `pedsense resume|extend|stop RUN`,
`pedsense tag RUN +tag -tag`, `pedsense note RUN "text"`, `pedsense archive RUN...`.

Resume and extend go through the data home's queue like a launch from the dashboard: they wait
for a free slot and train in this process (``--detach``: in a worker process). Stop works on any
run, whoever started it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from pedsense.config import MODEL_TYPES
from pedsense.commands.launch import add_detach_option
from pedsense.runfolder import describe_best


def _run_parser(subparsers: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:
    """A command acting on one run, named as the user likes (id, folder name or path)."""
    parser = subparsers.add_parser(name, help=help)
    parser.add_argument("run", help="run id (<model_type>/<folder>), folder name or path")
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``runs``, ``resume``, ``extend`` and ``stop`` to the `pedsense` parser."""
    runs = subparsers.add_parser("runs", help="list training runs (newest first); queue settings")
    runs.add_argument("--type", dest="model_type", choices=MODEL_TYPES, help="only this model type")
    runs.add_argument("--limit", type=int, default=50, help="show at most this many (default 50)")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    runs.add_argument("--tag", action="append", metavar="TAG", help="only runs with this tag (repeatable: any)")
    runs.add_argument("--archived", action="store_true", help="list archived runs too")
    runs.add_argument("--max-parallel", type=int, metavar="N",
                      help="set how many runs may train at once on this data home (default 1)")
    runs.add_argument("--devices", metavar="LIST",
                      help="set the device pool given to runs whose device is auto, e.g. cuda:0,cuda:1 "
                           "('' clears it); every device is checked to exist")
    runs.set_defaults(func=cmd_runs)

    resume = _run_parser(subparsers, "resume", "continue a stopped, interrupted or failed run in its folder")
    resume.add_argument("--confirm-dataset-change", action="store_true",
                        help="resume although its dataset changed since it started (recorded)")
    add_detach_option(resume)
    resume.set_defaults(func=cmd_resume)

    extend = _run_parser(subparsers, "extend", "train a completed run N more epochs as a new linked run")
    extend.add_argument("--epochs", type=int, required=True, help="how many more epochs")
    add_detach_option(extend)
    extend.set_defaults(func=cmd_extend)

    stop = _run_parser(subparsers, "stop", "stop a running run (or cancel a queued one), whoever started it")
    stop.add_argument("--no-wait", action="store_true", help="return once the stop is requested")
    stop.set_defaults(func=cmd_stop)

    tag = _run_parser(subparsers, "tag", "add (+tag) and remove (-tag) tags of a run; prints its tags")
    tag.add_argument("changes", nargs=argparse.REMAINDER, metavar="+TAG|-TAG",
                     help="+name adds, -name removes (a bare name adds); none: print the tags")
    tag.set_defaults(func=cmd_tag)

    note = _run_parser(subparsers, "note", "set a run's note (\"\" clears it); without text, print it")
    note.add_argument("text", nargs="?", help="the note (plain text)")
    note.set_defaults(func=cmd_note)

    archive = subparsers.add_parser("archive", help="hide finished runs from the Runs table (kept on disk)")
    archive.add_argument("runs", nargs="+", metavar="RUN", help="run ids, folder names or paths")
    archive.add_argument("--restore", action="store_true", help="bring archived runs back")
    archive.set_defaults(func=cmd_archive)


def run_row(summary) -> dict:
    """What the runs table shows for one ``RunSummary``."""
    return {"run_id": summary.run_id, "type": summary.model_type, "status": summary.status,
            "epochs_done": summary.epochs_done, "epochs": summary.epochs_total or None,
            "tags": list(summary.labels.tags), "archived": summary.labels.archived,
            "best": describe_best(summary.best_metric), "created": summary.started_at or "",
            "error": summary.error, "path": summary.path}


def cmd_runs(args: argparse.Namespace) -> int:
    from pedsense.errors import ReadOnly, SchedulerBusy
    from pedsense.runfilter import RunFilter
    from pedsense.runfolder import list_runs
    from pedsense.runqueue import read_settings, settle_orphans, write_settings
    from pedsense.runs import disk_summary

    if args.max_parallel is not None or args.devices is not None:
        settings = write_settings(max_parallel=args.max_parallel, devices=args.devices)
        pool = ", ".join(settings.devices) or "each run's own device"
        print(f"at most {settings.max_parallel} run(s) at once; devices: {pool}", file=sys.stderr)
    elif read_settings().problem:
        print(f"warning: {read_settings().problem}", file=sys.stderr)
    try:
        settle_orphans()  # a run whose process is gone reads interrupted, not running
    except (ReadOnly, SchedulerBusy) as exc:  # listing needs neither the lock nor a write
        print(f"warning: runs whose process is gone still read running: {exc}", file=sys.stderr)
    types = (args.model_type,) if args.model_type else MODEL_TYPES
    wanted = RunFilter({"tag": args.tag or []}, archived=args.archived)
    every = [disk_summary(r) for r in list_runs(model_types=types)]
    summaries = wanted.apply(every)
    hidden = sum(s.labels.archived for s in every) if not args.archived else 0
    if hidden and not args.json:
        print(f"{hidden} archived run(s) not listed: --archived lists them", file=sys.stderr)
    rows = [run_row(s) for s in summaries[: max(0, args.limit)]]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows and (hidden or args.tag):
        print("No run matches.")
        return 0
    if not rows:
        print("No runs yet. Start one with `pedsense train resnet-lstm --preset quick`.")
        return 0
    headers = ("RUN", "TYPE", "STATUS", "EPOCHS", "BEST", "CREATED", "TAGS")
    table = [(r["run_id"], r["type"], r["status"], f"{r['epochs_done']}/{r['epochs'] or '?'}", r["best"],
              r["created"][:19].replace("T", " "), " ".join(r["tags"]) + (" (archived)" if r["archived"] else ""))
             for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *table)]
    for line in (headers, *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    return 0


def _launch(folder, detach: bool) -> int:
    from pedsense.commands.launch import detach as detach_run, leave_queued, run_here

    if detach == "queue":
        return leave_queued(folder)
    return detach_run(folder) if detach else run_here(folder)



def cmd_resume(args: argparse.Namespace) -> int:
    from pedsense.procs import me
    from pedsense.runfolder import find_run
    from pedsense.launches import queue_resume

    folder = queue_resume(find_run(args.run), args.confirm_dataset_change,
                          reserved_by=None if args.detach or args.queue else me())
    return _launch(folder, "queue" if args.queue else args.detach)


def cmd_extend(args: argparse.Namespace) -> int:
    from pedsense.procs import me
    from pedsense.runfolder import find_run
    from pedsense.launches import queue_extend

    folder = queue_extend(find_run(args.run), args.epochs,
                          reserved_by=None if args.detach or args.queue else me())
    print(f"extension of {find_run(args.run).run_id}: {folder.run_id}", file=sys.stderr, flush=True)
    return _launch(folder, "queue" if args.queue else args.detach)


def cmd_stop(args: argparse.Namespace) -> int:
    """Request the stop; then wait for the run to end, terminating it after the grace period."""
    from pedsense.runfolder import find_run
    from pedsense.runqueue import is_live, request_stop
    from pedsense.supervisor import STOP_GRACE_S, enforce_stop, settle_if_gone

    folder = find_run(args.run)
    status = request_stop(folder)
    if not is_live(folder.read_status()):
        print(f"{folder.run_id}: {folder.status}" + (" (cancelled before it started)" if status == "stopped" else ""))
        return 0
    print(f"{folder.run_id}: stop requested; it ends after its current batch", file=sys.stderr, flush=True)
    if args.no_wait:
        return 0
    print(f"waiting for it (a worker still running after {STOP_GRACE_S:g} s is terminated)",
          file=sys.stderr, flush=True)
    while is_live(folder.read_status()):
        enforce_stop(folder)
        settle_if_gone(folder)
        time.sleep(0.5)
    print(f"{folder.run_id}: {folder.status}" + (f" ({folder.read_status().get('error')})"
                                                   if folder.read_status().get("error") else ""))
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from pedsense.runfolder import find_run
    from pedsense.runlabels import change_tags, parse_changes, read_labels

    folder = find_run(args.run)
    add, remove = parse_changes(args.changes)  # a bad tag is refused before anything changes
    labels = change_tags(folder, add, remove) if add or remove else read_labels(folder)
    print(f"{folder.run_id}: " + (" ".join(labels.tags) or "(no tags)"))
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    from pedsense.runfolder import find_run
    from pedsense.runlabels import read_labels, set_note

    folder = find_run(args.run)
    if args.text is None:
        print(read_labels(folder).note)
        return 0
    labels = set_note(folder, args.text)
    print(f"{folder.run_id}: note " + ("saved" if labels.note else "cleared"), file=sys.stderr)
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    """Archive (or restore) each run; a live one is refused with the reason, the others go on."""
    from pedsense.errors import PedsenseError
    from pedsense.runfolder import find_run
    from pedsense.runlabels import set_archived

    refused = 0
    for run in args.runs:
        try:
            folder = find_run(run)
            set_archived(folder, not args.restore)
            print(f"{folder.run_id}: " + ("restored" if args.restore else "archived"))
        except PedsenseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            refused += 1
    return 2 if refused else 0
