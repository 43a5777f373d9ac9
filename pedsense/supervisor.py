"""The run manager's background thread: start queued runs as workers, follow every live run.

One :class:`Supervisor` thread per run manager (the dashboard's design) does, every
:data:`TICK_S`:

- follow each live run of the data home, whoever started it (this dashboard, another one, the
  CLI, a library call): the new lines of its ``events.jsonl`` are folded into a :class:`LiveRun`
  (what the pages read), and its ``status.json`` says when it ends;
- when a slot is free, claim the oldest free queued run (``pedsense.runqueue.claim_next``) and
  start its worker process (``pedsense.worker.spawn_worker``);
- record the end of a worker that died without recording one (``failed`` with its exit code or
  signal and the last lines of its logs), and of a run whose process is gone (``interrupted``);
- terminate, then kill, a worker that has not honoured a stop request within
  :data:`STOP_GRACE_S` (the run ends ``stopped`` and says it was killed).

It stops by itself after :data:`IDLE_EXIT_S` with nothing to do; every read of the manager
starts it again, so a dashboard page (which reads every second) keeps it going.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pedsense.errors import PedsenseError, ReadOnly, SchedulerBusy
from pedsense.io import write_json_atomic
from pedsense.procs import read_heartbeat, same_process
from pedsense.runfolder import RunFolder, parse_iso
from pedsense.runqueue import (claim_next, holds_slot, is_live, killed_message, live_runs, orphan_reason,
                               read_settings, record_weights_on_disk, scheduler_lock, settle_orphan, stop_request, tail_lines)
from pedsense.train import events as ev
from pedsense.train.params import planned_epochs
from pedsense.worker import spawn_worker
from pedsense.workqueue import WorkItem

TICK_S = 0.2          # events -> snapshot within this (plus the page's own refresh)
SCAN_EVERY_S = 1.0    # look for runs started elsewhere, queued runs and orphans
IDLE_EXIT_S = 5.0
STOP_GRACE_S = 60.0   # a worker asked to stop that still runs after this is terminated...
KILL_AFTER_S = 10.0   # ... and killed (SIGKILL) if SIGTERM did not end it within this
LOG_LINES = 8         # last lines of the logs quoted when a worker dies


@dataclass
class LiveRun(WorkItem):
    """What the manager knows about a live run; guarded by the manager's lock."""

    folder: RunFolder | None = None
    params: dict = field(default_factory=dict)
    stage: str | None = None
    stage_epochs: int = 0
    epoch: int = 0
    epochs_done: int = 0
    epochs_total: int = 0
    batch: int = 0
    total_batches: int = 0
    metrics: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    epoch_started_at: float | None = None
    epoch_seconds: list = field(default_factory=list)
    best_metric: dict | None = None
    data_version: int = 0  # moves only when a chart point (epoch row or step) arrives


def apply_event(live: LiveRun, event: Any, now: float | None = None) -> None:
    """Fold one trainer event into the live state (call under the manager's lock).

    An epoch (or step) that comes again replaces the rows from it on: a resumed run retrains
    the epoch its stop cut short. ``now`` is when the event happened (a replayed record's time).
    """
    now = time.time() if now is None else now
    if isinstance(event, ev.StageStarted):
        live.stage, live.stage_epochs, live.epoch_started_at = event.stage, event.total_epochs, now
    elif isinstance(event, ev.BatchEnd):
        live.epoch, live.batch, live.total_batches = event.epoch, event.batch, event.total_batches
        live.epoch_started_at = live.epoch_started_at or now
    elif isinstance(event, ev.EpochEnd):
        row = {"epoch": event.epoch, **dict(event.metrics)}
        if event.stage and event.stage != "train":
            row.setdefault("stage", event.stage)
        stage = row.get("stage") or "train"
        live.metrics[:] = [r for r in live.metrics if (r.get("stage") or "train") != stage
                           or not isinstance(r.get("epoch"), (int, float)) or r["epoch"] < event.epoch]
        live.metrics.append(row)
        live.data_version += 1
        live.epochs_done = len(live.metrics)
        live.epoch = event.epoch
        live.stage_epochs = event.total_epochs or live.stage_epochs
        if live.epoch_started_at is not None:
            live.epoch_seconds.append(now - live.epoch_started_at)
        live.epoch_started_at, live.batch = now, 0
    elif type(event).__name__ == "StepEnd":
        stage = getattr(event, "stage", "train")
        live.steps[:] = [s for s in live.steps if s.get("stage", "train") != stage
                         or not isinstance(s.get("step"), (int, float)) or s["step"] < event.step]
        live.steps.append({"stage": stage, "epoch": event.epoch, "step": event.step,
                           "loss": event.loss, "lr": event.lr})
        live.data_version += 1
    elif isinstance(event, ev.RunFinished):
        if event.best_metric:
            best = dict(event.best_metric)
            live.best_metric = best if best.get("name") else None
        if event.error:
            live.error = event.error
    elif isinstance(event, ev.RunStarted):
        live.epoch_started_at = now
        live.error = None


def live_from_disk(folder: RunFolder, status: dict) -> LiveRun:
    """A run's live state rebuilt from its folder (its events are replayed on top)."""
    config = folder.read_config()
    launch = status.get("launch") or {}
    model_type = str(config.get("model_type") or folder.model_type)
    params = config.get("parameters") or launch.get("params") or {}
    total = config.get("epochs_total")
    if not isinstance(total, int):
        try:
            total = planned_epochs(model_type, params)
        except Exception:  # noqa: BLE001 - a run recorded with another version's parameters
            total = 0
    live = LiveRun(item_id=folder.run_id, kind=model_type, folder=folder, params=dict(params),
                   epochs_total=int(total or 0), status=_shown(status),
                   submitted_at=float(status.get("queued_at") or time.time()),
                   started_at=parse_iso(status.get("started_at")) if status.get("status") == "running" else None)
    live.metrics = folder.read_metrics()
    live.steps = folder.read_steps()
    live.epochs_done = len(live.metrics)
    return live


def _shown(status: dict) -> str:
    """The live status word: a run being resumed reads running."""
    return "running" if status.get("resuming") else str(status.get("status"))


@dataclass
class Followed:
    """One live run this supervisor follows."""

    live: LiveRun
    offset: int = 0
    stamp: tuple | None = None
    process: subprocess.Popen | None = None  # set when this process started its worker


class Supervisor:
    """See the module docstring. ``lock`` is the manager's (a Condition, notified on changes);
    ``start_workers`` is False for a manager whose runs run in its own thread; ``own(run_id)``
    says which runs the manager runs itself (never followed here)."""

    def __init__(self, home: Path, lock: threading.Condition, *, start_workers: bool = True,
                 own: Callable[[str], bool] = lambda run_id: False):
        self.home = Path(home)
        self.lock = lock
        self.start_workers = start_workers
        self.own = own
        self.followed: dict[str, Followed] = {}
        self.queued: list[str] = []  # free queued run ids, in the order they will start
        self._thread: threading.Thread | None = None
        self._ticking = threading.Lock()  # one tick at a time (the thread, shutdown, __init__'s scan)
        self._wake = threading.Event()
        self._closed = False
        self._next_scan = 0.0
        self._idle_since: float | None = None
        self.problem: str | None = None  # why the last tick could not do its work (said once)

    # -- the thread --------------------------------------------------------------------------
    def ensure_running(self) -> None:
        with self.lock:
            if self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            self._idle_since = None
            self._thread = threading.Thread(target=self._loop, name="pedsense-supervisor", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Look at the queue now (a run was queued, stopped or resumed)."""
        self._next_scan = 0.0
        self._wake.set()
        self.ensure_running()

    def close(self, timeout: float = 5.0) -> None:
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._closed:
            try:
                self.tick()
            except PedsenseError as exc:  # a read-only home, a busy lock: said once, tried again
                self._say(exc)
            except Exception:  # noqa: BLE001 - a bad run folder must never stop the supervision
                traceback.print_exc()
            if self._idle():
                with self.lock:
                    if self._idle():
                        self._thread = None
                        return
            self._wake.wait(TICK_S)
            self._wake.clear()

    def _say(self, problem: Exception) -> None:
        """Print why the scheduler cannot do its work (a read-only home, a busy lock), once."""
        if str(problem) != self.problem:
            print(f"pedsense scheduler: {problem}", file=sys.stderr, flush=True)
        self.problem = str(problem)

    def _idle(self) -> bool:
        if self.followed or self.queued:
            self._idle_since = None
            return False
        self._idle_since = self._idle_since or time.monotonic()
        return time.monotonic() - self._idle_since > IDLE_EXIT_S

    def tick(self) -> None:
        with self._ticking:
            if time.monotonic() >= self._next_scan:
                self._next_scan = time.monotonic() + SCAN_EVERY_S
                self._scan()
            for run_id, followed in list(self.followed.items()):
                self._follow(run_id, followed)
                self._enforce_stop(followed)

    # -- finding runs ----------------------------------------------------------------------------
    def scan(self) -> None:
        """Follow live runs started elsewhere, settle orphans, start queued runs."""
        with self._ticking:
            self._scan()

    def _scan(self) -> None:
        runs = [(f, s) for f, s in live_runs(self.home) if not self.own(f.run_id)]
        # The end of a worker this process started is recorded with its exit code (_settle_exit).
        orphans = [(f, s) for f, s in runs if not self._is_child(f.run_id) and orphan_reason(f, s)]
        if orphans:
            try:
                with scheduler_lock(self.home):
                    for folder, _ in orphans:
                        reason = orphan_reason(folder, folder.read_status())  # again, under the lock
                        if reason:
                            settle_orphan(folder, reason)
            except (ReadOnly, SchedulerBusy) as exc:  # the runs are still followed and listed
                self._say(exc)
            self._notify()
        for folder, status in runs:
            taken = status.get("status") != "queued" or status.get("claim")
            if taken and folder.run_id not in self.followed and not orphan_reason(folder, status):
                self._watch(folder)
        queued = [f.run_id for f, s in runs if s.get("status") == "queued" and not s.get("claim")]
        with self.lock:
            self.queued = queued
        if self.start_workers and queued:
            busy = sum(1 for f, s in runs if holds_slot(f, s))
            try:
                for _ in range(max(read_settings(self.home).max_parallel - busy, 0)):
                    if claim_next(self.home, self._start) is None:
                        break
            except (ReadOnly, SchedulerBusy) as exc:
                self._say(exc)
            self.queued = [r for r in self.queued if r not in self.followed]

    def _is_child(self, run_id: str) -> bool:
        followed = self.followed.get(run_id)
        return followed is not None and followed.process is not None

    def _start(self, folder: RunFolder, claim: dict) -> None:
        """Start a claimed run's worker (called under the scheduler lock)."""
        process = spawn_worker(folder)
        self._watch(folder, process)

    def _watch(self, folder: RunFolder, process: subprocess.Popen | None = None) -> None:
        with self.lock:
            followed = self.followed.get(folder.run_id)
            if followed is None:
                status = folder.read_status()
                followed = Followed(live_from_disk(folder, status))
                self.followed[folder.run_id] = followed
            if process is not None:
                followed.process = process
            self.lock.notify_all()

    # -- following one run ------------------------------------------------------------------------
    def _follow(self, run_id: str, followed: Followed) -> None:
        folder = followed.live.folder
        records, followed.offset = ev.read_records(folder.events_path, followed.offset)
        changed = bool(records)
        with self.lock:
            for record in records:
                event = ev.from_record(record)
                if event is not None:
                    apply_event(followed.live, event, record.get("t"))
        exit_code = followed.process.poll() if followed.process is not None else None
        if exit_code is not None:
            self._settle_exit(folder, followed, exit_code)
        stamp = _stamp(folder.status_path)
        if stamp is None and not folder.path.exists():
            self._drop(run_id)
            return
        if stamp != followed.stamp or changed:
            followed.stamp = stamp
            status = folder.read_status()
            with self.lock:
                live = followed.live
                live.status = _shown(status)
                live.error = status.get("error") if not is_live(status) else live.error
                if live.status == "running" and live.started_at is None:
                    live.started_at = parse_iso(status.get("started_at")) or time.time()
                if not is_live(status):
                    live.finished_at = parse_iso(status.get("finished_at")) or time.time()
                live.touch()
                self.lock.notify_all()
            if not is_live(status):
                self._drop(run_id)
                return
            if followed.process is None and orphan_reason(folder, status):
                self._next_scan = 0.0  # settled (under the lock) by the next scan

    def _drop(self, run_id: str) -> None:
        with self.lock:
            self.followed.pop(run_id, None)
            self.lock.notify_all()

    def _settle_exit(self, folder: RunFolder, followed: Followed, exit_code: int) -> None:
        """The worker this process started has exited: record its end if it did not."""
        followed.process = None
        with scheduler_lock(self.home):
            status = folder.read_status() if folder.status_path.exists() else {}
            if not is_live(status):
                return
            request = stop_request(folder) or {}
            launch = status.get("launch") or {}
            if request.get("terminated_at"):
                folder.set_status("stopped", error=f"{killed_message(request)}; {record_weights_on_disk(folder)}",
                                  resuming=None)
            elif status.get("status") == "queued" and launch.get("action") == "resume":
                folder.set_status(launch.get("previous_status") or "interrupted", error=launch.get("previous_error"),
                                  resume_error=describe_exit(exit_code, folder), claim=None, launch=None)
            else:
                folder.set_status("failed", error=describe_exit(exit_code, folder), resuming=None)
            folder.log(f"worker exited ({exit_code}): {folder.read_status().get('error')}")
            folder.stop_path.unlink(missing_ok=True)
        self._notify()

    def _enforce_stop(self, followed: Followed) -> None:
        enforce_stop(followed.live.folder, followed.process)

    def _notify(self) -> None:
        with self.lock:
            self.lock.notify_all()

    # -- reading ---------------------------------------------------------------------------------
    def live(self, run_id: str) -> LiveRun | None:
        followed = self.followed.get(run_id)
        return followed.live if followed is not None else None

    def lives(self) -> list[LiveRun]:
        return [f.live for f in self.followed.values()]

    def children(self) -> list[tuple[RunFolder, subprocess.Popen]]:
        """The runs whose worker this process started, still running."""
        return [(f.live.folder, f.process) for f in self.followed.values() if f.process is not None]

    def queue_position(self, run_id: str) -> int | None:
        return self.queued.index(run_id) + 1 if run_id in self.queued else None


def enforce_stop(folder: RunFolder, process: subprocess.Popen | None = None) -> None:
    """Terminate, then kill, the worker of ``folder`` when it has not honoured its stop request
    within :data:`STOP_GRACE_S` (never this process itself). The run's end is recorded once the
    worker is gone: ``stopped``, saying it was killed."""
    request = stop_request(folder)
    if request is None:
        return
    worker = read_heartbeat(folder.worker_path)
    if worker is None or worker.get("pid") == os.getpid() or not same_process(worker):
        return
    now = time.time()
    if not request.get("terminated_at") and now - float(request.get("at") or now) > STOP_GRACE_S:
        request.update(terminated_at=now, grace_s=STOP_GRACE_S)
        write_json_atomic(folder.stop_path, request)
        folder.log(f"worker {worker['pid']} did not stop within {STOP_GRACE_S:g} s: terminating it")
        _signal(process, worker["pid"], signal.SIGTERM)
    elif request.get("terminated_at") and not request.get("killed_at") \
            and now - float(request["terminated_at"]) > KILL_AFTER_S:
        request.update(killed_at=now)
        write_json_atomic(folder.stop_path, request)
        folder.log(f"worker {worker['pid']} survived SIGTERM: killing it")
        _signal(process, worker["pid"], signal.SIGKILL)


def settle_if_gone(folder: RunFolder) -> str | None:
    """Record the end of ``folder`` if nobody runs it any more (under the lock); its status then."""
    if orphan_reason(folder, folder.read_status()) is None:
        return None
    with scheduler_lock(folder.path.parent.parent.parent):
        reason = orphan_reason(folder, folder.read_status())
        return settle_orphan(folder, reason) if reason else None


def _signal(process: subprocess.Popen | None, pid: int, signum: int) -> None:
    try:
        if process is not None and process.pid == pid:
            process.send_signal(signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _stamp(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def describe_exit(exit_code: int, folder: RunFolder) -> str:
    """``"its worker process was killed by signal 9 (SIGKILL) ..."`` plus the last log lines."""
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        why = {"SIGKILL": " (kill -9, or the out-of-memory killer)", "SIGSEGV": " (a crash in native code)"}
        text = f"its worker process was killed by signal {-exit_code} ({name}){why.get(name, '')}"
    else:
        text = f"its worker process exited with code {exit_code} without recording how the run ended"
    text += f"; its metrics up to then are kept, {record_weights_on_disk(folder)}."
    for label, path in (("train.log", folder.log_path), ("worker.log", folder.worker_log_path)):
        lines = tail_lines(path, LOG_LINES)
        if lines:
            text += f"\nLast lines of {label}:\n" + "\n".join(lines)
    return text


# -- the queue served without a dashboard -----------------------------------------------------------
POOL_LOCK_FILE = ".worker-pool.lock"  # models/.worker-pool.lock: one worker pool per data home


def serve_queue(home: Path, *, should_stop: Callable[[], bool] = lambda: False,
                until_empty: bool = False, say: Callable[[str], None] = print) -> int | None:
    """Start the data home's queued runs as workers and follow them until ``should_stop()``
    (``until_empty``: until nothing is queued or running): ``pedsense worker-pool`` and the
    server of ``pedsense serve``, so a queue drains with no browser open. One pool per data home:
    returns the pid of the pool already serving it (doing nothing), else None when done."""
    lock_path = Path(home) / "models" / POOL_LOCK_FILE
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        supervisor = Supervisor(Path(home), threading.Condition())
        said: dict[str, str | None] = {}
        shown: dict[str, tuple[RunFolder, str]] = {}  # run id -> (folder, the status last said)
        while not should_stop():
            try:
                supervisor.tick()
                problem = read_settings(home).problem
            except PedsenseError as exc:
                problem = str(exc)
            if problem and said.get("problem") != problem:
                say(("warning: " if problem.startswith("models/") else "error: ") + problem)
            said["problem"] = problem
            for run_id, followed in list(supervisor.followed.items()):
                shown.setdefault(run_id, (followed.live.folder, ""))
            for run_id, (folder, last) in list(shown.items()):
                followed = supervisor.followed.get(run_id)
                status = followed.live.status if followed is not None else folder.status
                if status != last:
                    error = folder.read_status().get("error") if followed is None else None
                    say(f"{run_id}: {status}" + (f" ({error})" if error else ""))
                    shown[run_id] = (folder, status)
                if followed is None:
                    del shown[run_id]
            if until_empty and not supervisor.followed and not supervisor.queued:
                break
            time.sleep(TICK_S)
    return None
