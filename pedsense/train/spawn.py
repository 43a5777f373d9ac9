"""Start a data-parallel run's processes from a plain call (library, CLI, the dashboard's thread).

``train_resnet_lstm(devices="cpu,cpu")`` called outside torchrun cannot join a process group
by itself: :func:`run_spawned` starts one process per device (``torch.multiprocessing``,
``spawn``), each calling the same seed trainer with the same checked parameters in the same
run folder, rendezvous on a free local port. Rank 0's events come back through a queue to the
caller's ``on_event``; the caller's ``should_stop`` is polled here and passed on to every rank.
When a process fails, the others are stopped and its error is raised here; a run left without
an end (a process killed) is recorded ``failed``. Single machine only: across machines, launch
with torchrun (``pedsense.train.distributed.launch_command``, docs/training/distributed.md).
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue as queues
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Mapping, Sequence

from pedsense.runfolder import RunFolder
from pedsense.train.distributed import DistributedError
from pedsense.train.events import EventHook, StopHook, emit

GRACE_S = 10.0  # after one process failed, how long the others get to notice before they are ended


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_spawned(trainer: str, model_type: str, kwargs: Mapping[str, Any], devices: Sequence[str], *,
                name: str | None, run_dir: str | os.PathLike | None, home: str | os.PathLike | None,
                on_event: EventHook = None, should_stop: StopHook = None) -> Path:
    """Run ``trainer`` (``"module:function"``) in ``len(devices)`` processes; returns the run folder.

    ``kwargs`` are the trainer's checked parameters (and ``resume`` / ``init_weights``); the
    run folder is created here (or ``run_dir`` used) so every rank works in the same one.
    """
    import torch.multiprocessing as mp

    folder = RunFolder(run_dir) if run_dir is not None else RunFolder.create(model_type, name, home=home)
    folder.path.mkdir(parents=True, exist_ok=True)
    context = mp.get_context("spawn")
    events, stop = context.Queue(), context.Event()
    world, init = len(devices), f"tcp://127.0.0.1:{free_port()}"
    threads = max(1, (os.cpu_count() or 1) // world)  # the cores shared out, never oversubscribed
    call = {**kwargs, "run_dir": str(folder.path), "home": None if home is None else str(home)}
    processes = [context.Process(target=rank_main, name=f"pedsense-rank{rank}",
                                 args=(rank, world, init, trainer, call, events, stop, threads))
                 for rank in range(world)]
    for process in processes:
        process.start()
    error: BaseException | None = None
    try:
        error, result = _supervise(processes, events, stop, on_event, should_stop)
    except BaseException as exc:  # Ctrl-C, or the caller's on_event raised: end every rank
        stop.set()
        _end(processes, GRACE_S if isinstance(exc, KeyboardInterrupt) else 0.0)
        _record_failure(folder, exc)
        raise
    if error is not None:
        _record_failure(folder, error)
        raise error
    return Path(result) if result else folder.path


def _supervise(processes: list, events, stop, on_event: EventHook, should_stop: StopHook
               ) -> tuple[BaseException | None, str | None]:
    """Relay events and stop requests until every process has ended; (first error, result)."""
    error, result, failed_at = None, None, None
    while True:
        try:
            kind, rank, payload = events.get(timeout=0.2)
        except queues.Empty:
            kind = None
        if kind == "event":
            emit(on_event, payload)
        elif kind == "error" and error is None:
            error = payload
        elif kind == "done" and rank == 0:
            result = payload
        if should_stop is not None and not stop.is_set() and should_stop():
            stop.set()
        crashed = [p for p in processes if p.exitcode not in (None, 0)]
        if crashed and failed_at is None:
            failed_at = time.time()
        if failed_at is not None and time.time() - failed_at > GRACE_S:
            _end(processes, 0.0)  # the others wait in a collective that will never complete
        if kind is None and all(p.exitcode is not None for p in processes):
            break
    if error is None and crashed:
        codes = ", ".join(f"rank {i}: {_exit_words(p.exitcode)}" for i, p in enumerate(processes)
                          if p.exitcode not in (None, 0))
        error = DistributedError(f"A training process ended without finishing ({codes}); the run's "
                                 "train.log has what it did last.")
    return error, result


def _end(processes: list, grace_s: float) -> None:
    deadline = time.time() + grace_s
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.time()))
    for process in processes:
        if process.exitcode is None:
            process.terminate()
    for process in processes:
        process.join(timeout=5.0)
        if process.exitcode is None:
            process.kill()


def _exit_words(code: int | None) -> str:
    return f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"


def _record_failure(folder: RunFolder, exc: BaseException) -> None:
    """A run whose rank 0 could not record its own end reads failed (or stopped), never running."""
    status = folder.read_status().get("status") if folder.status_path.exists() else None
    if status in ("completed", "failed", "stopped"):
        return
    interrupted = isinstance(exc, KeyboardInterrupt)
    folder.set_status("stopped" if interrupted else "failed",
                      error="interrupted (Ctrl-C)" if interrupted else str(exc))


# -- in each process ------------------------------------------------------------------------------
def rank_main(rank: int, world: int, init: str, trainer: str, kwargs: dict, events, stop,
              threads: int) -> None:
    """One rank: join through ``PEDSENSE_DDP_*`` (read by ``distributed.current``) and train."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops every rank
    os.environ.update({"PEDSENSE_DDP_RANK": str(rank), "PEDSENSE_DDP_WORLD_SIZE": str(world),
                       "PEDSENSE_DDP_INIT": init})
    torch.set_num_threads(threads)
    module, function = trainer.split(":")
    train = getattr(importlib.import_module(module), function)
    hooks: dict[str, Any] = {"should_stop": stop.is_set}
    if rank == 0:
        hooks["on_event"] = lambda event: events.put(("event", 0, event))
    try:
        path = train(**kwargs, **hooks)
        events.put(("done", rank, str(path)))
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
        events.put(("error", rank, _portable(exc)))
        raise SystemExit(1)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (pedsense's errors do), else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return RuntimeError(text)
