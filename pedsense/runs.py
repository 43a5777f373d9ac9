"""The run manager: the process-wide owner of training runs (the dashboard's engine).

``RunManager.submit`` checks the parameters against the trainer's spec and the data home
(``pedsense.train.preflight``) before anything is created, then queues the run on disk
(:func:`queue_run`: a run folder reading ``queued``, ``pedsense.runqueue``). The manager's one
background thread (``pedsense.supervisor.Supervisor``) starts each queued run as a worker
process (``python -m pedsense.worker RUN_DIR``) when a slot is free, and follows every live run
of the data home, whoever started it, by tailing its ``events.jsonl`` into a live state behind
a lock. Workers keep training when the dashboard stops; the next one finds them (heartbeat)
and follows them again. ``snapshot``/``runs`` return :class:`pedsense.runsummary.RunSummary`
copies, safe to read from any thread; ``version`` answers "did anything change?".

With ``trainers=`` (other trainers that follow the hook contract, e.g. the tests' tiny ones) the
manager runs its own submissions in its own thread (a :class:`pedsense.workqueue.WorkQueue`)
through the same slot claim, heartbeat and stop request.

Who writes ``status.json``: the queue (``queued``, a claim, a cancellation), then only the
trainer's lifecycle (``TrainingRun``) once it started; the worker wrapper records a run that
ended without saying how (``pedsense.worker.record_end``), and the supervisor one whose worker
died (``failed``, with the exit code) or whose process is gone (``interrupted``).
"""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import time
import traceback
from typing import Any, Callable, Mapping

from pedsense.config import paths
from pedsense.errors import ConfigError, ReadOnly, SchedulerBusy
from pedsense.errors import DatasetChanged
from pedsense.launches import queue_extend, queue_resume, queue_run
from pedsense.procs import Heartbeat, me
from pedsense.runfolder import (LIVE_STATUSES, RunFolder, RunNotFound, best_of, find_run, iso,
                               list_runs)
from pedsense.runlabels import read_labels, set_archived
from pedsense.runsummary import RunSummary, cached_config, file_stamps, read_summary
from pedsense.runqueue import (QueueSettings, RunTaken, is_live, read_settings, request_stop,
                               settle_orphans, wait_for_slot, write_settings)
from pedsense.supervisor import LiveRun, Supervisor, apply_event
from pedsense.train.params import planned_epochs, spec_for
from pedsense.train.preflight import preflight
from pedsense.worker import execute
from pedsense.workqueue import WorkQueue

__all__ = ["RunManager", "LiveRun", "apply_event", "disk_summary", "queue_run", "queue_resume",
           "queue_extend", "DatasetChanged"]  # the queue_* functions live in pedsense.launches


class RunManager:
    """Starts training runs from the data home's queue and follows every live run.

    Args:
        home: the data home (default: ``$PEDSENSE_HOME`` or the repository root).
        trainers: ``{model_type: callable}`` overriding the seed trainers (for other trainers
            that follow the same hook contract); their parameters still follow the spec. Such a
            manager runs its runs in its own thread.
        check_data: run :func:`pedsense.train.preflight.preflight`'s data checks on submit
            (turned off with custom trainers that do not read the data home).
        workers: run each run in a worker process (default: unless ``trainers`` are given).
    """

    def __init__(self, home: str | os.PathLike | None = None,
                 trainers: Mapping[str, Callable[..., Any]] | None = None, *, check_data: bool | None = None,
                 workers: bool | None = None):
        self.home = paths(home).home
        self._trainers = dict(trainers or {})
        self.check_data = not self._trainers if check_data is None else check_data
        self.workers = not self._trainers if workers is None else workers
        self._queue = WorkQueue("runs", self._execute)  # this manager's in-thread runs
        self._lock = self._queue.changed
        self._supervisor = Supervisor(self.home, self._lock, start_workers=self.workers,
                                      own=lambda run_id: self._queue.get(run_id) is not None)
        self._submitted: list[str] = []
        self.interrupted = self.mark_interrupted()
        self._supervisor.scan()  # live runs of other processes are live from the first read on
        self._supervisor.ensure_running()

    # -- launching ------------------------------------------------------------------------
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
        folder = queue_run(model_type, params, self.home, check=self.check, reserved_by=self._reserve())
        return self._launched(folder, dict(params))

    def resume(self, run_id: str, confirm_dataset_change: bool = False) -> str:
        """Queue a stopped, interrupted or failed run to go on in its own folder (its last.pt).

        Raises:
            ConfigError: the run cannot be resumed (completed: extend it; still live: stop it).
            DatasetChanged: its dataset changed since it started (pass ``confirm_dataset_change``).
            DataError: it has no readable checkpoint to resume from. Nothing is changed.
        """
        folder = queue_resume(find_run(run_id, self.home), confirm_dataset_change, reserved_by=self._reserve())
        return self._launched(folder, None)

    def extend(self, run_id: str, epochs: int) -> str:
        """Queue a completed run's extension by ``epochs`` epochs (a new run linked to it);
        returns the new run's id."""
        folder = queue_extend(find_run(run_id, self.home), epochs, reserved_by=self._reserve())
        return self._launched(folder, None)

    def _reserve(self) -> dict | None:
        """In-thread runs are reserved for this process; worker runs are free for any scheduler."""
        return None if self.workers else me()

    def _launched(self, folder: RunFolder, params: dict | None) -> str:
        self._submitted.append(folder.run_id)
        if self.workers:
            self._supervisor.wake()
            return folder.run_id
        config = folder.read_config()
        live = LiveRun(item_id=folder.run_id, kind=folder.model_type, folder=folder,
                       params=params if params is not None else dict(config.get("parameters") or {}),
                       epochs_total=int(config.get("epochs_total") or 0))
        live.metrics, live.steps = folder.read_metrics(), folder.read_steps()
        live.epochs_done = len(live.metrics)
        self._queue.submit(live)
        return folder.run_id

    # -- controlling --------------------------------------------------------------------------
    def stop(self, run_id: str) -> str:
        """Stop a run, whoever started it: a running one finishes its batch and ends ``stopped``
        (a worker that does not, within ``supervisor.STOP_GRACE_S``, is killed); a queued one is
        cancelled without starting. Returns the run's status after the request."""
        live = self._queue.get(run_id)
        folder = find_run(run_id, self.home)
        if live is not None and self._queue.cancel(run_id):
            request_stop(folder)
            return folder.status
        if live is not None:
            self._queue.request_stop(run_id)
        status = request_stop(folder)
        self._supervisor.wake()
        return status

    def delete(self, run_id: str) -> None:
        """Delete a finished run's folder (a queued or running run must be stopped first)."""
        folder = find_run(run_id, self.home)
        models = paths(self.home).models.resolve()
        if models not in folder.path.resolve().parents:
            raise RunNotFound(f"{run_id!r} is not a run folder under {models}.")
        status = self.snapshot(run_id).status
        if status in LIVE_STATUSES or is_live(folder.read_status()):
            raise ConfigError(f"Run {run_id} is {status}: stop it before deleting it.")
        self._queue.forget(run_id)
        shutil.rmtree(folder.path)

    def archive(self, run_id: str, archived: bool = True) -> None:
        """Hide a finished run from the Runs table, kept on disk (``archived=False`` brings it
        back). ConfigError for a queued or running run (``pedsense.runlabels.set_archived``)."""
        set_archived(find_run(run_id, self.home), archived)

    def queue_settings(self) -> QueueSettings:
        """How many runs may train at once on this data home, and the device pool."""
        return read_settings(self.home)

    def set_queue_settings(self, *, max_parallel: Any = None, devices: Any = None) -> QueueSettings:
        """Change them (ConfigError for a bad value, DeviceError for a GPU that does not exist)."""
        changed = write_settings(self.home, max_parallel=max_parallel, devices=devices)
        self._supervisor.wake()
        return changed

    # -- reading ---------------------------------------------------------------------------
    def _live(self, run_id: str) -> LiveRun | None:
        """The live state of a run (call under the lock), when it is live."""
        live = self._queue.get(run_id) or self._supervisor.live(run_id)
        return live if live is not None and live.status in LIVE_STATUSES else None

    def snapshot(self, run_id: str) -> RunSummary:
        """A plain copy of a run's state: status, progress, metrics rows, error, ETA, config."""
        self._supervisor.ensure_running()
        with self._lock:
            live = self._live(run_id)
            if live is not None:
                return self._live_summary(live)
        return self._disk_summary(find_run(run_id, self.home))

    def snapshot_of(self, folder: RunFolder) -> RunSummary:
        with self._lock:
            live = self._live(folder.run_id)
            if live is not None:
                return self._live_summary(live)
        return self._disk_summary(folder)

    def version(self, run_id: str) -> tuple:
        """Changes whenever anything about the run changes; costs no file read for live runs
        (a few ``stat`` calls otherwise). Pages compare it before redrawing anything."""
        with self._lock:
            live = self._live(run_id)
            if live is not None:
                return ("live", live.version, live.data_version)
        try:
            return ("disk", file_stamps(find_run(run_id, self.home)))
        except RunNotFound:
            return ("gone",)

    def status_version(self) -> tuple:
        """Changes when a run appears or goes, or its status (or a stop request) changes — not
        on every batch: what status words, buttons and notices depend on. A few ``stat`` calls."""
        self._supervisor.ensure_running()
        with self._lock:
            lives = [*self._queue.items(), *self._supervisor.lives()]
            live = tuple((i.item_id, i.status, i.stop_event.is_set()) for i in lives)
        disk = []
        for folder in list_runs(self.home):
            try:
                stat = folder.status_path.stat()
                disk.append((folder.run_id, stat.st_size, stat.st_mtime_ns, folder.stop_path.exists()))
            except OSError:
                disk.append((folder.run_id, None, None, None))
        return live, tuple(disk)

    def runs(self) -> list[RunSummary]:
        """Every run of the data home (newest first), live state merged in."""
        self._supervisor.ensure_running()
        return [self.snapshot_of(folder) for folder in list_runs(self.home)]

    def active(self) -> list[RunSummary]:
        """The running runs (any process's), then the queued ones in the order they will run."""
        self._supervisor.ensure_running()
        with self._lock:
            lives = [i for i in (*self._queue.active(), *self._supervisor.lives()) if i.status in LIVE_STATUSES]
            lives.sort(key=lambda i: (i.status != "running", self._queue.position(i.item_id) or 0))
            shown = [self._live_summary(i) for i in lives]
            queued = [r for r in self._supervisor.queued if r not in {s.run_id for s in shown}]
        for run_id in queued:
            try:
                summary = self.snapshot(run_id)
            except RunNotFound:
                continue
            if summary.status == "queued":
                shown.append(summary)
        return shown

    def wait(self, run_id: str, timeout: float = 60.0) -> RunSummary:
        """Block until ``run_id`` leaves queued/running (for tests and scripts); its summary."""
        deadline = time.monotonic() + timeout
        while True:
            summary = self.snapshot(run_id)
            if summary.status not in LIVE_STATUSES:
                return summary
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{run_id} still {summary.status} after {timeout:.0f} s")
            with self._lock:
                self._lock.wait(min(remaining, 0.25))

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until nothing is queued or running."""
        deadline = time.monotonic() + timeout
        while self.active():
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs still active after {timeout:.0f} s")
            with self._lock:
                self._lock.wait(0.25)

    def shutdown(self, stop_running: bool = True, timeout: float = 30.0) -> None:
        """Stop following runs. With ``stop_running``, first cancel the runs this manager queued
        and stop the workers it started (waiting for them, then killing what is left); without,
        its workers go on training and the next manager follows them."""
        if stop_running:
            for run_id in self._submitted:
                try:
                    folder = find_run(run_id, self.home)
                except RunNotFound:
                    continue
                if folder.status == "queued":
                    self.stop(run_id)
            for folder, _ in self._supervisor.children():
                request_stop(folder)
        self._queue.shutdown(stop_running, timeout)
        if stop_running:
            deadline = time.monotonic() + timeout
            for _, process in self._supervisor.children():
                try:
                    process.wait(max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:  # it would not stop: kill it
                    process.kill()
                    process.wait(10)
            self._supervisor.tick()
        self._supervisor.close()

    def mark_interrupted(self) -> list[str]:
        """Mark runs that read ``running`` (or claimed) but whose process is gone — and runs
        queued by a process that meant to run them itself and is gone — ``interrupted``.

        Their metrics and weights stay; free queued runs stay queued. Returns the run ids marked
        (none on a read-only data home, or while a stopped process holds the scheduler lock: the
        runs are still listed, and the supervisor says why once).
        """
        try:
            return settle_orphans(self.home, skip=lambda folder: self._queue.get(folder.run_id) is not None)
        except (ReadOnly, SchedulerBusy):
            return []

    # -- the in-thread mode ----------------------------------------------------------------------
    def _execute(self, live: LiveRun) -> tuple[str, str | None]:
        folder = live.folder
        heartbeat = Heartbeat(folder.worker_path)
        action = (folder.read_status().get("launch") or {}).get("action", "train")
        try:
            wait_for_slot(folder, report=folder.log, on_claimed=heartbeat.start)
            trainer = self.trainer(live.kind) if action == "train" else None
            execute(folder, on_event=self._listener(live), should_stop=live.stop_event.is_set,
                    trainer=trainer, params=live.params if action == "train" else None)
        except RunTaken as exc:
            return folder.status, str(exc)
        except BaseException:  # noqa: BLE001 - recorded in the run folder by execute
            pass
        finally:
            heartbeat.stop()
        recorded = folder.read_status()
        return str(recorded.get("status")), recorded.get("error")

    def _listener(self, live: LiveRun) -> Callable[[Any], None]:
        """The ``on_event`` hook for one in-thread run: folds each event into ``live``."""
        def on_event(event: Any) -> None:
            try:
                with self._lock:
                    apply_event(live, event)
                    live.touch()
            except Exception:  # a bad event must never break the training loop
                live.folder.log("ignored malformed event: " + traceback.format_exc(limit=2))

        return on_event

    # -- summaries ---------------------------------------------------------------------------
    def _live_summary(self, live: LiveRun) -> RunSummary:
        now = time.time()
        started = live.started_at
        # what the trainer recorded (dataset, sweep tag: the Runs table filters by them), with
        # the parameters as launched
        config = {**cached_config(live.folder), "model_type": live.kind, "parameters": dict(live.params)}
        rows = tuple(dict(r) for r in live.metrics)
        return RunSummary(
            run_id=live.item_id, model_type=live.kind, name=live.folder.name, path=str(live.folder.path),
            status=live.status, error=live.error, stage=live.stage, epoch=live.epoch,
            epochs_done=live.epochs_done, epochs_total=max(live.epochs_total, live.epochs_done),
            stage_epochs=live.stage_epochs, batch=live.batch, total_batches=live.total_batches,
            metrics=rows, steps=tuple(dict(s) for s in live.steps), eta_s=_eta(live, now), live=True,
            started_at=iso(started), finished_at=iso(live.finished_at),
            duration_s=((live.finished_at or now) - started) if started else None,
            best_metric=live.best_metric or best_of(live.kind, rows), config=config,
            queue_position=self._queue.position(live.item_id) if live.status == "queued" else None,
            stop_requested=live.stop_event.is_set() or live.folder.stop_path.exists(),
            version=("live", live.version), data_version=("live", live.data_version),
            labels=read_labels(live.folder))

    def _disk_summary(self, folder: RunFolder) -> RunSummary:
        summary = disk_summary(folder)
        if summary.status in LIVE_STATUSES:
            summary = summary.with_changes(queue_position=self._supervisor.queue_position(folder.run_id),
                                           stop_requested=folder.stop_path.exists())
        return summary


def disk_summary(folder: RunFolder) -> RunSummary:
    """The summary of a run read from its folder (cached by file stamps; see ``read_summary``)."""
    return read_summary(folder, planned_epochs)


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
