"""The run lifecycle every trainer shares: folder, config, status, metrics, log and events.

A trainer reads top to bottom:

    settings = validate(...)                       # bad input fails here, before any long work
    run = TrainingRun.open("resnet-lstm", name, run_dir=..., on_event=..., should_stop=...)
    with run.guarded():                            # any raise -> status "failed" + error text
        run.start(config)                          # config.json, status "running", RunStarted
        for epoch ...: run.step_end(...); run.batch_end(...); run.epoch_end(...)
        run.finish(best_metric=...)                # "completed" or "stopped", RunFinished

``TrainingRun.open(..., resume=True)`` reopens a stopped, interrupted or failed run in its own
folder: ``start`` keeps its config (adding a ``resumes`` entry) and ``rewind`` drops the
metrics and step rows of epochs the trainer is about to train again.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from pedsense.errors import ConfigError, DiskFull, PedsenseError, TrainingDiverged
from pedsense.io import read_json
from pedsense.procs import Heartbeat
from pedsense.runfolder import BEST_METRIC, RunFolder, best_record, describe_weights_on_disk, now_iso
from pedsense.sysmon import SystemSampler
from pedsense.train.params import BATCH_SIZE, CROP_SIZE, Param, planned_epochs
from pedsense.train.lineage import LINEAGE_KEYS, dataset_record, resumable_folder
from pedsense.train.tensorboard_log import TensorBoardLog
from pedsense.train.events import (BatchEnd, EpochEnd, EventHook, EventRecorder, RunFinished,
                                   RunStarted, StageStarted, StepEnd, StopHook, emit,
                                   stop_requested)

log = logging.getLogger("pedsense.train")

# -- validation -----------------------------------------------------------------------------
def check_param(param: Param, value: Any) -> Any:
    """``value`` checked by its parameter's rule (``pedsense.train.params``), or ConfigError
    naming the parameter: the same rule the forms, the CLI and the trainers apply."""
    try:
        return param.check(value)
    except ConfigError as exc:
        raise ConfigError(f"{param.name} {exc}") from None


def check_batch_size(batch_size: int, n_samples: int, what: str) -> int:
    """The batch size, refused when the training split is smaller than one batch."""
    batch_size = check_param(BATCH_SIZE, batch_size)
    if batch_size > n_samples:
        raise ConfigError(
            f"batch_size={batch_size} is larger than the {n_samples} {what}. "
            f"Use batch_size <= {n_samples}, or build a bigger dataset."
        )
    return batch_size


def check_crop_size(crop_size: Any) -> tuple[int, int] | None:
    """None (as built), an int (square), "WxH" or (width, height) -> (width, height)."""
    return check_param(CROP_SIZE, crop_size)


def manifest_summary(manifest_path: Path) -> dict:
    """The scalar facts of a dataset build's ``manifest.json`` (counts, sizes, source), if any.

    The labels' ``task`` and ``intent_options`` (the benchmark protocol) are always kept, so
    every trainer's ``config.json`` says which question its data answered.
    """
    manifest = read_json(manifest_path, None)
    if not isinstance(manifest, dict):
        return {}
    summary = {}
    for key, value in manifest.items():
        if key in ("task", "intent_options"):
            summary[key] = value
        elif isinstance(value, (str, int, float, bool)) or value is None:
            summary[key] = value
        elif isinstance(value, dict) and len(value) <= 12 and all(
                isinstance(v, (str, int, float, bool)) or v is None for v in value.values()):
            summary[key] = value
    return summary


# -- the labels' task (``action`` or ``intent``) -------------------------------------------------
def dataset_task(manifest_path: Path) -> dict:
    """``{"task", "intent_options"}`` of the dataset whose ``manifest.json`` is ``manifest_path``.

    A dataset built before tasks existed (no ``task`` in its manifest, or no manifest) holds the
    seed's ``action`` labels.
    """
    manifest = read_json(manifest_path, None)
    manifest = manifest if isinstance(manifest, dict) else {}
    return {"task": manifest.get("task") or "action", "intent_options": manifest.get("intent_options")}


def require_task(task: str | None, manifest_path: Path, what: str, rebuild: str,
                 options: Mapping[str, Any] | None = None) -> dict:
    """The dataset's task record, refused when it was built for another task (or protocol).

    Args:
        task: the task asked for; None accepts the dataset as built.
        manifest_path: the dataset's ``manifest.json``.
        what: the dataset in words ("ResNet sequence dataset").
        rebuild: the command that rebuilds it (``pedsense preprocess resnet``).
        options: under ``intent``, the protocol asked for (``IntentOptions.as_dict()``); every
            value that differs from the build's is named.

    Raises:
        ConfigError: the dataset answers another question than the one asked.
    """
    built = dataset_task(manifest_path)
    if task is None:
        return built
    if built["task"] != task:
        raise ConfigError(
            f"The {what} ({manifest_path.parent}) was built for task '{built['task']}', but this "
            f"run asks for task '{task}'. Fix: rebuild it with `{rebuild} --task {task}`, or train "
            f"with task '{built['task']}' (or leave task empty to train on the data as built).")
    if task == "intent" and options is not None and isinstance(built["intent_options"], dict):
        differ = [f"{key}={built['intent_options'].get(key)!r} (asked {value!r})"
                  for key, value in options.items()
                  if _plain(built["intent_options"].get(key)) != _plain(value)]
        if differ:
            raise ConfigError(
                f"The {what} ({manifest_path.parent}) was built with another intent protocol: "
                + ", ".join(differ) + f". Fix: rebuild it with those options ({rebuild} --task "
                "intent ...), or ask for the protocol it was built with.")
    return built


def _plain(value: Any) -> Any:
    """Lists and tuples compare equal (JSON turns tuples into lists)."""
    return list(value) if isinstance(value, (list, tuple)) else value


# -- the run --------------------------------------------------------------------------------
class TrainingRun:
    """One training run: its folder, the caller's hooks and the clock.

    From :meth:`start` to its end the run can be followed and stopped from any process: its
    events are appended to ``events.jsonl``, a ``stop.request`` file stops it like the caller's
    ``should_stop``, ``worker.json`` carries this process's heartbeat (``pedsense.procs``),
    ``system.csv`` its load (``pedsense.sysmon``); TensorBoard gets the curves (``tensorboard_log``).
    """

    _recorder: EventRecorder | None = None
    _heartbeat: Heartbeat | None = None
    _sampler: SystemSampler | None = None
    _tensorboard = TensorBoardLog(None)  # writes nothing until the run starts

    def __init__(self, folder: RunFolder, model_type: str, on_event: EventHook = None,
                 should_stop: StopHook = None, *, resume: bool = False,
                 datasets: tuple[Path, ...] = (), init_weights: Path | None = None):
        self.folder = folder
        self.model_type = model_type
        self.on_event = on_event
        self.should_stop = should_stop
        self.started = time.time()
        self.stop_seen = False
        self.epochs_done = 0
        self.resuming = resume
        self.datasets = datasets
        self.init_weights = init_weights
        self.time_offset = 0.0  # seconds trained by earlier attempts of a resumed run

    @classmethod
    def open(cls, model_type: str, name: str | None, *, run_dir: str | os.PathLike | None = None,
             home: str | os.PathLike | None = None, on_event: EventHook = None,
             should_stop: StopHook = None, resume: bool = False,
             datasets: tuple[str | os.PathLike, ...] = (),
             init_weights: str | os.PathLike | None = None) -> "TrainingRun":
        """Use the run manager's pre-created ``run_dir``, or create a fresh run folder.

        Args:
            resume: reopen ``run_dir``, an existing run that ended stopped, interrupted or failed.
            datasets: the files that define the training data (manifests, label files); their
                fingerprint goes into config.json so a resume can tell when the data changed.
            init_weights: the checkpoint the model starts from (``extend_run``); recorded.

        Raises:
            ConfigError: ``resume`` without an existing, resumable ``run_dir`` (nothing is written).
        """
        if resume:
            folder = resumable_folder(run_dir)
        elif run_dir is not None:
            folder = RunFolder(run_dir)
            folder.path.mkdir(parents=True, exist_ok=True)
        else:
            folder = RunFolder.create(model_type, name, default_prefix=model_type, home=home)
        return cls(folder, model_type, on_event, should_stop, resume=resume,
                   datasets=tuple(Path(p) for p in datasets),
                   init_weights=Path(init_weights) if init_weights else None)

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def run_id(self) -> str:
        return self.folder.run_id

    def log(self, message: str) -> None:
        self.folder.log(message)
        log.debug("%s: %s", self.run_id, message)

    def elapsed(self) -> float:
        """Seconds of training so far, earlier attempts of a resumed run included."""
        return self.time_offset + time.time() - self.started

    def start(self, config: Mapping[str, Any]) -> None:
        """Record the config, mark the run running and announce it.

        ``config`` holds the checked ``"parameters"`` (``Spec.record``) and what the trainer
        resolved (device, weights source, dataset); the epochs planned across stages are added.
        A resumed run keeps what its config.json held (lineage, stages done, confirmations) and
        adds an entry to ``resumes``; a fresh run keeps only the lineage of a pre-created config.
        """
        parameters = config.get("parameters") or {}
        config = {"model_type": self.model_type, "run_id": self.run_id,
                  "epochs_total": planned_epochs(self.model_type, parameters), **config}
        if self.datasets:
            config.update(dataset_record(self.datasets, self.path))
        if self.init_weights is not None:
            config["init_weights"] = str(self.init_weights)
        previous = self.folder.read_config()
        if self.resuming:
            status = self.folder.read_status()
            self.time_offset = float(previous.get("duration_s") or 0.0)
            resumes = list(previous.get("resumes") or []) + [
                {"at": now_iso(), "previous_status": status.get("status"), "previous_error": status.get("error"),
                 "epochs_done_before": previous.get("epochs_done")}]
            config = {**{k: v for k, v in previous.items() if k != "final_status"}, **config,
                      "resumes": resumes}
        else:
            config.update({k: previous[k] for k in LINEAGE_KEYS if k in previous})
        self._publish()
        self.folder.write_config(config)
        self.folder.set_status("running", resuming=None)
        verb = "resumed" if self.resuming else "started"
        self.log(f"{verb} {self.model_type} run in {self.path} on {config.get('device')}")
        self.log(f"weights: {config.get('weights_source')}")
        self._tensorboard = TensorBoardLog.open(self.path, self.log)
        emit(self.on_event, RunStarted(self.run_id, self.path, self.model_type, config))

    def rewind(self, stage: str, epochs_kept: int) -> None:
        """Resuming ``stage`` after its epoch ``epochs_kept``: drop its later metrics and step rows.

        Those epochs (an epoch cut short, or one whose checkpoint was never written) are trained
        again, so metrics.csv ends with every epoch exactly once.
        """
        def keep(row: Mapping[str, Any]) -> bool:
            epoch = row.get("epoch")
            return (row.get("stage") or "train") != stage or (isinstance(epoch, (int, float)) and epoch <= epochs_kept)

        dropped = self.folder.keep_metrics(keep) + self.folder.keep_steps(keep)
        self.epochs_done = len(self.folder.read_metrics())
        steps = self.folder.read_steps()
        if steps and isinstance(steps[-1].get("time"), (int, float)):
            self.time_offset = max(self.time_offset, float(steps[-1]["time"]))
        self.log(f"stage {stage}: resuming after epoch {epochs_kept}" + (f" ({dropped} later rows dropped)" if dropped else ""))

    def stage(self, stage: str, total_epochs: int) -> None:
        self.log(f"stage {stage}: {total_epochs} epochs")
        emit(self.on_event, StageStarted(self.run_id, stage, total_epochs))

    def stage_done(self, stage: str, best: Mapping[str, Any]) -> None:
        """Record a finished stage (the hybrid's detector) so a resume goes straight past it."""
        done = dict(self.folder.read_config().get("stages_done") or {})
        done[stage] = dict(best)
        self.folder.update_config(stages_done=done)

    def record(self, **changes: Any) -> None:
        """Add what the trainer learned after the start (the feature cache it used) to config.json."""
        self.folder.update_config(**changes)

    def stages_done(self) -> dict:
        return dict(self.folder.read_config().get("stages_done") or {})

    def stop_now(self) -> bool:
        """Poll the caller's stop flag; once it said stop, the answer stays yes."""
        if not self.stop_seen and stop_requested(self.should_stop):
            self.stop_seen = True
            self.log("stop requested")
        return self.stop_seen

    def batch_end(self, epoch: int, batch: int, total_batches: int, stage: str = "train") -> bool:
        """Announce one finished batch; True when the run should stop now."""
        emit(self.on_event, BatchEnd(self.run_id, epoch, batch, total_batches, stage))
        return self.stop_now()

    def step_end(self, epoch: int, step: int, loss: float, lr: float, stage: str = "train") -> None:
        """Append a point of the loss curve to ``steps.csv`` (flushed) and announce it."""
        self.folder.append_step({"stage": stage, "epoch": epoch, "step": step, "loss": f"{loss:.6g}",
                                  "lr": f"{lr:.6g}", "time": round(self.elapsed(), 3)})
        self._tensorboard.step(step, float(loss), float(lr), stage)
        emit(self.on_event, StepEnd(self.run_id, epoch, step, loss, lr, stage))

    def epoch_end(self, epoch: int, total_epochs: int, row: Mapping[str, Any],
                  stage: str = "train") -> None:
        """Append the epoch's metrics row (flushed), log it and announce it."""
        self.folder.append_metrics(row)
        self.epochs_done += 1
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k not in ("epoch", "stage"))
        self.log(f"{stage} epoch {epoch}/{total_epochs}: {shown}")
        self._tensorboard.epoch(epoch, row, stage)
        emit(self.on_event, EpochEnd(self.run_id, epoch, total_epochs, dict(row), stage))

    def checkpoint(self, file_name: str, *, required: bool = True) -> dict | None:
        """The pedsense checkpoint ``file_name`` of this run (None when absent and not required).

        Raises:
            DataError: missing (when required), unreadable or with non-finite weights.
        """
        from pedsense.train.checkpoints import read_checkpoint

        path = self.path / file_name
        if not required and not path.exists():
            return None
        return read_checkpoint(path)

    def finish(self, best_metric: Mapping[str, Any] | None = None, **config_extra: Any) -> Path:
        """Complete config.json, set ``completed`` (or ``stopped``) and announce the end.

        ``best_metric`` is the best epoch's metrics (``{"val_acc": ..., "epoch": ...}``); it is
        recorded in the one shape every run uses, ``{"name", "value", "epoch", **metrics}``,
        named by the model type's metric (``pedsense.runfolder.BEST_METRIC``).
        """
        status = "stopped" if self.stop_seen else "completed"
        duration = round(self.elapsed(), 2)
        best = self.best_record(best_metric)
        self.folder.update_config(best_metric=best, epochs_done=self.epochs_done,
                                  duration_s=duration, final_status=status, **config_extra)
        self.folder.set_status(status, epochs_done=self.epochs_done)
        self._tensorboard.hparams(self.folder.read_config().get("parameters") or {}, best)
        shown = f"{best['name']} {best['value']:.4g} (epoch {best['epoch']})" if best else "none"
        self.log(f"{status} after {self.epochs_done} epochs in {duration:.1f}s; best {shown}")
        emit(self.on_event, RunFinished(self.run_id, self.path, status, None, best))
        self._unpublish()
        return self.path

    def best_record(self, metrics: Mapping[str, Any] | None, name: str | None = None) -> dict | None:
        """``metrics`` of the best epoch in the recorded shape (None when there is none)."""
        name = name or BEST_METRIC.get(self.model_type, ("val_acc", True))[0]
        if not metrics or metrics.get(name) is None:
            return None
        return best_record(name, metrics)

    def fail(self, exc: BaseException) -> None:
        """Record a raise: ``failed`` with the message (Ctrl-C reads ``stopped``), metrics kept.

        Never raises itself: on a full disk the status may not be writable, and the original
        error is what the caller must see.
        """
        interrupted = isinstance(exc, KeyboardInterrupt)
        status = "stopped" if interrupted else "failed"
        if interrupted:
            message = "interrupted (Ctrl-C)"
        elif isinstance(exc, PedsenseError):
            message = str(exc)
        else:
            message = f"{type(exc).__name__}: {exc}"
        try:
            self.folder.set_status(status, error=message, epochs_done=self.epochs_done)
        except OSError as write_error:  # even in place: say it where it can still be said
            print(f"error: {self.run_id} {status}: {message} (its status.json could not record "
                  f"this: {write_error.strerror or write_error})", file=sys.stderr, flush=True)
        try:
            self.folder.update_config(final_status=status, epochs_done=self.epochs_done,
                                      duration_s=round(self.elapsed(), 2))
            self.folder.log(f"{status}: {message}")
            if not interrupted and not isinstance(exc, PedsenseError):
                self.folder.log("".join(traceback.format_exception(exc)).rstrip())
        except OSError:
            pass  # a full disk: status.json (above) holds the end and the message
        finally:
            try:
                emit(self.on_event, RunFinished(self.run_id, self.path, status, message))
            except Exception as listener_error:  # noqa: BLE001 - must not hide the original error
                log.warning("on_event failed while reporting a failed run: %s", listener_error)
            self._unpublish()

    def _publish(self) -> None:
        """Record events to ``events.jsonl``, honour ``stop.request``, start the heartbeat."""
        if self._recorder is not None:
            return
        self._recorder = EventRecorder(self.folder.events_path, self.on_event)
        self.on_event = self._recorder
        self.should_stop = stop_file_hook(self.folder.stop_path, self.should_stop)
        self._heartbeat = Heartbeat(self.folder.worker_path).start()
        self._sampler = SystemSampler(self.path).start()  # system.csv: is the machine the bottleneck?

    def _unpublish(self) -> None:
        """The run has recorded its end: stop what ran beside it, drop a stop request it honoured."""
        for beside in (self._heartbeat, self._sampler):
            if beside is not None:
                beside.stop()
        self._tensorboard.close()
        if self._recorder is not None:
            self._recorder.close()
        self.folder.stop_path.unlink(missing_ok=True)

    @contextmanager
    def guarded(self) -> Iterator["TrainingRun"]:
        """Mark the run failed (keeping what was written) if the body raises, then re-raise.

        A full disk anywhere (our checkpoints, metrics, Ultralytics' weights) becomes
        :class:`~pedsense.errors.DiskFull` naming the folder and the space to free.
        """
        try:
            yield self
        except (OSError, DiskFull) as exc:
            if not isinstance(exc, DiskFull) and exc.errno != errno.ENOSPC:
                self.fail(exc)
                raise
            from pedsense.train.checkpoints import disk_full_message, largest_checkpoint

            said = str(exc) if isinstance(exc, DiskFull) else \
                disk_full_message(self.path, largest_checkpoint(self.path))
            kept = describe_weights_on_disk(self.folder)  # only the checkpoints really written
            full = DiskFull(f"{said} {kept[0].upper()}{kept[1:]}.")
            self.fail(full)
            raise full from exc
        except BaseException as exc:
            self.fail(exc)
            raise


def check_finite_loss(loss: float, *, epoch: int, batch: int, stage: str, lr: float,
                      kept: Path | None) -> None:
    """TrainingDiverged when ``loss`` is NaN or inf: the run stops before a step spoils the weights.

    Args:
        kept: the checkpoint still holding the last finite epoch, if one was written.
    """
    if math.isfinite(loss):
        return
    what = "Training" if stage == "train" else f"The {stage} stage"
    weights = (f"{kept.name} keeps the weights of the last finite epoch" if kept is not None and kept.exists()
               else "No epoch had finished, so no weights were saved")
    raise TrainingDiverged(f"{what} diverged at epoch {epoch}, batch {batch} (loss {loss}); lower the "
                           f"learning rate (it was {lr:g}) and train again. {weights}.")


class LossCurve:
    """The smoothed training loss every few optimizer steps -> ``TrainingRun.step_end``.

    ``every`` is chosen from the planned steps so a run draws about ``points`` points; the first
    step is always drawn, so a curve appears in the first seconds. The loss is an exponential
    moving average (debiased, as Adam's moments are), so early points are not pulled to zero.
    """

    def __init__(self, run: TrainingRun, stage: str, total_steps: int, points: int = 300,
                 beta: float = 0.9):
        self.run, self.stage, self.beta = run, stage, beta
        self.every = max(1, int(total_steps) // points)
        self.average, self.count = 0.0, 0

    @property
    def value(self) -> float:
        return self.average / (1.0 - self.beta ** self.count) if self.count else float("nan")

    def update(self, loss: float) -> float:
        """Fold in one batch's loss; returns the smoothed value."""
        self.count += 1
        self.average = self.beta * self.average + (1.0 - self.beta) * float(loss)
        return self.value

    def step(self, epoch: int, step: int, lr: float) -> None:
        """Optimizer step ``step`` (1-based, across the stage's epochs) is done: draw it when due."""
        if step == 1 or step % self.every == 0:
            self.run.step_end(epoch, step, self.value, float(lr), self.stage)

    def state(self) -> dict:
        return {"average": self.average, "count": self.count}

    def load_state(self, state: Mapping[str, Any] | None) -> None:
        if state:
            self.average, self.count = float(state["average"]), int(state["count"])


def stop_file_hook(path: Path, should_stop: StopHook = None) -> StopHook:
    """``should_stop`` that also says yes once ``path`` exists (one ``stat`` per poll)."""
    def should_stop_now() -> bool:
        return stop_requested(should_stop) or path.exists()

    return should_stop_now


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
