"""Which engine runs a run's models: PyTorch, or ONNX Runtime on the run's exported ONNX files.

``pedsense export RUN --format onnx`` (``pedsense.export.export_run``) writes the ONNX files
into the run folder and, last, ``export.json``: per component (``detector``, ``classifier``,
``features``, ``temporal``) the ONNX file, the weights file it was made from (size and mtime,
so a retrained run's old export is noticed) and what a predictor needs to use it without
loading the PyTorch weights. ``choose_backend`` reads it; the predictors ask it which engine
to use and say why.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from pedsense.errors import ConfigError, PedsenseError
from pedsense.io import read_json
from pedsense.runfolder import RunFolder

EXPORT_RECORD = "export.json"
BACKENDS = ("auto", "onnx", "pytorch")
PYTORCH, ONNXRUNTIME = "pytorch", "onnxruntime"
ENGINE_NAMES = {PYTORCH: "PyTorch", ONNXRUNTIME: "ONNX Runtime"}
#: the components each model type exports
COMPONENTS = {"yolo": ("detector",), "hybrid": ("detector", "classifier"),
              "resnet-lstm": ("features", "temporal")}


class BackendUnavailable(PedsenseError):
    """``backend="onnx"`` was asked for and the run cannot be run by ONNX Runtime."""


def onnxruntime_version() -> str | None:
    """The installed ONNX Runtime's version, None when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return str(onnxruntime.__version__)


def source_signature(path: Path) -> dict:
    """What identifies a weights file's content cheaply: its size and modification time."""
    stat = Path(path).stat()
    return {"source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}


def read_export(run_dir: str | os.PathLike, model_type: str) -> tuple[dict | None, str]:
    """The run's ONNX export record when it is complete and current.

    Returns:
        (record, "") or (None, a sentence saying why there is no usable export, with the fix).
    """
    run_dir = Path(run_dir)
    fix = f"run `pedsense export {RunFolder(run_dir).run_id} --format onnx`"  # an id: no server path
    record = read_json(run_dir / EXPORT_RECORD, None)
    if not isinstance(record, dict) or record.get("format") != "onnx":
        return None, f"the run has no ONNX export ({fix} to make CPU inference faster)"
    components = record.get("components") or {}
    for name in COMPONENTS.get(model_type, ()):
        part = components.get(name)
        if not isinstance(part, dict):
            return None, f"its ONNX export has no {name} model ({fix} again)"
        onnx_file, source = run_dir / str(part.get("file")), run_dir / str(part.get("source"))
        if not onnx_file.is_file():
            return None, f"{onnx_file.name} of its ONNX export is missing ({fix} again)"
        if not source.is_file() or source_signature(source) != {
                "source_size": part.get("source_size"), "source_mtime_ns": part.get("source_mtime_ns")}:
            return None, f"its ONNX export is older than {source.name} ({fix} again)"
    return record, ""


@dataclass(frozen=True)
class BackendChoice:
    """The engine a predictor uses and a sentence on why."""

    engine: str          # PYTORCH or ONNXRUNTIME
    reason: str
    record: dict | None  # the export record when ``engine`` is ONNX Runtime

    def component(self, run_dir: Path, name: str) -> tuple[Path, dict]:
        """(ONNX file, its record entry) of one exported component."""
        part = (self.record or {})["components"][name]
        return Path(run_dir) / part["file"], part


def choose_backend(run_dir: str | os.PathLike, model_type: str, requested: str, device: str) -> BackendChoice:
    """ONNX Runtime when it is asked for or, with ``auto``, on a CPU when the run has a current
    ONNX export and onnxruntime is installed; PyTorch otherwise.

    Raises:
        ConfigError: an unknown ``requested``.
        BackendUnavailable: ``requested="onnx"`` and the run cannot be run by ONNX Runtime.
    """
    requested = (requested or "auto").strip().lower()
    if requested not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {requested!r}.")
    if requested == PYTORCH:
        return BackendChoice(PYTORCH, "PyTorch was asked for", None)
    version = onnxruntime_version()
    record, why = read_export(run_dir, model_type) if version else (None, "")
    if requested == "onnx":
        if version is None:
            raise BackendUnavailable("backend='onnx' needs the `onnxruntime` package: "
                                     "pip install onnxruntime (or use backend='auto').")
        if record is None:
            raise BackendUnavailable(f"backend='onnx' is not possible: {why}.")
        if device != "cpu":
            raise BackendUnavailable(f"backend='onnx' runs on the CPU here, not on {device}: "
                                     "use device='cpu', or backend='auto' to use PyTorch on the GPU.")
        return BackendChoice(ONNXRUNTIME, "ONNX Runtime was asked for", record)
    if device != "cpu":
        return BackendChoice(PYTORCH, f"PyTorch on {device} (ONNX Runtime is used on the CPU only)", None)
    if version is None:
        return BackendChoice(PYTORCH, "onnxruntime is not installed (pip install onnxruntime for "
                                      "faster CPU inference of exported runs)", None)
    if record is None:
        return BackendChoice(PYTORCH, why, None)
    return BackendChoice(ONNXRUNTIME, f"the run's ONNX export of {record.get('exported_at', '?')}", record)


def ort_session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session; ``run`` on it is thread-safe, so one serves every browser session.

    ``threads`` (default: torch's intra-op thread count, which pedsense sets to the usable CPUs)
    keeps ONNX Runtime and PyTorch on the same number of cores.
    """
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a corrupt model
        raise BackendUnavailable(f"{path} could not be loaded by ONNX Runtime ({exc}). Export the run "
                                 "again (`pedsense export RUN --format onnx`).") from exc


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits, float32."""
    logits = np.asarray(logits, np.float32)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@contextmanager
def quiet_ultralytics() -> Iterator[None]:
    """Ultralytics' info lines (export banners, "Loading ... for ONNX Runtime inference") hidden
    for the block; its warnings still show."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


def describe_engine(engine: str, device: str) -> str:
    """``"ONNX Runtime 1.20 (CPU)"`` / ``"PyTorch 2.5 (cpu)"``."""
    if engine == ONNXRUNTIME:
        return f"ONNX Runtime {onnxruntime_version()} (CPU)"
    import torch

    return f"PyTorch {torch.__version__.split('+')[0]} ({device})"


__all__ = ["BACKENDS", "BackendChoice", "BackendUnavailable", "COMPONENTS", "ENGINE_NAMES",
           "EXPORT_RECORD", "ONNXRUNTIME", "PYTORCH", "choose_backend", "describe_engine",
           "onnxruntime_version", "ort_session", "quiet_ultralytics", "read_export", "softmax",
           "source_signature"]
