"""Which engine runs a run's models: PyTorch, ONNX Runtime or OpenVINO on the run's exports.

``pedsense export RUN --format onnx|openvino`` (``pedsense.export.export_run``) writes the
exported files into the run folder and, last, ``export.json``::

    {"model_type": "hybrid",
     "formats": {"onnx":     {"format": "onnx", "exported_at", "versions", "components": {...}},
                 "openvino": {"format": "openvino", ...}}}

(a record written before OpenVINO, ``{"format": "onnx", ...}`` at the top, reads as the one
format it holds). Per component (``detector``, ``classifier``, ``features``, ``temporal``) a
format's record names the exported file, the weights file it was made from (size and mtime,
so a retrained run's old export is noticed) and what a predictor needs to use it without
loading the PyTorch weights. ``choose_backend`` reads it and says which engines may run the
run and why; ``pedsense.infer.engines`` times them on first use and picks the fastest.

An OpenVINO export also runs in bfloat16 (``openvino-bf16``) on CPUs with bf16 units (AVX512-BF16,
AMX): about twice as fast for the ResNet parts, whose results then differ from the trained model's
a little. Only the crop models run so (``REDUCED_PRECISION_COMPONENTS``; a detector's boxes stay
float32), and ``auto`` takes it only where its predictions agree with float32 (``engines``).
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from pedsense.errors import ConfigError, PedsenseError
from pedsense.io import read_json
from pedsense.runfolder import RunFolder

EXPORT_RECORD = "export.json"
PYTORCH, ONNXRUNTIME, OPENVINO = "pytorch", "onnxruntime", "openvino"
OPENVINO_BF16 = "openvino-bf16"
ENGINE_NAMES = {PYTORCH: "PyTorch", ONNXRUNTIME: "ONNX Runtime", OPENVINO: "OpenVINO",
                OPENVINO_BF16: "OpenVINO bf16"}
#: export format -> the engine that runs it; engine -> the package it needs
FORMAT_ENGINES = {"onnx": ONNXRUNTIME, "openvino": OPENVINO}
ENGINE_PACKAGES = {ONNXRUNTIME: "onnxruntime", OPENVINO: "openvino"}
#: a reduced-precision engine -> (the float32 engine that runs the same export, its precision)
REDUCED_PRECISION = {OPENVINO_BF16: (OPENVINO, "bf16")}
#: engine -> the export format it runs
ENGINE_FORMATS = {engine: format for format, engine in FORMAT_ENGINES.items()}
# a reduced-precision engine runs its float32 twin's export, with its twin's package
ENGINE_FORMATS.update({reduced: ENGINE_FORMATS[full] for reduced, (full, _) in REDUCED_PRECISION.items()})
ENGINE_PACKAGES.update({reduced: ENGINE_PACKAGES[full] for reduced, (full, _) in REDUCED_PRECISION.items()})
#: the components a reduced-precision engine runs (the rest of a run stays at float32)
REDUCED_PRECISION_COMPONENTS = ("classifier", "features")
#: what ``backend=`` accepts: auto, an export format, openvino-bf16, or pytorch
BACKENDS = ("auto", *FORMAT_ENGINES, OPENVINO_BF16, PYTORCH)
#: the components each model type exports
COMPONENTS = {"yolo": ("detector",), "hybrid": ("detector", "classifier"),
              "resnet-lstm": ("features", "temporal")}
#: the components that share one engine (a ResNet-LSTM's halves pass features to each other)
ENGINE_GROUPS = {"yolo": (("detector",),), "hybrid": (("detector",), ("classifier",)),
                 "resnet-lstm": (("features", "temporal"),)}


class BackendUnavailable(PedsenseError):
    """An engine was asked for and the run cannot be run by it (not installed, no export, a
    file it cannot load)."""


# who is inside openvino_telemetry_off, and the CI variable it found
_TELEMETRY_SWITCH: dict = {"lock": threading.Lock(), "depth": 0, "before": None}


@contextmanager
def openvino_telemetry_off() -> Iterator[None]:
    """OpenVINO's converter, once imported and on every ``convert_model`` (Ultralytics' exporter
    calls it too), sends usage statistics to Google Analytics and writes a client id under
    ``~/intel`` unless the user has opted out, and waits on the network each time (about 2 s
    offline). pedsense asks nothing of the network for an export or an engine: the telemetry is
    off for the block, through the switch the converter honours itself (``disable_in_ci``:
    ``CI=true``). The variable comes back afterwards; a user's own opt-in or opt-out file is never
    touched. Blocks may nest and overlap across threads (dashboard sessions): the first to enter
    sets the variable, the last to leave restores it."""
    with _TELEMETRY_SWITCH["lock"]:
        if _TELEMETRY_SWITCH["depth"] == 0:
            _TELEMETRY_SWITCH["before"] = os.environ.get("CI")
            os.environ["CI"] = "true"
        _TELEMETRY_SWITCH["depth"] += 1
    try:
        yield
    finally:
        with _TELEMETRY_SWITCH["lock"]:
            _TELEMETRY_SWITCH["depth"] -= 1
            if _TELEMETRY_SWITCH["depth"] == 0:
                before = _TELEMETRY_SWITCH["before"]
                if before is None:
                    os.environ.pop("CI", None)
                else:
                    os.environ["CI"] = before


def import_package(name: str):
    """An engine's or export's package (``openvino``, ``onnxruntime``, ``onnx``, ...), imported with
    OpenVINO's telemetry off (:func:`openvino_telemetry_off`). Raises ImportError when it is not
    installed."""
    with openvino_telemetry_off():
        return importlib.import_module(name)


def engine_version(engine: str) -> str | None:
    """The installed version of an engine's package, None when it is not installed."""
    module = {PYTORCH: "torch", **ENGINE_PACKAGES}[engine]
    try:
        package = import_package(module)
    except ImportError:
        return None
    return str(getattr(package, "__version__", "?")).split("+")[0].split("-")[0]


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether OpenVINO computes bfloat16 natively on this CPU (AVX512-BF16 or AMX units; its
    ``OPTIMIZATION_CAPABILITIES`` list ``BF16``). False when OpenVINO is not installed."""
    try:
        ov = import_package("openvino")
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # not installed, or no CPU device OpenVINO can query
        return False


def onnxruntime_version() -> str | None:
    """The installed ONNX Runtime's version, None when it is not installed."""
    return engine_version(ONNXRUNTIME)


def source_signature(path: Path) -> dict:
    """What identifies a weights file's content cheaply: its size and modification time."""
    stat = Path(path).stat()
    return {"source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}


def read_exports(run_dir: str | os.PathLike) -> dict[str, dict]:
    """{format: its export record} of ``export.json`` (empty when there is none)."""
    record = read_json(Path(run_dir) / EXPORT_RECORD, None)
    if not isinstance(record, dict):
        return {}
    if isinstance(record.get("formats"), dict):
        return {name: part for name, part in record["formats"].items()
                if name in FORMAT_ENGINES and isinstance(part, dict)}
    if record.get("format") in FORMAT_ENGINES:  # the layout before OpenVINO: one format
        return {record["format"]: record}
    return {}


def read_export(run_dir: str | os.PathLike, model_type: str, format: str = "onnx") -> tuple[dict | None, str]:
    """The run's export record in ``format`` when it is complete and current.

    Returns:
        (record, "") or (None, a sentence saying why there is no usable export, with the fix).
    """
    run_dir = Path(run_dir)
    fix = f"run `pedsense export {RunFolder(run_dir).run_id} --format {format}`"  # an id: no server path
    record = read_exports(run_dir).get(format)
    if record is None:
        return None, f"the run has no {format} export ({fix} to make CPU inference faster)"
    components = record.get("components")
    if not isinstance(components, dict):
        return None, f"its {format} export record (export.json) cannot be read ({fix} again)"
    for name in COMPONENTS.get(model_type, ()):
        part = components.get(name)
        if not isinstance(part, dict) or not all(isinstance(part.get(key), str) for key in ("file", "source")):
            return None, f"its {format} export has no {name} model ({fix} again)"
        exported, source = run_dir / str(part.get("file")), run_dir / str(part.get("source"))
        if not exported.exists():
            return None, f"{exported.name} of its {format} export is missing ({fix} again)"
        if not source.is_file() or source_signature(source) != {
                "source_size": part.get("source_size"), "source_mtime_ns": part.get("source_mtime_ns")}:
            return None, f"its {format} export is older than {source.name} ({fix} again)"
    return record, ""


@dataclass(frozen=True)
class BackendChoice:
    """The engine of each component a predictor uses, and a sentence on why.

    ``candidates``: the engines that may run the run, best first (``auto`` on a CPU: every
    current export whose engine is installed, then PyTorch); ``engines``: the one chosen per
    component (set by ``pedsense.infer.engines`` after timing them); ``notes``: engines passed
    over (not installed, stale export, failed to load), said to the user.
    """

    candidates: tuple[str, ...]
    reason: str
    records: dict = field(default_factory=dict)  # format -> export record, for the exported engines
    engines: dict = field(default_factory=dict)  # component -> engine
    notes: tuple[str, ...] = ()
    measured: tuple[str, ...] = ()  # per stage: the timings that chose its engine

    @property
    def engine(self) -> str:
        """The engine in use: ``"openvino"``, or ``"openvino+onnxruntime"`` when components differ."""
        chosen = list(dict.fromkeys(self.engines.values())) or list(self.candidates[:1])
        return "+".join(chosen)

    def engine_of(self, component: str) -> str:
        return self.engines.get(component) or self.candidates[0]

    def component(self, run_dir: Path, name: str, engine: str | None = None) -> tuple[Path, dict]:
        """(exported file, its record entry) of one component for ``engine`` (default: its own)."""
        engine = engine or self.engine_of(name)
        part = self.records[ENGINE_FORMATS[engine]]["components"][name]
        return Path(run_dir) / part["file"], part


def choose_backend(run_dir: str | os.PathLike, model_type: str, requested: str, device: str) -> BackendChoice:
    """The engines that may run the run: the one asked for, or with ``auto`` on a CPU every
    current export whose engine is installed (then PyTorch); PyTorch otherwise.

    Raises:
        ConfigError: an unknown ``requested``.
        BackendUnavailable: an export format was asked for and the run cannot be run by its engine.
    """
    requested = (requested or "auto").strip().lower()
    if requested not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {requested!r}.")
    if requested == PYTORCH:
        return BackendChoice((PYTORCH,), "PyTorch was asked for")
    if requested != "auto":
        engine = FORMAT_ENGINES.get(requested, requested)
        format = ENGINE_FORMATS[engine]
        if engine_version(engine) is None:
            raise BackendUnavailable(f"backend={requested!r} needs the `{ENGINE_PACKAGES[engine]}` package: "
                                     f"pip install {ENGINE_PACKAGES[engine]} (or use backend='auto').")
        record, why = read_export(run_dir, model_type, format)
        if record is None:
            raise BackendUnavailable(f"backend={requested!r} is not possible: {why}.")
        if device != "cpu":
            raise BackendUnavailable(f"backend={requested!r} runs on the CPU here, not on {device}: "
                                     "use device='cpu', or backend='auto' to use PyTorch on the GPU.")
        if engine in REDUCED_PRECISION and not cpu_has_bf16():
            raise BackendUnavailable(f"backend={requested!r} needs a CPU with bf16 units (AVX512-BF16 or AMX), "
                                     f"and OpenVINO finds none on this one: use backend={format!r}.")
        return BackendChoice((engine,), f"{ENGINE_NAMES[engine]} was asked for", {format: record})
    if device != "cpu":
        return BackendChoice((PYTORCH,), f"PyTorch on {device} (exported engines run on the CPU only)")
    records, notes, missing = {}, [], []
    for format, engine in FORMAT_ENGINES.items():
        record, why = read_export(run_dir, model_type, format)
        if record is None:
            missing.append(why)
        elif engine_version(engine) is None:
            notes.append(f"{ENGINE_NAMES[engine]} is not installed (pip install {ENGINE_PACKAGES[engine]}); "
                         f"its {format} export is not used")
        else:
            records[format] = record
    if not records:
        reason = "; ".join(notes) or missing[0]
        return BackendChoice((PYTORCH,), reason, notes=tuple(notes))
    exported = max(str(record.get("exported_at") or "") for record in records.values())
    candidates = tuple(FORMAT_ENGINES[f] for f in records)
    candidates += tuple(reduced for reduced, (full, _) in REDUCED_PRECISION.items()
                        if full in candidates and cpu_has_bf16())
    candidates += (PYTORCH,)
    return BackendChoice(candidates, f"the run's export of {exported or '?'}", records, notes=tuple(notes))


# -- engine sessions --------------------------------------------------------------------------------
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
    # no busy-waiting between runs: its spinning threads would take the cores from the stage
    # that runs next on another engine (a detector in OpenVINO, a classifier in PyTorch)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a corrupt model
        raise BackendUnavailable(f"{path} could not be loaded by ONNX Runtime ({exc}).") from exc


class OpenVinoModel:
    """An OpenVINO IR model compiled for the CPU; calls are thread-safe (each borrows an infer
    request from a pool, as one request must never run in two threads at once).

    It runs at ``precision`` (``INFERENCE_PRECISION_HINT``), float32 unless told: on CPUs with
    bf16 units OpenVINO would otherwise choose bfloat16 itself, whose results differ from the
    trained model's (up to ~0.3 in a ResNet-50's logits). ``threads`` (default torch's) keeps it on
    the cores PyTorch uses.
    """

    def __init__(self, path: Path, threads: int | None = None, precision: str = "f32"):
        try:
            ov = import_package("openvino")
        except ImportError as exc:
            raise BackendUnavailable("OpenVINO is not installed: pip install openvino.") from exc
        import torch

        xml = Path(path)
        if xml.is_dir():  # Ultralytics' <weights>_openvino_model/ folder
            xml = next(xml.glob("*.xml"), xml / "missing.xml")
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision,
                  "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads())}
        try:
            self.compiled = ov.Core().compile_model(str(xml), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError for a missing or corrupt IR
            raise BackendUnavailable(f"{path} could not be loaded by OpenVINO ({exc}).") from exc
        self.path = Path(path)
        self.precision = precision
        self._idle: list = []
        self._lock = threading.Lock()

    def __call__(self, array: np.ndarray) -> dict:
        """{output: array} for one input, like ``CompiledModel.__call__`` (what Ultralytics calls)."""
        with self._lock:
            request = self._idle.pop() if self._idle else self.compiled.create_infer_request()
        try:
            request.infer({0: np.ascontiguousarray(array, np.float32)})
            return {output: np.array(request.get_tensor(output).data) for output in self.compiled.outputs}
        finally:
            with self._lock:
                self._idle.append(request)

    def run(self, array: np.ndarray) -> np.ndarray:
        """The first output of one input."""
        return next(iter(self(array).values()))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits, float32."""
    logits = np.asarray(logits, np.float32)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def describe_engine(engine: str, device: str) -> str:
    """``"ONNX Runtime 1.20 (CPU)"`` / ``"PyTorch 2.5 (cpu)"`` / ``"OpenVINO 2025.1 + ONNX Runtime 1.20 (CPU)"``."""
    if engine == PYTORCH:
        return f"PyTorch {engine_version(PYTORCH)} ({device})"
    parts = [f"{ENGINE_NAMES.get(e, e)} {engine_version(e) if e in ENGINE_NAMES else ''}".strip()
             for e in engine.split("+")]
    return f"{' + '.join(parts)} ({'CPU' if PYTORCH not in engine.split('+') else device})"


__all__ = ["BACKENDS", "BackendChoice", "BackendUnavailable", "COMPONENTS", "ENGINE_FORMATS", "ENGINE_GROUPS",
           "ENGINE_NAMES", "ENGINE_PACKAGES", "EXPORT_RECORD", "FORMAT_ENGINES", "ONNXRUNTIME",
           "OPENVINO", "OPENVINO_BF16", "OpenVinoModel", "PYTORCH", "REDUCED_PRECISION", "REDUCED_PRECISION_COMPONENTS",
           "choose_backend", "cpu_has_bf16", "describe_engine", "engine_version", "import_package",
           "onnxruntime_version", "openvino_telemetry_off", "ort_session",
           "read_export", "read_exports", "softmax", "source_signature"]
