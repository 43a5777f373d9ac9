"""Fine-tune YOLO26 (Ultralytics) on the JAAD crossing-intent detection dataset.

Ultralytics runs the loop; pedsense wraps its callbacks: ``on_train_batch_end`` announces the
batch, draws the loss curve (``StepEnd`` every few optimizer steps), ends a run whose loss is
no longer finite (raising before Ultralytics saves anything) and turns a stop request into
``trainer.stop`` (checked between batches; Ultralytics then validates, saves
``weights/last.pt``/``best.pt`` and ends). The epoch's metrics row is appended when
Ultralytics records its own (``save_metrics``, before it saves the weights), so a failed save
loses no row. Ultralytics fires ``on_fit_epoch_end`` once more for its final validation of
``best.pt``; that call has no training epoch behind it and is not reported.

Resuming goes through Ultralytics' ``resume=True``; ``pedsense.train.yolo_checkpoints`` keeps a
resumable checkpoint through stops and failed saves.

Ultralytics' device selection calls ``torch.set_num_threads(cpu_count - 1)`` on CPU (1 thread on
a 2-core machine), which outlives the training: ``fit_yolo`` puts the caller's thread count
back when it returns, so a ResNet stage trained next (hybrid) is not left on one core.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from pedsense.config import CLASS_NAMES, paths
from pedsense.device import resolve_device, resolve_device_list, torch_threads_kept
from pedsense.io import filter_csv_rows, link_or_copy, write_text_atomic
from pedsense.train.common import (LossCurve, TrainingRun, check_batch_size, check_finite_loss,
                                   manifest_summary)
from pedsense.train.distributed import DistributedError, check_global_batch
from pedsense.train.events import EventHook, StopHook
from pedsense.train.params import YOLO
from pedsense.train.previews import DetectorPreviews
from pedsense.train.ultralytics_context import ultralytics_integrations_off, ultralytics_quiet
from pedsense.train.yolo_ddp import (DDP_FOLDER, ResultsFollower, best_detector_epoch, ultralytics_device,
                                     ultralytics_devices)
from pedsense.train.yolo_inputs import (YoloDataset, check_model_variant, fetch_base_model, list_images,
                                        load_yolo_dataset, spread_subset, subset_size)
from pedsense.train.yolo_checkpoints import keep_resume_point, keeping_previous_weights, resume_file, resume_point

log = logging.getLogger(__name__)


# -- the loop -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class YoloSettings:
    """What Ultralytics' ``model.train`` gets, besides data and model."""

    epochs: int
    batch_size: int
    imgsz: int
    device: str
    workers: int
    patience: int
    seed: int
    lr0: float
    optimizer: str
    cache: bool | str
    verbose: bool
    fraction: float = 1.0
    # Ultralytics' defaults. Gradients accumulate over nbs / batch_size batches per optimizer
    # step, and the first warmup_epochs ramp the learning rate: fine for 50 epochs, but the
    # 5-epoch quick preset would make a handful of optimizer steps, nearly all in warmup.
    warmup_epochs: float = 3.0
    nbs: int = 64
    devices: tuple[str, ...] = ()  # two or more GPUs: Ultralytics' own DDP (``yolo_ddp``)
    prediction_samples: int = 0    # validation frames scored each epoch (``pedsense.train.previews``)

    @property
    def ddp(self) -> bool:
        return len(self.devices) > 1


class UltralyticsBridge:
    """Ultralytics callbacks -> pedsense events, metrics rows, loss curve and stop requests."""

    def __init__(self, run: TrainingRun, stage: str, total_epochs: int):
        self.run, self.stage, self.total_epochs = run, stage, total_epochs
        self.batch = 0
        self.epoch_started = time.time()
        self.trained_epoch: int | None = None
        self.reported: set[int] = set()
        self.rows: list[dict] = []
        self.curve: LossCurve | None = None
        self.steps = 0
        self.cut_short = False  # stopped before an epoch's last batch
        self.previews: DetectorPreviews | None = None
        self.previews_device: str = "cpu"
        self.previewed: set[int] = set()

    def attach(self, model) -> None:
        model.add_callback("on_train_start", self.on_train_start)
        model.add_callback("on_train_epoch_start", self.on_train_epoch_start)
        model.add_callback("on_train_batch_end", self.on_train_batch_end)
        model.add_callback("on_train_epoch_end", self.on_train_epoch_end)
        model.add_callback("on_model_save", self.on_model_save)
        model.add_callback("on_fit_epoch_end", self.on_fit_epoch_end)

    def on_train_start(self, trainer) -> None:
        per_epoch = math.ceil(len(trainer.train_loader) / max(int(trainer.accumulate or 1), 1))
        self.curve = LossCurve(self.run, self.stage, per_epoch * trainer.epochs)
        self.steps = _optimizer_steps(trainer, 0)  # a resumed run continues its count
        save_metrics = getattr(trainer, "save_metrics", None)
        if callable(save_metrics):
            def save_metrics_then_report(metrics):
                save_metrics(metrics=metrics)
                self.report_epoch(trainer)  # before Ultralytics writes the epoch's weights
            trainer.save_metrics = save_metrics_then_report
        save_model = getattr(trainer, "save_model", None)
        if callable(save_model):
            trainer.save_model = lambda: keeping_previous_weights(save_model, Path(trainer.wdir))

    def on_train_epoch_start(self, trainer) -> None:
        self.batch = 0
        self.epoch_started = time.time()

    def on_train_batch_end(self, trainer) -> None:
        self.batch += 1
        epoch, total = trainer.epoch + 1, len(trainer.train_loader)
        loss = _loss_total(trainer.loss_items)
        if not math.isfinite(_loss_total(trainer.tloss)) and math.isfinite(loss):
            loss = _loss_total(trainer.tloss)
        lr = _weights_lr(trainer)
        last = Path(trainer.last)
        check_finite_loss(loss, epoch=epoch, batch=self.batch, stage=self.stage, lr=lr,
                          kept=last if last.exists() else resume_file(last))
        if self.curve is not None:
            self.curve.update(loss)
            steps = _optimizer_steps(trainer, self.steps + 1)
            if steps != self.steps:
                self.steps = steps
                self.curve.step(epoch, steps, lr)
        if self.run.batch_end(epoch, self.batch, total, self.stage) and not trainer.stop:
            self.cut_short = self.batch < total
            if self.cut_short:
                keep_resume_point(last)
            trainer.stop = True  # Ultralytics breaks after this batch, validates and saves

    def on_train_epoch_end(self, trainer) -> None:
        self.trained_epoch = trainer.epoch

    def on_model_save(self, trainer) -> None:
        # A stop after a whole epoch: Ultralytics is about to strip this checkpoint's optimizer.
        if self.run.stop_seen and not self.cut_short and trainer.epoch + 1 < trainer.epochs:
            shutil.copyfile(trainer.last, resume_file(Path(trainer.last)))
        if self.previews is not None and trainer.epoch == self.trained_epoch and trainer.epoch not in self.previewed:
            self.previewed.add(trainer.epoch)  # the weights of the epoch just saved predict the frames
            self.previews.score_weights(trainer.last, trainer.args.imgsz, self.previews_device, trainer.epoch + 1)

    def on_fit_epoch_end(self, trainer) -> None:
        self.report_epoch(trainer)

    def report_epoch(self, trainer) -> None:
        """Append the trained epoch's metrics row once (the final validation of best.pt is no epoch)."""
        if trainer.epoch != self.trained_epoch or trainer.epoch in self.reported:
            return
        self.reported.add(trainer.epoch)
        row = self.metrics_row(trainer)
        self.rows.append(row)
        self.run.epoch_end(row["epoch"], self.total_epochs, row, self.stage)

    def metrics_row(self, trainer) -> dict:
        train_losses = trainer.label_loss_items(trainer.tloss, prefix="train") if trainer.tloss else {}
        metrics = dict(trainer.metrics or {})
        val_losses = {k: float(v) for k, v in metrics.items() if k.startswith("val/")}
        row = {"epoch": trainer.epoch + 1, **({"stage": self.stage} if self.stage != "train" else {})}
        row.update({
            "train_loss": round(sum(train_losses.values()), 5) if train_losses else None,
            "val_loss": round(sum(val_losses.values()), 5) if val_losses else None,
            "precision": _metric(metrics, "precision"), "recall": _metric(metrics, "recall"),
            "mAP50": _metric(metrics, "mAP50"), "mAP50-95": _metric(metrics, "mAP50-95"),
        })
        row.update({k.replace("/", "_"): v for k, v in train_losses.items()})
        row.update({k.replace("/", "_"): round(v, 5) for k, v in val_losses.items()})
        lrs = getattr(trainer, "lr", None) or {}
        row["lr"] = float(next(iter(lrs.values()))) if lrs else None
        row["seconds"] = round(time.time() - self.epoch_started, 3)
        return row

    def best(self) -> dict:
        return best_detector_epoch(self.rows)


def _loss_total(items: Any) -> float:
    """The sum of Ultralytics' loss items (a dict of tensors, or one tensor in older versions)."""
    if items is None:
        return 0.0
    values = items.values() if isinstance(items, dict) else [items]
    return float(sum(float(v.sum()) if hasattr(v, "sum") else float(v) for v in values))


def _weights_lr(trainer) -> float:
    """The learning rate of the weights' parameter group (the bias group warms up from 0.1)."""
    groups = trainer.optimizer.param_groups
    chosen = next((g for g in groups if g.get("param_group") not in (None, "bias")), groups[-1])
    return float(chosen["lr"])


def _optimizer_steps(trainer, fallback: int) -> int:
    """Optimizer steps so far: Ultralytics updates its EMA once per step (and keeps the count on resume)."""
    ema = getattr(trainer, "ema", None)
    return int(ema.updates) if ema is not None and hasattr(ema, "updates") else fallback


def _metric(metrics: dict, name: str) -> float | None:
    value = metrics.get(f"metrics/{name}(B)")
    return None if value is None else round(float(value), 5)


def fit_yolo(run: TrainingRun, dataset: YoloDataset, model_source: str, settings: YoloSettings,
             save_dir: Path, stage: str = "train", *, resume: bool = False) -> tuple[UltralyticsBridge, Path]:
    """Train with Ultralytics into ``save_dir`` (its weights/, results.csv, args.yaml).

    Args:
        resume: continue the training already in ``save_dir`` with Ultralytics' ``resume=True``
            (from :func:`resume_point`); with nothing resumable there, train it again from
            ``model_source``. Rows of epochs trained again are dropped first.

    Returns the bridge (rows, best) and the resolved dataset YAML written into ``save_dir``.
    """
    from ultralytics import YOLO

    data = dict(dataset.data)
    if settings.fraction < 1.0:  # our evenly spread subset instead of Ultralytics' head slice
        subset = spread_subset(list_images(Path(data["path"]), data["train"]), settings.fraction)
        write_text_atomic(save_dir / "train_subset.txt", "\n".join(subset) + "\n")
        data["train"] = str(save_dir / "train_subset.txt")
    data_yaml = save_dir / "dataset.yaml"
    write_text_atomic(data_yaml, yaml.safe_dump(data, sort_keys=False))
    source, epochs_kept = resume_point(save_dir) if resume else (None, 0)
    if resume:
        run.rewind(stage, epochs_kept)
        # Ultralytics appends to its results.csv: drop the rows it is about to write again
        filter_csv_rows(save_dir / "results.csv", lambda row: _csv_epoch(row) <= epochs_kept)
    # several GPUs: Ultralytics' DDP children, where no callback of ours runs; follow results.csv
    bridge = ResultsFollower(run, stage, settings.epochs, save_dir / "results.csv", epochs_kept) \
        if settings.ddp else UltralyticsBridge(run, stage, settings.epochs)
    device = ultralytics_devices(settings.devices) if settings.ddp else ultralytics_device(settings.device)
    run.stage(stage, settings.epochs)
    with ultralytics_quiet(settings.verbose), warnings.catch_warnings(), torch_threads_kept(), \
            ultralytics_integrations_off():
        model = YOLO(str(source) if source else model_source)
        if not settings.ddp:
            bridge.attach(model)
            if settings.prediction_samples:
                bridge.previews = DetectorPreviews.for_images(
                    run, list_images(Path(data["path"]), dataset.data["val"]), settings.prediction_samples,
                    settings.seed, stage)
                bridge.previews_device = settings.device
        try:
            with bridge if settings.ddp else nullcontext():
                _ultralytics_train(model, source, data_yaml, device, settings, save_dir)
        except subprocess.CalledProcessError as exc:  # the DDP launcher: a stop ended it, or it failed
            if not run.stop_seen:
                raise DistributedError(f"Ultralytics' data-parallel training on GPUs {device} failed "
                                       f"(exit status {exc.returncode}); its output is in the run's log "
                                       "(worker.log) or the terminal.") from None
    if not run.stop_seen:  # finished: nothing left to resume from
        (save_dir / "weights" / "resume.pt").unlink(missing_ok=True)
    if getattr(bridge, "previews", None) is not None:
        run.record(prediction_samples=bridge.previews.cost())
    return bridge, data_yaml


def _ultralytics_train(model, source, data_yaml: Path, device: str, settings: YoloSettings,
                       save_dir: Path) -> None:
    if source:  # Ultralytics keeps the checkpoint's settings; these only say where and with what
        model.train(resume=True, data=str(data_yaml), device=device, workers=settings.workers,
                    cache=settings.cache, save_dir=str(save_dir), plots=False)
        return
    model.train(data=str(data_yaml), epochs=settings.epochs, batch=settings.batch_size,
                imgsz=settings.imgsz, device=device, workers=settings.workers, patience=settings.patience,
                seed=settings.seed, lr0=settings.lr0, optimizer=settings.optimizer, cache=settings.cache,
                warmup_epochs=settings.warmup_epochs, nbs=settings.nbs, project=str(save_dir.parent),
                name=save_dir.name, exist_ok=True, plots=False, verbose=settings.verbose,
                amp=settings.device.startswith("cuda"))


def _csv_epoch(row: dict) -> float:
    try:
        return float(str(row.get("epoch", "")).strip())
    except ValueError:
        return float("inf")


def check_yolo_settings(params: dict, n_train: int) -> YoloSettings:
    """Ultralytics' settings from checked parameters (``pedsense.train.params``) of ``train_yolo``
    or the hybrid's stage 1; the batch must fit the (``fraction`` of the) training images."""
    fraction = params["fraction"]
    workers = params["workers"]
    devices = resolve_device_list(params.get("devices")) or ()
    batch_size = check_batch_size(params["batch_size"], subset_size(n_train, fraction), "training images")
    if len(devices) > 1:
        ultralytics_devices(devices)  # GPUs only
        check_global_batch(batch_size, len(devices))
    return YoloSettings(
        epochs=params["epochs"], imgsz=params["imgsz"], fraction=fraction, batch_size=batch_size,
        device=devices[0] if devices else resolve_device(params["device"]),
        devices=devices if len(devices) > 1 else (),
        workers=min(2, os.cpu_count() or 1) if workers is None else workers,
        patience=params["patience"], seed=params["seed"], lr0=params["lr0"],
        optimizer=params["optimizer"], cache=params["cache"], verbose=params["verbose"],
        warmup_epochs=params["warmup_epochs"], nbs=params["nbs"])


def publish_weights(save_dir: Path, run_dir: Path, names: dict[str, str]) -> None:
    """Place Ultralytics' ``weights/<src>`` at the run root as ``<dst>`` (hard link or copy)."""
    for source, target in names.items():
        if (save_dir / "weights" / source).is_file():
            link_or_copy(save_dir / "weights" / source, run_dir / target)


# -- the seed function --------------------------------------------------------------------------
def train_yolo(name=None, epochs=50, batch_size=16, imgsz=640, model_variant="yolo26n", device=None, *,
               on_event: EventHook = None, should_stop: StopHook = None,
               run_dir: str | os.PathLike | None = None, home: str | os.PathLike | None = None,
               workers: int | None = None, patience: int = 100, seed: int = 0, lr0: float = 0.01,
               optimizer: str = "auto", cache: bool | str = False, fraction: float = 1.0,
               warmup_epochs: float = 3.0, nbs: int = 64, verbose: bool = False,
               resume: bool = False, devices: str | list[str] | int | None = None,
               prediction_samples: int = 8) -> Path:
    """Fine-tune YOLO26 on the JAAD crossing intent dataset (``data/processed/yolo/data.yaml``).

    The base model is downloaded to ``models/base/{model_variant}.pt`` on first run; offline,
    it trains from ``{model_variant}.yaml`` (recorded as the weights source in config.json).
    ``model_variant`` may also be a path to a .pt or .yaml file. ``fraction`` trains on that
    share of the training images, evenly spread (consecutive frames are redundant; the quick
    preset uses it). ``warmup_epochs`` and ``nbs`` (nominal batch size: gradients accumulate over
    ``nbs / batch_size`` batches) are Ultralytics' own, with its defaults; a short run from
    scratch wants little warmup and ``nbs`` equal to ``batch_size`` (see the quick preset).
    ``resume=True`` continues ``run_dir`` (stopped, interrupted or failed) with Ultralytics'
    own resume (``pedsense.train.resume.resume_run`` checks the run and calls this).
    ``devices`` naming several GPUs (``"cuda:0,cuda:1"``, a count) trains with Ultralytics'
    own DDP (``batch_size`` is the global batch) in ``<run>/ultralytics/``, its epochs streamed
    from its ``results.csv`` (``pedsense.train.yolo_ddp``).

    Returns:
        The run folder ``models/yolo/<name>_<YYYYmmdd_HHMMSS>/`` (or ``run_dir``), holding
        Ultralytics' ``weights/``, ``results.csv`` and ``args.yaml`` plus ``best.pt``/``last.pt``.
    """
    params = YOLO.check(YOLO.bind(locals()))
    dataset = load_yolo_dataset(paths(home).yolo / "data.yaml", "pedsense preprocess yolo")
    settings = replace(check_yolo_settings(params, dataset.counts["train"]),
                       prediction_samples=params["prediction_samples"])
    kind, variant = check_model_variant(params["model_variant"])
    run = TrainingRun.open("yolo", name, run_dir=run_dir, home=home, on_event=on_event,
                           should_stop=should_stop, resume=resume,
                           datasets=(dataset.yaml_path.parent / "manifest.json", dataset.yaml_path))
    save_dir = run.path / DDP_FOLDER if settings.ddp else run.path  # Ultralytics' DDP empties its folder
    if resume:
        resume_point(save_dir)  # an unreadable checkpoint is refused here, before anything is written
    with run.guarded():
        source, weights_source = (str(variant), f"file ({variant})") if kind == "file" \
            else fetch_base_model(str(variant), home)
        run.start({
            "parameters": YOLO.record(params),
            "class_names": dataset.names or list(CLASS_NAMES), "device": settings.device,
            "weights_source": weights_source, "base_model": source,
            "dataset": {"data_yaml": str(dataset.yaml_path), **dataset.counts,
                        "manifest": manifest_summary(dataset.yaml_path.parent / "manifest.json")},
        })
        if settings.ddp:
            save_dir.mkdir(exist_ok=True)
        try:
            bridge, _ = fit_yolo(run, dataset, source, settings, save_dir, resume=resume)
        finally:  # a stopped or failed run still shows its last finite weights at the root
            publish_weights(save_dir, run.path, {"best.pt": "best.pt", "last.pt": "last.pt"})
            if settings.ddp and (save_dir / "results.csv").is_file():
                link_or_copy(save_dir / "results.csv", run.path / "results.csv")
        return run.finish(bridge.best(), best_checkpoint="best.pt")
