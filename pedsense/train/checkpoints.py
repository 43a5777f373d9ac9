"""ResNet checkpoints that rebuild their model from the file alone (like nanoGPT's ``model_args``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from pedsense.errors import DataError

MODEL_CLASSES = ("ResNetLSTM", "ResNetClassifier")


def save_classifier(path: str | os.PathLike, model: torch.nn.Module, *, class_names: Sequence[str],
                    crop_size: Sequence[int], epoch: int, metrics: Mapping[str, Any],
                    sequence_length: int | None = None) -> Path:
    """Write a ResNetLSTM/ResNetClassifier checkpoint atomically (readers never see half a file)."""
    path = Path(path)
    checkpoint = {
        "model": type(model).__name__,
        "model_args": dict(model.model_args),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "class_names": list(class_names),
        "crop_size": [int(crop_size[0]), int(crop_size[1])],
        "sequence_length": sequence_length,
        "epoch": int(epoch),
        "metrics": dict(metrics),
        "weights_source": getattr(model, "weights_source", None),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint dict, or DataError naming the file when it is missing or not ours."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Checkpoint {path} does not exist. Train a model first (`pedsense train`) "
                        "or pick an existing run's best.pt.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise DataError(f"Checkpoint {path} could not be read ({exc}). It may be truncated; "
                        "use the run's last.pt or retrain.") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("model") not in MODEL_CLASSES:
        raise DataError(f"{path} is not a pedsense ResNet checkpoint (expected one of {MODEL_CLASSES}). "
                        "YOLO weights load with ultralytics.YOLO instead.")
    return checkpoint


def load_classifier(path: str | os.PathLike, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a ResNetLSTM or ResNetClassifier from its checkpoint, in eval mode.

    Nothing is downloaded: the backbone is built with ``pretrained=False`` and the saved
    weights are loaded over it.

    Returns:
        (model, meta): meta holds every checkpoint key except ``state_dict``
        (``model``, ``model_args``, ``class_names``, ``crop_size`` [w, h], ``sequence_length``,
        ``epoch``, ``metrics``).
    """
    from pedsense.train import resnet_lstm

    checkpoint = read_checkpoint(path)
    model_class = getattr(resnet_lstm, checkpoint["model"])
    model = model_class(**checkpoint["model_args"], pretrained=False)
    model.load_state_dict(checkpoint["state_dict"])
    model.to(device).eval()
    meta = {k: v for k, v in checkpoint.items() if k != "state_dict"}
    return model, meta
