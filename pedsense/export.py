"""Export a run's models to ONNX or OpenVINO, so predictors can run them on a CPU with ONNX
Runtime or OpenVINO.

``export_run(run, format="onnx"|"openvino")`` (``pedsense export RUN --format onnx|openvino``)
writes beside the weights they come from:

- YOLO: ``best.onnx`` / ``best_openvino_model/``; hybrid: ``yolo_detector.onnx`` /
  ``yolo_detector_openvino_model/`` — Ultralytics' own exporter (``YOLO(weights).export(
  format=...)``), at the image size the detector trained at;
- hybrid: ``resnet_classifier.onnx`` / ``.xml`` + ``.bin`` (crops (N, 3, H, W) -> logits (N, C));
- ResNet-LSTM: ``best.features.*`` (crops -> CNN features (N, D)) and ``best.temporal.*``
  (features (B, T, D) -> logits (B, C)), the two halves the predictor runs apart so each crop's
  features are computed once, not once per frame they stay in a track's buffer;

the ResNet parts by ``torch.onnx.export`` or ``openvino.convert_model`` with a dynamic batch
axis, each checked against PyTorch on random batches (the largest difference is recorded).
Every file is written under a temporary name and renamed when complete; ``export.json`` (see
``pedsense.infer.backends``), written last, records each format's files, so ``load_predictor``
uses them only once an export is whole. Exporting one format keeps the other's.
"""

from __future__ import annotations

import os
import shutil
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
    FORMAT_ENGINES,
    OpenVinoModel,
    import_package,
    onnxruntime_version,
    openvino_telemetry_off,
    ort_session,
    read_exports,
    source_signature,
)
from pedsense.io import link_or_copy, write_json_atomic
from pedsense.runfolder import find_run, now_iso
from pedsense.train.ultralytics_context import ultralytics_quiet

FORMATS = tuple(FORMAT_ENGINES)  # ("onnx", "openvino")
#: largest |export - PyTorch| logit difference an export may show on its check batch (fp32 noise
#: on ResNet-50 logits is ~1e-5)
TOLERANCE = 1e-3
Progress = Callable[[int, int, str], None]


class ExportError(PedsenseError):
    """A run that cannot be exported, or a machine without the packages an export needs."""


#: format -> (the package its export needs, the pip line that installs it)
PACKAGES = {"onnx": ("onnx", "pip install onnx onnxruntime onnxslim"), "openvino": ("openvino", "pip install openvino")}


def require_format(format: str) -> str:
    """The installed version of the package ``format``'s export needs, or ExportError naming it."""
    package, install = PACKAGES[format]
    try:
        module = import_package(package)
    except ImportError as exc:
        raise ExportError(f"{format} export needs the `{package}` package, which is not installed: "
                          f"{install} (they are in requirements.txt).") from exc
    return str(getattr(module, "__version__", "?"))


def require_onnx() -> str:
    """The installed ``onnx`` version, or ExportError naming the package to install."""
    return require_format("onnx")


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
    """Export every model of a run to ``format`` and record the files in ``export.json``.

    Args:
        run: the run folder, or an id such as ``hybrid/hybrid_20250101_120000``.
        format: ``"onnx"`` (ONNX Runtime) or ``"openvino"`` (OpenVINO IR).
        opset: ONNX opset (default: Ultralytics' choice for YOLO, 17 for the ResNet parts).
        progress: ``progress(done, total, message)`` after each exported model.

    Returns:
        The format's record in ``export.json``: ``format``, ``model_type``, ``exported_at``,
        ``versions``, and per component (``detector``, ``classifier``, ``features``,
        ``temporal``) its ``file``, ``source`` weights, their size/mtime, ``max_abs_diff``.

    Raises:
        ExportError: the format's package is not installed, or a model failed to export or to
            match PyTorch.
        ConfigError: an unknown format, or an opset torch cannot export (checked first).
    """
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {format!r}.")
    check_opset(opset)
    versions = {format: require_format(format)}
    if format == "onnx":
        versions["onnxruntime"] = onnxruntime_version()
    run_path = find_run(run, home).path
    model_type = run_model_type(run_path)
    steps = {"yolo": ("detector",), "hybrid": ("detector", "classifier"),
             "resnet-lstm": ("features+temporal",)}.get(model_type)
    if steps is None:
        raise ExportError(f"Run {run_path.name} has unknown model type {model_type!r}: nothing to export.")
    # a re-export that fails half-way must not leave the old record pointing at a mix of files
    others = {f: r for f, r in read_exports(run_path).items() if f != format}
    _write_record(run_path, model_type, others)
    components: dict[str, dict] = {}
    with openvino_telemetry_off():
        for done, step in enumerate(steps, start=1):
            if step == "detector":
                components["detector"] = export_detector(run_path, format, opset=opset)
            elif step == "classifier":
                components["classifier"] = export_classifier(run_path, format, opset=opset)["classifier"]
            else:
                components.update(export_classifier(run_path, format, opset=opset))
            if progress is not None:
                progress(done, len(steps), f"exported {step}")
    versions["torch"] = torch.__version__
    record = {"format": format, "model_type": model_type, "exported_at": now_iso(),
              "versions": versions, "components": components}
    _write_record(run_path, model_type, {**others, format: record})  # last: the export counts once in it
    return record


def _write_record(run_path: Path, model_type: str, formats: dict[str, dict]) -> None:
    """``export.json`` holding ``formats`` (none: no file)."""
    if not formats:
        (run_path / EXPORT_RECORD).unlink(missing_ok=True)
        return
    write_json_atomic(run_path / EXPORT_RECORD, {"model_type": model_type, "formats": formats})


# -- YOLO (Ultralytics' exporter) ----------------------------------------------------------------
def export_detector(run_path: Path, format: str = "onnx", *, opset: int | None = None) -> dict:
    """``<weights>.onnx`` or ``<weights>_openvino_model/`` of the run's Ultralytics detector; its
    record entry."""
    from ultralytics import YOLO

    weights = detector_weights(run_path)
    target = weights.with_suffix(".onnx") if format == "onnx" else weights.with_name(f"{weights.stem}_openvino_model")
    model = YOLO(str(weights))
    trained = (getattr(model, "ckpt", None) or {}).get("train_args", {}).get("imgsz")
    imgsz = int(trained) if isinstance(trained, (int, float)) else (run_imgsz(run_path) or 640)
    names = {int(k): str(v) for k, v in dict(model.names).items()}
    options = {"simplify": _has_onnxslim(), "opset": opset} if format == "onnx" else {}  # fp32 IR: the default
    # Ultralytics writes the export beside the weights it reads: give it a link to them in a
    # temporary folder, so a failed export leaves nothing half-written in the run folder
    with tempfile.TemporaryDirectory(prefix=".export-", dir=run_path) as tmp:
        staged = link_or_copy(weights, Path(tmp) / weights.name)
        try:
            with torch_threads_kept(), ultralytics_quiet(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exported = YOLO(str(staged)).export(format=format, imgsz=imgsz, dynamic=False, device="cpu",
                                                    verbose=False, **options)
        except Exception as exc:  # Ultralytics raises many types
            raise ExportError(f"Ultralytics could not export {weights} to {format} ({exc}).") from exc
        if Path(exported).is_dir() and target.exists():
            shutil.rmtree(target)  # its record entry is already gone: nobody reads it
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
def export_classifier(run_path: Path, format: str = "onnx", *, opset: int | None = None) -> dict[str, dict]:
    """The run's ResNet in ``format``: ``classifier`` (hybrid), or ``features`` + ``temporal``
    (ResNet-LSTM); their record entries, by component."""
    from pedsense.train.checkpoints import load_classifier

    weights = classifier_weights(run_path)
    model, meta = load_classifier(weights, device="cpu")
    width, height = (int(v) for v in (meta.get("crop_size") or (224, 224)))
    exporter = "torch.onnx" if format == "onnx" else "openvino.convert_model"
    shared = {"source": _relative(weights, run_path), **source_signature(weights), "exporter": exporter}
    facts = {k: meta.get(k) for k in ("model", "model_args", "class_names", "crop_size", "sequence_length")}
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, height, width, generator=generator)
    suffix = ".onnx" if format == "onnx" else ".xml"

    def export(module, example, target, names, dynamic):
        if format == "onnx":
            return _export_torch(module, example, target, *names, dynamic, opset or 17)
        return _export_openvino(module, example, target, dynamic)

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
            "features": {**export(features, images, weights.with_suffix(".features" + suffix),
                                  ("images", "features"), {0: "batch"}), **shared, "meta": facts},
            "temporal": {**export(TemporalHead(model), sequence, weights.with_suffix(".temporal" + suffix),
                                  ("features", "logits"), {0: "batch", 1: "time"}), **shared, "meta": facts},
        }
    return {"classifier": {**export(model, images, weights.with_suffix(suffix), ("images", "logits"), {0: "batch"}),
                           **shared, "meta": facts}}


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


def _export_openvino(module: nn.Module, example: torch.Tensor, target: Path, dynamic: dict[int, str]) -> dict:
    """Convert ``module`` to an OpenVINO IR ``target`` (``.xml`` + ``.bin``) atomically, once
    OpenVINO (at fp32) is seen to agree with PyTorch.

    Returns:
        ``{"file": target's name, "max_abs_diff": largest |OpenVINO - PyTorch| on the check batches}``.
    """
    ov = import_package("openvino")

    shape = [-1 if axis in dynamic else size for axis, size in enumerate(example.shape)]
    with tempfile.TemporaryDirectory(prefix=".export-", dir=target.parent) as tmp:
        staged = Path(tmp) / target.name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                converted = ov.convert_model(module, example_input=example, input=[tuple(shape)])
            ov.save_model(converted, str(staged), compress_to_fp16=False)  # fp32 weights: as trained
            compiled = OpenVinoModel(staged)
        except Exception as exc:
            raise ExportError(f"openvino.convert_model could not export {target.name} ({exc}).") from exc
        difference = _largest_difference(module, example, compiled.run)
        if difference > TOLERANCE:
            raise ExportError(f"The OpenVINO export of {target.name} differs from PyTorch by {difference:.2g} "
                              f"(more than {TOLERANCE:g}); it was not saved.")
        os.replace(staged.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(staged, target)
    return {"file": target.name, "max_abs_diff": difference}


def _check_against_torch(module: nn.Module, example: torch.Tensor, path: Path) -> float | None:
    """Largest |ONNX Runtime - PyTorch| on ``example`` and on a batch of another size (None
    when onnxruntime is not installed)."""
    if onnxruntime_version() is None:
        return None
    session = ort_session(path)
    name = session.get_inputs()[0].name
    return _largest_difference(module, example, lambda array: session.run(None, {name: array})[0])


def _largest_difference(module: nn.Module, example: torch.Tensor, run) -> float:
    """Largest |run(batch) - module(batch)| on ``example`` and on a batch of another size."""
    worst = 0.0
    for batch in (example, torch.cat([example, example[:1]])):  # the batch axis is dynamic
        with torch.inference_mode():
            expected = module(batch).float().numpy()
        worst = max(worst, float(np.abs(run(batch.numpy()) - expected).max()))
    return worst


def _relative(path: Path, run_path: Path) -> str:
    return str(Path(path).relative_to(run_path))


def describe_export(record: dict) -> list[str]:
    """One line per exported file: ``best.onnx from best.pt, max |ONNX - PyTorch| 1.2e-05``."""
    lines = []
    label = {"onnx": "ONNX", "openvino": "OpenVINO"}.get(record.get("format"), "export")
    for part in (record.get("components") or {}).values():
        difference = part.get("max_abs_diff")
        checked = f", max |{label} - PyTorch| {difference:.1e}" if difference is not None else ""
        lines.append(f"{part['file']} from {part['source']}{checked}")
    return lines


__all__ = ["ExportError", "FORMATS", "PACKAGES", "TemporalHead", "describe_export", "export_run", "require_format",
           "require_onnx"]
