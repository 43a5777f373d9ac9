"""Intent over time for one annotated pedestrian: the viewer's chart under the frame.

``track_intent_series`` is a pure function: given a pedestrian's track and a run's predictions
per frame, it returns P(crossing) of the predicted box that matches the pedestrian in each
frame where it is visible, with the JAAD benchmark's markers: the **event** (the
``crossing_point``, else the third-to-last visible frame, as ``pedsense.data.intent.track_event``
says) and the **TTE window**, the frames 30-60 before the event in which a benchmark
observation window ends. ``predict_track_series`` runs a predictor over the track's frames to
get those predictions.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from pedsense.config import paths
from pedsense.data.intent import TrackEvent, track_event, visible_frames
from pedsense.errors import DataError
from pedsense.geometry import box_iou
from pedsense.infer.predictions import Predictions

Progress = Callable[[int, int, str], None]
MATCH_IOU = 0.5


@dataclass(frozen=True)
class IntentSeries:
    """P(crossing) of one pedestrian per visible frame, with the benchmark's markers.

    Attributes:
        video_id, track_id: the pedestrian.
        frames: (T,) the track's visible frames, ascending.
        p_crossing: (T,) P(crossing) of the predicted box matched to the pedestrian (IoU ≥ 0.5)
            in that frame; None where nothing matched or the model was still buffering.
        event_frame: the event the benchmark counts back from; None when the track has none.
        event_source: ``"crossing_point"`` or ``"track_end"`` (None with no event); ``skip``
            says why there is no event (e.g. ``event_outside_track``).
        tte: the TTE range (min, max) frames.
        crossing: the track-level ``crossing`` attribute (1, 0, -1), None without attributes.
    """

    video_id: str
    track_id: str
    track_label: str
    frames: tuple[int, ...]
    p_crossing: tuple[float | None, ...]
    event_frame: int | None
    event_source: str | None
    tte: tuple[int, int]
    crossing: int | None = None
    skip: str = ""

    @property
    def tte_window(self) -> tuple[int, int] | None:
        """``(event - tte_max, event - tte_min)``: where a benchmark window's last frame may be."""
        if self.event_frame is None:
            return None
        return self.event_frame - self.tte[1], self.event_frame - self.tte[0]

    @property
    def predicted_frames(self) -> int:
        """How many frames have a probability."""
        return sum(p is not None for p in self.p_crossing)

    def rows(self) -> list[dict]:
        """One dict per frame: ``frame, p_crossing, frames_to_event, in_tte_window``."""
        window = self.tte_window
        return [{"frame": f, "p_crossing": p,
                 "frames_to_event": None if self.event_frame is None else self.event_frame - f,
                 "in_tte_window": bool(window and window[0] <= f <= window[1])}
                for f, p in zip(self.frames, self.p_crossing)]


def track_intent_series(track, predictions: Mapping[int, Predictions] | Iterable[Predictions], *,
                        video_id: str = "", tte: Sequence[int] = (30, 60),
                        iou_threshold: float = MATCH_IOU) -> IntentSeries:
    """P(crossing) over time of one annotated pedestrian (a pure function).

    Args:
        track: a ``pedsense.data.annotation.Track`` (attributes attached for ``crossing_point``).
        predictions: a run's ``Predictions`` per frame (a ``{frame: Predictions}`` mapping, or
            an iterable of them, keyed by their ``frame_index``); frames without any count as
            "no prediction".
        tte: the benchmark's TTE range (min, max) in frames.
        iou_threshold: a predicted box is the pedestrian's when its IoU with the annotated box
            is at least this (the best such box wins).

    Returns:
        An :class:`IntentSeries` over the track's visible frames.
    """
    by_frame = dict(predictions) if isinstance(predictions, Mapping) else \
        {p.frame_index: p for p in predictions}
    frames = visible_frames(track)
    values = tuple(_matched_score(by_frame.get(f), track.box_at(f).xyxy, iou_threshold) for f in frames)
    event = track_event(track) if frames else "short_track"
    low, high = int(tte[0]), int(tte[-1])
    return IntentSeries(
        video_id=video_id, track_id=str(track.track_id), track_label=str(track.label),
        frames=tuple(frames), p_crossing=values,
        event_frame=event.frame if isinstance(event, TrackEvent) else None,
        event_source=event.source if isinstance(event, TrackEvent) else None,
        tte=(low, high), crossing=getattr(track, "crossing", None),
        skip="" if isinstance(event, TrackEvent) else str(event))


def _matched_score(predictions: Predictions | None, box_xyxy, iou_threshold: float) -> float | None:
    """P(crossing) of the predicted box best overlapping ``box_xyxy`` (None if none does)."""
    if predictions is None or len(predictions) == 0:
        return None
    iou = box_iou(predictions.xyxy, np.asarray(box_xyxy, np.float32))[:, 0]
    best = int(iou.argmax())
    score = float(predictions.crossing_scores[best])
    if iou[best] < iou_threshold or not math.isfinite(score):
        return None
    return round(score, 4)


# -- running a predictor -------------------------------------------------------------------------
def clip_annotation(video_path: str | os.PathLike, home: str | os.PathLike | None = None):
    """The clip's ``VideoAnnotation`` with its attributes file attached, or None when unannotated."""
    from pedsense.data.jaad import parse_annotation

    video_id = Path(video_path).stem
    p = paths(home)
    if not p.annotation(video_id).is_file():
        return None
    attributes = p.attributes_file(video_id)
    return parse_annotation(p.annotation(video_id), attributes if attributes.is_file() else None)


def pedestrian_tracks(annotation) -> list:
    """The tracks a chart can follow: pedestrians (``pedestrian``/``ped``), not ``people`` groups."""
    if annotation is None:
        return []
    return [t for t in annotation.tracks if t.label != "people" and t.boxes]


def predict_track_series(predictor, video_path: str | os.PathLike, annotation, track_id: str, *,
                         tte: Sequence[int] = (30, 60), progress: Progress | None = None) -> IntentSeries:
    """Run ``predictor`` over the frames of one pedestrian and return its intent series.

    The predictor reads the clip's frames from the track's first visible frame to its last,
    with the clip's ground truth (so a ResNet-LSTM follows the annotated track), in a fresh
    ``ClipState`` of its own: a shared predictor's other users are not disturbed.

    Raises:
        DataError: the clip's annotation has no such pedestrian.
    """
    from pedsense.data.video import iter_frames
    from pedsense.infer.ground_truth import ClipGroundTruth

    track = annotation.track(track_id) if annotation is not None else None
    if track is None or not visible_frames(track):
        raise DataError(f"{Path(video_path).name} has no visible pedestrian {track_id!r}; "
                        "pick one of its annotated pedestrians.")
    ground_truth = ClipGroundTruth.from_annotation(annotation)
    frames = visible_frames(track)
    first, last = frames[0], frames[-1]

    def source():
        for index, image in iter_frames(video_path, start=first):
            if index > last:
                break
            yield index, image, ground_truth.at(index)

    predictions: dict[int, Predictions] = {}
    for index, _, _, predicted in predictor.predict_stream(source(), state=predictor.new_state()):
        predictions[index] = predicted
        if progress is not None:
            progress(index - first + 1, last - first + 1, f"frame {index}/{last}")
    return track_intent_series(track, predictions, video_id=annotation.video_id, tte=tte)
