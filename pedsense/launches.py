"""What a launch puts on the data home's queue: a new run, a resume, an extension.

Each checks everything it can before anything is written (a refusal names the problem and the
fix, and changes nothing), then queues the run (``pedsense.runqueue.enqueue``): a run folder
reading ``queued`` whose ``launch`` says what its worker does (``pedsense.worker.execute``).
The run manager, the CLI and the dashboard's buttons all come through here.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from pedsense.config import paths
from pedsense.errors import ConfigError, DataError
from pedsense.runfolder import RESUMABLE_STATUSES, RunFolder
from pedsense.runqueue import enqueue, is_live, scheduler_lock, worker_alive
from pedsense.train.params import EPOCHS, FormError, planned_epochs, spec_for
from pedsense.train.preflight import preflight
from pedsense.worker import resume_module


def queue_run(model_type: str, params: Mapping[str, Any], home: str | os.PathLike | None = None, *,
              check: Callable[[str, Mapping[str, Any]], dict] | None = None,
              reserved_by: Mapping | None = None) -> RunFolder:
    """Check ``params`` and queue a training run: its folder (``queued``) with its config.

    Raises:
        FormError: invalid parameters, or data the trainer would refuse (nothing is created).
    """
    home = paths(home).home
    errors = check(model_type, params) if check else preflight(model_type, params, home)
    if errors:
        raise FormError(errors)
    spec = spec_for(model_type)
    checked = spec.check({k: v for k, v in params.items() if k in spec})
    given = {k: checked[k] if k in spec else v for k, v in params.items()}
    folder = RunFolder.create(model_type, checked.get("name"), default_prefix=model_type, home=home)
    total = planned_epochs(model_type, checked)
    folder.write_config({"model_type": model_type, "parameters": spec.record(checked),
                         "epochs_total": total, "run_dir": str(folder.path)})
    recorded = {k: spec[k].record(v) if k in spec else v for k, v in given.items()}
    enqueue(folder, {"action": "train", "model_type": model_type, "params": recorded}, reserved_by=reserved_by)
    folder.log(f"queued {model_type} run with {given}")
    return folder


def queue_resume(folder: RunFolder, confirm_dataset_change: bool = False, *,
                 reserved_by: Mapping | None = None) -> RunFolder:
    """Queue a stopped, interrupted or failed run to resume in its folder (see ``RunManager.resume``)."""
    state = _resumable_state(folder, folder.read_status())
    check_resumable(folder, confirm_dataset_change)
    with scheduler_lock(folder.path.parent.parent.parent):
        status = folder.read_status()  # again under the lock: another process may have queued it
        state = _resumable_state(folder, status)
        enqueue(folder, {"action": "resume", "model_type": folder.model_type, "previous_status": state,
                         "previous_error": status.get("error"),
                         "confirm_dataset_change": bool(confirm_dataset_change)},
                reserved_by=reserved_by, error=status.get("error"))
    folder.log(f"queued to resume (it was {state})")
    return folder


def _resumable_state(folder: RunFolder, status: Mapping[str, Any]) -> str:
    """The status a resume starts from; ConfigError when the run cannot be resumed."""
    state = status.get("status")
    if state == "completed":
        raise ConfigError(f"Run {folder.run_id} is completed: there is nothing to resume. Extend it "
                          "instead (train it N more epochs as a new run linked to it).")
    if is_live(status):
        if worker_alive(folder) or state == "queued":
            raise ConfigError(f"Run {folder.run_id} is {state}: stop it first, then resume it.")
        state = "interrupted"  # its process is gone; not yet marked so
    if state not in RESUMABLE_STATUSES:
        raise ConfigError(f"Run {folder.run_id} reads {state!r}; only a stopped, interrupted or "
                          "failed run can be resumed.")
    return str(state)


def check_resumable(folder: RunFolder, confirm_dataset_change: bool = False) -> None:
    """What ``pedsense.train.resume.resume_run`` would refuse, said now, before queueing."""
    resume_module().check_resume(folder, confirm_dataset_change=confirm_dataset_change)


def queue_extend(parent: RunFolder, epochs: Any, *, reserved_by: Mapping | None = None) -> RunFolder:
    """Queue a completed run's extension: a new run folder (``queued``) linked to it."""
    status = parent.status
    if status != "completed":
        raise ConfigError(f"Run {parent.run_id} is {status}, not completed: resume it instead to "
                          "finish its own epochs.")
    try:
        epochs = EPOCHS.check(epochs)
    except ConfigError as exc:
        raise ConfigError(f"epochs {exc}") from None
    config = parent.read_config()
    parameters = dict(config.get("parameters") or {})
    if not parameters or parent.weights("last") is None:
        raise DataError(f"Run {parent.run_id} has no recorded parameters or no last.pt to start "
                        "an extension from. Nothing was created.")
    model_type = parent.model_type
    planned = {**parameters, "epochs": epochs}
    if model_type == "hybrid":  # the extension reuses the parent's detector: no stage 1
        planned["yolo_model"] = str(parent.weights("detector") or "")
    child = RunFolder.create(model_type, f"{parameters.get('name') or model_type}-extended",
                             home=parent.path.parent.parent.parent)
    child.write_config({"model_type": model_type, "parameters": {**parameters, "epochs": epochs},
                        "epochs_total": planned_epochs(model_type, planned),
                        "parent_run": parent.run_id, "parent_dir": str(parent.path), "extends_epochs": epochs})
    enqueue(child, {"action": "extend", "model_type": model_type, "parent": str(parent.path), "epochs": epochs},
            reserved_by=reserved_by)
    child.log(f"queued to extend {parent.run_id} by {epochs} epochs")
    return child

