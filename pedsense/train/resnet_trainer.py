"""Train ResNet+LSTM on pedestrian crop sequences; the classifier loop the hybrid reuses.

Sequences come from ``pedsense preprocess resnet``:
``data/processed/resnet/sequences/{split}/<seq_id>/frame_XX.jpg`` + ``labels.csv``
(``sequence_id,label,video_id,track_id,start_frame,end_frame,split``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pedsense.config import CLASS_NAMES, paths
from pedsense.data.sequence_context import load_sequence_context
from pedsense.device import resolve_device, resolve_device_list
from pedsense.errors import DataError
from pedsense.train.checkpoints import load_weights
from pedsense.train.common import (check_batch_size, check_crop_size,
                                   manifest_summary, require_task)
from pedsense.train import distributed
from pedsense.train.events import EventHook, StopHook
# The classifier loop lives in pedsense.train.fit; its names stay importable from here.
from pedsense.train.fit import (FitSettings, auto_workers, class_weights, copy_best, evaluate,  # noqa: F401
                                fit_classifier, make_loader, train_one_epoch)
from pedsense.train.params import RESNET_LSTM
from pedsense.train.resnet_lstm import ResNetLSTM, context_encoder_args
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
    split: str
    root: Path         # the split's folder (crop files are named relative to it)
    labels_path: Path  # labels.csv / crops.csv
    manifest_path: Path

    def _init_cache(self, cache: bool, cache_limit_mb: float) -> None:
        item_bytes = self.item_frames * self.crop_size[0] * self.crop_size[1] * 3
        self.cache_enabled = bool(cache) and item_bytes * len(self.samples) <= cache_limit_mb * 2**20
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def decode(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def item_files(self) -> list[list[Path]]:
        """The crop files of every item, in order (one per item for single crops)."""
        return [list(s) if isinstance(s, (list, tuple)) else [s] for s in self.samples]

    def decode_file(self, path: Path) -> np.ndarray:
        """One crop file as (H, W, 3) uint8 BGR at ``crop_size`` (what the model is fed)."""
        return resize_crop(read_image(path), self.crop_size)

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

    def sample_id(self, index: int) -> str:
        """The item's name on disk: a sequence's folder, a crop's file stem."""
        sample = self.samples[index]
        return sample[0].parent.name if isinstance(sample, (list, tuple)) else Path(sample).stem

    def preview_picture(self, index: int, frames: int = 4) -> np.ndarray:
        """What the run view shows of item ``index`` (``pedsense.train.previews``): the crop, or
        ``frames`` evenly spaced frames of a sequence side by side; (H, W, 3) uint8 BGR."""
        pixels = self.pixels(index)
        if pixels.ndim == 3:
            return pixels
        picks = np.linspace(0, len(pixels) - 1, min(frames, len(pixels))).round().astype(int)
        return np.concatenate([pixels[i] for i in picks], axis=1)


class PedestrianSequenceDataset(CachedImageDataset):
    """Pedestrian crop sequences of one split.

    Reads ``data/processed/resnet/sequences/{split}/`` and ``labels.csv``.
    ``__getitem__`` returns ``(sequence, label)``: sequence (T, 3, H, W) float32 (T = 16 and
    224x224 for the default build; ``crop_size=(w, h)`` resizes), normalised as
    :func:`pedsense.train.transforms.crops_to_tensor` does; label 0 = not-crossing, 1 = crossing.
    ``transform``, when given, is applied to that tensor.

    ``context_features`` (comma-separated groups, e.g. ``box,vehicle,traffic``) adds each
    window's context features from the build (``pedsense.data.sequence_context``): items are
    then ``((sequence, {group: (T-1, D) tensor}), label)`` and ``context`` holds the arrays.
    """

    def __init__(self, split: str = "train", transform: Callable | None = None, *,
                 home: str | os.PathLike | None = None, crop_size: Sequence[int] | int | None = None,
                 cache: bool = True, cache_limit_mb: float = DEFAULT_CACHE_MB,
                 context_features: str | Sequence[str] | None = None):
        self.split = split
        self.transform = transform
        resnet = paths(home).resnet
        self.root = paths(home).sequences / split
        self.manifest_path = paths(home).sequences / "manifest.json"
        self.labels_path = resnet / "labels.csv"
        rebuild = "pedsense preprocess resnet"
        rows = read_split_rows(self.labels_path, split, "ResNet sequence dataset", rebuild)
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
        self.context: dict[str, np.ndarray] | None = None
        if context_features:
            self.context, _ = load_sequence_context(home, split, context_features, self.sequence_ids)

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
        if self.context is not None:
            return (sequence, {g: torch.from_numpy(a[index]) for g, a in self.context.items()}), self.labels[index]
        return sequence, self.labels[index]


# -- the seed function -------------------------------------------------------------------------
def train_resnet_lstm(name=None, epochs=30, batch_size=8, learning_rate=1e-4, device=None, *,
                      on_event: EventHook = None, should_stop: StopHook = None,
                      run_dir: str | os.PathLike | None = None, home: str | os.PathLike | None = None,
                      backbone: str = "resnet50", pretrained: bool = True, hidden_size: int = 256,
                      num_layers: int = 1, dropout: float = 0.3,
                      crop_size: int | Sequence[int] | None = None, weight_decay: float = 1e-4,
                      frozen_children: int = 6, num_workers: int | None = None,
                      seed: int = 42, task: str | None = None, resume: bool = False,
                      init_weights: str | os.PathLike | None = None, feature_cache: str = "auto",
                      devices: str | Sequence[str] | int | None = None,
                      label_smoothing: float = 0.0, prediction_samples: int = 8,
                      context_features: str | None = None) -> Path:
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
        feature_cache: ``auto`` (the default: on, float16, when the whole backbone is frozen),
            ``fp16``/``fp32`` (on at any cut) or ``off``; see ``pedsense.train.feature_cache``.
        context_features: fuse each window's context features (``box,vehicle,traffic,behaviour``,
            some of them, from the sequence build): a context encoder's output joins the LSTM's
            last state before the classifier, trained together (late fusion). None: crops alone.
            Refused on a build without them (rebuild message) and, on a sample type ``all``
            build, for ``behaviour`` (presence leak).
        devices: several devices (``"cpu,cpu"``, ``"cuda:0,cuda:1"``, a GPU count) train
            data-parallel, one process each (``pedsense.train.distributed``); ``batch_size`` is
            then the global batch.

    Returns:
        The run folder ``models/resnet-lstm/<name>_<YYYYmmdd_HHMMSS>/`` (or ``run_dir``).
    """
    params = RESNET_LSTM.check(RESNET_LSTM.bind(locals()))
    devices = resolve_device_list(params["devices"])
    ctx = distributed.current(devices, resolve_device(params["device"]) if not devices else "cpu")
    fused = params["context_features"]
    train_set = PedestrianSequenceDataset("train", home=home, crop_size=params["crop_size"], context_features=fused)
    built = require_task(params["task"], train_set.manifest_path, "ResNet sequence dataset",
                         "pedsense preprocess resnet")
    val_set = PedestrianSequenceDataset("val", home=home, crop_size=train_set.crop_size, context_features=fused)
    batch_size = check_batch_size(params["batch_size"], len(train_set), "training sequences")
    if devices and len(devices) > 1:
        distributed.check_global_batch(batch_size, len(devices))
    if distributed.needs_spawn(devices):  # one process per device, each back in this function
        from pedsense.train.spawn import run_spawned

        return run_spawned("pedsense.train.resnet_trainer:train_resnet_lstm", "resnet-lstm",
                           {**params, "resume": resume, "init_weights": init_weights}, devices,
                           name=name, run_dir=run_dir, home=home, on_event=on_event, should_stop=should_stop)
    ctx.join()
    run = distributed.open_run(ctx, "resnet-lstm", name, run_dir=run_dir, home=home,
                               on_event=on_event, should_stop=should_stop, resume=resume,
                               init_weights=init_weights, datasets=(train_set.manifest_path, train_set.labels_path))
    resume_from = run.checkpoint("last.pt") if resume else None  # refused here, before anything is written
    try:
        with run.guarded():
            torch.manual_seed(params["seed"])
            model = ResNetLSTM(2, params["hidden_size"], params["num_layers"], params["dropout"],
                               backbone=params["backbone"], pretrained=params["pretrained"],
                               frozen_children=params["frozen_children"],
                               context=context_encoder_args(train_set.context, params["dropout"])
                               if train_set.context else None)
            if model.context is not None:  # standardised by the training windows, kept in the weights
                model.context.fit_normalisation(train_set.context)
            if init_weights is not None:
                load_weights(model, init_weights)
            model.to(ctx.device)
            run.start({
                "parameters": RESNET_LSTM.record(params),
                "task": built["task"], "intent_options": built["intent_options"],
                "class_names": list(CLASS_NAMES), "device": ctx.device,
                **({"distributed": ctx.record()} if ctx.active else {}),
                "weights_source": model.weights_source, "model_args": model.model_args,
                "sequence_length": train_set.sequence_length, "crop_size": list(train_set.crop_size),
                "context_features": list(model.context_groups),
                "dataset": {"train": len(train_set), "val": len(val_set),
                            "train_class_counts": train_set.class_counts(),
                            "val_class_counts": val_set.class_counts(),
                            "manifest": manifest_summary(train_set.manifest_path)},
            })
            settings = FitSettings(params["epochs"], batch_size, params["learning_rate"],
                                   params["weight_decay"], ctx.device, params["num_workers"],
                                   sequence_length=train_set.sequence_length,
                                   feature_cache=params["feature_cache"], home=home, seed=params["seed"],
                                   label_smoothing=params["label_smoothing"],
                                   prediction_samples=params["prediction_samples"])
            best = fit_classifier(run, model, train_set, val_set, settings, resume_from=resume_from, ctx=ctx)
            return run.finish(best, best_checkpoint="best.pt")
    finally:
        ctx.leave()  # the process group this run created

