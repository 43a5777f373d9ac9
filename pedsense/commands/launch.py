"""How the command line carries out a queued run: here (``run_here``: one line per epoch on
stdout, a progress bar on stderr, Ctrl-C stops after the batch) or in a worker process
(``detach``) or left to the scheduler (``leave_queued``), and the ``--detach``/``--queue``
options that pick between them.

``pedsense train``, ``resume`` and ``extend`` all end here, so none of them imports another.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pedsense.io import read_json

SHOWN_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "val_auc_binary", "val_roc_auc", "val_f1",
                 "precision", "recall", "mAP50", "mAP50-95", "lr", "seconds")


def add_detach_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detach", action="store_true",
                        help="queue the run and leave it to a worker process (it keeps training after "
                             "this command returns); prints the run id")
    parser.add_argument("--queue", action="store_true",
                        help="only queue the run: the data home's scheduler (`pedsense serve` or "
                             "`pedsense worker-pool`) starts it when a slot is free; prints the run id")


def leave_queued(folder) -> int:
    """``--queue``: print the run id and leave the run to the data home's scheduler."""
    print(folder.run_id, flush=True)
    print(f"queued; the data home's scheduler (`pedsense serve`, `pedsense worker-pool`, or an open "
          f"dashboard) starts it when a slot is free. Stop it with `pedsense stop {folder.run_id}`.",
          file=sys.stderr, flush=True)
    return 0


class ConsoleReporter:
    """Trainer events -> one stdout line per epoch and a stderr progress bar (terminals only)."""

    def __init__(self, out=None, err=None, width: int = 24):
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.interactive = hasattr(self.err, "isatty") and self.err.isatty()
        self.width = width
        self.bar_shown = False

    def __call__(self, event) -> None:
        kind = type(event).__name__
        if kind == "BatchEnd":
            self._bar(event)
        elif kind == "EpochEnd":
            self._clear_bar()
            shown = "  ".join(f"{k}={_fmt(event.metrics[k])}" for k in SHOWN_METRICS
                              if event.metrics.get(k) is not None)
            print(f"[{event.stage}] epoch {event.epoch}/{event.total_epochs}  {shown}", file=self.out, flush=True)
        elif kind == "RunStarted":
            print(f"run {event.run_id} started ({event.config.get('device')}, weights: "
                  f"{event.config.get('weights_source')})", file=self.out, flush=True)
        elif kind == "StageStarted" and event.stage != "train":
            print(f"stage {event.stage}: {event.total_epochs} epochs", file=self.out, flush=True)
        elif kind == "RunFinished":
            self._clear_bar()
            best = ", ".join(f"{k}={_fmt(v)}" for k, v in (event.best_metric or {}).items())
            print(f"run {event.status}: {event.run_dir}" + (f"  best: {best}" if best else "")
                  + (f"  error: {event.error}" if event.error else ""), file=self.out, flush=True)
            note = ((read_json(Path(event.run_dir) / "config.json", {}) or {}).get("selection") or {}).get("note")
            if note:  # a context run's best epoch chosen on a tiny val split, or early
                print(f"note: {note}", file=self.out, flush=True)

    def _bar(self, event) -> None:
        if not self.interactive:
            return
        fraction = event.batch / max(event.total_batches, 1)
        filled = int(round(fraction * self.width))
        self.err.write(f"\r{event.stage} epoch {event.epoch} [{'#' * filled}{'.' * (self.width - filled)}] "
                       f"{event.batch}/{event.total_batches}")
        self.err.flush()
        self.bar_shown = True

    def _clear_bar(self) -> None:
        if self.bar_shown:
            self.err.write("\r" + " " * 79 + "\r")
            self.err.flush()
            self.bar_shown = False


class StopOnInterrupt:
    """First Ctrl-C asks the trainer to stop after this batch; the second one aborts."""

    def __init__(self, err=None):
        self.err = err or sys.stderr
        self.event = threading.Event()
        self.previous = None

    def __call__(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum, frame) -> None:
        if self.event.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.event.set()
        print("\nstopping after this batch (weights are saved); Ctrl-C again to abort",
              file=self.err, flush=True)

    def __enter__(self) -> "StopOnInterrupt":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def run_here(folder) -> int:
    """Wait for a slot, then do the queued run ``folder`` in this process (epoch lines, Ctrl-C
    stops); 130 when it ended stopped."""
    from pedsense.procs import Heartbeat
    from pedsense.runqueue import RunTaken, wait_for_slot
    from pedsense.worker import execute

    heartbeat = Heartbeat(folder.worker_path)
    with StopOnInterrupt() as stop:
        try:
            wait_for_slot(folder, report=lambda why: print(why, file=sys.stderr, flush=True),
                          on_claimed=heartbeat.start, cancel_if=stop)
            execute(folder, on_event=ConsoleReporter(), should_stop=stop)
        except RunTaken as exc:
            print(str(exc), file=sys.stderr, flush=True)
            return 130
        finally:
            heartbeat.stop()
    return 130 if folder.status == "stopped" else 0


def detach(folder) -> int:
    """Leave the queued run ``folder`` to a worker process that waits for a slot itself."""
    from pedsense.worker import spawn_worker

    process = spawn_worker(folder, wait=True)
    print(folder.run_id, flush=True)
    print(f"queued; worker process {process.pid} starts it when a slot is free (its output: "
          f"{folder.worker_log_path}). Follow it with `pedsense runs` or the dashboard, stop it with "
          f"`pedsense stop {folder.run_id}`.", file=sys.stderr, flush=True)
    return 0


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
