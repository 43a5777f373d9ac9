"""The stage models predictors are built from: a detector (Ultralytics), a tracker, and the
ResNet crop classifiers (PyTorch, or an export run by ONNX Runtime or OpenVINO). Each is safe
to share between threads."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from pedsense.config import CLASS_NAMES
from pedsense.data.crops import crop_pedestrian
from pedsense.device import torch_threads_kept
from pedsense.errors import ConfigError, PedsenseError
from pedsense.infer.backends import (
    ONNXRUNTIME,
    OPENVINO,
    PYTORCH,
    REDUCED_PRECISION,
    REDUCED_PRECISION_COMPONENTS,
    OpenVinoModel,
    ort_session,
    softmax,
)
from pedsense.infer.predictions import CROSSING
from pedsense.train.ultralytics_context import ultralytics_quiet

DEFAULT_TRACKER = "bytetrack.yaml"  # Ultralytics' ByteTrack: needs only `lap`, no ReID model download
#: pixels per classifier forward pass (64 crops at 224x224): bounds memory, not speed
BATCH_PIXELS = 64 * 224 * 224
#: PyTorch on a CPU: larger passes are slower per crop there (ResNet-50 at 224, 2 threads, the 48
#: crops of an 8-frame render chunk: 3.19 s in one pass, 2.56-2.72 s in passes of 6-16 crops)
CPU_BATCH_PIXELS = 16 * 224 * 224


class WeightsMissing(PedsenseError, FileNotFoundError):
    """A run folder without the weights its predictor needs."""


# -- stage models -----------------------------------------------------------------------------------
class Detector:
    """An Ultralytics YOLO model used for boxes: a ``.pt`` checkpoint, its ``.onnx`` export (run
    by ONNX Runtime) or its ``_openvino_model/`` export (OpenVINO), the exports through
    Ultralytics' own pre- and post-processing.

    Ultralytics keeps per-call state in the model object, so one model must never predict in
    two threads at once. The detector lends each call a model instance from a small pool (a new
    one when all are busy), so concurrent sessions neither wait for each other nor share state.
    Its calls keep torch's thread count: Ultralytics' first predict on CPU drops it to
    ``cpu_count - 1`` for the calling thread (see ``pedsense.device.torch_threads_kept``).
    """

    def __init__(self, weights: str | os.PathLike, *, device: str = "cpu", imgsz: int | None = None,
                 names: dict | None = None):
        self.weights = Path(weights)
        self.device = device
        self.engine = detector_engine(self.weights)
        self._idle: list[Any] = []
        self._pool_lock = threading.Lock()  # guards the pool list only, never held during a predict
        # an export: one session of ours (torch's thread count, fp32) serves every pooled model;
        # ONNX Runtime's run and OpenVinoModel's calls are thread-safe
        self._session = {ONNXRUNTIME: ort_session, OPENVINO: OpenVinoModel}.get(self.engine, lambda _: None)(self.weights)
        self.imgsz = int(imgsz or 640)  # an export has the fixed input size it was exported at
        self.model = self._load()
        if self.engine != PYTORCH:
            self.names = {int(k): str(v) for k, v in (names or dict(self.model.names)).items()}
        else:
            # predict at the size the detector trained at: a tiny model at another size finds little
            trained = (getattr(self.model, "ckpt", None) or {}).get("train_args", {}).get("imgsz")
            self.imgsz = int(trained) if isinstance(trained, (int, float)) else (imgsz or 640)
            self.names = {int(k): str(v) for k, v in dict(self.model.names).items()}
        self._idle.append(self.model)

    def _load(self):
        from ultralytics import YOLO

        try:
            model = YOLO(str(self.weights), task="detect")
        except Exception as exc:  # Ultralytics raises many types for a corrupt file
            raise WeightsMissing(
                f"{self.weights} could not be loaded as Ultralytics weights ({exc}). "
                "The file may be truncated: train (or export) the run again."
            ) from exc
        if self._session is not None:
            with ultralytics_quiet():  # Ultralytics builds its export's backend on the first predict
                self._predict(model, np.zeros((self.imgsz, self.imgsz, 3), np.uint8), 0.99)
            backend = getattr(getattr(model.predictor, "model", None), "backend", None)
            # else Ultralytics' own session stays: all cores (and bf16 for OpenVINO), not ours
            for slot in ("session", "ov_compiled_model"):
                if backend is not None and hasattr(backend, slot):
                    setattr(backend, slot, self._session)
        return model

    @contextmanager
    def _borrowed(self) -> Iterator[Any]:
        with self._pool_lock:
            model = self._idle.pop() if self._idle else None
        if model is None:
            model = self._load()
        try:
            yield model
        finally:
            with self._pool_lock:
                self._idle.append(model)

    def _predict(self, model, frame: np.ndarray, conf: float):
        with torch_threads_kept():  # else the classifier that follows runs on one core
            return model.predict(frame, conf=conf, imgsz=self.imgsz, device=self.device, verbose=False)[0]

    def result(self, frame: np.ndarray, conf: float):
        """Ultralytics' ``Results`` of one BGR frame."""
        with self._borrowed() as model:
            return self._predict(model, frame, conf)

    def detect(self, frame: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes of one BGR frame: (N, 4) xyxy, (N,) confidence, (N,) class index."""
        return _boxes_of(self.result(frame, conf).boxes)[:3]

    def track(self, frame: np.ndarray, conf: float, tracker: "Tracker") -> tuple[np.ndarray, ...]:
        """Like ``detect`` plus (N,) track ids, the tracks ``tracker`` (one clip's) confirms."""
        return tracker.update(self.result(frame, conf), frame)


def detector_engine(weights: Path) -> str:
    """The engine that runs detector weights: ``.onnx`` ONNX Runtime, an OpenVINO IR (Ultralytics'
    ``_openvino_model/`` folder or its ``.xml``) OpenVINO, else PyTorch."""
    if weights.suffix == ".onnx":
        return ONNXRUNTIME
    return OPENVINO if weights.is_dir() or weights.suffix == ".xml" else PYTORCH


def _boxes_of(boxes: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, 4) xyxy, (N,) conf, (N,) class, (N,) track id (-1 without) of Ultralytics ``Boxes``."""
    if boxes is None or len(boxes) == 0:
        return (np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int64),
                np.empty(0, np.int64))
    xyxy = np.asarray(boxes.xyxy.cpu().numpy(), np.float32)
    ids = boxes.id.cpu().numpy().astype(np.int64) if boxes.id is not None else np.full(len(xyxy), -1)
    return (xyxy, np.asarray(boxes.conf.cpu().numpy(), np.float32),
            boxes.cls.cpu().numpy().astype(np.int64), ids)


class Tracker:
    """One clip's Ultralytics tracker (ByteTrack by default): per-session state, never shared.

    ``config`` is an Ultralytics tracker YAML (its name, or a path to your own thresholds).
    Trackers that need a ReID model (``with_reid``) are refused: it would be downloaded.
    """

    def __init__(self, config: str | os.PathLike = DEFAULT_TRACKER, *, device: str = "cpu"):
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        try:
            settings = IterableSimpleNamespace(**YAML.load(check_yaml(str(config))))
        except Exception as exc:
            raise ConfigError(f"Tracker config {config} could not be read ({exc}). Use "
                              f"{DEFAULT_TRACKER!r} or a copy of Ultralytics' tracker YAML.") from exc
        kind = getattr(settings, "tracker_type", None)
        if kind not in TRACKER_MAP:
            raise ConfigError(f"Tracker config {config} has tracker_type {kind!r}; use one of {sorted(TRACKER_MAP)}.")
        if getattr(settings, "with_reid", False):
            raise ConfigError(f"Tracker config {config} asks for a ReID model (with_reid), which would be "
                              "downloaded: set with_reid: False, or use bytetrack.yaml.")
        settings.device = device
        self._tracker = TRACKER_MAP[kind](args=settings)

    def update(self, result, frame: np.ndarray) -> tuple[np.ndarray, ...]:
        """Ultralytics' ``Results`` of the clip's next frame -> (N, 4) xyxy, conf, class, track id."""
        detections = result.boxes.cpu().numpy()
        tracks = self._tracker.update(detections, frame)  # rows: x1 y1 x2 y2 id score cls index
        if len(tracks) == 0:
            return _boxes_of(None)
        return (tracks[:, :4].astype(np.float32), tracks[:, 5].astype(np.float32),
                tracks[:, 6].astype(np.int64), tracks[:, 4].astype(np.int64))


class _CropModel:
    """What the two classifier engines share: checkpoint facts, crops, batching and labels."""

    engine = ""

    def _init_meta(self, meta: dict) -> None:
        self.meta = meta
        self.class_names = tuple(meta.get("class_names") or CLASS_NAMES)
        self.crop_size = tuple(int(v) for v in (meta.get("crop_size") or (224, 224)))
        self.sequence_length = int(meta.get("sequence_length") or 1)
        self.crossing_index = self.class_names.index(CROSSING) if CROSSING in self.class_names else 1
        self.batch_size = max(1, BATCH_PIXELS // (self.crop_size[0] * self.crop_size[1]))
        fusion = (meta.get("model_args") or {}).get("context") or {}
        #: the context feature groups a fused ResNet-LSTM reads beside the crops (empty: crops alone)
        self.context_groups = tuple(fusion.get("group_dims") or ())

    # engine-specific: (N, 3, H, W) float32 tensor in, numpy out
    def _image_logits(self, images) -> np.ndarray:
        raise NotImplementedError

    def _image_features(self, images) -> np.ndarray:
        raise NotImplementedError

    def _sequence_logits(self, features: np.ndarray, context: dict | None = None) -> np.ndarray:
        raise NotImplementedError

    @property
    def splits_into_features(self) -> bool:
        """True for a ResNet-LSTM whose CNN and LSTM run apart (features per crop, then the LSTM)."""
        return False

    def _tensor(self, crops: Sequence[np.ndarray]):
        from pedsense.train.transforms import crops_to_tensor

        return crops_to_tensor(list(crops), self.crop_size)

    def _batched(self, crops: Sequence[np.ndarray], run, width: int) -> np.ndarray:
        """``run`` over the crops in forward passes of at most ``batch_size``: (N, width)."""
        if len(crops) == 0:
            return np.empty((0, width), np.float32)
        parts = [run(self._tensor(crops[start:start + self.batch_size]))
                 for start in range(0, len(crops), self.batch_size)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def classify(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of N crops, in one forward pass (up to ``batch_size``): (N, C) float32."""
        return softmax(self._batched(list(crops), self._image_logits, len(self.class_names)))

    def classify_one_by_one(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """The same result with one forward per crop (the baseline the benchmark compares)."""
        rows = [self.classify([crop]) for crop in crops]
        return np.concatenate(rows) if rows else self.classify([])

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """CNN features of N crops in one forward pass (up to ``batch_size``): (N, D) float32."""
        return self._batched(list(crops), self._image_features, self.feature_dim)

    def classify_feature_sequences(self, sequences: Sequence[np.ndarray],
                                   context: dict | None = None) -> np.ndarray:
        """Class probabilities of B sequences of (T, D) CNN features, in one pass: (B, C) float32.
        A fused model also takes each window's context features, ``{group: (B, T_g, D_g)}``.

        The same result as ``classify_sequences`` on the crops (the CNN sees each crop alone
        and BatchNorm is frozen in eval mode), but each crop's features are computed once
        instead of once per frame it stays in a track's buffer: 16x less CNN work.
        """
        if len(sequences) == 0:
            return np.empty((0, len(self.class_names)), np.float32)
        return softmax(self._sequence_logits(np.stack(sequences).astype(np.float32, copy=False), context))

    def classify_sequences(self, sequences: Sequence[Sequence[np.ndarray]],
                           context: dict | None = None) -> np.ndarray:
        """Class probabilities of B crop sequences of equal length T: (B, C) float32."""
        if len(sequences) == 0:
            return np.empty((0, len(self.class_names)), np.float32)
        lengths = {len(sequence) for sequence in sequences}
        if len(lengths) != 1:
            raise ValueError(f"sequences must have one length, got {sorted(lengths)}")
        features = self.embed([crop for sequence in sequences for crop in sequence])
        return self.classify_feature_sequences(list(features.reshape(len(sequences), lengths.pop(), -1)), context)

    def crops(self, frame: np.ndarray, xyxy: np.ndarray) -> list[np.ndarray]:
        """Crops of every (N, 4) box in a frame, by the shared cropping rule."""
        return [crop_pedestrian(frame, box, self.crop_size) for box in xyxy]

    def labels_of(self, probabilities: np.ndarray) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """Predicted labels, their probability and P(crossing) from (N, C) probabilities."""
        if len(probabilities) == 0:
            return (), np.empty(0, np.float32), np.empty(0, np.float32)
        best = probabilities.argmax(axis=1)
        labels = tuple(self.class_names[i] for i in best)
        return labels, probabilities.max(axis=1), probabilities[:, self.crossing_index]


class CropClassifier(_CropModel):
    """A ResNet checkpoint (``ResNetClassifier`` or ``ResNetLSTM``) run by PyTorch.

    Inference runs under ``torch.inference_mode`` with the model and its inputs in channels-last
    memory order (oneDNN's preferred layout on CPUs; ≈1.5-2x faster convolutions than NCHW).
    Concurrent forward passes on one eval-mode model are safe, so one classifier serves every
    session.
    """

    engine = PYTORCH

    def __init__(self, weights: str | os.PathLike, *, device: str = "cpu", channels_last: bool = True):
        import torch

        from pedsense.train.checkpoints import load_classifier

        self.weights = Path(weights)
        try:
            self.model, meta = load_classifier(self.weights, device=device)
        except PedsenseError:
            raise
        except Exception as exc:
            raise WeightsMissing(
                f"{self.weights} could not be loaded as a pedsense classifier ({exc}). "
                "Train the run again."
            ) from exc
        self.model.eval()
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self._init_meta(meta)
        if str(device).startswith("cpu"):
            self.batch_size = max(1, CPU_BATCH_PIXELS // (self.crop_size[0] * self.crop_size[1]))
        features = getattr(self.model, "features", None)
        self.feature_dim = int(getattr(features, "feature_dim", 0) or 0)

    @property
    def splits_into_features(self) -> bool:
        return all(hasattr(self.model, name) for name in ("features", "lstm", "classifier"))

    def _input(self, images):
        return images.to(self.device).contiguous(memory_format=self.memory_format)

    def _image_logits(self, images) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(self._input(images)).float().cpu().numpy()

    def _image_features(self, images) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.features(self._input(images)).float().cpu().numpy()

    def _context(self, context: dict | None):
        """A window batch's context features as tensors on the model's device (None: none)."""
        import torch

        if context is None:
            return None
        return {g: torch.as_tensor(np.asarray(context[g], np.float32), device=self.device)
                for g in self.context_groups}

    def _sequence_logits(self, features: np.ndarray, context: dict | None = None) -> np.ndarray:
        import torch

        with torch.inference_mode():  # the LSTM (+ a fused model's context encoder) and the head
            features = torch.from_numpy(features).to(self.device)
            return self.model.classify_features(features, self._context(context)).float().cpu().numpy()

    def classify_sequences(self, sequences: Sequence[Sequence[np.ndarray]],
                           context: dict | None = None) -> np.ndarray:
        """Class probabilities of B crop sequences of equal length T, by the whole model in one
        forward pass: (B, C) float32 (the reference the feature buffers are checked against)."""
        import torch

        if len(sequences) == 0:
            return np.empty((0, len(self.class_names)), np.float32)
        with torch.inference_mode():
            batch = torch.stack([self._tensor(sequence) for sequence in sequences])  # (B, T, 3, H, W)
            return softmax(self.model(batch.to(self.device), self._context(context)).float().cpu().numpy())


class ExportedCropClassifier(_CropModel):
    """A ResNet classifier's export run by ONNX Runtime or OpenVINO: ``classifier`` (images ->
    logits), or a ResNet-LSTM's ``features`` (images -> CNN features) and ``temporal`` (features
    -> logits). On ``openvino-bf16`` the CNN (``classifier``, ``features``) computes in bfloat16;
    the LSTM stays float32.

    The checkpoint facts (class names, crop size, sequence length) come from the export record,
    so the PyTorch weights are never loaded. Both engines' calls are thread-safe.
    """

    def __init__(self, files: dict[str, Path], meta: dict, engine: str = ONNXRUNTIME):
        self.engine = engine
        self.files = {name: Path(path) for name, path in files.items()}
        self.sessions = {name: _session_runner(engine, path, name) for name, path in self.files.items()}
        self.weights = next(iter(self.files.values()))
        self.device = "cpu"
        self._init_meta(meta)
        self.feature_dim = int(meta.get("feature_dim") or 0)

    @property
    def splits_into_features(self) -> bool:
        return {"features", "temporal"} <= set(self.sessions)

    def _image_logits(self, images) -> np.ndarray:
        return self.sessions["classifier"](images.numpy())

    def _image_features(self, images) -> np.ndarray:
        return self.sessions["features"](images.numpy())

    def _sequence_logits(self, features: np.ndarray, context: dict | None = None) -> np.ndarray:
        return self.sessions["temporal"](features)  # a fused run is never exported (export_classifier)


def _session_runner(engine: str, path: Path, component: str = ""):
    """``run(array) -> first output`` of an exported model (``component`` of its export) on its
    engine; a reduced-precision engine runs only ``REDUCED_PRECISION_COMPONENTS`` so."""
    if engine in REDUCED_PRECISION:
        precision = REDUCED_PRECISION[engine][1] if component in REDUCED_PRECISION_COMPONENTS else "f32"
        return OpenVinoModel(path, precision=precision).run
    if engine == OPENVINO:
        return OpenVinoModel(path).run
    session = ort_session(path)
    name = session.get_inputs()[0].name
    return lambda array: session.run(None, {name: array})[0]
