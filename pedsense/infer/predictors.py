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

``load_predictor(run)`` picks the predictor from the run's ``config.json`` and, per stage, the
engine (``predictor.backend``): on a CPU the fastest measured here of PyTorch and the run's
exports (``pedsense export RUN --format onnx|openvino``) whose engine is installed
(``pedsense.infer.engines``); PyTorch on a GPU.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from pedsense.device import resolve_device
from pedsense.errors import ConfigError, PedsenseError
from pedsense.infer.backends import PYTORCH, BackendChoice, choose_backend, describe_engine
from pedsense.infer.engines import exported_classifier, exported_detector, load_fastest, settle
from pedsense.infer.models import DEFAULT_TRACKER, CropClassifier, Detector, Tracker, WeightsMissing, _CropModel
from pedsense.infer.predictions import BUFFERING, CROSSING, GroundTruth, Predictions
from pedsense.io import read_json
from pedsense.runfolder import WEIGHT_FILES, RunFolder

DEFAULT_CONFIDENCE = 0.25
#: frames predicted together when a whole clip is read (renders, the intent chart)
FRAME_CHUNK = 8


class RunTypeError(ConfigError):
    """A run of the wrong model type for what was asked."""


class TracksUnavailable(PedsenseError):
    """A ResNet-LSTM run asked to predict on a clip with neither annotations nor a tracker."""


_NEEDS_ANNOTATIONS = ("Run {run} fuses context features ({groups}), which come from the clip's annotations "
                      "(boxes, ego action, traffic scene): it predicts only on annotated clips, on their "
                      "ground-truth tracks. Pick an annotated clip, or a run trained without context_features.")


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
    return _weights(run_dir, "detector", ("yolo", "hybrid"), "detector",
                    "Pick a YOLO or hybrid run as the tracker.")


def classifier_weights(run_dir: str | os.PathLike) -> Path:
    """The ResNet checkpoint of a run: hybrid ``resnet_classifier.pt`` or ResNet-LSTM ``best.pt``."""
    return _weights(run_dir, "classifier", ("resnet-lstm", "hybrid"), "ResNet classifier", "")


def _weights(run_dir, role: str, model_types: tuple[str, ...], what: str, fix: str) -> Path:
    """The run's weights playing ``role`` (``pedsense.runfolder.WEIGHT_FILES``), or the reason."""
    model_type = run_model_type(run_dir)
    if model_type not in model_types:
        raise RunTypeError(f"Run {Path(run_dir).name} is a {model_type} run, which has no {what}. {fix}".rstrip())
    folder = RunFolder(run_dir)
    found = folder.weights(role, model_type)
    if found is None:
        expected = WEIGHT_FILES[(model_type, role)][0]
        return require_weights(folder.path / expected, f"the {model_type} run's {what}")
    return found


def run_imgsz(run_dir: str | os.PathLike) -> int | None:
    """The image size the run's config records, if any."""
    config = read_json(Path(run_dir) / "config.json", {}) or {}
    for source in (config.get("parameters") or {}, config.get("params") or {}, config):
        value = source.get("imgsz")
        if isinstance(value, (int, float)) and value > 0:
            return int(value)
    return None


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
    frames: dict = field(default_factory=dict)  # each buffer's frame indices (a fused model's windows)
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
            self.buffers, self.frames, self.last_seen, self.numbers = {}, {}, {}, {}
            self.last_frame = self.tracker = self.position = self.timing = None


# -- predictors ----------------------------------------------------------------------------------
class Predictor:
    """Common interface: ``predict(frame, frame_index, ground_truth=None, *, state=None)``.

    ``backend`` is the engine in use (``"pytorch"``, ``"onnxruntime"``, ``"openvino"``, ``"openvino-bf16"``,
    or stages' engines joined by ``+``); ``describe_backend()``
    says which and why.
    """

    model_type = ""
    #: frames of history a prediction needs (the viewer replays them when jumping to a frame)
    history = 1

    def __init__(self, run_dir: str | os.PathLike, *, device: str | None = None,
                 conf: float = DEFAULT_CONFIDENCE, backend: str = "auto"):
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
        """``"pytorch"``, ``"onnxruntime"``, ``"openvino"``, or two joined by ``+`` when the
        stages run on different engines (``"openvino+onnxruntime"``: detector, classifier)."""
        return self.choice.engine

    def describe_backend(self) -> str:
        """E.g. ``"OpenVINO 2025.1 (CPU) — detector: fastest measured here (OpenVINO 40 ms · ...)"``,
        then the engines passed over and why."""
        notes = "".join(f"; {note}" for note in self.choice.notes)
        return f"{describe_engine(self.backend, self.device)} — {self.choice.reason}{notes}"

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
        self.detector, self.choice = _load_detector(self.run_dir, self.choice, self.device)
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
        self.detector, self.choice = _load_detector(self.run_dir, self.choice, self.device)
        self.classifier, self.choice = _load_classifier(self.run_dir, self.choice, self.device, ("classifier",))

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
    annotation: Any = None  # the clip's annotation, when the tracks are its ground truth


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
        self.classifier, self.choice = _load_classifier(self.run_dir, self.choice, self.device,
                                                        ("features", "temporal"))
        self.sequence_length = max(1, self.classifier.sequence_length)
        self.history = self.sequence_length
        self.track_source = track_source
        #: a fused run's context groups: read per window from the clip's annotation (ground truth)
        self.context_groups = self.classifier.context_groups
        if self.context_groups and track_source == "tracker":
            raise TracksUnavailable(_NEEDS_ANNOTATIONS.format(run=self.run_dir.name,
                                                              groups=", ".join(self.context_groups)))
        self.tracker_config = str(tracker_config)
        self.tracker: Detector | None = None
        self.tracker_choice: BackendChoice | None = None
        if tracker_run is not None:
            tracker_run = Path(tracker_run)
            # the tracker run's own export decides, unless PyTorch was asked for
            requested = "pytorch" if self.requested_backend == PYTORCH else "auto"
            self.tracker_choice = choose_backend(tracker_run, run_model_type(tracker_run), requested, self.device)
            self.tracker, self.tracker_choice = _load_detector(tracker_run, self.tracker_choice, self.device)
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
            windows: list = []          # (annotation, track key, frames) of each full buffer
            fill: list[list[int]] = []
            numbers: list[list[int]] = []
            start = 0
            for t in tracks:  # frame by frame, as `predict` on each in turn would
                full_here = self._buffer(state, t, entries[start:start + len(t.keys)])
                start += len(t.keys)
                full.append(full_here)
                sequences += [list(state.buffers[t.keys[i]]) for i in full_here]
                windows += [(t.annotation, t.keys[i], list(state.frames[t.keys[i]])) for i in full_here]
                fill.append([len(state.buffers[key]) for key in t.keys])
                numbers.append([self._number(state, key) for key in t.keys])
        context = self._window_context(windows)
        if self.classifier.splits_into_features:
            probabilities = self.classifier.classify_feature_sequences([np.stack(s) for s in sequences], context)
        else:
            probabilities = self.classifier.classify_sequences(sequences, context)
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
                                np.full(len(ground_truth), np.nan, np.float32), restart, ground_truth.annotation)
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
            state.buffers, state.frames, state.last_seen, state.numbers = {}, {}, {}, {}
        for key, entry in zip(tracks.keys, entries):
            state.buffers.setdefault(key, deque(maxlen=self.sequence_length)).append(entry)
            state.frames.setdefault(key, deque(maxlen=self.sequence_length)).append(tracks.index)
            state.last_seen[key] = tracks.index
        for key in [k for k, seen in state.last_seen.items() if tracks.index - seen > self.sequence_length]:
            state.buffers.pop(key, None)
            state.frames.pop(key, None)
            state.last_seen.pop(key, None)
        return [i for i, key in enumerate(tracks.keys) if len(state.buffers[key]) == self.sequence_length]

    def _window_context(self, windows: Sequence[tuple]) -> dict | None:
        """A fused run's ``{group: (B, T - 1, D)}`` context features of the full buffers' windows,
        from the clip's annotation (the catalogue's ``window_features``, as in training); None
        for a run that reads crops alone."""
        if not self.context_groups:
            return None
        from pedsense.data.context_features import window_features

        rows = []
        for annotation, key, frames in windows:
            track = annotation.track(str(key)) if annotation is not None else None
            if track is None:
                raise TracksUnavailable(_NEEDS_ANNOTATIONS.format(run=self.run_dir.name,
                                                                  groups=", ".join(self.context_groups)))
            rows.append(window_features(annotation, track, frames, self.context_groups))
        return {g: np.stack([row[g] for row in rows]) for g in self.context_groups} if rows else {}

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
def _load_detector(run_dir: Path, choice: BackendChoice, device: str) -> tuple[Detector, BackendChoice]:
    """The run's detector on the fastest engine of ``choice``; the choice with it settled."""
    def build(engine: str) -> Detector:
        if engine == PYTORCH:
            return Detector(detector_weights(run_dir), device=device, imgsz=run_imgsz(run_dir))
        return exported_detector(run_dir, choice, engine)

    model, engine, notes = load_fastest(run_dir, choice, ("detector",), build)
    return model, settle(choice, {"detector": engine}, notes)


def _load_classifier(run_dir: Path, choice: BackendChoice, device: str,
                     components: tuple[str, ...]) -> tuple[_CropModel, BackendChoice]:
    """The run's ResNet classifier on the fastest engine of ``choice`` (``components`` of its
    export); the choice with it settled."""
    def build(engine: str) -> _CropModel:
        if engine == PYTORCH:
            return CropClassifier(classifier_weights(run_dir), device=device)
        return exported_classifier(run_dir, choice, engine, components)

    model, engine, notes = load_fastest(run_dir, choice, components, build)
    return model, settle(choice, dict.fromkeys(components, engine), notes)


PREDICTORS = {cls.model_type: cls for cls in (YoloPredictor, HybridPredictor, ResNetLSTMPredictor)}


def load_predictor(run_dir: str | os.PathLike, *, device: str | None = None,
                   conf: float = DEFAULT_CONFIDENCE, tracker_run: str | os.PathLike | None = None,
                   track_source: str = "auto", tracker_config: str | os.PathLike = DEFAULT_TRACKER,
                   backend: str = "auto") -> Predictor:
    """The predictor for a run folder, chosen by its ``model_type``.

    ``backend``: ``"auto"`` (on a CPU, per stage the fastest measured here of PyTorch and the
    run's current exports whose engine is installed, OpenVINO in bf16 only where it agrees with
    float32; PyTorch on a GPU), ``"onnx"`` (ONNX Runtime), ``"openvino"``, ``"openvino-bf16"``
    (the ResNet parts in bfloat16, on CPUs with bf16 units) or ``"pytorch"``. ``tracker_run``,
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
