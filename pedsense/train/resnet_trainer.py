"""Train ResNet+LSTM on pedestrian crop sequences; the classifier loop the hybrid reuses.

Sequences come from ``pedsense preprocess resnet``:
``data/processed/resnet/sequences/{split}/<seq_id>/frame_XX.jpg`` + ``labels.csv``
(``sequence_id,label,video_id,track_id,start_frame,end_frame,split``).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pedsense.config import CLASS_NAMES, paths
from pedsense.device import resolve_device
from pedsense.errors import DataError, TrainingDiverged
from pedsense.io import link_or_copy
from pedsense.train.checkpoints import (load_weights, nonfinite_tensors, restore_rng, save_classifier,
                                        training_state)
from pedsense.train.common import (LossCurve, TrainingRun, check_batch_size, check_crop_size,
                                   check_finite_loss, check_param, manifest_summary, require_task)
from pedsense.train.events import EventHook, StopHook
from pedsense.train.params import NUM_WORKERS, RESNET_LSTM
from pedsense.train.resnet_lstm import ResNetLSTM
from pedsense.train.samples import check_missing, parse_label, read_split_rows
from pedsense.train.transforms import normalize_uint8, resize_crop

# Decoded crops are kept in memory up to this size: after the first pass, epochs cost only the
# model, which is what keeps 2-core training from being starved by JPEG decoding.
DEFAULT_CACHE_MB = 3072


def read_image(path: Path) -> np.ndarray:
    """One (H, W, 3) uint8 BGR image, or DataError naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"Cannot read image {path}. Rebuild the dataset (`pedsense preprocess`).")
    return image


class CachedImageDataset(Dataset):
    """Base for datasets of uint8 crops kept in memory once decoded.

    Subclasses fill ``self.samples`` (one entry per item) and ``self.labels`` and implement
    ``decode(index) -> (..., H, W, 3) uint8``.
    """

    samples: list
    labels: list[int]
    crop_size: tuple[int, int]
    item_frames = 1

    def _init_cache(self, cache: bool, cache_limit_mb: float) -> None:
        item_bytes = self.item_frames * self.crop_size[0] * self.crop_size[1] * 3
        self.cache_enabled = bool(cache) and item_bytes * len(self.samples) <= cache_limit_mb * 2**20
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def decode(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def pixels(self, index: int) -> np.ndarray:
        """Item ``index`` as uint8 BGR pixels, from the cache when it is there."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        array = self.decode(index)
        if self.cache_enabled:
            self._cache[index] = array
        return array

    @property
    def fully_cached(self) -> bool:
        return self.cache_enabled and len(self._cache) == len(self.samples)

    def preload(self, threads: int = 2) -> None:
        """Decode every item into the cache (OpenCV releases the GIL, so threads help)."""
        if not self.cache_enabled or self.fully_cached:
            return
        todo = [i for i in range(len(self.samples)) if i not in self._cache]
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for index, array in zip(todo, pool.map(self.decode, todo)):
                self._cache[index] = array

    def class_counts(self) -> list[int]:
        return [self.labels.count(c) for c in range(len(CLASS_NAMES))]


class PedestrianSequenceDataset(CachedImageDataset):
    """Pedestrian crop sequences of one split.

    Reads ``data/processed/resnet/sequences/{split}/`` and ``labels.csv``.
    ``__getitem__`` returns ``(sequence, label)``: sequence (T, 3, H, W) float32 (T = 16 and
    224x224 for the default build; ``crop_size=(w, h)`` resizes), normalised as
    :func:`pedsense.train.transforms.crops_to_tensor` does; label 0 = not-crossing, 1 = crossing.
    ``transform``, when given, is applied to that tensor.
    """

    def __init__(self, split: str = "train", transform: Callable | None = None, *,
                 home: str | os.PathLike | None = None, crop_size: Sequence[int] | int | None = None,
                 cache: bool = True, cache_limit_mb: float = DEFAULT_CACHE_MB):
        self.split = split
        self.transform = transform
        resnet = paths(home).resnet
        self.root = paths(home).sequences / split
        self.manifest_path = paths(home).sequences / "manifest.json"
        rebuild = "pedsense preprocess resnet"
        rows = read_split_rows(resnet / "labels.csv", split, "ResNet sequence dataset", rebuild)
        self.sequence_ids = [row["sequence_id"].strip() for row in rows]
        self.labels = [parse_label(row["label"], f"labels.csv sequence {row['sequence_id']}") for row in rows]
        self.samples = [self._frame_files(self.root / seq_id) for seq_id in self.sequence_ids]
        missing = [s for s, files in zip(self.sequence_ids, self.samples) if not files]
        check_missing(missing, len(rows), f"'{split}' sequence folders", rebuild)
        self.sequence_length = len(self.samples[0])
        first = read_image(self.samples[0][0])
        self.crop_size = check_crop_size(crop_size) or (first.shape[1], first.shape[0])
        self.item_frames = self.sequence_length
        self._init_cache(cache, cache_limit_mb)

    @staticmethod
    def _frame_files(folder: Path) -> list[Path]:
        return sorted(folder.glob("frame_*.jpg")) if folder.is_dir() else []

    def decode(self, index: int) -> np.ndarray:
        """(T, H, W, 3) uint8 BGR frames of sequence ``index``."""
        frames = [resize_crop(read_image(p), self.crop_size) for p in self.samples[index]]
        if len(frames) != self.sequence_length:
            raise DataError(f"Sequence {self.root / self.sequence_ids[index]} has {len(frames)} frames, "
                            f"expected {self.sequence_length}. Rebuild with `pedsense preprocess resnet`.")
        return np.stack(frames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sequence = normalize_uint8(torch.from_numpy(self.pixels(index)))
        if self.transform is not None:
            sequence = self.transform(sequence)
        return sequence, self.labels[index]


# -- the classifier loop (ResNet-LSTM and the hybrid's stage 2) --------------------------------
@dataclass(frozen=True)
class FitSettings:
    """How to fit one classifier stage."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    device: str
    num_workers: int
    stage: str = "train"
    sequence_length: int | None = None
    best_files: tuple[str, ...] = ("best.pt",)
    last_file: str = "last.pt"


def class_weights(counts: Sequence[int]) -> torch.Tensor:
    """Inverse-frequency weights ``N / (K * n_c)``; a class absent from training weighs 1."""
    total, k = sum(counts), len(counts)
    return torch.tensor([total / (k * c) if c else 1.0 for c in counts], dtype=torch.float32)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int,
                device: str) -> DataLoader:
    # A last batch of one crop breaks BatchNorm on 1x1 feature maps; drop it when it would occur.
    drop_last = shuffle and len(dataset) % batch_size == 1 and len(dataset) > batch_size
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      drop_last=drop_last, pin_memory=device.startswith("cuda"),
                      persistent_workers=num_workers > 0)


def auto_workers(dataset: CachedImageDataset, requested: int | None) -> int:
    """0 when everything is decoded in memory (workers would only copy); else up to 2."""
    if requested is not None:
        return check_param(NUM_WORKERS, requested)
    return 0 if dataset.fully_cached else min(2, max(1, (os.cpu_count() or 2) - 1))


def train_one_epoch(run: TrainingRun, model: nn.Module, loader: DataLoader, criterion: nn.Module,
                    optimizer: torch.optim.Optimizer, device: str, epoch: int,
                    stage: str, *, scaler: torch.amp.GradScaler | None = None,
                    curve: LossCurve | None = None, kept: Path | None = None) -> tuple[float, float, bool]:
    """One pass over ``loader``. Returns (mean loss, accuracy, stopped early).

    On CUDA the forward pass runs under float16 autocast with ``scaler`` scaling the loss; on
    CPU everything stays float32. Every batch is one optimizer step, numbered across epochs
    for ``curve``. A NaN or inf loss raises TrainingDiverged before it reaches the weights.
    """
    model.train()
    amp = scaler is not None and scaler.is_enabled()
    loss_sum, correct, seen = 0.0, 0, 0
    total = len(loader)
    lr = optimizer.param_groups[0]["lr"]
    for batch_index, (inputs, labels) in enumerate(loader, start=1):
        inputs = inputs.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda" if amp else "cpu", dtype=torch.float16, enabled=amp):
            logits = model(inputs)
            loss = criterion(logits.float(), labels)
        value = loss.item()
        check_finite_loss(value, epoch=epoch, batch=batch_index, stage=stage, lr=lr, kept=kept)
        if amp:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        loss_sum += value * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
        if curve is not None:
            curve.update(value)
            curve.step(epoch, (epoch - 1) * total + batch_index, lr)
        if run.batch_end(epoch, batch_index, total, stage):
            return loss_sum / max(seen, 1), correct / max(seen, 1), batch_index < total
    return loss_sum / max(seen, 1), correct / max(seen, 1), False


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, criterion: nn.Module, device: str) -> tuple[float, float]:
    """(mean loss, accuracy) over ``loader`` (float16 autocast on CUDA, as in training)."""
    model.eval()
    amp = device.startswith("cuda")
    loss_sum, correct, seen = 0.0, 0, 0
    for inputs, labels in loader:
        inputs, labels = inputs.to(device), labels.to(device)
        with torch.autocast(device_type="cuda" if amp else "cpu", dtype=torch.float16, enabled=amp):
            logits = model(inputs).float()
        loss_sum += criterion(logits, labels).item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    return loss_sum / max(seen, 1), correct / max(seen, 1)


def fit_classifier(run: TrainingRun, model: nn.Module, train_set: CachedImageDataset,
                   val_set: CachedImageDataset, settings: FitSettings, *,
                   resume_from: dict | None = None) -> dict:
    """Train ``model`` for ``settings.epochs``, saving last/best checkpoints each epoch.

    Each epoch appends its metrics row (and announces it) before its checkpoints are written,
    so a failed save loses no row. ``last.pt`` holds the last completed epoch with what a
    resume needs; a stop mid-epoch leaves it there (that epoch is trained again on resume),
    except in the first epoch, whose partial weights are kept so a stopped run has weights.

    Args:
        resume_from: the stage's ``last.pt`` checkpoint (``TrainingRun.checkpoint``) to continue
            from: weights, optimizer, scheduler, AMP scaler, best so far and the random-number
            generators, then training goes on at the next epoch. One without a ``training``
            state (stopped in its first epoch) starts the stage over.

    Returns the best epoch's metrics (``{"val_acc", "val_loss", "epoch"}``; empty if none).
    """
    device, stage = settings.device, settings.stage
    train_set.preload()
    val_set.preload()
    train_loader = make_loader(train_set, settings.batch_size, True, auto_workers(train_set, settings.num_workers), device)
    val_loader = make_loader(val_set, settings.batch_size, False, auto_workers(val_set, settings.num_workers), device)
    criterion = nn.CrossEntropyLoss(weight=class_weights(train_set.class_counts()).to(device))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    # float16 autocast + loss scaling only on CUDA; CPU trains in float32
    scaler = torch.amp.GradScaler("cuda", enabled=device.startswith("cuda"))
    curve = LossCurve(run, stage, settings.epochs * len(train_loader))
    save = _checkpoint_saver(run, model, train_set, settings)
    start_epoch, best, rng = _restore(resume_from, model, optimizer, scheduler, scaler, curve)
    if run.resuming:
        run.rewind(stage, start_epoch - 1)
    run.stage(stage, settings.epochs)
    if rng is not None:  # last: from here on the run draws the random numbers an uninterrupted one would
        restore_rng(rng)
    for epoch in range(start_epoch, settings.epochs + 1):
        started, lr = time.time(), optimizer.param_groups[0]["lr"]
        train_loss, train_acc, cut_short = train_one_epoch(
            run, model, train_loader, criterion, optimizer, device, epoch, stage,
            scaler=scaler, curve=curve, kept=run.path / settings.last_file)
        if cut_short:  # stopped mid-epoch: no row for it; a resume trains it again
            _stopped_mid_epoch(run, save, settings, epoch, first=epoch == start_epoch and rng is None,
                               best=best)
            break
        val_loss, val_acc = evaluate(model, val_loader, criterion, device)
        scheduler.step()
        row = {"epoch": epoch, **({"stage": stage} if stage != "train" else {}),
               "train_loss": train_loss, "val_loss": val_loss, "train_acc": train_acc,
               "val_acc": val_acc, "lr": lr, "seconds": round(time.time() - started, 3)}
        metrics = {"val_acc": val_acc, "val_loss": val_loss, "train_acc": train_acc, "epoch": epoch}
        run.epoch_end(epoch, settings.epochs, row, stage)  # the row first: a failed save loses none
        improved = not best or val_acc > best["val_acc"]
        best = metrics if improved else best
        save(settings.last_file, epoch, metrics, training_state(
            epoch=epoch, stage=stage, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
            best=best, loss_curve=curve.state()))
        if improved:
            save(settings.best_files[0], epoch, metrics)
            copy_best(run.path, *settings.best_files)
        if run.stop_now():
            break
    return best


def _restore(resume_from: dict | None, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
             scaler: torch.amp.GradScaler, curve: LossCurve) -> tuple[int, dict, dict | None]:
    """Put a stage back as ``last.pt`` left it. Returns (first epoch to train, best so far, RNG state).

    Without a checkpoint (or with one from a stop in the first epoch, which has no ``training``
    state) the stage starts at epoch 1 from the freshly built model.
    """
    state = (resume_from or {}).get("training")
    if not state:
        return 1, {}, None
    model.load_state_dict(resume_from["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler.is_enabled() and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    curve.load_state(state.get("loss_curve"))
    return int(state["epoch"]) + 1, dict(state.get("best") or {}), state["rng"]


def _stopped_mid_epoch(run: TrainingRun, save: Callable[..., Path], settings: FitSettings, epoch: int,
                       first: bool, best: dict) -> None:
    """``last.pt`` keeps the last whole epoch; in the stage's first epoch the partial weights are
    saved instead (nothing to resume from, but a stopped run still has weights to look at)."""
    if not first:
        run.log(f"{settings.stage} epoch {epoch} stopped before its last batch; "
                f"{settings.last_file} keeps epoch {epoch - 1}")
        return
    run.log(f"{settings.stage} epoch {epoch} stopped before its last batch; saving its partial weights")
    save(settings.last_file, epoch, {"partial_epoch": epoch})
    if not best:
        save(settings.best_files[0], epoch, {"partial_epoch": epoch})
        copy_best(run.path, *settings.best_files)


def _checkpoint_saver(run: TrainingRun, model: nn.Module, train_set: CachedImageDataset,
                      settings: FitSettings) -> Callable[..., Path]:
    """``save(file_name, epoch, metrics, training=None)`` writing a checkpoint into the run folder.

    Weights that are no longer finite end the run as diverged; the file already there is kept.
    """
    def save(file_name: str, epoch: int, metrics: dict, training: dict | None = None) -> Path:
        bad = nonfinite_tensors(model.state_dict())
        if bad:
            what = "Training" if settings.stage == "train" else f"The {settings.stage} stage"
            raise TrainingDiverged(
                f"{what} diverged at epoch {epoch} (its weights are not finite: {', '.join(bad[:3])}); "
                f"lower the learning rate (it was {settings.learning_rate:g}) and train again. "
                f"{file_name} keeps the last finite weights it had.")
        return save_classifier(run.path / file_name, model, class_names=CLASS_NAMES,
                               crop_size=train_set.crop_size, epoch=epoch, metrics=metrics,
                               sequence_length=settings.sequence_length, training=training)
    return save


def copy_best(run_dir: Path, source: str, *targets: str) -> None:
    """Make ``targets`` the same weights as ``source`` (hard link, or copy)."""
    for target in targets:
        if (run_dir / source).exists():
            link_or_copy(run_dir / source, run_dir / target)


# -- the seed function -------------------------------------------------------------------------
def train_resnet_lstm(name=None, epochs=30, batch_size=8, learning_rate=1e-4, device=None, *,
                      on_event: EventHook = None, should_stop: StopHook = None,
                      run_dir: str | os.PathLike | None = None, home: str | os.PathLike | None = None,
                      backbone: str = "resnet50", pretrained: bool = True, hidden_size: int = 256,
                      num_layers: int = 1, dropout: float = 0.3,
                      crop_size: int | Sequence[int] | None = None, weight_decay: float = 1e-4,
                      frozen_children: int = 6, num_workers: int | None = None,
                      seed: int = 42, task: str | None = None, resume: bool = False,
                      init_weights: str | os.PathLike | None = None) -> Path:
    """Train ResNet+LSTM on pedestrian crossing sequences.

    AdamW (``weight_decay``), CrossEntropyLoss with inverse-frequency class weights,
    CosineAnnealingLR, best model by validation accuracy. ``crop_size`` (int or (w, h))
    resizes the dataset's crops (default: as built, 224x224).

    Args:
        task: the question the sequences must answer: ``action`` (crossing now), ``intent``
            (the JAAD benchmark: will they cross) or empty to train on the dataset as built.
            A dataset built for the other task is refused. ``config.json`` records the
            dataset's task and intent protocol either way.
        resume: continue ``run_dir`` (stopped, interrupted or failed) from its ``last.pt`` at
            the next epoch; ``pedsense.train.resume.resume_run`` calls this with the run's own
            parameters after checking the run and its dataset.
        init_weights: a pedsense checkpoint (same architecture) the model starts from, with a
            fresh optimizer and schedule (``pedsense.train.resume.extend_run``).

    Returns:
        The run folder ``models/resnet-lstm/<name>_<YYYYmmdd_HHMMSS>/`` (or ``run_dir``).
    """
    params = RESNET_LSTM.check(RESNET_LSTM.bind(locals()))
    resolved_device = resolve_device(params["device"])
    train_set = PedestrianSequenceDataset("train", home=home, crop_size=params["crop_size"])
    built = require_task(params["task"], train_set.manifest_path, "ResNet sequence dataset",
                         "pedsense preprocess resnet")
    val_set = PedestrianSequenceDataset("val", home=home, crop_size=train_set.crop_size)
    batch_size = check_batch_size(params["batch_size"], len(train_set), "training sequences")
    run = TrainingRun.open("resnet-lstm", name, run_dir=run_dir, home=home,
                           on_event=on_event, should_stop=should_stop, resume=resume,
                           init_weights=init_weights,
                           datasets=(train_set.manifest_path, paths(home).resnet / "labels.csv"))
    resume_from = run.checkpoint("last.pt") if resume else None  # refused here, before anything is written
    with run.guarded():
        torch.manual_seed(params["seed"])
        model = ResNetLSTM(2, params["hidden_size"], params["num_layers"], params["dropout"],
                           backbone=params["backbone"], pretrained=params["pretrained"],
                           frozen_children=params["frozen_children"])
        if init_weights is not None:
            load_weights(model, init_weights)
        model.to(resolved_device)
        run.start({
            "parameters": RESNET_LSTM.record(params),
            "task": built["task"], "intent_options": built["intent_options"],
            "class_names": list(CLASS_NAMES), "device": resolved_device,
            "weights_source": model.weights_source, "model_args": model.model_args,
            "sequence_length": train_set.sequence_length, "crop_size": list(train_set.crop_size),
            "dataset": {"train": len(train_set), "val": len(val_set),
                        "train_class_counts": train_set.class_counts(),
                        "val_class_counts": val_set.class_counts(),
                        "manifest": manifest_summary(train_set.manifest_path)},
        })
        settings = FitSettings(params["epochs"], batch_size, params["learning_rate"],
                               params["weight_decay"], resolved_device, params["num_workers"],
                               sequence_length=train_set.sequence_length)
        best = fit_classifier(run, model, train_set, val_set, settings, resume_from=resume_from)
        return run.finish(best, best_checkpoint="best.pt")
