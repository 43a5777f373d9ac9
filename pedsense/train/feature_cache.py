"""The frozen-feature cache: each crop's frozen-backbone output, computed once and reused.

With the backbone frozen up to a cut, what it computes for a crop never changes during a run,
so it is computed once per crop (no gradients, batched) and stored; every epoch then trains
only the layers after the cut on those tensors. An entry is keyed by everything the features
depend on: backbone, the frozen weights themselves (a digest, so ImageNet, from scratch with a
seed, or ``init_weights`` never mix), crop size, the cut, the dataset (its ``manifest.json``,
its label file and the size and mtime of every crop file), the split, the storage precision and
how they were computed. A changed dataset or backbone gets a new key; an entry never goes stale.

Layout, one entry per split: ``<home>/data/cache/features/<key>/``

    features.npy    (U, *shape) one row per distinct crop file (sequences share crops)
    index.npy       (N, T) int64: sample i's crops are rows index[i] (T = 1 for single crops)
    manifest.json   the key's parts, shapes, dtype and a checksum; written last

An entry is built in a hidden ``.<key>.partial-*`` folder and renamed into place whole, so a
reader sees a complete entry or none. Loading checks the checksum: a corrupted or half-deleted
entry is rebuilt (and says so), never used. Loaded features live in memory, so deleting the
folder mid-run changes nothing for that run; the next run rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from pedsense.config import CLASS_NAMES, paths
from pedsense.errors import DataError
from pedsense.io import read_json, write_json_atomic
from pedsense.train.lineage import dataset_fingerprint
from pedsense.train.transforms import normalize_uint8

CACHE_FORMAT = 1
DTYPES = {"fp16": np.float16, "fp32": np.float32}
# Features above this size are memory-mapped (read-only) instead of read into memory.
IN_MEMORY_LIMIT_MB = 3072
# Pixels per forward pass while extracting (64 crops of 224x224), as the predictors batch.
EXTRACT_PIXELS = 64 * 224 * 224

Progress = Callable[[int, int], bool]  # (chunks done, chunks) -> stop now?


def cache_root(home: str | os.PathLike | None = None) -> Path:
    """``<home>/data/cache/features``: where every entry lives."""
    return paths(home).data / "cache" / "features"


def cache_dtype(mode: str, features: nn.Module) -> str | None:
    """The storage precision the ``feature_cache`` parameter asks for with this backbone, or None
    (no cache): ``auto`` caches (fp16) only a fully frozen backbone, where the cached unit is one
    feature vector per crop (bench: epochs 68x faster). At the seed's cut (after layer2) epochs
    still train layer3-4: the bench measured them only 1.4x faster, a slower first epoch, and
    0.8 MB per crop on disk at 224 (fp16 512x28x28), so ``auto`` leaves it off."""
    if mode == "off":
        return None
    if mode == "auto":
        return "fp16" if features.fully_frozen else None
    return mode


def cache_off_record(mode: str, features: nn.Module) -> dict:
    """config.json's ``feature_cache`` entry of a run that does not use the cache, with why."""
    if mode == "off":
        return {"status": "off", "reason": "feature_cache=off"}
    return {"status": "off", "reason": f"auto: the backbone trains after child {features.frozen_children} "
            "(auto caches only a fully frozen backbone, frozen_children >= 8, where it pays; "
            "fp16/fp32 cache at any cut)"}


@dataclass(frozen=True)
class CachedSplit:
    """A loaded entry: the features, the sample index, and what happened (hit, built, rebuilt)."""

    features: torch.Tensor   # (U, *shape), the stored precision
    index: torch.Tensor      # (N, T) int64
    record: dict             # for config.json: key, status, reason, path, seconds, crops, ...


class FeatureDataset(Dataset):
    """Cached frozen features standing in for a crop or sequence dataset.

    Items are ``(features, label)``: (T, *shape) for sequences, (*shape) for single crops, in
    float32. ``__getitems__`` serves a whole batch at once (one indexing, no per-item collate).
    """

    def __init__(self, source: Dataset, cached: CachedSplit):
        self.labels = list(source.labels)
        self.crop_size = source.crop_size
        self.sequences = bool(getattr(source, "sequence_length", None))
        self.features = cached.features
        self.index = cached.index if self.sequences else cached.index[:, 0]
        self.targets = torch.tensor(self.labels, dtype=torch.long)
        self.record = cached.record
        # a fused ResNet-LSTM's context features ride along, window by window
        groups = getattr(source, "context", None)
        self.context = {g: torch.from_numpy(np.ascontiguousarray(a)) for g, a in groups.items()} if groups else None

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: str) -> "FeatureDataset":
        """Keep the features on ``device`` (a GPU: batches never cross the bus)."""
        self.features, self.index = self.features.to(device), self.index.to(device)
        self.targets = self.targets.to(device)
        if self.context is not None:
            self.context = {g: t.to(device) for g, t in self.context.items()}
        return self

    def __getitems__(self, indices: Sequence[int]) -> tuple:
        rows = torch.as_tensor(indices, dtype=torch.long, device=self.index.device)
        return self._inputs(self.features[self.index[rows]].float(), rows), self.targets[rows]

    def __getitem__(self, index: int) -> tuple:
        return self._inputs(self.features[self.index[index]].float(), index), self.labels[index]

    def _inputs(self, features: torch.Tensor, rows):
        """The features, with the windows' context groups when the model fuses them."""
        if self.context is None:
            return features
        return features, {g: t[rows] for g, t in self.context.items()}

    def class_counts(self) -> list[int]:
        return [self.labels.count(c) for c in range(len(CLASS_NAMES))]

    def preload(self, threads: int = 2) -> None:
        """Nothing to decode: the features are in memory already."""

    fully_cached = True


class FromFrozen(nn.Module):
    """Runs only a model's layers after the cut: ``model.classify_frozen`` as ``forward``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs) -> torch.Tensor:
        """The frozen features (and a fused model's context groups) -> logits."""
        return self.model.classify_frozen(*inputs)


# -- keys ---------------------------------------------------------------------------------------
def weights_digest(module: nn.Module) -> str:
    """A digest of every tensor of ``module`` (parameters and BatchNorm statistics)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def files_digest(item_files: Sequence[Sequence[Path]], root: Path) -> str:
    """A digest of every crop file's path (relative to ``root``), size and mtime, item by item."""
    digest = hashlib.blake2b(digest_size=16)
    for files in item_files:
        for path in files:
            stat = path.stat()
            digest.update(f"{os.path.relpath(path, root)}|{stat.st_size}|{stat.st_mtime_ns};".encode())
        digest.update(b"\n")
    return digest.hexdigest()


def key_parts(dataset, features: nn.Module, dtype: str, compute: str) -> dict:
    """Everything an entry's features depend on (recorded in its manifest.json)."""
    return {
        "format": CACHE_FORMAT,
        "backbone": features.backbone,
        # the frozen weights themselves, not their label: a checkpoint's reloaded model
        # ("scratch") and the run that trained it ("scratch (offline …)") share an entry
        "weights_digest": weights_digest(features.frozen),
        "crop_size": [int(v) for v in dataset.crop_size],
        "cut": features.cut,  # children computed frozen (frozen_children 8 and 9 cut at the same place)
        "dataset": {"kind": "sequences" if getattr(dataset, "sequence_length", None) else "crops",
                    "split": dataset.split,
                    "files": dataset_fingerprint((dataset.manifest_path, dataset.labels_path)),
                    "crops": files_digest(dataset.item_files(), dataset.root)},
        "dtype": dtype,
        "compute": compute,
    }


def entry_key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


# -- loading and building ---------------------------------------------------------------------
def load_or_build(dataset, features: nn.Module, dtype: str, *, device: str,
                  home: str | os.PathLike | None = None, progress: Progress | None = None,
                  build: bool = True) -> CachedSplit | None:
    """The cached features of ``dataset`` (a crop or sequence dataset) under ``features``' cut.

    A valid entry is loaded (``status: hit``); a missing one is built (``built``); a corrupted
    one is set aside and built again (``rebuilt``, with the reason). ``progress(done, total)``
    is called after every extraction chunk; when it returns True the extraction stops, nothing
    is stored and None is returned. ``build=False`` only loads (DataError when there is none).
    """
    compute = "cuda-autocast-fp16" if device.startswith("cuda") else "fp32"
    parts = key_parts(dataset, features, dtype, compute)
    key = entry_key(parts)
    root = cache_root(home)
    entry = root / key
    started = time.time()
    loaded, problem = _load(entry, parts)
    if loaded is not None:
        return _split(loaded, {"status": "hit", "key": key, "path": str(entry),
                               "seconds": round(time.time() - started, 3)})
    if not build:
        raise DataError(f"The feature cache entry {entry} is {problem}. It is rebuilt by the training "
                        "process that owns it; train again.")
    if problem != "missing":
        _set_aside(entry)
    built = _build(dataset, features, parts, dtype, device, root, key, progress)
    if built is None:
        return None
    record = {"status": "built" if problem == "missing" else "rebuilt", "key": key, "path": str(entry),
              "seconds": round(time.time() - started, 3)}
    if problem != "missing":
        record["reason"] = problem
    return _split(built, record)


def _split(arrays: tuple[np.ndarray, np.ndarray], record: dict) -> CachedSplit:
    features, index = arrays
    with warnings.catch_warnings():  # a memory-mapped entry is read-only, and stays so
        warnings.simplefilter("ignore", UserWarning)
        tensor = torch.from_numpy(features)
    return CachedSplit(tensor, torch.from_numpy(index.astype(np.int64)),
                       {**record, "crops": int(features.shape[0]), "shape": list(features.shape[1:]),
                        "dtype": str(features.dtype), "memory_mapped": not features.flags.writeable})


def _load(entry: Path, parts: dict) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """(features, index) of a valid entry, else (None, why: ``missing`` or what is wrong)."""
    manifest = read_json(entry / "manifest.json", None)
    if not entry.exists() or (manifest is None and not any(entry.iterdir())):
        return None, "missing"
    if not isinstance(manifest, dict):
        return None, "incomplete (no readable manifest.json)"
    if manifest.get("parts") != parts:
        return None, "made for other inputs (its manifest.json does not match its key)"
    try:
        big = (entry / "features.npy").stat().st_size > IN_MEMORY_LIMIT_MB * 2**20
        features = np.load(entry / "features.npy", mmap_mode="r" if big else None, allow_pickle=False)
        index = np.load(entry / "index.npy", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - truncated, not .npy, gone: every way of being unreadable
        return None, f"unreadable ({type(exc).__name__}: {str(exc)[:120]})"
    if _checksum(features, index) != manifest.get("checksum"):
        return None, "corrupted (its checksum does not match)"
    if index.size and (index.min() < 0 or index.max() >= len(features)):
        return None, "corrupted (its index points past its features)"
    return (features, index), ""


def _checksum(features: np.ndarray, index: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{features.dtype}{features.shape}{index.shape}".encode())
    flat = features.reshape(len(features), -1) if features.ndim else features
    for start in range(0, len(flat), 4096):  # chunks: a memory-mapped entry is never read whole
        digest.update(np.ascontiguousarray(flat[start:start + 4096]).tobytes())
    digest.update(np.ascontiguousarray(index).tobytes())
    return digest.hexdigest()


def _set_aside(entry: Path) -> None:
    """Move a bad entry out of the way (another process may be reading it) and delete it."""
    aside = entry.with_name(f".{entry.name}.stale-{os.getpid()}-{time.time_ns()}")
    try:
        entry.rename(aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def distinct_crops(item_files: Sequence[Sequence[Path]]) -> tuple[list[Path], np.ndarray]:
    """(the distinct crop files, (N, T) row of each item's crops). Hard links (a sequence build
    stores a crop shared by overlapping windows once) count as one file."""
    rows: dict[tuple, int] = {}
    files: list[Path] = []
    index = np.zeros((len(item_files), max((len(f) for f in item_files), default=1)), dtype=np.int64)
    for i, item in enumerate(item_files):
        for t, path in enumerate(item):
            stat = path.stat()
            identity = (stat.st_dev, stat.st_ino)
            if identity not in rows:
                rows[identity] = len(files)
                files.append(path)
            index[i, t] = rows[identity]
    return files, index


@torch.no_grad()
def extract(dataset, features: nn.Module, files: Sequence[Path], dtype: str, device: str,
            progress: Progress | None = None) -> np.ndarray | None:
    """``features.frozen_features`` of every file, batched -> (U, *shape) in ``dtype`` (None: stopped)."""
    width, height = (int(v) for v in dataset.crop_size)
    chunk = max(1, min(512, EXTRACT_PIXELS // (width * height)))
    amp = device.startswith("cuda")
    was_training = features.training
    features.eval()
    out = None
    total = (len(files) + chunk - 1) // chunk
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:  # OpenCV decodes without the GIL
            for number, start in enumerate(range(0, len(files), chunk), start=1):
                pixels = np.stack(list(pool.map(dataset.decode_file, files[start:start + chunk])))
                images = normalize_uint8(torch.from_numpy(pixels)).to(device)
                with torch.autocast("cuda" if amp else "cpu", dtype=torch.float16, enabled=amp):
                    values = features.frozen_features(images).float().cpu().numpy()
                if out is None:
                    out = np.empty((len(files), *values.shape[1:]), dtype=DTYPES[dtype])
                out[start:start + len(values)] = values
                if progress is not None and progress(number, total):
                    return None
    finally:
        features.train(was_training)
    return out


def _build(dataset, features: nn.Module, parts: dict, dtype: str, device: str, root: Path, key: str,
           progress: Progress | None) -> tuple[np.ndarray, np.ndarray] | None:
    files, index = distinct_crops(dataset.item_files())
    values = extract(dataset, features, files, dtype, device, progress)
    if values is None:
        return None
    _clean_partials(root)
    staging = root / f".{key}.partial-{os.getpid()}-{time.time_ns()}"
    staging.mkdir(parents=True)
    try:
        np.save(staging / "features.npy", values, allow_pickle=False)
        np.save(staging / "index.npy", index, allow_pickle=False)
        write_json_atomic(staging / "manifest.json", {
            "parts": parts, "key": key, "checksum": _checksum(values, index),
            "crops": len(files), "items": len(index), "shape": list(values.shape[1:]), "dtype": dtype,
            "weights_source": getattr(features, "weights_source", None),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "torch": torch.__version__})
        try:
            staging.rename(root / key)
        except OSError:  # another run finished the same entry first: keep theirs if it is sound
            if _load(root / key, parts)[0] is None:
                _set_aside(root / key)
                staging.rename(root / key)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return values, index


def _clean_partials(root: Path, older_than_s: float = 24 * 3600) -> None:
    """Remove the staging folders of builds that died (their process is gone, or a day old)."""
    for folder in root.glob(".*.partial-*"):
        try:
            pid = int(folder.name.split(".partial-")[1].split("-")[0])
            alive = pid == os.getpid() or _pid_alive(pid)
            if not alive or time.time() - folder.stat().st_mtime > older_than_s:
                shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, IndexError, OSError):
            continue


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
