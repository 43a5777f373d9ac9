"""A run's worker: ``python -m pedsense.worker RUN_DIR`` does one queued run in its own process.

The run manager (a dashboard) starts one per claimed run (:func:`spawn_worker`) in a session of
its own, so it keeps training when the dashboard stops; ``pedsense train --detach`` starts one
with ``--wait``, which waits for a slot itself. :func:`execute` is the same work in the calling
process (the CLI, the run manager's in-thread mode): it calls the seed trainer with the
parameters the run's queue entry recorded (or ``pedsense.train.resume`` for a resume or an
extension) and, whatever happens, never leaves the run reading ``queued`` or ``running``.

The trainer's run lifecycle (``pedsense.train.common.TrainingRun``) writes ``events.jsonl``, the
heartbeat and honours ``stop.request`` itself, so a worker needs no channel back to its parent.
:func:`worker_command` is the one place the command is built: a distributed launch
(``torchrun --nproc-per-node N -m pedsense.worker RUN_DIR``) plugs in there.
"""

from __future__ import annotations

import argparse
import faulthandler
import inspect
import logging
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping

from pedsense.config import REPO_ROOT
from pedsense.errors import ConfigError, PedsenseError
from pedsense.io import write_json_atomic
from pedsense.mlflow_export import export_when_set
from pedsense.procs import Heartbeat, me, process_start_token
from pedsense.runfolder import FINISHED_STATUSES, RESUMABLE_STATUSES, RunFolder
from pedsense.runqueue import RunTaken, cancel_queued, home_of, scheduler_lock, wait_for_slot
from pedsense.train import events as ev
from pedsense.train.common import stop_file_hook
from pedsense.train.params import spec_for


def worker_command(run_dir: str | os.PathLike, *, wait: bool = False) -> list[str]:
    """The command that runs ``run_dir``'s worker (``--wait``: it claims its slot itself).

    A queued ResNet-LSTM training whose ``devices`` names several devices runs under torchrun
    (``pedsense.train.distributed.launch_command``: one worker process per device; rank 0 does
    what a worker does, the others only train). A waiting worker, a resume or an extension runs
    in one process, whose trainer starts its data-parallel processes itself.

    Raises:
        DistributedError: the run needs torchrun, which this environment lacks.
    """
    devices = _launch_devices(run_dir) if not wait else None
    if devices:
        from pedsense.train.distributed import launch_command

        return launch_command(run_dir, devices)
    return [sys.executable, "-m", "pedsense.worker", str(run_dir), *(["--wait"] if wait else [])]


def _launch_devices(run_dir: str | os.PathLike) -> Any:
    """The ``devices`` a queued training records (None for a resume, an extension, or none)."""
    try:
        launch = RunFolder(run_dir).read_status().get("launch") or {}
    except (OSError, ValueError, PedsenseError):
        return None
    if launch.get("action", "train") != "train":
        return None
    return (launch.get("params") or {}).get("devices") or None


def spawn_worker(folder: RunFolder, *, wait: bool = False) -> subprocess.Popen:
    """Start ``folder``'s worker process, detached (its own session; stdout and stderr go to
    ``worker.log``), and write its first heartbeat so it counts as alive at once."""
    env = {**os.environ, "PEDSENSE_HOME": str(home_of(folder)), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    with open(folder.worker_log_path, "ab") as log_file:
        process = subprocess.Popen(worker_command(folder.path, wait=wait), stdin=subprocess.DEVNULL,
                                   stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                   cwd=str(REPO_ROOT), start_new_session=True)
    if not wait:  # a waiting worker is no slot holder until it claims one
        write_json_atomic(folder.worker_path, {"pid": process.pid, "start": process_start_token(process.pid),
                                               "heartbeat_at": time.time()})
    folder.log(f"worker process {process.pid} started")
    return process


# -- doing the run ---------------------------------------------------------------------------
def execute(folder: RunFolder, *, on_event: ev.EventHook = None, should_stop: ev.StopHook = None,
            trainer: Callable[..., Any] | None = None, params: Mapping[str, Any] | None = None) -> Path:
    """Do the launch a claimed queued run records, in this process; returns the run folder.

    Args:
        on_event, should_stop: the caller's hooks (a ``stop.request`` file stops it too).
        trainer, params: a trainer (and its keyword arguments) to call instead of the seed
            trainer with the recorded parameters (the run manager's in-thread mode).

    Raises:
        whatever the trainer raised, once the run's end is recorded.
    """
    status = folder.read_status()
    launch = dict(status.get("launch") or {"action": "train"})
    if folder.stop_path.exists():  # stopped between its claim and now: it never starts
        with scheduler_lock(home_of(folder)):
            cancel_queued(folder, folder.read_status())
        folder.stop_path.unlink(missing_ok=True)
        return folder.path
    stop = stop_file_hook(folder.stop_path, should_stop)
    action = launch.get("action", "train")
    folder.log(f"training started ({action}, process {os.getpid()})")
    try:
        if action == "resume":
            result = _resume(folder, launch, on_event, stop)
        elif action == "extend":
            result = _extend(folder, launch, on_event, stop)
        else:
            result = _train(folder, launch, status, on_event, stop, trainer, params)
    except BaseException as exc:
        record_end(folder, launch, exc)
        export_when_set(folder)
        raise
    record_end(folder, launch, None, stopped=stop())
    export_when_set(folder)  # into MLflow, when the data home's setting says so
    return Path(result) if isinstance(result, (str, os.PathLike)) else folder.path


def _train(folder: RunFolder, launch: Mapping, status: Mapping, on_event, should_stop,
           trainer: Callable | None, params: Mapping | None) -> Any:
    model_type = launch.get("model_type") or folder.model_type
    trainer = trainer or spec_for(model_type).load_trainer()
    params = dict(params) if params is not None else recorded_params(model_type, launch.get("params") or {})
    device = (status.get("claim") or {}).get("device")
    if device and params.get("device") in (None, "", "auto"):
        params["device"] = device  # assigned from the device pool (runqueue.QueueSettings.devices)
    hooks = {"on_event": on_event, "should_stop": should_stop, "run_dir": folder.path, "home": home_of(folder)}
    accepted = inspect.signature(trainer).parameters
    return trainer(**params, **{k: v for k, v in hooks.items() if k in accepted})


def recorded_params(model_type: str, params: Mapping[str, Any]) -> dict:
    """The parameters a queue entry recorded (JSON), back in their checked types."""
    spec = spec_for(model_type)
    checked = spec.check({k: v for k, v in params.items() if k in spec})
    return {k: checked[k] if k in spec else v for k, v in params.items()}


def resume_module():
    """``pedsense.train.resume`` (resume_run, extend_run), or ConfigError when this install lacks it."""
    try:
        from pedsense.train import resume
    except ImportError as exc:
        raise ConfigError("Resuming and extending runs needs pedsense.train.resume, which this "
                          f"install lacks ({exc}). Update pedsense.") from exc
    return resume


def _resume(folder: RunFolder, launch: Mapping, on_event, should_stop) -> Any:
    # resume_run reopens a stopped/interrupted/failed run: give the run its status back, marked
    # ``resuming`` so every process still counts it as live until the trainer says running (and a
    # refusal leaves the run as it was, with the reason in ``resume_error``).
    folder.update_status(status=launch.get("previous_status"), error=launch.get("previous_error"),
                         resuming=me())
    return resume_module().resume_run(folder.path, on_event=on_event, should_stop=should_stop,
                             confirm_dataset_change=bool(launch.get("confirm_dataset_change")))


def _extend(folder: RunFolder, launch: Mapping, on_event, should_stop) -> Any:
    # trains in the queued folder, whose id ``pedsense extend`` printed and the dashboard shows
    return resume_module().extend_run(launch["parent"], int(launch["epochs"]), on_event=on_event,
                                      should_stop=should_stop, child_dir=folder.path)


def record_end(folder: RunFolder, launch: Mapping, exc: BaseException | None, stopped: bool = False) -> None:
    """Record how a run ended when its trainer did not (it refused its input before starting,
    returned without saying, or raised): never left queued or running."""
    status = folder.read_status()
    state = status.get("status")
    message = _describe(exc)
    if launch.get("action") == "resume" and status.get("resuming") and state in RESUMABLE_STATUSES:
        folder.update_status(resuming=None, resume_error=message or "the resume returned without training")
        folder.log(f"resume refused, the run keeps its status {state}: {message}")
        return
    if state in FINISHED_STATUSES:
        return  # the trainer's own words
    if exc is None:
        outcome = "stopped" if stopped else "completed"
        if state == "queued":
            outcome, message = ("stopped", "stopped before it started") if stopped else \
                ("failed", "the trainer returned without starting the run")
    else:
        outcome = "stopped" if isinstance(exc, KeyboardInterrupt) else "failed"
    folder.set_status(outcome, error=message, resuming=None)
    if state == "queued" and outcome == "failed":
        folder.log(f"failed before training: {message}")
    if exc is not None and not isinstance(exc, (PedsenseError, KeyboardInterrupt)):
        folder.log("".join(traceback.format_exception(exc)).rstrip())
    folder.log(f"run ended: {outcome}" + (f" ({message})" if message else ""))


def _describe(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return str(exc) if isinstance(exc, PedsenseError) else f"{type(exc).__name__}: {exc}"


# -- the process -------------------------------------------------------------------------------
def follow(folder: RunFolder) -> int:
    """A torchrun process of rank > 0: train ``folder``'s run beside rank 0, writing nothing
    (no heartbeat, status or log: rank 0's worker records the run; a failure here ends rank 0
    through the process group, and torchrun stops the rest)."""
    if folder.stop_path.exists():  # rank 0 cancels the run without training (execute)
        return 0
    status = folder.read_status()
    launch = dict(status.get("launch") or {"action": "train"})
    try:
        _train(folder, launch, status, None, stop_file_hook(folder.stop_path, None), None, None)
    except PedsenseError as exc:
        print(f"error (rank > 0): {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    except BaseException:  # noqa: BLE001 - the traceback goes to worker.log
        traceback.print_exc()
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pedsense.worker", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="the queued run's folder")
    parser.add_argument("--wait", action="store_true", help="wait for a free slot and claim it first")
    args = parser.parse_args(argv)
    folder = RunFolder(args.run_dir)
    if not folder.status_path.is_file():
        print(f"error: {folder.path} is not a queued run folder (no status.json).", file=sys.stderr)
        return 2
    from pedsense.train.distributed import is_main_process

    if not is_main_process():
        return follow(folder)
    faulthandler.enable()  # a crash in native code prints the Python stack into worker.log
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"pedsense worker {os.getpid()} for {folder.run_id}", flush=True)
    heartbeat = Heartbeat(folder.worker_path)
    try:
        if args.wait:
            wait_for_slot(folder, report=lambda why: print(why, flush=True), on_claimed=heartbeat.start)
        heartbeat.start()
        execute(folder)
    except RunTaken as exc:
        print(f"not started here: {exc}", flush=True)
        return 0
    except PedsenseError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    except BaseException:  # noqa: BLE001 - the traceback goes to worker.log; the run says failed
        traceback.print_exc()
        return 1
    finally:
        heartbeat.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
