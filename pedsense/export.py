"""Export a run's models to ONNX, so predictors can run them with ONNX Runtime on a CPU.

``export_run(run, format="onnx")`` (``pedsense export RUN --format onnx``) writes beside the
weights they come from:

- YOLO: ``best.onnx``; hybrid: ``yolo_detector.onnx`` — Ultralytics' own exporter
  (``YOLO(weights).export(format="onnx")``), at the image size the detector trained at;
- hybrid: ``resnet_classifier.onnx`` (crops (N, 3, H, W) -> logits (N, C));
- ResNet-LSTM: ``best.features.onnx`` (crops -> CNN features (N, D)) and ``best.temporal.onnx``
  (features (B, T, D) -> logits (B, C)), the two halves the predictor runs apart so each crop's
  features are computed once, not once per frame they stay in a track's buffer;

the ResNet parts by ``torch.onnx.export`` with a dynamic batch axis, each checked against
PyTorch on a random batch (the largest difference is recorded). Every file is written under a
temporary name and renamed when complete; ``export.json`` (see ``pedsense.infer.backends``),
written last, records them, so ``load_predictor`` uses them only once the export is whole.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from pedsense.device import torch_threads_kept
from pedsense.errors import ConfigError, PedsenseError
from pedsense.infer import classifier_weights, detector_weights, run_imgsz, run_model_type
from pedsense.infer.backends import (
    EXPORT_RECORD,
    onnxruntime_version,
    ort_session,
    quiet_ultralytics,
    source_signature,
)
from pedsense.io import link_or_copy, write_json_atomic
from pedsense.runfolder import find_run, now_iso

FORMATS = ("onnx",)
#: largest |ONNX - PyTorch| logit difference an export may show on its check batch (fp32 noise
#: on ResNet-50 logits is ~1e-5)
TOLERANCE = 1e-3
Progress = Callable[[int, int, str], None]


class ExportError(PedsenseError):
    """A run that cannot be exported, or a machine without the packages an export needs."""


def require_onnx() -> str:
    """The installed ``onnx`` version, or ExportError naming the package to install."""
    try:
        import onnx
    except ImportError as exc:
        raise ExportError("ONNX export needs the `onnx` package, which is not installed: "
                          "pip install onnx onnxruntime onnxslim (they are in requirements.txt).") from exc
    return str(onnx.__version__)


def opset_range() -> tuple[int, int]:
    """The ONNX opsets torch's TorchScript exporter writes (both exports use it: ours with
    ``dynamo=False``, Ultralytics' own)."""
    try:
        from torch.onnx import _constants
    except ImportError:  # the private module moved: the range of torch 2.x
        return 7, 20
    return (_constants.ONNX_MIN_OPSET,
            getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", _constants.ONNX_MAX_OPSET))


def check_opset(opset: int | None) -> None:
    """ConfigError unless ``opset`` is None (the default) or one torch exports."""
    low, high = opset_range()
    if opset is not None and not (isinstance(opset, int) and low <= opset <= high):
        raise ConfigError(f"opset must be an ONNX opset from {low} to {high} (what torch {torch.__version__} "
                          f"exports), got {opset!r}. Leave it out for the default (17 for the ResNet parts, "
                          "Ultralytics' choice for YOLO).")


def export_run(run: str | os.PathLike, format: str = "onnx", *, opset: int | None = None,
               home: str | os.PathLike | None = None, progress: Progress | None = None) -> dict:
    """Export every model of a run to ONNX and record the files in ``export.json``.

    Args:
        run: the run folder, or an id such as ``hybrid/hybrid_20250101_120000``.
        format: ``"onnx"`` (the only format).
        opset: ONNX opset (default: Ultralytics' choice for YOLO, 17 for the ResNet parts).
        progress: ``progress(done, total, message)`` after each exported model.

    Returns:
        The record written to ``export.json``: ``format``, ``model_type``, ``exported_at``,
        ``versions``, and per component (``detector``, ``classifier``, ``features``,
        ``temporal``) its ``file``, ``source`` weights, their size/mtime, ``max_abs_diff``.

    Raises:
        ExportError: ``onnx`` is not installed, or a model failed to export or to match PyTorch.
        ConfigError: an unknown format, or an opset torch cannot export (checked first).
    """
    if format != "onnx":
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {format!r}.")
    check_opset(opset)
    versions = {"onnx": require_onnx(), "onnxruntime": onnxruntime_version()}
    run_path = find_run(run, home).path
    model_type = run_model_type(run_path)
    steps = {"yolo": ("detector",), "hybrid": ("detector", "classifier"),
             "resnet-lstm": ("features+temporal",)}.get(model_type)
    if steps is None:
        raise ExportError(f"Run {run_path.name} has unknown model type {model_type!r}: nothing to export.")
    # a re-export that fails half-way must not leave the old record pointing at a mix of files
    (run_path / EXPORT_RECORD).unlink(missing_ok=True)
    components: dict[str, dict] = {}
    for done, step in enumerate(steps, start=1):
        if step == "detector":
            components["detector"] = export_detector(run_path, opset=opset)
        elif step == "classifier":
            components["classifier"] = export_classifier(run_path, opset=opset)["classifier"]
        else:
            components.update(export_classifier(run_path, opset=opset))
        if progress is not None:
            progress(done, len(steps), f"exported {step}")
    versions["torch"] = torch.__version__
    record = {"format": "onnx", "model_type": model_type, "exported_at": now_iso(),
              "versions": versions, "components": components}
    write_json_atomic(run_path / EXPORT_RECORD, record)  # last: the export counts once this exists
    return record


# -- YOLO (Ultralytics' exporter) ----------------------------------------------------------------
def export_detector(run_path: Path, *, opset: int | None = None) -> dict:
    """``<weights>.onnx`` of the run's Ultralytics detector; its record entry."""
    from ultralytics import YOLO

    weights = detector_weights(run_path)
    target = weights.with_suffix(".onnx")
    model = YOLO(str(weights))
    trained = (getattr(model, "ckpt", None) or {}).get("train_args", {}).get("imgsz")
    imgsz = int(trained) if isinstance(trained, (int, float)) else (run_imgsz(run_path) or 640)
    names = {int(k): str(v) for k, v in dict(model.names).items()}
    # Ultralytics writes the .onnx beside the weights it reads: give it a link to them in a
    # temporary folder, so a failed export leaves nothing half-written in the run folder
    with tempfile.TemporaryDirectory(prefix=".export-", dir=run_path) as tmp:
        staged = link_or_copy(weights, Path(tmp) / weights.name)
        try:
            with torch_threads_kept(), quiet_ultralytics(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exported = YOLO(str(staged)).export(format="onnx", imgsz=imgsz, dynamic=False,
                                                    simplify=_has_onnxslim(), opset=opset, device="cpu",
                                                    verbose=False)
        except Exception as exc:  # Ultralytics raises many types
            raise ExportError(f"Ultralytics could not export {weights} to ONNX ({exc}).") from exc
        os.replace(exported, target)
    return {"file": _relative(target, run_path), "source": _relative(weights, run_path),
            **source_signature(weights), "imgsz": imgsz, "names": names, "exporter": "ultralytics"}


def _has_onnxslim() -> bool:
    """Ultralytics simplifies with onnxslim when asked; without it, export unsimplified rather
    than let Ultralytics try to pip-install it (there may be no network)."""
    try:
        import onnxslim  # noqa: F401
    except ImportError:
        return False
    return True


# -- ResNet classifiers (torch.onnx.export) ------------------------------------------------------
def export_classifier(run_path: Path, *, opset: int | None = None) -> dict[str, dict]:
    """The run's ResNet as ONNX: ``classifier`` (hybrid), or ``features`` + ``temporal``
    (ResNet-LSTM); their record entries, by component."""
    from pedsense.train.checkpoints import load_classifier

    weights = classifier_weights(run_path)
    model, meta = load_classifier(weights, device="cpu")
    width, height = (int(v) for v in (meta.get("crop_size") or (224, 224)))
    shared = {"source": _relative(weights, run_path), **source_signature(weights), "exporter": "torch.onnx"}
    facts = {k: meta.get(k) for k in ("model", "model_args", "class_names", "crop_size", "sequence_length")}
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, height, width, generator=generator)
    opset = opset or 17
    if meta.get("model") == "ResNetLSTM":
        if getattr(model, "context", None) is not None:
            raise ConfigError(f"{weights} fuses context features ({', '.join(model.context_groups)}); its ONNX "
                              "export is not supported yet. It predicts with PyTorch (the viewer and "
                              "`pedsense evaluate` use it as it is).")
        features = model.features
        feature_dim = int(features.feature_dim)
        facts["feature_dim"] = feature_dim
        length = int(meta.get("sequence_length") or 16)
        sequence = torch.randn(2, length, feature_dim, generator=generator)
        return {
            "features": {**_export_torch(features, images, weights.with_suffix(".features.onnx"),
                                         "images", "features", {0: "batch"}, opset), **shared, "meta": facts},
            "temporal": {**_export_torch(TemporalHead(model), sequence, weights.with_suffix(".temporal.onnx"),
                                         "features", "logits", {0: "batch", 1: "time"}, opset),
                         **shared, "meta": facts},
        }
    return {"classifier": {**_export_torch(model, images, weights.with_suffix(".onnx"), "images", "logits",
                                           {0: "batch"}, opset), **shared, "meta": facts}}


class TemporalHead(nn.Module):
    """The LSTM and head of a ``ResNetLSTM``: (B, T, D) CNN features -> (B, C) logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.lstm, self.classifier = model.lstm, model.classifier
        self.eval()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.lstm(features)
        return self.classifier(outputs[:, -1])  # the model's dropout is the identity in eval mode


def _export_torch(module: nn.Module, example: torch.Tensor, target: Path, input_name: str, output_name: str,
                  dynamic: dict[int, str], opset: int) -> dict:
    """Export ``module`` to ``target`` atomically, once ONNX Runtime is seen to agree with PyTorch.

    Returns:
        ``{"file": target's name, "max_abs_diff": largest |ONNX - PyTorch| on the check batches}``.
    """
    partial = target.with_name(f".{target.stem}.partial.onnx")
    try:
        with warnings.catch_warnings():
            # the TorchScript-based exporter (dynamo=False, as Ultralytics uses) needs only `onnx`;
            # the dynamo exporter would need onnxscript too. Torch warns that it is deprecated.
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(partial), dynamo=False, opset_version=opset,
                              input_names=[input_name], output_names=[output_name],
                              dynamic_axes={input_name: dynamic, output_name: {0: "batch"}})
        difference = _check_against_torch(module, example, partial)
        if difference is not None and difference > TOLERANCE:
            raise ExportError(f"The ONNX export of {target.name} differs from PyTorch by {difference:.2g} "
                              f"(more than {TOLERANCE:g}); it was not saved.")
        os.replace(partial, target)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"torch.onnx.export could not export {target.name} ({exc}).") from exc
    finally:
        partial.unlink(missing_ok=True)
    return {"file": target.name, "max_abs_diff": difference}


def _check_against_torch(module: nn.Module, example: torch.Tensor, path: Path) -> float | None:
    """Largest |ONNX Runtime - PyTorch| on ``example`` and on a batch of another size (None
    when onnxruntime is not installed)."""
    if onnxruntime_version() is None:
        return None
    session = ort_session(path)
    name = session.get_inputs()[0].name
    worst = 0.0
    for batch in (example, torch.cat([example, example[:1]])):  # the batch axis is dynamic
        with torch.inference_mode():
            expected = module(batch).float().numpy()
        actual = session.run(None, {name: batch.numpy()})[0]
        worst = max(worst, float(np.abs(actual - expected).max()))
    return worst


def _relative(path: Path, run_path: Path) -> str:
    return str(Path(path).relative_to(run_path))


def describe_export(record: dict) -> list[str]:
    """One line per exported file: ``best.onnx (9.3 MB) from best.pt``."""
    lines = []
    for part in (record.get("components") or {}).values():
        difference = part.get("max_abs_diff")
        checked = f", max |ONNX - PyTorch| {difference:.1e}" if difference is not None else ""
        lines.append(f"{part['file']} from {part['source']}{checked}")
    return lines


__all__ = ["ExportError", "FORMATS", "TemporalHead", "describe_export", "export_run", "require_onnx"]
