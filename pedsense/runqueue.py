"""The run queue on disk: shared by every process on a data home, it survives restarts.

A queued run is a run folder whose ``status.json`` reads ``queued`` (taken in ``queued_at``
order) and records its ``launch`` (``train`` with its parameters, ``resume`` or ``extend``).
Starting one needs a slot: under an advisory lock on ``models/.scheduler.lock`` the runs holding
a slot (running, resuming or claimed, with a live heartbeat: ``pedsense.procs``) are counted
against ``max_parallel`` (``models/settings.json``, default 1), and the run is marked
``claim``-ed before its worker starts, so two processes (dashboards, the CLI) never start the
same run, nor more runs than allowed. A run queued by a process that runs it itself (the CLI,
an in-thread manager) is ``reserved_by`` it; the others are free for any scheduler.

Every decision about a run nobody runs any more (cancel, interrupted, killed) is taken under the
same lock, so two processes never record two different ends for one run.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from pedsense.config import paths
from pedsense.device import resolve_device
from pedsense.errors import ConfigError, SchedulerBusy
from pedsense.io import is_read_only, read_json, read_object, read_only_error, write_json_atomic
from pedsense.procs import heartbeat_alive, is_me, me, process_state, same_process
from pedsense.runfolder import (LIVE_STATUSES, RESUMABLE_STATUSES, RunFolder, best_on_disk,
                               describe_weights_on_disk, list_runs, weights_on_disk)

SETTINGS_FILE = "settings.json"      # models/settings.json
LOCK_FILE = ".scheduler.lock"        # models/.scheduler.lock
MAX_PARALLEL_LIMIT = 64
LOCK_WAIT_S = 30.0   # the scheduler lock is held for milliseconds; past this, say who holds it
LOCK_POLL_S = 0.02


@dataclass(frozen=True)
class QueueSettings:
    """How many runs train at once on a data home, and the devices they are given.

    ``devices`` is a pool for runs whose device is ``auto``: each claimed run gets a device of
    the pool that no other running run holds (the least used when all are taken). Empty: each
    run uses its own ``device`` parameter.
    """

    max_parallel: int = 1
    devices: tuple[str, ...] = ()
    problem: str | None = None  # why models/settings.json could not be read (defaults in force)

    def as_dict(self) -> dict:
        return {"max_parallel": self.max_parallel, "devices": list(self.devices)}


def settings_path(home: str | os.PathLike | None = None) -> Path:
    return paths(home).models / SETTINGS_FILE


def read_settings(home: str | os.PathLike | None = None) -> QueueSettings:
    """The data home's queue settings; the defaults where the file is missing, and where it is
    unreadable (then ``problem`` says why, for the CLI and the Runs page to warn)."""
    path = settings_path(home)
    raw, problem = read_object(path)
    raw = raw or {}
    number = raw.get("max_parallel", 1)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_PARALLEL_LIMIT:
        problem = problem or f"has max_parallel {json.dumps(number, default=str)[:40]}, not a whole number from 1 to {MAX_PARALLEL_LIMIT}"
        number = 1
    devices = raw.get("devices") or ()
    if not isinstance(devices, (list, tuple)):
        problem = problem or "has devices that are not a list"
        devices = ()
    devices = tuple(str(d) for d in devices)
    if problem:
        return QueueSettings(1, (), problem=(
            f"models/{SETTINGS_FILE} {problem}: the queue's settings could not be read, so the "
            "defaults are in force (1 run at a time, each run's own device). Set them again with "
            "`pedsense runs --max-parallel N` (and --devices), which rewrites the file."))
    return QueueSettings(number, devices)


def write_settings(home: str | os.PathLike | None = None, *, max_parallel: Any = None,
                   devices: Any = None) -> QueueSettings:
    """Change the queue settings (what is not given is kept); returns the new settings.

    Raises:
        ConfigError: ``max_parallel`` is not a whole number from 1 to 64, or a device of
            ``devices`` does not exist on this machine (``pedsense.device.DeviceError``).
    """
    current = read_settings(home)
    if max_parallel is not None:
        try:
            number = int(max_parallel)
            if number != float(max_parallel):
                raise ValueError
        except (TypeError, ValueError):
            number = 0
        if not 1 <= number <= MAX_PARALLEL_LIMIT:
            raise ConfigError(f"max_parallel={max_parallel!r}: give a whole number from 1 to "
                              f"{MAX_PARALLEL_LIMIT} (how many runs may train at once).")
        current = QueueSettings(number, current.devices)
    if devices is not None:
        current = QueueSettings(current.max_parallel, check_devices(devices))
    update_settings(home, current.as_dict())
    return current


def update_settings(home: str | os.PathLike | None, changes: Mapping[str, Any]) -> dict:
    """Write ``changes`` into ``models/settings.json`` (under the scheduler lock, atomically),
    keeping every other key: the queue's and other features' settings share the file."""
    with scheduler_lock(home):
        raw = read_json(settings_path(home), {})
        raw = {**(raw if isinstance(raw, dict) else {}), **changes}
        write_json_atomic(settings_path(home), raw)
    return raw


def check_devices(devices: Any) -> tuple[str, ...]:
    """A device pool (a list or a comma-separated string), each device checked to exist."""
    if isinstance(devices, str):
        devices = [d for d in (part.strip() for part in devices.split(",")) if d]
    pool = []
    for device in devices or ():
        resolved = resolve_device(str(device))  # DeviceError names it and what exists
        if resolved not in pool:
            pool.append(resolved)
    return tuple(pool)


@contextmanager
def scheduler_lock(home: str | os.PathLike | None = None, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the data home's scheduler lock (``fcntl.flock``; other processes wait for it).

    It is held for milliseconds; a process that waits :data:`LOCK_WAIT_S` (or ``timeout_s``)
    gives up naming the process holding it (its pid is written into the lock file).

    Raises:
        SchedulerBusy: not free within the deadline (a stopped process holds it, say).
        ReadOnly: the data home is read-only.
        ConfigError: something that is not a file sits where the lock file goes.
    """
    home_dir = paths(home).home
    path = paths(home).models / LOCK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except IsADirectoryError:
        raise ConfigError(f"The scheduler lock {path} is a directory, so no run can be queued, "
                          f"started or stopped. Move it aside (`mv {path} {path}.bad`); pedsense "
                          "makes the file again.") from None
    except OSError as exc:
        if is_read_only(exc):
            raise read_only_error(home_dir, exc.filename or path) from None
        raise
    try:
        _acquire(fd, path, LOCK_WAIT_S if timeout_s is None else timeout_s)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me()).encode(), 0)  # who holds it, for a process that waits
        except OSError:
            pass  # naming the holder is a courtesy; the lock itself is held
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise SchedulerBusy(lock_holder_message(path, timeout_s)) from None
            time.sleep(LOCK_POLL_S)


def lock_holder_message(path: Path, waited_s: float) -> str:
    """Why the scheduler lock at ``path`` is not free: the process holding it and what to do."""
    try:
        with open(path, "rb") as f:
            holder = json.loads(f.read(200) or b"null")
    except (OSError, ValueError):
        holder = None
    pid = holder.get("pid") if isinstance(holder, dict) else None
    state, command = process_state(pid) if isinstance(pid, int) else (None, "")
    if pid is None or state is None:
        return (f"The scheduler lock {path} was not free within {waited_s:g} s. Another pedsense "
                "process holds it; wait for it to finish and rerun.")
    who = f"process {pid}" + (f" ({command})" if command else "")
    if state == "T":
        return (f"The scheduler lock {path} has been held for over {waited_s:g} s by {who}, which "
                f"is stopped (SIGSTOP or Ctrl-Z). Resume it (`kill -CONT {pid}`) or end it "
                f"(`kill {pid}`), then rerun.")
    return (f"The scheduler lock {path} has been held for over {waited_s:g} s by {who}. Wait for "
            f"it, or end it (`kill {pid}`) if it hangs, then rerun.")


def home_of(folder: RunFolder) -> Path:
    """The data home of a run folder (``<home>/models/<model_type>/<run>``)."""
    return folder.path.parent.parent.parent


def enqueue(folder: RunFolder, launch: Mapping[str, Any], *, reserved_by: Mapping | None = None,
            error: str | None = None) -> dict:
    """Mark ``folder`` queued to do ``launch`` (``{"action": "train"|"resume"|"extend", ...}``)."""
    folder.stop_path.unlink(missing_ok=True)
    return folder.set_status("queued", error=error, launch=dict(launch), queued_at=time.time(),
                             claim=None, reserved_by=dict(reserved_by) if reserved_by else None,
                             cancelled=None, resume_error=None)


def reservation(status: Mapping[str, Any]) -> dict | None:
    """The process a queued run is reserved for (older runs recorded ``owner_pid``)."""
    reserved = status.get("reserved_by")
    if isinstance(reserved, dict):
        return reserved
    if status.get("owner_pid") is not None:
        return {"pid": status["owner_pid"], "start": status.get("owner_start")}
    return None


def is_live(status: Mapping[str, Any]) -> bool:
    """The status of a run someone is (or should be) working on: queued, running, resuming."""
    return status.get("status") in LIVE_STATUSES or bool(status.get("resuming"))


def worker_alive(folder: RunFolder) -> bool:
    """True while the process running ``folder`` keeps its heartbeat (``worker.json``) fresh."""
    return heartbeat_alive(folder.worker_path)


def holds_slot(folder: RunFolder, status: Mapping[str, Any]) -> bool:
    """Running (or claimed, or resuming) with a live worker: counted against ``max_parallel``."""
    state = status.get("status")
    taken = state == "running" or bool(status.get("resuming")) or (state == "queued" and status.get("claim"))
    return bool(taken) and worker_alive(folder)


def live_runs(home: str | os.PathLike | None = None) -> list[tuple[RunFolder, dict]]:
    """Every run of the home whose status is live, with its status, oldest queued first."""
    found = []
    for folder in list_runs(home):
        status = folder.read_status()
        if is_live(status):
            found.append((folder, status))
    found.sort(key=lambda fs: (fs[1].get("queued_at") or 0.0, fs[0].name))
    return found


def slot_holders(home: str | os.PathLike | None = None) -> list[tuple[RunFolder, dict]]:
    return [(f, s) for f, s in live_runs(home) if holds_slot(f, s)]


def queued_order(home: str | os.PathLike | None = None) -> list[str]:
    """Run ids of the queued runs not yet claimed, in the order they will be taken."""
    return [f.run_id for f, s in live_runs(home) if s.get("status") == "queued" and not s.get("claim")]


def _pick_device(settings: QueueSettings, params: Mapping[str, Any], busy: list[tuple[RunFolder, dict]]) -> str | None:
    device = params.get("device")
    if not settings.devices or (device not in (None, "", "auto")):
        return None
    used = [(s.get("claim") or {}).get("device") for _, s in busy]
    return min(settings.devices, key=lambda d: (used.count(d), settings.devices.index(d)))


def _claim(folder: RunFolder, status: Mapping[str, Any], settings: QueueSettings,
           busy: list[tuple[RunFolder, dict]]) -> dict:
    launch = status.get("launch") or {}
    claim = {"by": me(), "at": time.time(),
             "device": _pick_device(settings, launch.get("params") or {}, busy)}
    folder.update_status(claim=claim)
    return claim


def why_waiting(home: str | os.PathLike | None, settings: QueueSettings,
                busy: list[tuple[RunFolder, dict]]) -> str:
    shown = ", ".join(f.run_id for f, _ in busy)
    return (f"waiting for a free slot: {len(busy)} run(s) training, at most {settings.max_parallel} "
            f"at once ({shown}). Raise the limit with `pedsense runs --max-parallel N`.")


def claim_next(home: str | os.PathLike | None, start: Callable[[RunFolder, dict], None]) -> RunFolder | None:
    """Claim the oldest free queued run when a slot is free and ``start(folder, claim)`` it.

    ``start`` launches the worker (and writes its first heartbeat) under the lock. A run whose
    worker cannot be started is marked ``failed`` with the reason. Returns the run started.
    """
    with scheduler_lock(home):
        settings = read_settings(home)
        runs = live_runs(home)
        busy = [(f, s) for f, s in runs if holds_slot(f, s)]
        if len(busy) >= settings.max_parallel:
            return None
        for folder, status in runs:
            if status.get("status") != "queued" or status.get("claim") or reservation(status):
                continue
            claim = _claim(folder, status, settings, busy)
            try:
                start(folder, claim)
            except Exception as exc:  # noqa: BLE001 - the run says why; the queue goes on
                folder.set_status("failed", error=f"its worker could not be started: {exc}", claim=None)
                folder.log(f"failed to start its worker: {exc}")
                continue
            return folder
    return None


class RunTaken(ConfigError):
    """The queued run was cancelled, or another process took it, while this one waited."""


def claim_own(folder: RunFolder, on_claimed: Callable[[], None] | None = None) -> str | None:
    """Claim a slot for a queued run this process reserved (or a free one) and will run itself.

    ``on_claimed`` runs under the lock once the slot is taken (start the heartbeat there, so
    no other process sees a claim without a live worker). Returns None once claimed, else why
    it must wait.

    Raises:
        RunTaken: the run is no longer queued (cancelled), or another process claimed it.
    """
    home = home_of(folder)
    with scheduler_lock(home):
        status = folder.read_status()
        if status.get("status") != "queued":
            raise RunTaken(f"Run {folder.run_id} is {status.get('status')}, no longer queued "
                           f"({status.get('error') or 'cancelled'}).")
        if status.get("claim") or (reservation(status) and not is_me(reservation(status))):
            raise RunTaken(f"Run {folder.run_id} was taken by another process.")
        settings = read_settings(home)
        busy = slot_holders(home)
        if len(busy) >= settings.max_parallel:
            return why_waiting(home, settings, busy)
        _claim(folder, status, settings, busy)
        if on_claimed is not None:
            on_claimed()
        return None


def wait_for_slot(folder: RunFolder, report: Callable[[str], None] | None = None,
                  on_claimed: Callable[[], None] | None = None, poll_s: float = 0.5,
                  cancel_if: Callable[[], bool] | None = None) -> None:
    """Block until :func:`claim_own` claims a slot for ``folder``; ``report(why)`` each time the
    reason to wait changes.

    Raises:
        RunTaken: it was cancelled or taken meanwhile, or ``cancel_if()`` said so (the run is
            then cancelled: ``stopped`` without having started).
    """
    said = None
    while True:
        why = claim_own(folder, on_claimed)
        if why is None:
            return
        if cancel_if is not None and cancel_if():
            request_stop(folder)
            raise RunTaken(f"Run {folder.run_id} was cancelled while it waited for a slot.")
        if why != said and report is not None:
            report(why)
        said = why
        time.sleep(poll_s)


def request_stop(folder: RunFolder) -> str:
    """Stop ``folder`` from any process; returns its status after the request.

    A queued run that nobody took yet is cancelled at once (``stopped``; a queued resume goes
    back to the status it had). A claimed or running one gets ``stop.request``: its trainer ends
    it ``stopped`` after the current batch, keeping its weights.
    """
    with scheduler_lock(home_of(folder)):
        status = folder.read_status()
        if status.get("status") == "queued" and not status.get("claim"):
            cancel_queued(folder, status)
            return folder.status
        if not is_live(status):
            return str(status.get("status"))
        if not folder.stop_path.exists():
            write_json_atomic(folder.stop_path, {"at": time.time(), "by": me()})
            folder.log("stop requested")
        return str(status.get("status"))


def cancel_queued(folder: RunFolder, status: Mapping[str, Any]) -> None:
    """Take a queued run off the queue (call under the lock): a resume goes back to the status it
    had, anything else ends ``stopped`` without having started."""
    launch = status.get("launch") or {}
    if launch.get("action") == "resume" and launch.get("previous_status") in RESUMABLE_STATUSES:
        folder.set_status(launch["previous_status"], error=launch.get("previous_error"), claim=None,
                          launch=None, reserved_by=None, queued_at=None)
        folder.log("resume cancelled while queued")
    else:
        folder.set_status("stopped", error="cancelled before it started", cancelled=True, claim=None)
        folder.log("cancelled while queued")


def stop_request(folder: RunFolder) -> dict | None:
    record = read_json(folder.stop_path, None)
    if record is None and folder.stop_path.exists():
        return {"at": folder.stop_path.stat().st_mtime}
    return record if isinstance(record, dict) else None


def orphan_reason(folder: RunFolder, status: Mapping[str, Any]) -> str | None:
    """Why a run that reads live has nobody working on it any more; None while someone is.

    A free queued run is waiting, not orphaned. A run whose worker is gone but whose supervisor
    (the process that started the worker) is alive is left to that supervisor, which knows the
    exit code.
    """
    if not is_live(status) or worker_alive(folder):
        return None
    if status.get("status") == "queued" and not status.get("claim"):
        reserved = reservation(status)
        if reserved is None or same_process(reserved):
            return None
        return "the process that queued it to run it itself ended before it started"
    supervisor = (status.get("claim") or {}).get("by")
    if supervisor and same_process(supervisor) and not is_me(supervisor):
        return None
    return f"the process that ran it is gone (it was {status.get('status')})"


def settle_orphan(folder: RunFolder, reason: str) -> str:
    """Record the end of a run nobody works on any more (call under the lock): ``stopped`` when a
    stop had to kill it, else ``interrupted``; its metrics and weights stay. Returns the status."""
    request = stop_request(folder) or {}
    kept = record_weights_on_disk(folder)
    if request.get("terminated_at"):
        folder.set_status("stopped", error=f"{killed_message(request)}; {kept}", resuming=None)
        folder.log(f"stopped: {killed_message(request)}; {kept}")
    else:
        lines = tail_lines(folder.worker_log_path, 6)
        then = "Resume it, or launch it again" if "no weights were saved" not in kept else "Launch it again"
        folder.set_status("interrupted", resuming=None, error=(
            f"{reason}; its metrics up to then are kept, {kept}. {then}."
            + ("\nLast lines of worker.log:\n" + "\n".join(lines) if lines else "")))
        folder.log(f"marked interrupted: {reason}; {kept}")
    folder.stop_path.unlink(missing_ok=True)
    return folder.status


def record_weights_on_disk(folder: RunFolder) -> str:
    """For a run that ended without its trainer saying so: record in ``config.json`` the best
    its files support (the epoch its best checkpoint holds, none without one) and say which
    weights are on disk (``"weights on disk: last.pt (epoch 1)"``)."""
    weights = weights_on_disk(folder)
    if folder.config_path.exists():
        folder.update_config(best_metric=best_on_disk(folder, weights), weights_on_disk=weights)
    return describe_weights_on_disk(folder, weights)


def killed_message(request: Mapping[str, Any]) -> str:
    grace = request.get("grace_s")
    within = f" within {grace:g} s" if isinstance(grace, (int, float)) else ""
    return f"killed after not stopping{within} of the stop request"


def settle_orphans(home: str | os.PathLike | None = None,
                   skip: Callable[[RunFolder], bool] = lambda folder: False) -> list[str]:
    """Settle every orphaned run of the home (under the lock); returns their run ids. The lock
    is taken only when there is one to settle: reading the runs never waits for it."""
    if not any(orphan_reason(f, s) for f, s in live_runs(home) if not skip(f)):
        return []
    settled = []
    with scheduler_lock(home):
        for folder, status in live_runs(home):
            if skip(folder):
                continue
            reason = orphan_reason(folder, status)
            if reason is not None:
                settle_orphan(folder, reason)
                settled.append(folder.run_id)
    return settled


def tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` non-empty lines of a text file (read from its last 8 KB)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - 8192, 0))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-count:]
