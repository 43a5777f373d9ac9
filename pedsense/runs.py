"""The run manager: the process-wide owner of training runs (the dashboard's engine).

``RunManager.submit`` checks the parameters against the trainer's spec and the data home
(``pedsense.train.preflight``) before anything is created, then makes the run folder
(``queued``) and puts the run on a :class:`pedsense.workqueue.WorkQueue`; its background
thread calls the seed trainer with the ``on_event``/``should_stop``/``run_dir`` hooks and folds
each event into the run's live state behind a lock. ``snapshot``/``runs`` return
:class:`pedsense.runfolder.RunSummary` copies, safe to read from any thread; ``version``
answers "did anything change?" without building one.

Who writes ``status.json``: the manager writes ``queued`` and a cancellation, and ``failed``
for a run that never started (its trainer raised before starting, or its process is gone);
once the trainer has started the run, only the trainer's lifecycle writes it.
"""

from __future__ import annotations

import inspect
import os
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pedsense.config import paths
from pedsense.errors import ConfigError, PedsenseError
from pedsense.procs import process_alive, process_start_token
from pedsense.runfolder import (FINISHED_STATUSES, LIVE_STATUSES, RunFolder, RunNotFound, RunSummary,
                                best_of, file_stamps, find_run, iso, list_runs, read_summary)
from pedsense.train import events as ev
from pedsense.train.params import FormError, planned_epochs, spec_for
from pedsense.train.preflight import preflight
from pedsense.workqueue import WorkItem, WorkQueue

# Run folders owned by a live RunManager anywhere in this process (queued or running).
# Process-wide, so a second manager (a second data home, a test) never marks them interrupted.
_OWNED_RUNS: set[str] = set()
_OWNED_LOCK = threading.Lock()


@dataclass
class LiveRun(WorkItem):
    """What the manager knows about a run it owns; guarded by the queue's lock."""

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


class RunManager:
    """Starts training runs on one background thread, one at a time, in FIFO order.

    Args:
        home: the data home (default: ``$PEDSENSE_HOME`` or the repository root).
        trainers: ``{model_type: callable}`` overriding the seed trainers (for other trainers
            that follow the same hook contract); their parameters still follow the spec.
        check_data: run :func:`pedsense.train.preflight.preflight`'s data checks on submit
            (turned off with custom trainers that do not read the data home).
    """

    def __init__(self, home: str | os.PathLike | None = None,
                 trainers: Mapping[str, Callable[..., Any]] | None = None, *, check_data: bool | None = None):
        self.home = paths(home).home
        self._trainers = dict(trainers or {})
        self.check_data = not self._trainers if check_data is None else check_data
        self._queue = WorkQueue("runs", self._execute)
        self.interrupted = self.mark_interrupted()

    # -- public API -----------------------------------------------------------------------
    def trainer(self, model_type: str) -> Callable[..., Any]:
        return self._trainers.get(model_type) or spec_for(model_type).load_trainer()

    def check(self, model_type: str, params: Mapping[str, Any]) -> dict[str, str]:
        """``{field: message}`` of everything a launch with ``params`` would be refused for.

        A custom trainer (``trainers=``) may take keywords beyond the spec; those are checked
        against its signature only.
        """
        spec = spec_for(model_type)
        extra = {k: v for k, v in params.items() if k not in spec}
        errors = preflight(model_type, params, self.home) if self.check_data else spec.errors(params)
        if model_type in self._trainers:
            accepted = inspect.signature(self._trainers[model_type]).parameters
            errors = {k: m for k, m in errors.items() if k not in extra or k not in accepted}
        return errors

    def submit(self, model_type: str, params: Mapping[str, Any]) -> str:
        """Queue a training run; returns its run id (``<model_type>/<folder>``).

        Raises:
            FormError: invalid parameters, or data the trainer would refuse (nothing is created).
        """
        errors = self.check(model_type, params)
        if errors:
            raise FormError(errors)
        spec = spec_for(model_type)
        checked = spec.check({k: v for k, v in params.items() if k in spec})
        given = {k: checked[k] if k in spec else v for k, v in params.items()}
        folder = RunFolder.create(model_type, checked.get("name"), default_prefix=model_type, home=self.home)
        total = planned_epochs(model_type, checked)
        folder.write_config({"model_type": model_type, "parameters": spec.record(checked),
                             "epochs_total": total, "run_dir": str(folder.path)})
        folder.set_status("queued", owner_pid=os.getpid(), owner_start=process_start_token(os.getpid()))
        folder.log(f"queued {model_type} run with {given}")
        live = LiveRun(item_id=folder.run_id, kind=model_type, folder=folder, params=given,
                       epochs_total=total)
        with _OWNED_LOCK:
            _OWNED_RUNS.add(str(folder.path))
        self._queue.submit(live)
        return folder.run_id

    def stop(self, run_id: str) -> str:
        """Stop a run: a running one finishes its batch and ends ``stopped``; a queued one is
        cancelled (``stopped``) without starting. Returns the run's status after the request."""
        live = self._queue.get(run_id)
        if live is not None and self._queue.request_stop(run_id):
            live.folder.log("stop requested")
            return "running"
        if live is not None and self._queue.cancel(run_id):
            live.folder.set_status("stopped", error="cancelled before it started", cancelled=True)
            live.folder.log("cancelled while queued")
            self._release(live)
            return "stopped"
        return self.snapshot(run_id).status

    def delete(self, run_id: str) -> None:
        """Delete a finished run's folder (a queued or running run must be stopped first)."""
        folder = find_run(run_id, self.home)
        models = paths(self.home).models.resolve()
        if models not in folder.path.resolve().parents:
            raise RunNotFound(f"{run_id!r} is not a run folder under {models}.")
        status = self.snapshot(run_id).status
        if status in LIVE_STATUSES:
            raise ConfigError(f"Run {run_id} is {status}: stop it before deleting it.")
        self._queue.forget(run_id)
        shutil.rmtree(folder.path)

    def snapshot(self, run_id: str) -> RunSummary:
        """A plain copy of a run's state: status, progress, metrics rows, error, ETA, config."""
        with self._queue.lock:
            live = self._queue.get(run_id)
            if live is not None and live.status in LIVE_STATUSES:
                return self._live_summary(live)
        return self._disk_summary(find_run(run_id, self.home))

    def version(self, run_id: str) -> tuple:
        """Changes whenever anything about the run changes; costs no file read for live runs
        (three ``stat`` calls otherwise). Pages compare it before redrawing anything."""
        with self._queue.lock:
            live = self._queue.get(run_id)
            if live is not None and live.status in LIVE_STATUSES:
                return ("live", live.version, live.data_version)
        try:
            return ("disk", file_stamps(find_run(run_id, self.home)))
        except RunNotFound:
            return ("gone",)

    def status_version(self) -> tuple:
        """Changes when a run appears or goes, or its status (or a stop request) changes — not
        on every batch: what status words, buttons and notices depend on. A few ``stat`` calls."""
        with self._queue.lock:
            live = tuple((i.item_id, i.status, i.stop_event.is_set()) for i in self._queue.items())
        disk = []
        for folder in list_runs(self.home):
            try:
                stat = folder.status_path.stat()
                disk.append((folder.run_id, stat.st_size, stat.st_mtime_ns))
            except OSError:
                disk.append((folder.run_id, None, None))
        return live, tuple(disk)

    def runs(self) -> list[RunSummary]:
        """Every run of the data home (newest first), live state merged in."""
        return [self.snapshot_of(folder) for folder in list_runs(self.home)]

    def snapshot_of(self, folder: RunFolder) -> RunSummary:
        with self._queue.lock:
            live = self._queue.get(folder.run_id)
            if live is not None and live.status in LIVE_STATUSES:
                return self._live_summary(live)
        return self._disk_summary(folder)

    def active(self) -> list[RunSummary]:
        """The running run (if any) then the queued ones, in the order they will run."""
        with self._queue.lock:
            return [self._live_summary(live) for live in self._queue.active()]

    def wait(self, run_id: str, timeout: float = 60.0) -> RunSummary:
        """Block until ``run_id`` leaves queued/running (for tests and scripts); its summary."""
        self._queue.wait(run_id, timeout)
        return self.snapshot(run_id)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until nothing is queued or running."""
        self._queue.wait_idle(timeout)

    def shutdown(self, stop_running: bool = True, timeout: float = 30.0) -> None:
        """Cancel queued runs, ask the running one to stop and wait for the worker."""
        for live in self._queue.active():
            if live.status == "queued":
                self.stop(live.item_id)
        self._queue.shutdown(stop_running, timeout)

    def mark_interrupted(self) -> list[str]:
        """Mark runs that say ``running``/``queued`` but that no live process owns as ``interrupted``.

        Their metrics and weights stay. Returns the run ids marked.
        """
        marked = []
        for folder in list_runs(self.home):
            status = folder.read_status()
            if status.get("status") not in LIVE_STATUSES or self._owned_elsewhere(folder, status):
                continue
            folder.set_status("interrupted", error=(
                f"the process that ran it is gone (it was {status.get('status')}); "
                "its metrics and weights up to then are kept. Resume it "
                "(pedsense.train.resume.resume_run) or launch it again."))
            folder.log("marked interrupted: its process is gone")
            marked.append(folder.run_id)
        return marked

    # -- the worker thread -----------------------------------------------------------------
    def _execute(self, live: LiveRun) -> tuple[str, str | None]:
        folder = live.folder
        trainer = self.trainer(live.kind)
        hooks = {"on_event": self._listener(live), "should_stop": live.stop_event.is_set,
                 "run_dir": folder.path, "home": self.home}
        accepted = inspect.signature(trainer).parameters
        folder.log("training started")
        try:
            trainer(**live.params, **{k: v for k, v in hooks.items() if k in accepted})
            outcome, error = "completed", None
        except PedsenseError as exc:
            outcome, error = "failed", str(exc)
        except Exception as exc:  # a trainer bug must not kill the worker or the app
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"
            folder.log(traceback.format_exc())
        recorded = folder.read_status()
        if recorded.get("status") in FINISHED_STATUSES:
            outcome, error = recorded["status"], recorded.get("error")  # the trainer's words
        else:
            # The trainer never started the run (it refused its input) or ended without saying
            # how: the run's lifecycle is over, so the manager records it. Never left "running".
            if outcome == "completed" and live.stop_event.is_set():
                outcome = "stopped"
            if recorded.get("status") == "queued" and outcome == "completed":
                outcome, error = "failed", "the trainer returned without starting the run"
            folder.set_status(outcome, error=error)
            if recorded.get("status") == "queued":
                folder.log(f"failed before training: {error}")
        folder.log(f"run ended: {outcome}" + (f" ({error})" if error else ""))
        self._release(live)
        return outcome, error

    @staticmethod
    def _release(live: LiveRun) -> None:
        with _OWNED_LOCK:
            _OWNED_RUNS.discard(str(live.folder.path))

    @staticmethod
    def _owned_elsewhere(folder: RunFolder, status: Mapping[str, Any]) -> bool:
        with _OWNED_LOCK:
            if str(folder.path) in _OWNED_RUNS:
                return True
        pid = status.get("pid", status.get("owner_pid"))
        if pid is None or int(pid) == os.getpid():
            return False  # this process owns no thread for it (checked above): nobody runs it
        start = status.get("owner_start") if status.get("owner_pid") == pid else None
        return process_alive(pid, start)

    def _listener(self, live: LiveRun) -> Callable[[Any], None]:
        """The ``on_event`` hook for one run: folds each event into ``live`` under the lock."""
        def on_event(event: Any) -> None:
            try:
                with self._queue.lock:
                    apply_event(live, event)
                    live.touch()
            except Exception:  # a bad event must never break the training loop
                live.folder.log("ignored malformed event: " + traceback.format_exc(limit=2))

        return on_event

    # -- summaries ---------------------------------------------------------------------------
    def _live_summary(self, live: LiveRun) -> RunSummary:
        now = time.time()
        started = live.started_at
        config = {"model_type": live.kind, "parameters": dict(live.params)}
        rows = tuple(dict(r) for r in live.metrics)
        return RunSummary(
            run_id=live.item_id, model_type=live.kind, name=live.folder.name, path=str(live.folder.path),
            status=live.status, error=live.error, stage=live.stage, epoch=live.epoch,
            epochs_done=live.epochs_done, epochs_total=max(live.epochs_total, live.epochs_done),
            stage_epochs=live.stage_epochs, batch=live.batch, total_batches=live.total_batches,
            metrics=rows, steps=tuple(live.steps), eta_s=_eta(live, now), live=True,
            started_at=iso(started), finished_at=iso(live.finished_at),
            duration_s=((live.finished_at or now) - started) if started else None,
            best_metric=live.best_metric or best_of(live.kind, rows), config=config,
            queue_position=self._queue.position(live.item_id),
            stop_requested=live.stop_event.is_set(),
            version=("live", live.version), data_version=("live", live.data_version))

    @staticmethod
    def _disk_summary(folder: RunFolder) -> RunSummary:
        return disk_summary(folder)


def disk_summary(folder: RunFolder) -> RunSummary:
    """The summary of a run read from its folder (cached by file stamps; see ``read_summary``)."""
    return read_summary(folder, planned_epochs)


def apply_event(live: LiveRun, event: Any) -> None:
    """Fold one trainer event into the live state (call under the manager's lock)."""
    now = time.time()
    if isinstance(event, ev.StageStarted):
        live.stage, live.stage_epochs, live.epoch_started_at = event.stage, event.total_epochs, now
    elif isinstance(event, ev.BatchEnd):
        live.epoch, live.batch, live.total_batches = event.epoch, event.batch, event.total_batches
        live.epoch_started_at = live.epoch_started_at or now
    elif isinstance(event, ev.EpochEnd):
        row = {"epoch": event.epoch, **dict(event.metrics)}
        if event.stage and event.stage != "train":
            row.setdefault("stage", event.stage)
        live.metrics.append(row)
        live.data_version += 1
        live.epochs_done += 1
        live.epoch = event.epoch
        live.stage_epochs = event.total_epochs or live.stage_epochs
        if live.epoch_started_at is not None:
            live.epoch_seconds.append(now - live.epoch_started_at)
        live.epoch_started_at, live.batch = now, 0
    elif type(event).__name__ == "StepEnd":
        live.steps.append({"stage": getattr(event, "stage", "train"), "epoch": event.epoch,
                           "step": event.step, "loss": event.loss, "lr": event.lr})
        live.data_version += 1
    elif isinstance(event, ev.RunFinished):
        if event.best_metric:
            best = dict(event.best_metric)
            live.best_metric = best if best.get("name") else None
        if event.error:
            live.error = event.error
    elif isinstance(event, ev.RunStarted):
        live.epoch_started_at = now


def _eta(live: LiveRun, now: float) -> float | None:
    """Seconds left: mean epoch time × epochs left, less the part of this epoch already done."""
    if live.status != "running" or not live.epoch_seconds or not live.epochs_total:
        return None
    per_epoch = sum(live.epoch_seconds) / len(live.epoch_seconds)
    left = max(live.epochs_total - live.epochs_done, 0) * per_epoch
    if live.total_batches:
        left -= per_epoch * live.batch / live.total_batches
    elif live.epoch_started_at:
        left -= min(now - live.epoch_started_at, per_epoch)
    return max(left, 0.0)

