"""The classifier loop the ResNet-LSTM and the hybrid's stage 2 share: epochs, checkpoints, resume.

``fit_classifier`` reads top to bottom: restore (when resuming), the frozen-feature cache (when
on: ``pedsense.train.feature_cache``), then for each epoch ``train_one_epoch``, ``evaluate``,
the metrics row, the checkpoints. Under data-parallel training (``pedsense.train.distributed``)
the same loop runs in every process, the model in DDP, and only rank 0 writes.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pedsense.config import CLASS_NAMES
from pedsense.errors import TrainingDiverged
from pedsense.io import link_or_copy
from pedsense.train.checkpoints import nonfinite_tensors, restore_rng, save_classifier, training_state
from pedsense.train.common import LossCurve, TrainingRun, check_finite_loss, check_param
from pedsense.train.distributed import SINGLE, Distributed, ShardedBatchSampler
from pedsense.train.feature_cache import (FeatureDataset, FromFrozen, cache_dtype, cache_off_record,
                                          load_or_build, weights_digest)
from pedsense.train.params import NUM_WORKERS
from pedsense.train.previews import EpochPreviews


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
    feature_cache: str = "off"      # the parameter: auto | fp16 | fp32 | off
    home: str | os.PathLike | None = None
    seed: int = 0                   # of the data-parallel sampler's per-epoch shuffle
    label_smoothing: float = 0.0
    prediction_samples: int = 0     # validation samples scored each epoch (pedsense.train.previews)


def class_weights(counts: Sequence[int]) -> torch.Tensor:
    """Inverse-frequency weights ``N / (K * n_c)``; a class absent from training weighs 1."""
    total, k = sum(counts), len(counts)
    return torch.tensor([total / (k * c) if c else 1.0 for c in counts], dtype=torch.float32)


def _whole_batch(batch):
    """A FeatureDataset serves whole batches (``__getitems__``): nothing left to collate."""
    return batch


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int,
                device: str, *, ctx: Distributed = SINGLE, seed: int = 0) -> DataLoader:
    """The loader of one split; under DDP each rank reads its share of every global batch."""
    extra = {"collate_fn": _whole_batch} if isinstance(dataset, FeatureDataset) else {}
    pin = device.startswith("cuda") and not isinstance(dataset, FeatureDataset)
    if ctx.active:
        sampler = ShardedBatchSampler(len(dataset), batch_size, rank=ctx.rank, world_size=ctx.world_size,
                                      shuffle=shuffle, seed=seed, min_per_rank=_min_per_rank(dataset))
        return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, pin_memory=pin,
                          persistent_workers=num_workers > 0, **extra)
    # A last batch of one crop breaks BatchNorm on 1x1 feature maps; drop it when it would occur.
    drop_last = shuffle and len(dataset) % batch_size == 1 and len(dataset) > batch_size
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      drop_last=drop_last, pin_memory=pin, persistent_workers=num_workers > 0, **extra)


def batches_per_epoch(dataset: Dataset, batch_size: int, ctx: Distributed = SINGLE) -> int:
    """Optimizer steps per epoch of :func:`make_loader`'s training loader."""
    n = len(dataset)
    if ctx.active:
        return len(ShardedBatchSampler(n, batch_size, rank=ctx.rank, world_size=ctx.world_size, shuffle=True,
                                       min_per_rank=_min_per_rank(dataset)))
    return n // batch_size if n % batch_size == 1 and n > batch_size else math.ceil(n / batch_size)


def _min_per_rank(dataset: Dataset) -> int:
    """Samples each rank needs in a training batch: 2 single crops (BatchNorm), 1 sequence."""
    return 1 if getattr(dataset, "sequence_length", None) or getattr(dataset, "sequences", False) else 2


def auto_workers(dataset: Dataset, requested: int | None) -> int:
    """0 when everything is decoded in memory (workers would only copy); else up to 2."""
    if requested is not None:
        return check_param(NUM_WORKERS, requested)
    return 0 if dataset.fully_cached else min(2, max(1, (os.cpu_count() or 2) - 1))


def to_device(inputs, device: str):
    """A batch's inputs on ``device``: a tensor, or (crops, ``{group: tensor}``) for a fused model."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device, non_blocking=True)
    if isinstance(inputs, dict):
        return {k: to_device(v, device) for k, v in inputs.items()}
    return [to_device(v, device) for v in inputs]


def run_model(model: nn.Module, inputs) -> torch.Tensor:
    """``model(inputs)``, or ``model(crops, context)`` when the batch carries context features."""
    return model(*inputs) if isinstance(inputs, (list, tuple)) else model(inputs)


def train_one_epoch(run: TrainingRun, model: nn.Module, loader: DataLoader, criterion: nn.Module,
                    optimizer: torch.optim.Optimizer, device: str, epoch: int,
                    stage: str, *, scaler: torch.amp.GradScaler | None = None,
                    curve: LossCurve | None = None, kept: Path | None = None,
                    ctx: Distributed = SINGLE) -> tuple[float, float, bool]:
    """One pass over ``loader``. Returns (mean loss, accuracy, stopped early).

    On CUDA the forward pass runs under float16 autocast with ``scaler`` scaling the loss; on
    CPU everything stays float32. Every batch is one optimizer step, numbered across epochs
    for ``curve``. A NaN or inf loss raises TrainingDiverged before it reaches the weights.
    Under DDP the global batch's loss is checked (every rank raises, or none) and drawn, a stop
    is agreed by every rank after the same batch, and the epoch's sums cover every rank.
    """
    model.train()
    if hasattr(loader.batch_sampler, "set_epoch"):
        loader.batch_sampler.set_epoch(epoch)
    amp = scaler is not None and scaler.is_enabled()
    loss_sum, correct, seen, stopped = 0.0, 0, 0, False
    total = len(loader)
    lr = optimizer.param_groups[0]["lr"]
    for batch_index, (inputs, labels) in enumerate(loader, start=1):
        inputs = to_device(inputs, device)
        labels = labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda" if amp else "cpu", dtype=torch.float16, enabled=amp):
            logits = run_model(model, inputs)
            loss = criterion(logits.float(), labels)
        local = loss.item()
        value = local
        if ctx.active:  # the global batch's loss, the same number on every rank
            summed, count = ctx.sum([local * len(labels), len(labels)])
            value = summed / max(count, 1.0)
        check_finite_loss(value, epoch=epoch, batch=batch_index, stage=stage, lr=lr, kept=kept)
        if amp:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        loss_sum += local * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
        if curve is not None:
            curve.update(value)
            curve.step(epoch, (epoch - 1) * total + batch_index, lr)
        if ctx.agree_stop(run, run.batch_end(epoch, batch_index, total, stage)):
            stopped = batch_index < total
            break
    loss_sum, correct, seen = ctx.sum([loss_sum, correct, seen])
    return loss_sum / max(seen, 1), correct / max(seen, 1), stopped


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, criterion: nn.Module, device: str,
             ctx: Distributed = SINGLE, keep: dict[int, float] | None = None) -> tuple[float, float]:
    """(mean loss, accuracy) over ``loader`` (float16 autocast on CUDA, as in training); under
    DDP over every rank's share, so the numbers are one process's.

    ``keep``: ``{sample index: ...}`` of an unshuffled one-process loader; each of those samples'
    P(crossing) is written into it on the way (the prediction samples, at no extra forward pass).
    """
    model.eval()
    amp = device.startswith("cuda")
    loss_sum, correct, seen = 0.0, 0, 0
    for inputs, labels in loader:
        inputs, labels = to_device(inputs, device), labels.to(device)
        with torch.autocast(device_type="cuda" if amp else "cpu", dtype=torch.float16, enabled=amp):
            logits = run_model(model, inputs).float()
        loss_sum += criterion(logits, labels).item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        if keep:
            wanted = [i for i in keep if seen <= i < seen + len(labels)]
            if wanted:
                p = torch.softmax(logits[[i - seen for i in wanted]], dim=1)[:, 1].tolist()
                keep.update(zip(wanted, p))
        seen += len(labels)
    loss_sum, correct, seen = ctx.sum([loss_sum, correct, seen])
    return loss_sum / max(seen, 1), correct / max(seen, 1)


def fit_classifier(run: TrainingRun, model: nn.Module, train_set: Dataset,
                   val_set: Dataset, settings: FitSettings, *,
                   resume_from: dict | None = None, ctx: Distributed = SINGLE) -> dict:
    """Train ``model`` for ``settings.epochs``, saving last/best checkpoints each epoch.

    Each epoch appends its metrics row (and announces it) before its checkpoints are written,
    so a failed save loses no row. ``last.pt`` holds the last completed epoch with what a
    resume needs; a stop mid-epoch leaves it there (that epoch is trained again on resume),
    except in the first epoch, whose partial weights are kept so a stopped run has weights.

    With ``settings.feature_cache`` on (see ``pedsense.train.feature_cache``), the frozen part's
    output of every crop is loaded or extracted once, before the first epoch, and the epochs
    train only the layers after the cut; the checkpoints still hold the whole model. Under
    ``ctx`` (several processes) the model trains in DDP and only rank 0 writes.

    Args:
        resume_from: the stage's ``last.pt`` checkpoint (``TrainingRun.checkpoint``) to continue
            from: weights, optimizer, scheduler, AMP scaler, best so far and the random-number
            generators, then training goes on at the next epoch. One without a ``training``
            state (stopped in its first epoch) starts the stage over.

    Returns the best epoch's metrics (``{"val_acc", "val_loss", "epoch"}``; empty if none).
    """
    device, stage = settings.device, settings.stage
    dtype = cache_dtype(settings.feature_cache, model.features)
    if dtype is None:
        train_set.preload()
        val_set.preload()
    criterion = nn.CrossEntropyLoss(weight=class_weights(train_set.class_counts()).to(device),
                                    label_smoothing=settings.label_smoothing)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    # float16 autocast + loss scaling only on CUDA; CPU trains in float32
    scaler = torch.amp.GradScaler("cuda", enabled=device.startswith("cuda"))
    curve = LossCurve(run, stage, settings.epochs * batches_per_epoch(train_set, settings.batch_size, ctx))
    save = _checkpoint_saver(run, model, train_set, settings, ctx)
    start_epoch, best, rng = _restore(resume_from, model, optimizer, scheduler, scaler, curve)
    if run.resuming:
        run.rewind(stage, start_epoch - 1)
    run.stage(stage, settings.epochs)
    runner: nn.Module = model
    previews = EpochPreviews.for_dataset(run, val_set, settings.prediction_samples, settings.seed, stage) \
        if ctx.is_main else None  # picked from the crops, before a feature cache replaces them
    if dtype is not None:  # after the restore: the features are those of the weights trained on
        cached = cached_splits(run, model, (train_set, val_set), dtype, settings, ctx, start_epoch)
        if cached is None:  # stopped while extracting: like a stop in the epoch's first batches
            _stopped_mid_epoch(run, save, settings, start_epoch, first=rng is None, best=best, ctx=ctx)
            return best
        runner, (train_set, val_set) = FromFrozen(model), cached
    else:
        run.record(feature_cache=cache_off_record(settings.feature_cache, model.features))
    trained = ctx.wrap(runner)
    train_loader = make_loader(train_set, settings.batch_size, True, auto_workers(train_set, settings.num_workers),
                               device, ctx=ctx, seed=settings.seed)
    val_loader = make_loader(val_set, settings.batch_size, False, auto_workers(val_set, settings.num_workers),
                             device, ctx=ctx)
    if rng is not None:  # last: from here on the run draws the random numbers an uninterrupted one would
        restore_rng(rng)
    for epoch in range(start_epoch, settings.epochs + 1):
        started, lr = time.time(), optimizer.param_groups[0]["lr"]
        train_loss, train_acc, cut_short = train_one_epoch(
            run, trained, train_loader, criterion, optimizer, device, epoch, stage,
            scaler=scaler, curve=curve, kept=run.path / settings.last_file, ctx=ctx)
        if cut_short:  # stopped mid-epoch: no row for it; a resume trains it again
            _stopped_mid_epoch(run, save, settings, epoch, first=epoch == start_epoch and rng is None,
                               best=best, ctx=ctx)
            break
        scored = previews.wanted() if previews is not None and not ctx.active else None
        val_loss, val_acc = evaluate(runner, val_loader, criterion, device, ctx, keep=scored)
        scheduler.step()
        ctx.broadcast_buffers(model)  # every rank ends the epoch with rank 0's weights, buffers too
        row = {"epoch": epoch, **({"stage": stage} if stage != "train" else {}),
               "train_loss": train_loss, "val_loss": val_loss, "train_acc": train_acc,
               "val_acc": val_acc, "lr": lr, "seconds": round(time.time() - started, 3)}
        metrics = {"val_acc": val_acc, "val_loss": val_loss, "train_acc": train_acc, "epoch": epoch}
        run.epoch_end(epoch, settings.epochs, row, stage)  # the row first: a failed save loses none
        if previews is not None:  # scored by the validation pass (else the same input path again)
            previews.score_classifier(runner, val_set, device, epoch, known=scored)
        improved = not best or val_acc > best["val_acc"]
        best = metrics if improved else best
        save(settings.last_file, epoch, metrics, training_state(
            epoch=epoch, stage=stage, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
            best=best, loss_curve=curve.state()))
        if improved:
            save(settings.best_files[0], epoch, metrics)
            copy_best(run.path, *settings.best_files) if ctx.is_main else None
        if ctx.agree_stop(run, run.stop_now()):
            break
    if previews is not None:
        run.record(prediction_samples=previews.cost())
    if ctx.active:
        run.record(distributed={**ctx.record(), "samples_per_epoch": _samples_per_epoch(train_loader, ctx),
                                "weights_digests": ctx.gather(weights_digest(model))})
    return best


def _samples_per_epoch(loader: DataLoader, ctx: Distributed) -> int:
    return int(ctx.sum([sum(len(b) for b in loader.batch_sampler)])[0])


def cached_splits(run: TrainingRun, model: nn.Module, datasets: tuple, dtype: str, settings: FitSettings,
                  ctx: Distributed, epoch: int) -> tuple | None:
    """The splits as :class:`FeatureDataset` s (loaded, or extracted with progress as the epoch's
    first batches), or None when a stop came during the extraction. Under DDP each machine's
    local rank 0 extracts; the other ranks load what it stored."""
    found, records = [], {}
    for dataset in datasets:
        def progress(done: int, total: int) -> bool:
            return run.batch_end(epoch, done, total, settings.stage)

        cached = None
        if ctx.local_rank == 0:
            cached = load_or_build(dataset, model.features, dtype, device=settings.device,
                                   home=settings.home, progress=progress)
        if ctx.agree_stop(run, ctx.local_rank == 0 and cached is None):
            return None
        ctx.barrier()
        if cached is None:
            cached = load_or_build(dataset, model.features, dtype, device=settings.device,
                                   home=settings.home, build=False)
        records[dataset.split] = cached.record
        run.log(f"feature cache {dataset.split}: {cached.record['status']} ({cached.record['path']}, "
                f"{cached.record['seconds']:.1f}s)")
        features = FeatureDataset(dataset, cached)
        if settings.device.startswith("cuda") and cached.features.numel() * 2 <= 2 * 2**30:
            features.to(settings.device)
        found.append(features)
    run.record(feature_cache={"dtype": dtype, "cut": model.features.cut,
                              "frozen_children": model.features.frozen_children, **records})
    return tuple(found)


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
                       first: bool, best: dict, ctx: Distributed = SINGLE) -> None:
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
        if ctx.is_main:
            copy_best(run.path, *settings.best_files)


def _checkpoint_saver(run: TrainingRun, model: nn.Module, train_set: Dataset,
                      settings: FitSettings, ctx: Distributed = SINGLE) -> Callable[..., Path]:
    """``save(file_name, epoch, metrics, training=None)`` writing a checkpoint into the run folder
    (rank 0 only: every rank holds the same weights).

    Weights that are no longer finite end the run as diverged (on every rank); the file already
    there is kept.
    """
    def save(file_name: str, epoch: int, metrics: dict, training: dict | None = None) -> Path:
        bad = nonfinite_tensors(model.state_dict())
        if bad:
            what = "Training" if settings.stage == "train" else f"The {settings.stage} stage"
            raise TrainingDiverged(
                f"{what} diverged at epoch {epoch} (its weights are not finite: {', '.join(bad[:3])}); "
                f"lower the learning rate (it was {settings.learning_rate:g}) and train again. "
                f"{file_name} keeps the last finite weights it had.")
        if not ctx.is_main:
            return run.path / file_name
        return save_classifier(run.path / file_name, model, class_names=CLASS_NAMES,
                               crop_size=train_set.crop_size, epoch=epoch, metrics=metrics,
                               sequence_length=settings.sequence_length, training=training)
    return save


def copy_best(run_dir: Path, source: str, *targets: str) -> None:
    """Make ``targets`` the same weights as ``source`` (hard link, or copy)."""
    for target in targets:
        if (run_dir / source).exists():
            link_or_copy(run_dir / source, run_dir / target)
