"""Predictors: each loads from a run folder alone and turns BGR frames into ``Predictions``.

- ``YoloPredictor``: a 2-class YOLO run (``not-crossing``/``crossing``) — class and confidence.
- ``HybridPredictor``: the run's 1-class detector, then the crops of the frames classified by the
  ResNet classifier in one batch.
- ``ResNetLSTMPredictor``: pedestrians tracked over frames (ground-truth track ids when the clip
  is annotated, else Ultralytics' tracker on a detector run the user picks), the last
  ``sequence_length`` crops' CNN features buffered per track, intent once a buffer is full,
  ``buffering`` before.

A predictor holds only weights and is safe to share between threads (the dashboard caches one
for every browser session). What belongs to one clip — tracks, crop buffers, the tracker, the
last frame seen — lives in a ``ClipState``: ``state = predictor.new_state()``, then
``predictor.predict(frame, index, truth, state=state)``. Without ``state`` a predictor uses its
own default state (``predictor.state``), which suits one caller at a time.

``load_predictor(run)`` picks the predictor from the run's ``config.json`` and the engine
(``predictor.backend``): ONNX Runtime on a CPU when the run has an ONNX export (``pedsense export
RUN --format onnx``) and onnxruntime is installed, PyTorch otherwise.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from pedsense.config import CLASS_NAMES
from pedsense.data.crops import crop_pedestrian
from pedsense.device import torch_threads_kept
from pedsense.errors import ConfigError, PedsenseError
from pedsense.infer.backends import (ONNXRUNTIME, PYTORCH, BackendChoice, choose_backend, describe_engine,
                                     ort_session, quiet_ultralytics, softmax)
from pedsense.infer.predictions import BUFFERING, CROSSING, GroundTruth, Predictions
from pedsense.io import read_json

DEFAULT_CONFIDENCE = 0.25
DEFAULT_TRACKER = "bytetrack.yaml"  # Ultralytics' ByteTrack: needs only `lap`, no ReID model download
#: pixels per classifier forward pass (64 crops at 224x224): bounds memory, not speed
BATCH_PIXELS = 64 * 224 * 224
#: frames predicted together when a whole clip is read (renders, the intent chart)
FRAME_CHUNK = 8


class WeightsMissing(PedsenseError, FileNotFoundError):
    """A run folder without the weights its predictor needs."""


class RunTypeError(ConfigError):
    """A run of the wrong model type for what was asked."""


class TracksUnavailable(PedsenseError):
    """A ResNet-LSTM run asked to predict on a clip with neither annotations nor a tracker."""


# -- run folders ----------------------------------------------------------------------------------
def run_model_type(run_dir: str | os.PathLike) -> str:
    """The run's ``model_type`` from ``config.json``, else its parent folder's name."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise WeightsMissing(f"Run folder {run_dir} does not exist. Pick a run listed by `pedsense runs`.")
    config = read_json(run_dir / "config.json", {}) or {}
    return str(config.get("model_type") or run_dir.parent.name)


def require_weights(path: str | os.PathLike, what: str) -> Path:
    """``path`` when it is a file, else ``WeightsMissing`` saying what it should have held."""
    path = Path(path)
    if not path.is_file():
        raise WeightsMissing(
            f"{path.parent} has no {path.name} ({what}). The run may have failed or been stopped "
            "before saving weights: pick another run, or train it again."
        )
    return path


def detector_weights(run_dir: str | os.PathLike) -> Path:
    """The Ultralytics checkpoint of a detector run: hybrid ``yolo_detector.pt`` or YOLO ``best.pt``."""
    run_dir = Path(run_dir)
    model_type = run_model_type(run_dir)
    if model_type == "hybrid":
        return require_weights(run_dir / "yolo_detector.pt", "the hybrid's stage-1 detector")
    if model_type == "yolo":
        for candidate in (run_dir / "best.pt", run_dir / "weights" / "best.pt", run_dir / "last.pt"):
            if candidate.is_file():
                return candidate
        return require_weights(run_dir / "best.pt", "the YOLO weights")
    raise RunTypeError(
        f"Run {run_dir.name} is a {model_type} run, which has no detector. "
        "Pick a YOLO or hybrid run as the tracker."
    )


def classifier_weights(run_dir: str | os.PathLike) -> Path:
    """The ResNet checkpoint of a run: hybrid ``resnet_classifier.pt`` or ResNet-LSTM ``best.pt``."""
    run_dir = Path(run_dir)
    model_type = run_model_type(run_dir)
    if model_type == "hybrid":
        return require_weights(run_dir / "resnet_classifier.pt", "the hybrid's stage-2 classifier")
    if model_type == "resnet-lstm":
        return require_weights(run_dir / "best.pt", "the ResNet-LSTM weights")
    raise RunTypeError(f"Run {run_dir.name} is a {model_type} run, which has no ResNet classifier.")


def run_imgsz(run_dir: str | os.PathLike) -> int | None:
    """The image size the run's config records, if any."""
    config = read_json(Path(run_dir) / "config.json", {}) or {}
    for source in (config.get("parameters") or {}, config.get("params") or {}, config):
        value = source.get("imgsz")
        if isinstance(value, (int, float)) and value > 0:
            return int(value)
    return None


# -- stage models -----------------------------------------------------------------------------------
class Detector:
    """An Ultralytics YOLO model used for boxes: a ``.pt`` checkpoint, or its ``.onnx`` export
    (run by ONNX Runtime through Ultralytics' own pre- and post-processing).

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
        self.engine = ONNXRUNTIME if self.weights.suffix == ".onnx" else PYTORCH
        self._idle: list[Any] = []
        self._pool_lock = threading.Lock()  # guards the pool list only, never held during a predict
        # ONNX: one session of ours (torch's thread count) serves every pooled model; its run is thread-safe
        self._session = ort_session(self.weights) if self.engine == ONNXRUNTIME else None
        self.imgsz = int(imgsz or 640)  # an ONNX export has the fixed input size it was exported at
        self.model = self._load()
        if self.engine == ONNXRUNTIME:
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
            with quiet_ultralytics():  # Ultralytics builds its ONNX Runtime backend on the first predict
                self._predict(model, np.zeros((self.imgsz, self.imgsz, 3), np.uint8), 0.99)
            backend = getattr(getattr(model.predictor, "model", None), "backend", None)
            if backend is not None and hasattr(backend, "session"):
                backend.session = self._session  # else Ultralytics' own (all cores) stays: slower, not wrong
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

    # engine-specific: (N, 3, H, W) float32 tensor in, numpy out
    def _image_logits(self, images) -> np.ndarray:
        raise NotImplementedError

    def _image_features(self, images) -> np.ndarray:
        raise NotImplementedError

    def _sequence_logits(self, features: np.ndarray) -> np.ndarray:
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

    def classify_feature_sequences(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of B sequences of (T, D) CNN features, in one pass: (B, C) float32.

        The same result as ``classify_sequences`` on the crops (the CNN sees each crop alone
        and BatchNorm is frozen in eval mode), but each crop's features are computed once
        instead of once per frame it stays in a track's buffer: 16x less CNN work.
        """
        if len(sequences) == 0:
            return np.empty((0, len(self.class_names)), np.float32)
        return softmax(self._sequence_logits(np.stack(sequences).astype(np.float32, copy=False)))

    def classify_sequences(self, sequences: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """Class probabilities of B crop sequences of equal length T: (B, C) float32."""
        if len(sequences) == 0:
            return np.empty((0, len(self.class_names)), np.float32)
        lengths = {len(sequence) for sequence in sequences}
        if len(lengths) != 1:
            raise ValueError(f"sequences must have one length, got {sorted(lengths)}")
        features = self.embed([crop for sequence in sequences for crop in sequence])
        return self.classify_feature_sequences(list(features.reshape(len(sequences), lengths.pop(), -1)))

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

    def _sequence_logits(self, features: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            outputs, _ = self.model.lstm(torch.from_numpy(features).to(self.device))  # (B, T, H)
            return self.model.classifier(outputs[:, -1]).float().cpu().numpy()  # dropout: identity in eval

    def classify_sequences(self, sequences: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """Class probabilities of B crop sequences of equal length T, by the whole model in one
        forward pass: (B, C) float32 (the reference the feature buffers are checked against)."""
        import torch

        if len(sequences) == 0:
            return np.empty((0, len(self.class_names)), np.float32)
        with torch.inference_mode():
            batch = torch.stack([self._tensor(sequence) for sequence in sequences])  # (B, T, 3, H, W)
            return softmax(self.model(batch.to(self.device)).float().cpu().numpy())


class OnnxCropClassifier(_CropModel):
    """A ResNet classifier's ONNX export run by ONNX Runtime: ``classifier`` (images -> logits),
    or a ResNet-LSTM's ``features`` (images -> CNN features) and ``temporal`` (features -> logits).

    The checkpoint facts (class names, crop size, sequence length) come from the export record,
    so the PyTorch weights are never loaded. ``InferenceSession.run`` is thread-safe.
    """

    engine = ONNXRUNTIME

    def __init__(self, files: dict[str, Path], meta: dict):
        self.files = {name: Path(path) for name, path in files.items()}
        self.sessions = {name: ort_session(path) for name, path in self.files.items()}
        self.weights = next(iter(self.files.values()))
        self.device = "cpu"
        self._init_meta(meta)
        self.feature_dim = int(meta.get("feature_dim") or 0)

    @property
    def splits_into_features(self) -> bool:
        return {"features", "temporal"} <= set(self.sessions)

    def _run(self, name: str, array: np.ndarray) -> np.ndarray:
        session = self.sessions[name]
        return session.run(None, {session.get_inputs()[0].name: array})[0]

    def _image_logits(self, images) -> np.ndarray:
        return self._run("classifier", images.numpy())

    def _image_features(self, images) -> np.ndarray:
        return self._run("features", images.numpy())

    def _sequence_logits(self, features: np.ndarray) -> np.ndarray:
        return self._run("temporal", features)


# -- per-clip state ------------------------------------------------------------------------------
@dataclass
class ClipState:
    """What one viewer session (or one render) knows about the clip it is predicting.

    ``buffers`` hold each track's last ``sequence_length`` CNN features (ResNet-LSTM),
    ``tracker`` the clip's Ultralytics tracker, ``last_frame`` the frame predicted last (a frame
    that does not follow it starts the buffers again), ``position`` the (clip, frame) that
    ``predict_frame`` showed last, so stepping on needs one frame, not a replay, and ``timing``
    how long it took: (frames predicted, seconds). ``lock`` guards the state, so one state used from two threads stays consistent; it is the
    state's own lock, so other sessions never wait for it.
    """

    buffers: dict = field(default_factory=dict)
    last_seen: dict = field(default_factory=dict)
    numbers: dict = field(default_factory=dict)
    last_frame: int | None = None
    tracker: Tracker | None = None
    position: tuple[str, int] | None = None
    timing: tuple[int, float] | None = None
    lock: Any = field(default_factory=threading.RLock, repr=False, compare=False)

    def reset(self) -> None:
        """Forget the clip: tracks, buffers, tracker, position."""
        with self.lock:
            self.buffers, self.last_seen, self.numbers = {}, {}, {}
            self.last_frame = self.tracker = self.position = self.timing = None


# -- predictors ----------------------------------------------------------------------------------
class Predictor:
    """Common interface: ``predict(frame, frame_index, ground_truth=None, *, state=None)``.

    ``backend`` is the engine in use (``"onnxruntime"`` or ``"pytorch"``); ``describe_backend()``
    says which and why.
    """

    model_type = ""
    #: frames of history a prediction needs (the viewer replays them when jumping to a frame)
    history = 1

    def __init__(self, run_dir: str | os.PathLike, *, device: str | None = None,
                 conf: float = DEFAULT_CONFIDENCE, backend: str = "auto"):
        from pedsense.device import resolve_device

        self.run_dir = Path(run_dir)
        actual = run_model_type(self.run_dir)
        if actual != self.model_type:
            raise RunTypeError(
                f"Run {self.run_dir.name} is a {actual} run, not a {self.model_type} run. "
                f"Pick a {self.model_type} run, or load it with `load_predictor`."
            )
        self.device = resolve_device(device)
        self.conf = float(conf)
        self.requested_backend = backend
        self.choice: BackendChoice = choose_backend(self.run_dir, self.model_type, backend, self.device)
        #: the state used when a call passes none (one caller at a time)
        self.state = ClipState()

    @property
    def backend(self) -> str:
        """``"onnxruntime"`` or ``"pytorch"``."""
        return self.choice.engine

    def describe_backend(self) -> str:
        """E.g. ``"ONNX Runtime 1.20 (CPU) — the run's ONNX export of 2025-01-01T12:00:00"``."""
        return f"{describe_engine(self.backend, self.device)} — {self.choice.reason}"

    def new_state(self) -> ClipState:
        """A fresh per-clip state for one session, render or chart."""
        return ClipState()

    @property
    def position(self) -> tuple[str, int] | None:
        """The default state's (clip, frame) last shown by ``predict_frame``."""
        return self.state.position

    @position.setter
    def position(self, value: tuple[str, int] | None) -> None:
        self.state.position = value

    def reset(self) -> None:
        """Forget the default state's clip (tracks, buffers) before a new clip or a jump."""
        self.state.reset()

    def predict(self, frame: np.ndarray, frame_index: int = 0, ground_truth: GroundTruth | None = None,
                *, state: ClipState | None = None) -> Predictions:
        """The predictions of one BGR frame (``state``: the clip's state, default ``self.state``)."""
        return self.predict_batch([frame], [frame_index], [ground_truth], state=state)[0]

    def predict_batch(self, frames: Sequence[np.ndarray], frame_indices: Sequence[int],
                      ground_truths: Sequence[GroundTruth | None] | None = None, *,
                      state: ClipState | None = None) -> list[Predictions]:
        """The predictions of consecutive frames of one clip, the same as ``predict`` on each in
        turn, with the classifier's work for all of them in as few forward passes as it allows."""
        raise NotImplementedError

    def predict_stream(self, items: Iterable[tuple[int, np.ndarray, GroundTruth | None]], *,
                       state: ClipState | None = None, chunk: int = FRAME_CHUNK
                       ) -> Iterator[tuple[int, np.ndarray, GroundTruth | None, Predictions]]:
        """``(index, frame, truth, predictions)`` for each ``(index, frame, truth)`` of a clip,
        predicted ``chunk`` frames at a time."""
        pending: list[tuple[int, np.ndarray, GroundTruth | None]] = []

        def flush():
            indices, frames, truths = zip(*pending)
            results = self.predict_batch(list(frames), list(indices), list(truths), state=state)
            pending.clear()
            return zip(indices, frames, truths, results)

        for item in items:
            pending.append(item)
            if len(pending) >= max(1, chunk):
                yield from flush()
        if pending:
            yield from flush()


def _split(values: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """Rows of ``values`` split into consecutive parts of ``counts`` rows."""
    return np.split(values, np.cumsum(counts)[:-1]) if len(counts) else []


class YoloPredictor(Predictor):
    """A 2-class YOLO run: each box's class is its intent."""

    model_type = "yolo"

    def __init__(self, run_dir: str | os.PathLike, **kwargs: Any):
        super().__init__(run_dir, **kwargs)
        self.detector = _run_detector(self.run_dir, self.choice, self.device)
        if CROSSING not in self.detector.names.values():
            raise RunTypeError(
                f"{self.detector.weights} detects {sorted(self.detector.names.values())}, not crossing "
                "intent. A 1-class detector belongs to a hybrid run: pick a 2-class YOLO run."
            )

    def predict_batch(self, frames, frame_indices, ground_truths=None, *, state=None) -> list[Predictions]:
        results = []
        for frame, index in zip(frames, frame_indices):
            xyxy, conf, cls = self.detector.detect(frame, self.conf)
            labels = tuple(self.detector.names[int(c)] for c in cls)
            crossing = np.array([c if label == CROSSING else 1.0 - c for label, c in zip(labels, conf)],
                                dtype=np.float32)
            results.append(Predictions.build(index, xyxy, labels, probabilities=conf,
                                             crossing_scores=crossing, confidences=conf))
        return results


class HybridPredictor(Predictor):
    """Stage 1 detector boxes, then every crop of the frames classified in one batch."""

    model_type = "hybrid"

    def __init__(self, run_dir: str | os.PathLike, **kwargs: Any):
        super().__init__(run_dir, **kwargs)
        self.detector = _run_detector(self.run_dir, self.choice, self.device)
        self.classifier = _run_classifier(self.run_dir, self.choice, self.device, ("classifier",))

    def predict_batch(self, frames, frame_indices, ground_truths=None, *, state=None) -> list[Predictions]:
        detections = [self.detector.detect(frame, self.conf) for frame in frames]
        crops = [self.classifier.crops(frame, xyxy) for frame, (xyxy, _, _) in zip(frames, detections)]
        probabilities = self.classifier.classify([crop for frame_crops in crops for crop in frame_crops])
        results = []
        for index, (xyxy, conf, _), part in zip(frame_indices, detections,
                                                _split(probabilities, [len(c) for c in crops])):
            labels, shown, crossing = self.classifier.labels_of(part)
            results.append(Predictions.build(index, xyxy, labels, probabilities=shown,
                                             crossing_scores=crossing, confidences=conf))
        return results


@dataclass
class _FrameTracks:
    """One frame's tracks while a batch is predicted."""

    index: int
    xyxy: np.ndarray
    keys: list
    conf: np.ndarray
    restart: bool  # the frame does not follow the last one: buffers start again here


class ResNetLSTMPredictor(Predictor):
    """Per-track buffers of CNN features classified by the ResNet-LSTM once ``sequence_length``
    crops are in.

    Tracks come from the ground truth passed to ``predict`` (``track_source="ground-truth"``) or
    from Ultralytics' tracker on ``tracker_run``'s detector (``"tracker"``); ``"auto"`` uses the
    ground truth when it is given and the tracker otherwise. ``predict_batch`` tracks frame by
    frame, then computes the CNN features of every crop of all the frames in one forward pass
    and classifies every full buffer of all the frames in one LSTM pass.
    """

    model_type = "resnet-lstm"

    def __init__(self, run_dir: str | os.PathLike, *, tracker_run: str | os.PathLike | None = None,
                 track_source: str = "auto", tracker_config: str | os.PathLike = DEFAULT_TRACKER,
                 **kwargs: Any):
        super().__init__(run_dir, **kwargs)
        if track_source not in ("auto", "ground-truth", "tracker"):
            raise ConfigError(f"track_source must be auto, ground-truth or tracker, not {track_source!r}.")
        self.classifier = _run_classifier(self.run_dir, self.choice, self.device, ("features", "temporal"))
        self.sequence_length = max(1, self.classifier.sequence_length)
        self.history = self.sequence_length
        self.track_source = track_source
        self.tracker_config = str(tracker_config)
        self.tracker: Detector | None = None
        self.tracker_choice: BackendChoice | None = None
        if tracker_run is not None:
            tracker_run = Path(tracker_run)
            # the tracker run's own export decides, unless PyTorch was asked for
            requested = "pytorch" if self.requested_backend == PYTORCH else "auto"
            self.tracker_choice = choose_backend(tracker_run, run_model_type(tracker_run), requested, self.device)
            self.tracker = _run_detector(tracker_run, self.tracker_choice, self.device)
            Tracker(self.tracker_config, device=self.device)  # a bad tracker config fails here, not mid-clip
        elif track_source == "tracker":
            raise TracksUnavailable("track_source='tracker' needs a detector run: pass tracker_run.")

    def describe_backend(self) -> str:
        text = super().describe_backend()
        if self.tracker is not None and self.tracker_choice is not None:
            text += (f"; tracker detector: {describe_engine(self.tracker_choice.engine, self.device)} — "
                     f"{self.tracker_choice.reason}")
        return text

    def predict_batch(self, frames, frame_indices, ground_truths=None, *, state=None) -> list[Predictions]:
        state = self.state if state is None else state
        ground_truths = list(ground_truths) if ground_truths is not None else [None] * len(frames)
        with state.lock:
            tracks = [self._tracks(state, frame, index, truth)
                      for frame, index, truth in zip(frames, frame_indices, ground_truths)]
            crops = [crop for frame, t in zip(frames, tracks) for crop in self.classifier.crops(frame, t.xyxy)]
            # buffer CNN features (one batch for all the frames) rather than crops when the model allows
            entries = self.classifier.embed(crops) if self.classifier.splits_into_features and crops else crops
            full: list[list[int]] = []  # per frame: which of its tracks have a full buffer
            sequences: list = []        # the full buffers of every frame, in order
            fill: list[list[int]] = []
            numbers: list[list[int]] = []
            start = 0
            for t in tracks:  # frame by frame, as `predict` on each in turn would
                full_here = self._buffer(state, t, entries[start:start + len(t.keys)])
                start += len(t.keys)
                full.append(full_here)
                sequences += [list(state.buffers[t.keys[i]]) for i in full_here]
                fill.append([len(state.buffers[key]) for key in t.keys])
                numbers.append([self._number(state, key) for key in t.keys])
        if self.classifier.splits_into_features:
            probabilities = self.classifier.classify_feature_sequences([np.stack(s) for s in sequences])
        else:
            probabilities = self.classifier.classify_sequences(sequences)
        parts = _split(probabilities, [len(f) for f in full])
        return [self._predictions(t, f, p, n, b) for t, f, p, n, b in zip(tracks, full, parts, numbers, fill)]

    def _tracks(self, state: ClipState, frame: np.ndarray, frame_index: int,
                ground_truth: GroundTruth | None) -> _FrameTracks:
        """This frame's (N, 4) boxes, N track keys and (N,) detector confidences."""
        restart = state.last_frame is not None and frame_index != state.last_frame + 1
        if restart:  # a jump: the tracker starts again here (and the buffers, in ``_buffer``)
            state.tracker = None
        state.last_frame = frame_index
        use_truth = self.track_source == "ground-truth" or (
            self.track_source == "auto" and ground_truth is not None)
        if use_truth:
            if ground_truth is None:
                raise TracksUnavailable(
                    "This clip has no annotations, so there are no ground-truth tracks. "
                    "Pick a detector run to track pedestrians with.")
            return _FrameTracks(frame_index, ground_truth.xyxy, list(ground_truth.track_ids),
                                np.full(len(ground_truth), np.nan, np.float32), restart)
        if self.tracker is None:
            raise TracksUnavailable(
                "A ResNet-LSTM run needs pedestrian tracks: this clip has no annotations, so pick "
                "a detector run (YOLO or hybrid) to track them with.")
        if state.tracker is None:
            state.tracker = Tracker(self.tracker_config, device=self.device)
        xyxy, conf, _, ids = self.tracker.track(frame, self.conf, state.tracker)
        confirmed = ids >= 0  # unconfirmed boxes have no identity to buffer crops under
        return _FrameTracks(frame_index, xyxy[confirmed], [int(i) for i in ids[confirmed]],
                            conf[confirmed], restart)

    def _buffer(self, state: ClipState, tracks: _FrameTracks, entries: Sequence) -> list[int]:
        """Append one frame's entries to its tracks' buffers; the indices of its full buffers."""
        if tracks.restart:
            state.buffers, state.last_seen, state.numbers = {}, {}, {}
        for key, entry in zip(tracks.keys, entries):
            state.buffers.setdefault(key, deque(maxlen=self.sequence_length)).append(entry)
            state.last_seen[key] = tracks.index
        for key in [k for k, seen in state.last_seen.items() if tracks.index - seen > self.sequence_length]:
            state.buffers.pop(key, None)
            state.last_seen.pop(key, None)
        return [i for i, key in enumerate(tracks.keys) if len(state.buffers[key]) == self.sequence_length]

    @staticmethod
    def _number(state: ClipState, key: Any) -> int:
        """A stable integer id per track key (JAAD ids are strings like ``0_1_3b``)."""
        if isinstance(key, (int, np.integer)):
            return int(key)
        return state.numbers.setdefault(key, len(state.numbers) + 1)

    def _predictions(self, tracks: _FrameTracks, full: list[int], probabilities: np.ndarray,
                     numbers: list[int], fill: list[int]) -> Predictions:
        n = len(tracks.keys)
        labels = [BUFFERING] * n
        shown = np.full(n, np.nan, np.float32)
        crossing = np.full(n, np.nan, np.float32)
        full_labels, full_shown, full_crossing = self.classifier.labels_of(probabilities)
        for j, i in enumerate(full):
            labels[i], shown[i], crossing[i] = full_labels[j], full_shown[j], full_crossing[j]
        return Predictions.build(tracks.index, tracks.xyxy, labels, probabilities=shown,
                                 crossing_scores=crossing, confidences=tracks.conf, track_ids=numbers,
                                 buffer_fill=fill)


# -- loading -------------------------------------------------------------------------------------
def _run_detector(run_dir: Path, choice: BackendChoice, device: str) -> Detector:
    """The run's detector on the chosen engine."""
    if choice.engine == ONNXRUNTIME:
        path, part = choice.component(run_dir, "detector")
        return Detector(path, device="cpu", imgsz=part.get("imgsz"), names=part.get("names"))
    return Detector(detector_weights(run_dir), device=device, imgsz=run_imgsz(run_dir))


def _run_classifier(run_dir: Path, choice: BackendChoice, device: str, components: tuple[str, ...]) -> _CropModel:
    """The run's ResNet classifier on the chosen engine (``components`` of its ONNX export)."""
    if choice.engine == ONNXRUNTIME:
        files, meta = {}, {}
        for name in components:
            files[name], part = choice.component(run_dir, name)
            meta = part.get("meta") or meta
        return OnnxCropClassifier(files, meta)
    return CropClassifier(classifier_weights(run_dir), device=device)


PREDICTORS = {cls.model_type: cls for cls in (YoloPredictor, HybridPredictor, ResNetLSTMPredictor)}


def load_predictor(run_dir: str | os.PathLike, *, device: str | None = None,
                   conf: float = DEFAULT_CONFIDENCE, tracker_run: str | os.PathLike | None = None,
                   track_source: str = "auto", tracker_config: str | os.PathLike = DEFAULT_TRACKER,
                   backend: str = "auto") -> Predictor:
    """The predictor for a run folder, chosen by its ``model_type``.

    ``backend``: ``"auto"`` (ONNX Runtime on a CPU when the run has a current ONNX export and
    onnxruntime is installed, else PyTorch), ``"onnx"`` or ``"pytorch"``. ``tracker_run``,
    ``track_source`` and ``tracker_config`` only matter for ResNet-LSTM runs (see
    ``ResNetLSTMPredictor``).
    """
    model_type = run_model_type(run_dir)
    if model_type not in PREDICTORS:
        raise RunTypeError(f"Run {Path(run_dir).name} has unknown model type {model_type!r}; "
                           f"expected one of {sorted(PREDICTORS)}.")
    if model_type == "resnet-lstm":
        return ResNetLSTMPredictor(run_dir, device=device, conf=conf, tracker_run=tracker_run,
                                   track_source=track_source, tracker_config=tracker_config, backend=backend)
    return PREDICTORS[model_type](run_dir, device=device, conf=conf, backend=backend)
