"""ResNet checkpoints that rebuild their model from the file alone (like nanoGPT's ``model_args``).

A checkpoint holds only tensors and plain Python values, so it loads with
``torch.load(..., weights_only=True)``: opening one never runs code from the file. ``last.pt``
also carries the ``training`` state a resumed run continues from (optimizer, scheduler, AMP
scaler, epoch, best metric so far, random-number generator states); ``best.pt`` does not.
"""

from __future__ import annotations

import errno
import os
import shutil
import random
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from pedsense.config import MODEL_TYPES
from pedsense.errors import DataError, DiskFull, TrainingDiverged
from pedsense.io import disk_full_error

# ResNet models (pedsense.train.resnet_lstm) and context models (pedsense.train.context_model)
MODEL_CLASSES = ("ResNetLSTM", "ResNetClassifier", "ContextGRU", "ContextTransformer")


def save_classifier(path: str | os.PathLike, model: torch.nn.Module, *, class_names: Sequence[str],
                    crop_size: Sequence[int] | None, epoch: int, metrics: Mapping[str, Any],
                    sequence_length: int | None = None,
                    training: Mapping[str, Any] | None = None,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write a pedsense checkpoint (``MODEL_CLASSES``) atomically (readers never see half a file).

    ``training`` (see :func:`training_state`) makes it a checkpoint a run can resume from;
    ``extra`` adds plain values the model's loader needs (a context model's feature groups).
    ``crop_size`` is None for a model that reads no crops.

    Raises:
        TrainingDiverged: the weights are not finite (the file already there is kept).
        DiskFull: no space left; the temporary file is removed, the old checkpoint kept.
    """
    path = Path(path)
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    bad = nonfinite_tensors(state_dict)
    if bad:
        raise TrainingDiverged(f"Refusing to write {path.name}: weights {', '.join(bad[:3])} are not finite "
                               "(the run diverged). Lower the learning rate and train again.")
    checkpoint = {
        "model": type(model).__name__,
        "model_args": dict(model.model_args),
        "state_dict": state_dict,
        "class_names": list(class_names),
        "crop_size": [int(crop_size[0]), int(crop_size[1])] if crop_size is not None else None,
        "sequence_length": sequence_length,
        "epoch": int(epoch),
        "metrics": {k: _plain(v) for k, v in metrics.items()},
        "weights_source": getattr(model, "weights_source", None),
    }
    checkpoint.update(extra or {})
    if training is not None:
        checkpoint["training"] = dict(training)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        # torch.save's zip writer reports a full disk as a RuntimeError ("unexpected pos ...")
        full = getattr(exc, "errno", None) == errno.ENOSPC or \
            (isinstance(exc, RuntimeError) and shutil.disk_usage(path.parent).free < tensor_bytes(checkpoint))
        if full:
            raise DiskFull(disk_full_message(path.parent, tensor_bytes(checkpoint))) from exc
        raise
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def disk_full_message(folder: Path, needed_bytes: int) -> str:
    """"No space left on <folder>: free N MB and resume …" (``pedsense.io.disk_full_error``'s
    wording; N: what the write needed beyond the space free now, rounded up)."""
    return str(disk_full_error(folder, needed_bytes, "resume the run (pedsense.train.resume.resume_run); "
                                                     "what it wrote before is kept"))


def largest_checkpoint(folder: Path) -> int:
    """Size in bytes of the biggest ``*.pt`` under ``folder`` (what the next save will need), or 1 MB."""
    sizes = [p.stat().st_size for p in folder.rglob("*.pt") if p.is_file()]
    return max(sizes, default=2**20)


def tensor_bytes(value: Any) -> int:
    """Bytes of every tensor inside ``value`` (nested dicts, lists, tuples): a checkpoint's size."""
    return sum(t.numel() * t.element_size() for t in _tensors(value))


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def nonfinite_tensors(state_dict: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``state_dict`` holding NaN or inf.

    Every save and load asks, so it first takes one fused norm of them all (a ResNet-50: 7 ms
    against 55 ms tensor by tensor): a finite norm means every element is finite. A norm that is
    not (a NaN, an inf, or finite weights so large their norm overflows) is checked tensor by tensor.
    """
    floats = {name: value for name, value in state_dict.items()
              if isinstance(value, torch.Tensor) and value.is_floating_point()}
    with torch.no_grad():
        if not floats or bool(torch.isfinite(torch.nn.utils.get_total_norm(list(floats.values())))):
            return []
        return [name for name, value in floats.items() if not bool(torch.isfinite(value).all())]


def _plain(value: Any) -> Any:
    """Numbers as Python scalars (a numpy or tensor scalar would not load with weights_only)."""
    if isinstance(value, (np.generic, torch.Tensor)) and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint dict, or DataError naming the file when it is missing, not ours or diverged."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Checkpoint {path} does not exist. Train a model first (`pedsense train`) "
                        "or pick an existing run's best.pt.")
    if path.stat().st_size == 0:
        raise DataError(f"Checkpoint {path} ({_run_name(path)}) is empty (0 bytes): a crash or a full disk cut "
                        "its save short, so there are no weights to load or resume from. Free disk space if "
                        "it is full, then train the run again (its best.pt, if it has one, still loads).")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(f"Checkpoint {path} could not be read ({str(exc).splitlines()[0][:200]}). It may be "
                        "truncated or not a pedsense checkpoint; use the run's other checkpoint or retrain.") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("model") not in MODEL_CLASSES:
        raise DataError(f"{path} is not a pedsense checkpoint (expected one of {MODEL_CLASSES}). "
                        "YOLO weights load with ultralytics.YOLO instead.")
    bad = nonfinite_tensors(checkpoint.get("state_dict") or {})
    if bad:
        raise DataError(f"The weights in {path} ({_run_name(path)}) are not finite (NaN or inf in "
                        f"{', '.join(bad[:3])}): that run diverged. Retrain it with a lower learning rate.")
    return checkpoint


def _run_name(path: Path) -> str:
    """``run <model_type>/<folder>`` for a checkpoint inside a run folder, else its folder."""
    if path.parent.parent.name in MODEL_TYPES:
        return f"run {path.parent.parent.name}/{path.parent.name}"
    return f"folder {path.parent}"


def load_classifier(path: str | os.PathLike, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a ResNetLSTM or ResNetClassifier from its checkpoint, in eval mode.

    Nothing is downloaded: the backbone is built with ``pretrained=False`` and the saved
    weights are loaded over it.

    Returns:
        (model, meta): meta holds every checkpoint key except ``state_dict`` and ``training``
        (``model``, ``model_args``, ``class_names``, ``crop_size`` [w, h], ``sequence_length``,
        ``epoch``, ``metrics``).
    """
    from pedsense.train import resnet_lstm

    checkpoint = read_checkpoint(path)
    model_class = getattr(resnet_lstm, checkpoint["model"])
    model = model_class(**checkpoint["model_args"], pretrained=False)
    model.load_state_dict(checkpoint["state_dict"])
    model.to(device).eval()
    meta = {k: v for k, v in checkpoint.items() if k not in ("state_dict", "training")}
    return model, meta


def load_context_model(path: str | os.PathLike, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a context model from its checkpoint alone, in eval mode.

    Returns:
        (model, meta): meta holds every checkpoint key except ``state_dict`` and ``training``
        (``model``, ``model_args``, ``features``, ``sample_type``, ``class_names``, ``epoch``,
        ``metrics``).
    """
    from pedsense.train.context_model import MODEL_CLASSES  # heavy: torch models

    checkpoint = read_checkpoint(path)
    classes = {cls.__name__: cls for cls in MODEL_CLASSES.values()}
    if checkpoint["model"] not in classes:
        raise DataError(f"{path} holds a {checkpoint['model']}, not a context model. Pick a context run.")
    model = classes[checkpoint["model"]](**checkpoint["model_args"])
    model.load_state_dict(checkpoint["state_dict"])
    model.to(device).eval()
    return model, {k: v for k, v in checkpoint.items() if k not in ("state_dict", "training")}


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> dict:
    """Load a pedsense checkpoint's weights into ``model`` (same architecture); returns the checkpoint.

    ``model.weights_source`` then names the file (an extension records its parent's weights).

    Raises:
        DataError: unreadable, diverged, or made for another architecture.
    """
    checkpoint = read_checkpoint(path)
    if checkpoint["model"] != type(model).__name__ or dict(checkpoint["model_args"]) != dict(model.model_args):
        raise DataError(f"{path} holds a {checkpoint['model']} with {checkpoint['model_args']}, not this run's "
                        f"{type(model).__name__} with {model.model_args}. Start from a checkpoint of the same "
                        "architecture.")
    model.load_state_dict(checkpoint["state_dict"])
    model.weights_source = f"file ({Path(path).resolve()})"  # config.json says where it started
    return checkpoint


# -- what a resumed run needs -----------------------------------------------------------------
def rng_state() -> dict:
    """The random-number generators' states (python, numpy, torch, CUDA) as plain values."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Put back what :func:`rng_state` recorded (CUDA only where this machine has the same GPUs)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state({"bit_generator": numpy["bit_generator"],
                         "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": numpy["pos"]},
                         "has_gauss": numpy["has_gauss"], "gauss": numpy["gauss"]})
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def training_state(*, epoch: int, stage: str, optimizer: torch.optim.Optimizer, scheduler: Any,
                   scaler: Any, best: Mapping[str, Any], loss_curve: Mapping[str, Any] | None = None) -> dict:
    """Everything a run needs to continue after ``epoch`` (stored as ``last.pt``'s ``training``)."""
    return {
        "epoch": int(epoch), "stage": stage,
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "best": {k: _plain(v) for k, v in best.items()},
        "loss_curve": dict(loss_curve or {}),
        "rng": rng_state(),
    }
