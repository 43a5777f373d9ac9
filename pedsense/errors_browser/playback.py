"""Play one sample of a predictions table: what the model saw, then what happened next.

For a row of ``predictions_<split>.parquet``: the observed frames (a window's frames; for a crop or
a detection, the frame scored and the frames before it, as context) as a strip of the crops the
model reads, then every frame up to the pedestrian's event (the *horizon*, at most
``max_horizon`` frames), each with the pedestrian's annotated box and label, the prediction (in
the observed frames) and the crossing point marked; :func:`write_clip` writes them as a short
WebM (``pedsense.infer.render``'s writer). :func:`table_series` is the pedestrian's P(crossing)
over its whole track as the table has it (an ``IntentSeries``, the Viewer's chart).

Frames come from ``pedsense.data.frames.load_frame``; boxes are drawn by ``pedsense.infer.draw``.
When no frame of the video exists (a context run trained on annotations alone, no clips), the
window is drawn from its annotations instead (:func:`trajectory_frames`): the pedestrian's box
trajectory on a blank frame of the video's size, with the ego-vehicle's action and the traffic
scene of each frame in the caption.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import cv2
import numpy as np
import pandas as pd

from pedsense.config import CLASS_NAMES, paths
from pedsense.data.crops import crop_pedestrian
from pedsense.data.frames import load_frame
from pedsense.errors import DataError
from pedsense.infer.draw import INTENT_COLORS, Style, draw_caption, draw_ground_truth, draw_predictions
from pedsense.infer.intent_series import IntentSeries, clip_annotation
from pedsense.infer.predictions import CROSSING, NOT_CROSSING, GroundTruth, Predictions
from pedsense.infer.render import RenderError, open_writer

OBSERVED, HORIZON = "observed", "horizon"
STRIP_CROP = (96, 96)
MIN_WIDTH = 640
EVENT_COLOR = (40, 40, 230)  # red: the crossing point, like the crossing intent


@dataclass(frozen=True)
class WindowFrames:
    """One sample's frames, drawn.

    Attributes:
        observed: the frames the model saw (a crop's or detection's context ends on its frame).
        horizon: the frames after them up to the event (capped), possibly empty.
        images: (H, W, 3) BGR frames with overlays, observed then horizon.
        strip: (S, S * len(observed), 3) BGR crops of the observed frames, side by side.
        event_frame: the event the sample's TTE counts to (None when it has none).
        notes: what could not be shown, and why.
    """

    observed: tuple[int, ...]
    horizon: tuple[int, ...]
    images: tuple[np.ndarray, ...]
    strip: np.ndarray
    event_frame: int | None
    notes: tuple[str, ...] = ()

    @property
    def frames(self) -> tuple[int, ...]:
        return self.observed + self.horizon


def window_frames(row: Mapping, *, threshold: float = 0.5, obs_length: int = 16, max_horizon: int = 90,
                  max_width: int = 960, home: str | os.PathLike | None = None, annotation=None) -> WindowFrames:
    """Draw the observed frames and the horizon of one table row.

    Args:
        row: a predictions-table row (``video_id``, ``track_id``, ``start_frame``, ``end_frame``,
            ``kind``, ``label``, ``p_crossing``, ``event_frame``, ``tte``).
        threshold: P(crossing) at or above it is shown as a crossing prediction.
        obs_length: the observation length (a crop's context; a longer window is subsampled).
        max_horizon: at most this many frames after the observed ones.
        max_width: frames wider than this are scaled down (the clip stays small); frames
            narrower than ``MIN_WIDTH`` are scaled up so the captions read.
        annotation: the video's ``VideoAnnotation`` (parsed from the data home when None).

    Raises:
        DataError: the video has no annotation, or not even the sample's last frame can be read.
    """
    video_id, track_id = str(row["video_id"]), str(row["track_id"])
    annotation = annotation if annotation is not None else clip_annotation(paths(home).clip(video_id), home)
    if annotation is None:
        raise DataError(f"{video_id} has no annotation in {paths(home).annotations}: the window cannot be "
                        "shown. Restore the annotation, or evaluate the run on the data on disk.")
    if not frames_exist(video_id, home):
        return trajectory_frames(row, annotation, threshold=threshold, obs_length=obs_length,
                                 max_horizon=max_horizon, max_width=max_width)
    track = annotation.track(track_id)
    observed = _observed_frames(row, track, obs_length)
    event = _event(row)
    end = int(row["end_frame"])
    horizon = tuple(range(end + 1, min(event, end + max_horizon) + 1)) if event is not None and event > end else ()
    images, crops, notes = [], [], []
    for phase, frames in ((OBSERVED, observed), (HORIZON, horizon)):
        for position, frame in enumerate(frames):
            try:
                image = load_frame(video_id, frame, home)
            except DataError as exc:
                notes.append(f"stopped at frame {frame}: {exc}")
                break
            image, box = _fit(image, annotation, track, frame, max_width)
            if phase == OBSERVED:
                crops.append(_strip_crop(image, box, frame))
            images.append(_draw(image, box, row, threshold, phase, position, len(frames), frame, event))
        if notes:
            break
    if not images:
        raise DataError(f"No frame of {video_id} {observed[0]}-{observed[-1]} can be read: {notes[0]}")
    if event is None:
        notes.append("the pedestrian has no event (no crossing point, track too short): no horizon")
    if row.get("kind") != "window":
        notes.append(f"a single-{row.get('kind')} model scored frame {end} only; the frames before it are context")
    return WindowFrames(observed=observed[:len(crops)], horizon=tuple(horizon[:max(len(images) - len(crops), 0)]),
                        images=tuple(images), strip=np.hstack(crops) if crops else np.zeros((1, 1, 3), np.uint8),
                        event_frame=event, notes=tuple(notes))


def _observed_frames(row: Mapping, track, obs_length: int) -> tuple[int, ...]:
    start, end = int(row["start_frame"]), int(row["end_frame"])
    visible = [f for f in track.frames if f <= end] if track is not None else []
    if row.get("kind") == "window":
        frames = [f for f in visible if f >= start] or list(range(start, end + 1))
        if len(frames) > obs_length:  # sub-sampled frames: the window took every k-th one
            frames = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, obs_length).round()]
        return tuple(frames)
    return tuple((visible or [end])[-obs_length:])


def _event(row: Mapping) -> int | None:
    value = row.get("event_frame")
    return None if value is None or pd.isna(value) else int(value)


def _fit(image: np.ndarray, annotation, track, frame: int, max_width: int):
    """The frame scaled into ``MIN_WIDTH``-``max_width``, and the pedestrian's box in it (None when not visible)."""
    width = image.shape[1]
    scale = max_width / width if width > max_width else MIN_WIDTH / width if width < MIN_WIDTH else 1.0
    if scale != 1.0:
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    box = track.box_at(frame) if track is not None else None
    if box is None:
        return image, None
    sx = image.shape[1] / annotation.width if annotation.width > 0 else scale
    sy = image.shape[0] / annotation.height if annotation.height > 0 else scale
    return image, np.array([[box.xtl * sx, box.ytl * sy, box.xbr * sx, box.ybr * sy]], np.float32)


def _strip_crop(image: np.ndarray, box, frame: int) -> np.ndarray:
    crop = crop_pedestrian(image, box[0], STRIP_CROP) if box is not None else \
        np.zeros((STRIP_CROP[1], STRIP_CROP[0], 3), np.uint8)
    cv2.putText(crop, str(frame), (3, STRIP_CROP[1] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                cv2.LINE_AA)
    return crop


def _draw(image: np.ndarray, box, row: Mapping, threshold: float, phase: str, position: int, count: int,
          frame: int, event: int | None, extra: tuple[str, ...] = ()) -> np.ndarray:
    """The pedestrian's label (dashed), the prediction (solid, observed frames) and a caption band."""
    style = Style.for_image(image)
    label, p = int(row["label"]), float(row["p_crossing"])
    guess = CROSSING if p >= threshold else NOT_CROSSING
    if box is not None:
        image = draw_ground_truth(image, GroundTruth.build(frame, box, [row["track_id"]], [CLASS_NAMES[label]]),
                                  style=style)
        if phase == OBSERVED:
            image = draw_predictions(image, Predictions.build(frame, box, [guess], crossing_scores=[p],
                                                              probabilities=[p if guess == CROSSING else 1 - p]),
                                     style=style)
    first = (f"observed {position + 1}/{count} (frame {frame})" if phase == OBSERVED
             else f"after the window: frame {frame}, {event - frame} to the event" if event is not None
             else f"after the window: frame {frame}")
    lines = [first, f"label: {CLASS_NAMES[label]}", f"predicted: {guess} {p:.2f} (threshold {threshold:.2f})",
             *extra]
    color = INTENT_COLORS[guess] if phase == OBSERVED else None
    if event is not None and frame == event:
        lines[0] = (f"CROSSING POINT (frame {frame})" if row.get("event_source") == "crossing_point"
                    else f"EVENT: track end (frame {frame})")
        color = EVENT_COLOR
    return draw_caption(image, lines, color=color, style=style)


# -- no frames: the window drawn from its annotations ----------------------------------------------
BLANK = (48, 48, 48)       # the empty frame
TRAIL = (170, 170, 170)    # the path of the box's bottom centre so far


def frames_exist(video_id: str, home: str | os.PathLike | None = None) -> bool:
    """Whether any frame of ``video_id`` can be read (extracted JPEGs or its clip)."""
    p = paths(home)
    folder = p.video_frames(video_id)
    return p.clip(video_id).is_file() or (folder.is_dir() and any(folder.glob("frame_*.jpg")))


def trajectory_frames(row: Mapping, annotation, *, threshold: float = 0.5, obs_length: int = 16,
                      max_horizon: int = 90, max_width: int = 960) -> WindowFrames:
    """A window drawn without frames: blank frames of the video's size with the pedestrian's box,
    the path its bottom centre took so far, the label and prediction (as :func:`window_frames`
    draws them) and, per frame, the ego-vehicle's action and the traffic scene."""
    track = annotation.track(str(row["track_id"]))
    if track is None:
        raise DataError(f"{row['video_id']} has no pedestrian {row['track_id']} in its annotation: the "
                        "window cannot be drawn. Re-evaluate the run on the annotations on disk.")
    observed, event, end = _observed_frames(row, track, obs_length), _event(row), int(row["end_frame"])
    horizon = tuple(range(end + 1, min(event, end + max_horizon) + 1)) if event is not None and event > end else ()
    width, height = (annotation.width or 1920), (annotation.height or 1080)
    blank = np.full((height, width, 3), BLANK, np.uint8)
    path: list[tuple[int, int]] = []
    images = []
    for phase, frames in ((OBSERVED, observed), (HORIZON, horizon)):
        for position, frame in enumerate(frames):
            image, box = _fit(blank, annotation, track, frame, max_width)
            image = image.copy()
            if box is not None:
                path.append((int((box[0, 0] + box[0, 2]) / 2), int(box[0, 3])))
            if len(path) > 1:
                cv2.polylines(image, [np.array(path, np.int32)], False, TRAIL, 2, cv2.LINE_AA)
            images.append(_draw(image, box, row, threshold, phase, position, len(frames), frame, event,
                                extra=scene_lines(annotation.scene, frame)))
    thumbs = [cv2.resize(image, (STRIP_CROP[0] * 2, STRIP_CROP[1])) for image in images[:len(observed)]]
    return WindowFrames(observed=observed, horizon=horizon, images=tuple(images),
                        strip=np.hstack(thumbs[::max(1, len(thumbs) // 4)]) if thumbs else
                        np.zeros((1, 1, 3), np.uint8), event_frame=event,
                        notes=("no frames of this video exist: drawn from its annotations (the box "
                               "trajectory on a blank frame of the video's size)",)
                        + (() if event is not None else ("the pedestrian has no event: no horizon",)))


def scene_lines(scene, frame: int) -> tuple[str, ...]:
    """The ego action and the traffic scene of ``frame`` as caption lines ("?" where unknown)."""
    if scene is None:
        return ("ego: ? | scene: ? (no vehicle/traffic files)",)

    def at(values: list, text=str) -> str:
        value = values[frame] if 0 <= frame < len(values) else None
        return "?" if value is None else text(value)

    yes = {0: "no", 1: "yes"}.get
    return (f"ego: {at(scene.vehicle)} | light: {at(scene.traffic_light)} | road: {scene.road_type or '?'}",
            f"crosswalk: {at(scene.ped_crossing, yes)} | ped sign: {at(scene.ped_sign, yes)} | "
            f"stop sign: {at(scene.stop_sign, yes)}")


# -- the clip -------------------------------------------------------------------------------------
def write_clip(frames: WindowFrames, output: str | os.PathLike, fps: float = 8.0) -> Path:
    """Write ``frames.images`` as a WebM (VP9, else VP8) atomically; returns ``output``."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.stem}.partial.webm")
    height, width = frames.images[0].shape[:2]
    writer, _ = open_writer(partial, fps, (width, height))
    try:
        for image in frames.images:
            writer.write(image if image.shape[:2] == (height, width) else cv2.resize(image, (width, height)))
        writer.release()
        if not partial.is_file() or partial.stat().st_size == 0:
            raise RenderError(f"OpenCV wrote no video to {partial}; nothing was saved.")
        os.replace(partial, output)
    finally:
        writer.release()
        partial.unlink(missing_ok=True)
    return output


def clip_path(run_dir: str | os.PathLike, split: str, row: Mapping, threshold: float) -> Path:
    """``<run>/renders/errors/<split>/<sample>_t<threshold>.webm``: window clips live with the run."""
    return Path(run_dir) / "renders" / "errors" / split / f"{row['sample_id']}_t{threshold:.2f}.webm"


# -- the pedestrian's curve -------------------------------------------------------------------------
def table_series(table: pd.DataFrame, row: Mapping, annotation, *, tte: tuple[int, int] = (30, 60)) -> IntentSeries:
    """P(crossing) over the pedestrian's visible frames as the table has it: each sample's value at
    its last frame, None elsewhere (a window ends every few frames; a crop every frame)."""
    track = annotation.track(str(row["track_id"])) if annotation is not None else None
    mine = table[(table["video_id"] == row["video_id"]) & (table["track_id"] == row["track_id"])]
    values = dict(zip(mine["end_frame"].astype(int), mine["p_crossing"].astype(float)))
    frames = tuple(sorted(set(track.frames) | set(values))) if track is not None else tuple(sorted(values))
    event = _event(row)
    return IntentSeries(video_id=str(row["video_id"]), track_id=str(row["track_id"]),
                        track_label=str(row.get("track_label", "")), frames=frames,
                        p_crossing=tuple(round(values[f], 4) if f in values else None for f in frames),
                        event_frame=event, event_source=str(row.get("event_source")) if event is not None else None,
                        tte=tte, crossing=int(row["label"]))
