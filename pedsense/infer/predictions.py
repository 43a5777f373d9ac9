"""``Predictions``: what every predictor returns for one frame, and ground truth in the same shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

CROSSING = "crossing"
NOT_CROSSING = "not-crossing"
BUFFERING = "buffering"
INTENT_LABELS = (NOT_CROSSING, CROSSING, BUFFERING)


def _as_boxes(xyxy: Any) -> np.ndarray:
    boxes = np.asarray(xyxy, dtype=np.float32)
    if boxes.size == 0:
        return np.empty((0, 4), dtype=np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {boxes.shape}")
    return boxes


def _column(values: Any, n: int, fill: float, dtype) -> np.ndarray:
    if values is None:
        return np.full(n, fill, dtype=dtype)
    column = np.asarray(values, dtype=dtype).reshape(-1)
    if len(column) != n:
        raise ValueError(f"expected {n} values, got {len(column)}")
    return column


@dataclass(frozen=True)
class Predictions:
    """The pedestrians a predictor found in one frame.

    Attributes:
        frame_index: index of the frame in its clip.
        xyxy: (N, 4) float32 box corners in pixels.
        labels: N intent labels: ``"crossing"``, ``"not-crossing"`` or ``"buffering"``
            (a ResNet-LSTM track whose crop buffer is not full yet).
        probabilities: (N,) float32 probability of the shown label (NaN while buffering).
        crossing_scores: (N,) float32 P(crossing), the score ROC AUC ranks (NaN while buffering).
        confidences: (N,) float32 detector confidence (NaN for boxes that come from ground truth).
        track_ids: (N,) int64 track ids, -1 where the box has none.
        buffer_fill: (N,) int64 crops buffered per track (ResNet-LSTM), 0 otherwise.
    """

    frame_index: int
    xyxy: np.ndarray
    labels: tuple[str, ...]
    probabilities: np.ndarray
    crossing_scores: np.ndarray
    confidences: np.ndarray
    track_ids: np.ndarray
    buffer_fill: np.ndarray

    @classmethod
    def build(cls, frame_index: int, xyxy: Any, labels: Sequence[str], *,
              probabilities: Any = None, crossing_scores: Any = None, confidences: Any = None,
              track_ids: Any = None, buffer_fill: Any = None) -> "Predictions":
        """Validate and normalise arrays; omitted columns are filled (NaN, -1 or 0)."""
        boxes = _as_boxes(xyxy)
        n = len(boxes)
        labels = tuple(str(label) for label in labels)
        if len(labels) != n:
            raise ValueError(f"{n} boxes but {len(labels)} labels")
        return cls(
            frame_index=int(frame_index),
            xyxy=boxes,
            labels=labels,
            probabilities=_column(probabilities, n, np.nan, np.float32),
            crossing_scores=_column(crossing_scores, n, np.nan, np.float32),
            confidences=_column(confidences, n, np.nan, np.float32),
            track_ids=_column(track_ids, n, -1, np.int64),
            buffer_fill=_column(buffer_fill, n, 0, np.int64),
        )

    @classmethod
    def empty(cls, frame_index: int = 0) -> "Predictions":
        return cls.build(frame_index, np.empty((0, 4)), ())

    def __len__(self) -> int:
        return len(self.xyxy)

    def select(self, keep: np.ndarray) -> "Predictions":
        """The subset where the boolean (N,) mask ``keep`` is true."""
        keep = np.asarray(keep, dtype=bool)
        return Predictions(
            frame_index=self.frame_index,
            xyxy=self.xyxy[keep],
            labels=tuple(label for label, k in zip(self.labels, keep) if k),
            probabilities=self.probabilities[keep],
            crossing_scores=self.crossing_scores[keep],
            confidences=self.confidences[keep],
            track_ids=self.track_ids[keep],
            buffer_fill=self.buffer_fill[keep],
        )

    def above(self, min_confidence: float) -> "Predictions":
        """Boxes whose detector confidence is at least ``min_confidence`` (NaN = no detector: kept)."""
        keep = np.isnan(self.confidences) | (self.confidences >= float(min_confidence))
        return self.select(keep)

    def counts(self) -> dict[str, int]:
        """How many boxes carry each intent label."""
        return {label: sum(1 for shown in self.labels if shown == label) for label in INTENT_LABELS}

    def rows(self) -> list[dict]:
        """One plain dict per box, for tables (the viewer's per-frame table)."""
        out = []
        for i in range(len(self)):
            x1, y1, x2, y2 = (round(float(v), 1) for v in self.xyxy[i])
            out.append({
                "track": int(self.track_ids[i]) if self.track_ids[i] >= 0 else None,
                "intent": self.labels[i],
                "probability": _rounded(self.probabilities[i]),
                "detector_conf": _rounded(self.confidences[i]),
                "x1": x1, "y1": y1, "x2": x2, "y2": y2,
            })
        return out


@dataclass(frozen=True)
class GroundTruth:
    """Annotated pedestrians of one frame (boxes with ``outside=1`` already dropped).

    Attributes:
        frame_index: the frame.
        xyxy: (M, 4) float32 boxes.
        track_ids: M JAAD pedestrian ids (strings such as ``"0_1_3b"``).
        labels: M labels: the JAAD ``cross`` value of behaviour pedestrians (``"crossing"``,
            ``"not-crossing"``), else the track label (``"ped"`` bystander, ``"people"`` group).
        annotation: the clip's parsed annotation (``VideoAnnotation``, with its scene) when the
            ground truth came from one: a fused ResNet-LSTM reads its windows' context from it.
    """

    frame_index: int
    xyxy: np.ndarray
    track_ids: tuple[str, ...]
    labels: tuple[str, ...]
    annotation: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, frame_index: int, xyxy: Any, track_ids: Sequence[str],
              labels: Sequence[str], annotation: Any = None) -> "GroundTruth":
        boxes = _as_boxes(xyxy)
        if not (len(boxes) == len(track_ids) == len(labels)):
            raise ValueError("ground truth boxes, ids and labels must have the same length")
        return cls(int(frame_index), boxes, tuple(map(str, track_ids)), tuple(map(str, labels)), annotation)

    @classmethod
    def empty(cls, frame_index: int = 0) -> "GroundTruth":
        return cls.build(frame_index, np.empty((0, 4)), (), ())

    def __len__(self) -> int:
        return len(self.xyxy)


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 3)
