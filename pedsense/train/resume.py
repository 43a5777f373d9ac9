"""Continue a run that ended early (``resume_run``) or train a finished one further (``extend_run``).

``resume_run`` reopens a ``stopped``, ``interrupted`` or ``failed`` run in its own folder and
calls its seed trainer with the parameters recorded in ``config.json`` plus ``resume=True``:
ResNet trainers restore ``last.pt`` (weights, optimizer, scheduler, AMP scaler, best so far,
random-number generators) and go on at the next epoch; YOLO goes on through Ultralytics'
``resume=True``; the hybrid goes on at the stage and epoch it reached. ``metrics.csv`` ends up
with every epoch once: an epoch that was cut short is trained again.

``extend_run`` trains a ``completed`` run for more epochs as a new run folder linked to its
parent, starting from the parent's last weights with a fresh optimizer and schedule.

Both refuse, with the reason and the fix, before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from pedsense.errors import ConfigError, DataError, DatasetChanged
from pedsense.procs import process_alive
from pedsense.runfolder import LIVE_STATUSES, RunFolder, find_run, now_iso
from pedsense.train.common import check_param
from pedsense.train.lineage import RESUMABLE_STATUSES, dataset_fingerprint, home_of_run
from pedsense.train.events import EventHook, StopHook
from pedsense.train.params import Spec, spec_for

SCHEDULE_NOTE = ("Extends {parent} by {epochs} epochs from its last weights; the optimizer and the "
                 "learning-rate schedule restarted (warm-up and decay begin again).")


def resume_run(run_dir: str | os.PathLike, *, on_event: EventHook = None, should_stop: StopHook = None,
               confirm_dataset_change: bool = False) -> Path:
    """Resume a stopped, interrupted or failed run in its own folder; returns the folder.

    Args:
        run_dir: the run folder (or its ``<model_type>/<name>`` id).
        confirm_dataset_change: go on although the dataset changed since the run started
            (its manifest fingerprint differs); the confirmation is recorded in config.json.

    Raises:
        ConfigError: the run is completed (extend it instead), still running, or its dataset
            changed and ``confirm_dataset_change`` is False.
        DataError: there is no checkpoint to resume from, or it is unreadable.
    """
    folder, home = _open(run_dir)
    status = folder.read_status()
    config = folder.read_config()
    model_type, parameters = _checked(folder, home, status, config, confirm_dataset_change)
    _record_dataset_change(folder, config, home)
    spec = spec_for(model_type)
    kwargs = _accepted(folder, spec, parameters)
    if config.get("init_weights"):  # an extended run that restarts its first epoch starts there again
        kwargs["init_weights"] = config["init_weights"]
    folder.log(f"resuming ({status.get('status')}) with the recorded parameters")
    return spec.load_trainer()(**kwargs, run_dir=folder.path, home=home, resume=True,
                               on_event=on_event, should_stop=should_stop)


def check_resume(run_dir: str | os.PathLike | RunFolder, *, confirm_dataset_change: bool = False) -> None:
    """Raise what :func:`resume_run` would refuse for this run, writing nothing.

    The run manager and the CLI call it before queueing a resume, so a refusal is said at once.
    """
    folder, home = _open(run_dir.path if isinstance(run_dir, RunFolder) else run_dir)
    _checked(folder, home, folder.read_status(), folder.read_config(), confirm_dataset_change)


def _checked(folder: RunFolder, home: Path | None, status: Mapping[str, Any], config: Mapping[str, Any],
             confirm_dataset_change: bool) -> tuple[str, dict]:
    _check_resumable(folder, status)
    model_type, parameters = _recorded(folder, config)
    check_resume_checkpoint(folder, model_type, config)
    if not confirm_dataset_change:
        _dataset_change(folder, config, home, raise_on_change=True)
    return model_type, parameters


def extend_run(run_dir: str | os.PathLike, epochs: int, *, on_event: EventHook = None,
               should_stop: StopHook = None, child_dir: str | os.PathLike | None = None) -> Path:
    """Train a completed run ``epochs`` more epochs as a new run folder; returns the new folder.

    ``child_dir`` is the folder to train in (the one ``pedsense.launches.queue_extend`` queued,
    whose id the command line and the dashboard already showed); without it a new one is made.

    The new run has the parent's parameters (``epochs`` replaced), starts from the parent's
    last weights (YOLO: ``weights/last.pt``; ResNet-LSTM and the hybrid's classifier:
    ``last.pt``, the hybrid reusing the parent's ``yolo_detector.pt``) and records
    ``parent_run``, ``extends_epochs`` and that the learning-rate schedule restarted.

    Raises:
        ConfigError: the run is not completed (resume it instead) or ``epochs`` is not >= 1.
        DataError: the parent's weights are missing or unreadable.
    """
    parent, home = _open(run_dir)
    status = parent.status
    if status != "completed":
        raise ConfigError(f"Run {parent.run_id} is {status}, not completed: resume it instead "
                          "(pedsense.train.resume.resume_run) to finish its own epochs.")
    config = parent.read_config()
    model_type, parameters = _recorded(parent, config)
    spec = spec_for(model_type)
    epochs = check_param(spec["epochs"], epochs)
    kwargs = _accepted(parent, spec, parameters)
    kwargs["epochs"] = epochs
    if model_type == "yolo":
        weights = _existing(parent, ("weights/last.pt", "last.pt"))
        kwargs["model_variant"] = str(weights)
    else:
        from pedsense.train.checkpoints import read_checkpoint

        weights = _existing(parent, ("last.pt",))
        read_checkpoint(weights)  # unreadable or diverged weights are refused now
        kwargs["init_weights"] = str(weights)
        if model_type == "hybrid":
            kwargs["yolo_model"] = str(_existing(parent, ("yolo_detector.pt",)))
    lineage = {"model_type": model_type, "parent_run": parent.run_id, "parent_dir": str(parent.path),
               "extends_epochs": epochs, "schedule_note": SCHEDULE_NOTE.format(parent=parent.run_id, epochs=epochs)}
    if child_dir is not None:  # queued already: its status (and claim) stay as the queue left them
        child = RunFolder(child_dir)
        child.update_config(**lineage)
    else:
        child = RunFolder.create(model_type, f"{parameters.get('name') or model_type}-extended", home=home)
        child.write_config(lineage)
        child.set_status("queued")
    child.log(f"extends {parent.run_id} by {epochs} epochs from {weights}")
    parent.log(f"extended by {epochs} epochs in {child.run_id}")
    return spec.load_trainer()(**kwargs, run_dir=child.path, home=home, on_event=on_event,
                               should_stop=should_stop)


def check_resume_checkpoint(folder: RunFolder, model_type: str, config: Mapping[str, Any]) -> None:
    """DataError unless the run has the checkpoint its resume starts from, and it reads.

    ResNet-LSTM and context: ``last.pt``. YOLO: ``weights/last.pt`` (or the ``resume.pt`` a stop set aside).
    Hybrid: the detector's checkpoint while stage 1 was unfinished; afterwards
    ``yolo_detector.pt`` and, once the classifier saved one, ``last.pt``.
    """
    from pedsense.train.checkpoints import read_checkpoint
    from pedsense.train.yolo_checkpoints import resume_point

    fix = "Nothing was changed; start a new run instead."
    parameters = config.get("parameters") or {}
    if model_type in ("resnet-lstm", "context"):
        if not (folder.path / "last.pt").is_file():
            raise DataError(f"Run {folder.run_id} has no last.pt to resume from (it ended before its "
                            f"first checkpoint). {fix}")
        read_checkpoint(folder.path / "last.pt")
        return
    detector_pending = model_type == "hybrid" and not parameters.get("yolo_model") \
        and "detector" not in (config.get("stages_done") or {})
    if model_type == "yolo" or detector_pending:
        save_dir = folder.path if model_type == "yolo" else folder.path / "detector"
        weights = save_dir / "weights"
        if not (weights / "last.pt").is_file() and not (weights / "resume.pt").is_file():
            raise DataError(f"Run {folder.run_id} has no {weights / 'last.pt'} to resume from (it ended "
                            f"before its first checkpoint). {fix}")
        resume_point(save_dir)
        return
    if not (folder.path / "yolo_detector.pt").is_file():
        raise DataError(f"Run {folder.run_id} has no yolo_detector.pt although its detector stage is done. {fix}")
    if (folder.path / "last.pt").is_file():
        read_checkpoint(folder.path / "last.pt")


def _open(run_dir: str | os.PathLike) -> tuple[RunFolder, Path | None]:
    folder = find_run(run_dir)
    if not folder.config_path.is_file():
        raise DataError(f"{folder.path} has no config.json: it is not a pedsense run folder.")
    return folder, home_of_run(folder.path)


def _check_resumable(folder: RunFolder, status: Mapping[str, Any]) -> None:
    state = status.get("status")
    if state == "completed":
        raise ConfigError(f"Run {folder.run_id} is completed: there is nothing to resume. Extend it "
                          "instead: pedsense.train.resume.extend_run(run, epochs) trains more epochs "
                          "in a new run linked to it.")
    if state in LIVE_STATUSES:
        pid = status.get("pid", status.get("owner_pid"))
        if pid is None or int(pid) == os.getpid() or process_alive(pid):
            raise ConfigError(f"Run {folder.run_id} is {state}: stop it first, then resume it.")
        return  # its process is gone: an interrupted run not yet marked as such
    if state not in RESUMABLE_STATUSES:
        raise ConfigError(f"Run {folder.run_id} reads {state!r}; only a stopped, interrupted or failed "
                          "run can be resumed.")


def _recorded(folder: RunFolder, config: Mapping[str, Any]) -> tuple[str, dict]:
    model_type, parameters = config.get("model_type"), config.get("parameters")
    if not isinstance(parameters, Mapping) or not model_type:
        raise DataError(f"Run {folder.run_id} recorded no training parameters (it ended before training "
                        "began), so it cannot be continued. Start a new run.")
    return str(model_type), dict(parameters)


def _accepted(folder: RunFolder, spec: Spec, parameters: Mapping[str, Any]) -> dict:
    """The recorded parameters the trainer still takes; the others are named in the run's log."""
    dropped = sorted(k for k in parameters if k not in spec)
    if dropped:
        folder.log(f"recorded parameters the trainer no longer takes, left out: {', '.join(dropped)}")
    return {k: v for k, v in parameters.items() if k in spec}


def _dataset_change(folder: RunFolder, config: Mapping[str, Any], home: Path | None, *,
                    raise_on_change: bool) -> tuple[str, str] | None:
    """``(recorded, current)`` fingerprints when the run's dataset changed since it started, else None.

    Raises:
        DatasetChanged: it changed and ``raise_on_change``.
    """
    recorded = config.get("dataset_fingerprint")
    files = [Path(f) if Path(f).is_absolute() or home is None else home / f
             for f in config.get("dataset_files") or []]
    if not recorded or not files:
        return None
    current = dataset_fingerprint(files)
    if current == recorded:
        return None
    if raise_on_change:
        shown = ", ".join(str(f) for f in config.get("dataset_files"))
        raise DatasetChanged(f"The dataset of run {folder.run_id} changed since it started ({shown}): "
                             "resuming would continue its training on other data. Rebuild the data it "
                             "was trained on, start a new run, or confirm the change (recorded in its "
                             "config.json; confirm_dataset_change=True in Python).")
    return recorded, current


def _record_dataset_change(folder: RunFolder, config: Mapping[str, Any], home: Path | None) -> None:
    """A confirmed resume on changed data: recorded in config.json and the log."""
    change = _dataset_change(folder, config, home, raise_on_change=False)
    if change is None:
        return
    recorded, current = change
    changes = list(config.get("dataset_change_confirmed") or [])
    changes.append({"at": now_iso(), "fingerprint_before": recorded, "fingerprint_now": current})
    folder.update_config(dataset_change_confirmed=changes)
    folder.log(f"dataset changed since the run started ({recorded} -> {current}); resuming as confirmed")


def _existing(folder: RunFolder, names: tuple[str, ...]) -> Path:
    for name in names:
        if (folder.path / name).is_file():
            return folder.path / name
    raise DataError(f"Run {folder.run_id} has no {' or '.join(names)} to start from. Nothing was created.")
