"""Predictors: each loads from a run folder alone and turns one BGR frame into ``Predictions``.

- ``YoloPredictor``: a 2-class YOLO run (``not-crossing``/``crossing``) — class and confidence.
- ``HybridPredictor``: the run's 1-class detector, then every crop of the frame classified by the
  ResNet classifier in one batch.
- ``ResNetLSTMPredictor``: pedestrians tracked over frames (ground-truth track ids when the clip
  is annotated, else Ultralytics' tracker on a detector run the user picks), the last
  ``sequence_length`` crops buffered per track, intent once a buffer is full, ``buffering`` before.

``load_predictor(run)`` picks the right one from the run's ``config.json``.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pedsense.config import CLASS_NAMES
from pedsense.data.crops import crop_pedestrian
from pedsense.device import torch_threads_kept
from pedsense.errors import ConfigError, PedsenseError
from pedsense.infer.predictions import BUFFERING, CROSSING, GroundTruth, Predictions
from pedsense.io import read_json

DEFAULT_CONFIDENCE = 0.25
DEFAULT_TRACKER = "bytetrack.yaml"  # Ultralytics' ByteTrack: needs only `lap`, no ReID model download


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


def _require(path: Path, what: str) -> Path:
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
        return _require(run_dir / "yolo_detector.pt", "the hybrid's stage-1 detector")
    if model_type == "yolo":
        for candidate in (run_dir / "best.pt", run_dir / "weights" / "best.pt", run_dir / "last.pt"):
            if candidate.is_file():
                return candidate
        return _require(run_dir / "best.pt", "the YOLO weights")
    raise RunTypeError(
        f"Run {run_dir.name} is a {model_type} run, which has no detector. "
        "Pick a YOLO or hybrid run as the tracker."
    )


def _run_imgsz(run_dir: Path) -> int | None:
    """The image size the run's config records, if any."""
    config = read_json(Path(run_dir) / "config.json", {}) or {}
    for source in (config.get("parameters") or {}, config.get("params") or {}, config):
        value = source.get("imgsz")
        if isinstance(value, (int, float)) and value > 0:
            return int(value)
    return None


# -- stage models -----------------------------------------------------------------------------------
class Detector:
    """An Ultralytics YOLO checkpoint used for boxes (and, for tracking, ids).

    Its calls keep torch's thread count: Ultralytics' first predict on CPU drops it to
    ``cpu_count - 1`` for the calling thread (see ``pedsense.device.torch_threads_kept``).
    """

    def __init__(self, weights: str | os.PathLike, *, device: str = "cpu", imgsz: int | None = None):
        from ultralytics import YOLO

        self.weights = Path(weights)
        try:
            self.model = YOLO(str(self.weights))
        except Exception as exc:  # Ultralytics raises many types for a corrupt file
            raise WeightsMissing(
                f"{self.weights} could not be loaded as Ultralytics weights ({exc}). "
                "The file may be truncated: train the run again."
            ) from exc
        self.device = device
        # predict at the size the detector trained at: a tiny model at another size finds little
        trained = (getattr(self.model, "ckpt", None) or {}).get("train_args", {}).get("imgsz")
        self.imgsz = int(trained) if isinstance(trained, (int, float)) else (imgsz or 640)
        self.names = {int(k): str(v) for k, v in dict(self.model.names).items()}

    def detect(self, frame: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes of one BGR frame: (N, 4) xyxy, (N,) confidence, (N,) class index."""
        with torch_threads_kept():  # else the classifier that follows runs on one core
            result = self.model.predict(frame, conf=conf, imgsz=self.imgsz, device=self.device,
                                        verbose=False)[0]
        return _boxes_of(result)[:3]

    def track(self, frame: np.ndarray, conf: float, *, persist: bool,
              tracker: str = DEFAULT_TRACKER) -> tuple[np.ndarray, ...]:
        """Like ``detect`` plus (N,) track ids (-1 for boxes the tracker has not confirmed).

        ``tracker`` is an Ultralytics tracker YAML (its name, or a path to your own thresholds).
        """
        with torch_threads_kept():
            result = self.model.track(frame, conf=conf, imgsz=self.imgsz, device=self.device,
                                      persist=persist, tracker=str(tracker), verbose=False)[0]
        return _boxes_of(result)


def _boxes_of(result: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return (np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int64),
                np.empty(0, np.int64))
    xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
    ids = boxes.id.cpu().numpy().astype(np.int64) if boxes.id is not None else np.full(len(xyxy), -1)
    return (xyxy, boxes.conf.cpu().numpy().astype(np.float32), boxes.cls.cpu().numpy().astype(np.int64),
            ids)


class CropClassifier:
    """A ResNet checkpoint (``ResNetClassifier`` or ``ResNetLSTM``) with its input transform."""

    def __init__(self, weights: str | os.PathLike, *, device: str = "cpu"):
        from pedsense.train.checkpoints import load_classifier

        self.weights = Path(weights)
        try:
            self.model, self.meta = load_classifier(self.weights, device=device)
        except PedsenseError:
            raise
        except Exception as exc:
            raise WeightsMissing(
                f"{self.weights} could not be loaded as a pedsense classifier ({exc}). "
                "Train the run again."
            ) from exc
        self.model.eval()
        self.device = device
        self.class_names = tuple(self.meta.get("class_names") or CLASS_NAMES)
        self.crop_size = tuple(int(v) for v in (self.meta.get("crop_size") or (224, 224)))
        self.sequence_length = int(self.meta.get("sequence_length") or 1)
        self.crossing_index = self.class_names.index(CROSSING) if CROSSING in self.class_names else 1

    def _tensor(self, crops: Sequence[np.ndarray]):
        from pedsense.train.transforms import crops_to_tensor

        return crops_to_tensor(list(crops), self.crop_size)

    def classify(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of N crops in ONE forward pass: (N, C) float32."""
        import torch

        if len(crops) == 0:
            return np.empty((0, len(self.class_names)), np.float32)
        with torch.inference_mode():
            logits = self.model(self._tensor(crops).to(self.device))
            return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def classify_one_by_one(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """The same result with one forward per crop (the baseline the benchmark compares)."""
        rows = [self.classify([crop]) for crop in crops]
        return np.concatenate(rows) if rows else self.classify([])

    def classify_sequences(self, sequences: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """Class probabilities of B crop sequences of equal length T: (B, C) float32."""
        import torch

        if len(sequences) == 0:
            return np.empty((0, len(self.class_names)), np.float32)
        with torch.inference_mode():
            batch = torch.stack([self._tensor(sequence) for sequence in sequences])  # (B, T, 3, H, W)
            logits = self.model(batch.to(self.device))
            return torch.softmax(logits.float(), dim=1).cpu().numpy()

    @property
    def splits_into_features(self) -> bool:
        """True for a ResNet-LSTM whose CNN and LSTM can run apart (``features``/``lstm``/``classifier``)."""
        return all(hasattr(self.model, name) for name in ("features", "lstm", "classifier"))

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """CNN features of N crops in one forward pass: (N, D) float32 (ResNet-LSTM only)."""
        import torch

        with torch.inference_mode():
            return self.model.features(self._tensor(crops).to(self.device)).float().cpu().numpy()

    def classify_feature_sequences(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of B sequences of (T, D) CNN features: (B, C) float32.

        The same result as ``classify_sequences`` on the crops (the CNN sees each crop alone
        and BatchNorm is frozen in eval mode), but each crop's features are computed once
        instead of once per frame it stays in a track's buffer: 16x less CNN work.
        """
        import torch

        if len(sequences) == 0:
            return np.empty((0, len(self.class_names)), np.float32)
        with torch.inference_mode():
            features = torch.from_numpy(np.stack(sequences)).to(self.device)  # (B, T, D)
            outputs, _ = self.model.lstm(features)
            logits = self.model.classifier(outputs[:, -1])  # dropout is the identity in eval mode
            return torch.softmax(logits.float(), dim=1).cpu().numpy()

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


# -- predictors ----------------------------------------------------------------------------------
class Predictor:
    """Common interface: ``predict(frame, frame_index, ground_truth=None) -> Predictions``."""

    model_type = ""
    #: frames of history a prediction needs (the viewer replays them when jumping to a frame)
    history = 1

    def __init__(self, run_dir: str | os.PathLike, *, device: str | None = None,
                 conf: float = DEFAULT_CONFIDENCE):
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
        # One predictor may be shared (the dashboard caches it): callers hold this lock while
        # predicting, since tracks and buffers are per-clip state.
        self.lock = threading.RLock()
        #: (clip, frame index) of the last ``predict_frame`` call, so play-through continues
        self.position: tuple[str, int] | None = None

    def predict(self, frame: np.ndarray, frame_index: int = 0,
                ground_truth: GroundTruth | None = None) -> Predictions:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget per-clip state (tracks, buffers) before a new clip or a jump."""


class YoloPredictor(Predictor):
    """A 2-class YOLO run: each box's class is its intent."""

    model_type = "yolo"

    def __init__(self, run_dir: str | os.PathLike, **kwargs: Any):
        super().__init__(run_dir, **kwargs)
        weights = detector_weights(self.run_dir)
        self.detector = Detector(weights, device=self.device, imgsz=_run_imgsz(self.run_dir))
        if CROSSING not in self.detector.names.values():
            raise RunTypeError(
                f"{weights} detects {sorted(self.detector.names.values())}, not crossing intent. "
                "A 1-class detector belongs to a hybrid run: pick a 2-class YOLO run."
            )

    def predict(self, frame: np.ndarray, frame_index: int = 0,
                ground_truth: GroundTruth | None = None) -> Predictions:
        xyxy, conf, cls = self.detector.detect(frame, self.conf)
        labels = tuple(self.detector.names[int(c)] for c in cls)
        crossing = np.array([c if label == CROSSING else 1.0 - c for label, c in zip(labels, conf)],
                            dtype=np.float32)
        return Predictions.build(frame_index, xyxy, labels, probabilities=conf, crossing_scores=crossing,
                                 confidences=conf)


class HybridPredictor(Predictor):
    """Stage 1 detector boxes, then all crops of the frame classified in one batch."""

    model_type = "hybrid"

    def __init__(self, run_dir: str | os.PathLike, **kwargs: Any):
        super().__init__(run_dir, **kwargs)
        self.detector = Detector(detector_weights(self.run_dir), device=self.device,
                                 imgsz=_run_imgsz(self.run_dir))
        self.classifier = CropClassifier(
            _require(self.run_dir / "resnet_classifier.pt", "the hybrid's stage-2 classifier"),
            device=self.device)

    def predict(self, frame: np.ndarray, frame_index: int = 0,
                ground_truth: GroundTruth | None = None) -> Predictions:
        xyxy, conf, _ = self.detector.detect(frame, self.conf)
        probabilities = self.classifier.classify(self.classifier.crops(frame, xyxy))
        labels, shown, crossing = self.classifier.labels_of(probabilities)
        return Predictions.build(frame_index, xyxy, labels, probabilities=shown,
                                 crossing_scores=crossing, confidences=conf)


class ResNetLSTMPredictor(Predictor):
    """Per-track crop buffers classified by the ResNet-LSTM once ``sequence_length`` crops are in.

    Tracks come from the ground truth passed to ``predict`` (``track_source="ground-truth"``) or
    from Ultralytics' tracker on ``tracker_run``'s detector (``"tracker"``); ``"auto"`` uses the
    ground truth when it is given and the tracker otherwise.
    """

    model_type = "resnet-lstm"

    def __init__(self, run_dir: str | os.PathLike, *, tracker_run: str | os.PathLike | None = None,
                 track_source: str = "auto", tracker_config: str | os.PathLike = DEFAULT_TRACKER,
                 **kwargs: Any):
        super().__init__(run_dir, **kwargs)
        if track_source not in ("auto", "ground-truth", "tracker"):
            raise ConfigError(f"track_source must be auto, ground-truth or tracker, not {track_source!r}.")
        self.classifier = CropClassifier(_require(self.run_dir / "best.pt", "the ResNet-LSTM weights"),
                                         device=self.device)
        self.sequence_length = max(1, self.classifier.sequence_length)
        self.history = self.sequence_length
        self.track_source = track_source
        self.tracker_config = str(tracker_config)
        self.tracker: Detector | None = None
        if tracker_run is not None:
            self.tracker = Detector(detector_weights(tracker_run), device=self.device,
                                    imgsz=_run_imgsz(Path(tracker_run)))
        elif track_source == "tracker":
            raise TracksUnavailable("track_source='tracker' needs a detector run: pass tracker_run.")
        self.reset()

    def reset(self) -> None:
        self._buffers: dict[Any, deque] = {}
        self._last_seen: dict[Any, int] = {}
        self._last_frame: int | None = None
        self._numbers: dict[Any, int] = {}

    def predict(self, frame: np.ndarray, frame_index: int = 0,
                ground_truth: GroundTruth | None = None) -> Predictions:
        if self._last_frame is not None and frame_index != self._last_frame + 1:
            self.reset()  # a jump: buffered crops no longer precede this frame
        first = self._last_frame is None
        self._last_frame = frame_index
        xyxy, keys, conf = self._tracks(frame, ground_truth, persist=not first)
        crops = self.classifier.crops(frame, xyxy)
        # buffer CNN features (one batch for the whole frame) rather than crops when the model allows
        entries = self.classifier.embed(crops) if self.classifier.splits_into_features and crops else crops
        for key, entry in zip(keys, entries):
            self._buffers.setdefault(key, deque(maxlen=self.sequence_length)).append(entry)
            self._last_seen[key] = frame_index
        self._forget_stale(frame_index)
        return self._classify(frame_index, xyxy, keys, conf)

    def _tracks(self, frame: np.ndarray, ground_truth: GroundTruth | None,
                *, persist: bool) -> tuple[np.ndarray, list, np.ndarray]:
        """(N, 4) boxes, N track keys and (N,) detector confidences of this frame."""
        use_truth = self.track_source == "ground-truth" or (
            self.track_source == "auto" and ground_truth is not None)
        if use_truth:
            if ground_truth is None:
                raise TracksUnavailable(
                    "This clip has no annotations, so there are no ground-truth tracks. "
                    "Pick a detector run to track pedestrians with.")
            return ground_truth.xyxy, list(ground_truth.track_ids), np.full(len(ground_truth), np.nan)
        if self.tracker is None:
            raise TracksUnavailable(
                "A ResNet-LSTM run needs pedestrian tracks: this clip has no annotations, so pick "
                "a detector run (YOLO or hybrid) to track them with.")
        xyxy, conf, _, ids = self.tracker.track(frame, self.conf, persist=persist, tracker=self.tracker_config)
        confirmed = ids >= 0  # unconfirmed boxes have no identity to buffer crops under
        return xyxy[confirmed], [int(i) for i in ids[confirmed]], conf[confirmed]

    def _forget_stale(self, frame_index: int) -> None:
        for key in [k for k, seen in self._last_seen.items() if frame_index - seen > self.sequence_length]:
            self._buffers.pop(key, None)
            self._last_seen.pop(key, None)

    def _number(self, key: Any) -> int:
        """A stable integer id per track key (JAAD ids are strings like ``0_1_3b``)."""
        if isinstance(key, (int, np.integer)):
            return int(key)
        return self._numbers.setdefault(key, len(self._numbers) + 1)

    def _classify(self, frame_index: int, xyxy: np.ndarray, keys: list,
                  conf: np.ndarray) -> Predictions:
        full = [i for i, key in enumerate(keys) if len(self._buffers[key]) == self.sequence_length]
        sequences = [list(self._buffers[keys[i]]) for i in full]
        if self.classifier.splits_into_features:
            probabilities = self.classifier.classify_feature_sequences([np.stack(seq) for seq in sequences])
        else:
            probabilities = self.classifier.classify_sequences(sequences)
        labels = [BUFFERING] * len(keys)
        shown = np.full(len(keys), np.nan, np.float32)
        crossing = np.full(len(keys), np.nan, np.float32)
        full_labels, full_shown, full_crossing = self.classifier.labels_of(probabilities)
        for j, i in enumerate(full):
            labels[i], shown[i], crossing[i] = full_labels[j], full_shown[j], full_crossing[j]
        return Predictions.build(frame_index, xyxy, labels, probabilities=shown, crossing_scores=crossing,
                                 confidences=conf, track_ids=[self._number(k) for k in keys],
                                 buffer_fill=[len(self._buffers[k]) for k in keys])


PREDICTORS = {cls.model_type: cls for cls in (YoloPredictor, HybridPredictor, ResNetLSTMPredictor)}


def load_predictor(run_dir: str | os.PathLike, *, device: str | None = None,
                   conf: float = DEFAULT_CONFIDENCE, tracker_run: str | os.PathLike | None = None,
                   track_source: str = "auto", tracker_config: str | os.PathLike = DEFAULT_TRACKER) -> Predictor:
    """The predictor for a run folder, chosen by its ``model_type``.

    ``tracker_run``, ``track_source`` and ``tracker_config`` only matter for ResNet-LSTM runs
    (see ``ResNetLSTMPredictor``).
    """
    model_type = run_model_type(run_dir)
    if model_type not in PREDICTORS:
        raise RunTypeError(f"Run {Path(run_dir).name} has unknown model type {model_type!r}; "
                           f"expected one of {sorted(PREDICTORS)}.")
    if model_type == "resnet-lstm":
        return ResNetLSTMPredictor(run_dir, device=device, conf=conf, tracker_run=tracker_run,
                                   track_source=track_source, tracker_config=tracker_config)
    return PREDICTORS[model_type](run_dir, device=device, conf=conf)
