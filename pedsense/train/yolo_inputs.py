"""What a YOLO run starts from, checked before any run folder exists: its dataset (Ultralytics'
``data.yaml``, with image counts and the evenly spread ``fraction``) and its base model (a
variant name, downloaded or from scratch offline, or a weights file that must hold a detector).

``train_yolo``, the hybrid's detector stage and the launch checks (``preflight``) all read
them from here.
"""

from __future__ import annotations

import functools
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pedsense.config import paths
from pedsense.errors import ConfigError, DataError
from pedsense.train.offline import offline_reason
from pedsense.train.param_kinds import VARIANT_NAME

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


# -- the dataset --------------------------------------------------------------------------------
@dataclass(frozen=True)
class YoloDataset:
    """A checked Ultralytics ``data.yaml``: its contents with an absolute ``path``, and image counts."""

    yaml_path: Path
    data: dict
    counts: dict

    @property
    def names(self) -> list[str]:
        names = self.data.get("names", [])
        return [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)


def load_yolo_dataset(yaml_path: Path, rebuild: str) -> YoloDataset:
    """Read and check ``data.yaml``; DataError naming the fix when it is missing, broken or empty."""
    if not yaml_path.is_file():
        raise DataError(f"The YOLO dataset is not built yet: {yaml_path} is missing. Run `{rebuild}` first.")
    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(f"{yaml_path} is not valid YAML ({exc}). Rebuild it with `{rebuild}`.") from None
    if not isinstance(data, dict) or not data.get("train") or not data.get("val") or not data.get("names"):
        raise DataError(f"{yaml_path} needs 'train', 'val' and 'names' entries. Rebuild it with `{rebuild}`.")
    root = Path(data.get("path") or yaml_path.parent).expanduser()
    if not root.is_absolute():
        root = (yaml_path.parent / root).resolve()
    data = {**data, "path": str(root)}
    counts = {split: _count_images(root, data[split], split, yaml_path, rebuild) for split in ("train", "val")}
    return YoloDataset(yaml_path, data, counts)


def list_images(root: Path, entry: Any) -> list[str]:
    """The image paths of one split entry (folders and/or .txt lists, as Ultralytics reads them), sorted."""
    images = []
    for item in entry if isinstance(entry, list) else [entry]:
        folder = Path(item) if Path(item).is_absolute() else root / item
        if folder.is_file() and folder.suffix == ".txt":  # a list of image paths; "./x" is relative to it
            lines = (line.strip() for line in folder.read_text().splitlines())
            images += [str(folder.parent / line[2:]) if line.startswith("./") else line for line in lines if line]
        elif folder.is_dir():
            images += [str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(images)


def _count_images(root: Path, entry: Any, split: str, yaml_path: Path, rebuild: str) -> int:
    total = len(list_images(root, entry))
    if total == 0:
        raise DataError(f"The '{split}' split of {yaml_path} has no images (looked in {entry} under {root}). "
                        f"Rebuild the dataset with `{rebuild}`.")
    return total


def subset_size(n_images: int, fraction: float) -> int:
    """How many of ``n_images`` a ``fraction`` keeps (Ultralytics' rounding, at least 1)."""
    return max(1, round(n_images * fraction))


def spread_subset(images: list[str], fraction: float) -> list[str]:
    """``fraction`` of ``images`` evenly spaced along the sorted list.

    Ultralytics' own ``fraction`` keeps the head of the sorted list: the first video or two.
    Frames are sorted by video then frame index, so every k-th one covers every video and
    scene while skipping near-duplicate neighbours.
    """
    count = subset_size(len(images), fraction)
    return [images[i * len(images) // count] for i in range(count)]


# -- the base model -----------------------------------------------------------------------------
def check_model_variant(model_variant: str | os.PathLike) -> tuple[str, Path | str]:
    """Classify ``model_variant``: ``("file", path)`` for an existing .pt/.yaml, else ``("variant", name)``.

    Raises:
        ConfigError: unknown variant name, a .pt/.yaml path that does not exist, or a .pt that
            holds no Ultralytics detector (checked like hybrid's ``yolo_model``).
    """
    text = str(model_variant).strip()
    path = Path(text).expanduser()
    if path.suffix.lower() in (".pt", ".yaml", ".yml"):
        if path.is_file():
            _check_weights_file(path)
            return "file", path.resolve()
        if path.parent != Path(".") or not VARIANT_NAME.match(path.stem):
            raise ConfigError(f"model_variant file {path} does not exist. Give an existing .pt/.yaml path "
                              "or a variant name such as 'yolo26n'.")
        if path.suffix.lower() != ".pt":  # "yolo26n.yaml": Ultralytics' own config, from scratch
            _check_known_variant(path.stem)
            return "file", path.name
        text = path.stem
    _check_known_variant(text)
    return "variant", text


def _check_weights_file(path: Path) -> None:
    if path.suffix.lower() != ".pt":
        return
    stat = path.stat()
    problem = detector_problem(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if problem:
        raise ConfigError(f"model_variant {path} {problem}. Give the weights of a YOLO detector (a YOLO "
                          "run's best.pt, Ultralytics' yolo26n.pt) or a variant name such as 'yolo26n'.")


@functools.lru_cache(maxsize=32)
def detector_problem(path: str, size: int, mtime_ns: int) -> str | None:
    """Why the file at ``path`` is not Ultralytics detector weights, or None when it is; cached
    by the file's size and mtime, so a form checked on every rerun loads it once."""
    if not zipfile.is_zipfile(path):  # every torch.save since PyTorch 1.6 is a zip archive
        return "is not a PyTorch checkpoint (not a torch.save zip archive)"
    import torch
    from ultralytics.nn.tasks import guess_model_task, torch_safe_load

    try:
        checkpoint, _ = torch_safe_load(path, safe_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the answer
        return f"cannot be loaded as Ultralytics weights ({type(exc).__name__})"
    model = checkpoint.get("ema") or checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(model, torch.nn.Module):
        return "holds no Ultralytics model"
    task = guess_model_task(model)
    return None if task == "detect" else f"holds a {task} model, not a detector"



def _check_known_variant(name: str) -> None:
    from ultralytics.nn.tasks import yaml_model_load

    if VARIANT_NAME.match(name):
        try:
            yaml_model_load(f"{name}.yaml")
            return
        except (FileNotFoundError, OSError):
            pass
    raise ConfigError(f"Unknown model_variant {name!r}. Use a YOLO detection variant such as 'yolo26n', "
                      "'yolo26s', 'yolo11n', or a path to a .pt/.yaml file.")


def fetch_base_model(variant: str, home: str | os.PathLike | None = None) -> tuple[str, str]:
    """The model Ultralytics should start from, and where its weights came from.

    ``models/base/{variant}.pt`` is downloaded on the first run. Offline (or when the download
    fails) a warning says so and the model trains from scratch on ``{variant}.yaml``.

    Returns:
        (model source for ``ultralytics.YOLO``, weights source for config.json).
    """
    target = paths(home).base_models / f"{variant}.pt"
    if target.is_file() and target.stat().st_size > 0:
        return str(target), f"pretrained ({target})"
    reason = offline_reason(host="github.com")
    if reason is None:
        try:
            from ultralytics.utils.downloads import attempt_download_asset

            target.parent.mkdir(parents=True, exist_ok=True)
            attempt_download_asset(str(target), retry=2)
            if target.is_file() and target.stat().st_size > 0:
                return str(target), f"pretrained ({target}, downloaded)"
            reason = "download produced no file"
        except Exception as exc:  # network errors of every kind: fall back, never crash
            reason = f"{type(exc).__name__}: {exc}"[:200]
    message = (f"Base weights {target.name} could not be fetched ({reason}); training {variant} from "
               f"scratch ({variant}.yaml). Put {target.name} in {target.parent} to fine-tune instead.")
    warnings.warn(message, stacklevel=3)
    return f"{variant}.yaml", f"scratch (offline: {reason})"
