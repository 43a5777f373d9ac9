"""The per-window predictions of an evaluation: ``<run>/predictions_<split>.parquet``.

``evaluate()`` keeps every sample it scored (a ResNet-LSTM's crop sequences, a hybrid's single
crops, a YOLO run's detections matched to ground-truth boxes) as one row beside its metadata:

- the sample: ``sample_id``, ``kind`` (``window``/``crop``/``detection``), ``video_id``,
  ``track_id``, ``start_frame``, ``end_frame`` (a crop's or detection's frame twice),
  ``label`` (1 crossing), ``p_crossing``, ``split``;
- when and under what: ``tte`` (frames from the sample's last frame to the pedestrian's event:
  the ``crossing_point``, else the third-to-last visible frame, as ``pedsense.data.intent`` says;
  an ``intent`` build's own TTE where it has one; negative after the event), ``tte_bin``
  (``pedsense.data.intent.tte_bin``, or ``after event``), ``event_frame``, ``event_source``
  (``crossing_point`` or ``track_end``), ``occlusion``
  (worst level over the window), ``time_of_day``, ``weather``, ``track_label``;
- the pedestrian's JAAD attributes (``ATTRIBUTE_COLUMNS``: age, gender, group size, signalized,
  intersection, motion direction, designated crossing, traffic direction, lanes).

Text columns read ``unknown`` where the data has no value (a ``ped`` bystander has no attributes
file entry; a detection that matched no annotated pedestrian has no track). The evaluation JSON
records the dataset build it was made on (:func:`dataset_stamp`), so a later rebuild is noticed
(:func:`dataset_drift`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from pedsense.config import paths
from pedsense.data.intent import OCCLUSION_LEVELS, TrackEvent, _occlusion_level, track_event, tte_bin
from pedsense.data.jaad import parse_annotation, parse_attributes
from pedsense.data.manifest import fingerprint
from pedsense.errors import DataError, PedsenseError
from pedsense.geometry import box_iou
from pedsense.io import atomic_path, read_json

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
AFTER_EVENT = "after event"
SAMPLE_COLUMNS = ("sample_id", "kind", "video_id", "track_id", "start_frame", "end_frame", "label",
                  "p_crossing", "split")
CONTEXT_COLUMNS = ("tte", "tte_bin", "event_frame", "event_source", "occlusion", "time_of_day", "weather",
                   "track_label")
# JAAD's per-pedestrian attributes (annotations_attributes/*.xml), in the order the page lists them.
ATTRIBUTE_COLUMNS = ("age", "gender", "group_size", "signalized", "intersection", "motion_direction",
                     "designated", "traffic_direction", "num_lanes")
COLUMNS = SAMPLE_COLUMNS + CONTEXT_COLUMNS + ATTRIBUTE_COLUMNS
# The columns a filter or a per-group chart can take: every categorical one.
CATEGORY_COLUMNS = ("tte_bin", "occlusion", "time_of_day", "weather", "track_label") + ATTRIBUTE_COLUMNS \
    + ("video_id",)


class NotEvaluated(PedsenseError):
    """A run has no per-window predictions on a split (never evaluated, or evaluated before they
    were kept); ``evaluated`` says which."""

    def __init__(self, message: str, *, evaluated: bool):
        super().__init__(message)
        self.evaluated = evaluated


def predictions_path(run_dir: str | os.PathLike, split: str) -> Path:
    return Path(run_dir) / f"predictions_{split}.parquet"


# -- the dataset an evaluation was made on ---------------------------------------------------------
def dataset_stamp(manifest_path: str | os.PathLike) -> dict[str, Any]:
    """What identifies a dataset build, from its manifest: path, ``created_at``, task, protocol,
    split, parameters, counts and a ``fingerprint`` of parameters, inputs and creation time (a
    rebuild changes it). The evaluation JSON keeps it, so both builds can be shown side by side."""
    manifest_path = Path(manifest_path)
    manifest = read_json(manifest_path, None)
    if not isinstance(manifest, dict):
        return {"manifest": str(manifest_path), "built": False, "fingerprint": None}
    return {"manifest": str(manifest_path), "built": True, "created_at": manifest.get("created_at"),
            "task": manifest.get("task") or "action", "intent_options": manifest.get("intent_options"),
            "split": (manifest.get("split") or {}).get("source"), "synthetic": bool(manifest.get("synthetic")),
            "parameters": manifest.get("parameters"), "counts": manifest.get("counts"),
            "total": manifest.get("total"),
            "fingerprint": fingerprint([manifest.get("parameters"), manifest.get("inputs"),
                                        manifest.get("created_at"), manifest.get("total")])}


@dataclass(frozen=True)
class DatasetDrift:
    """The build an evaluation was made on (``recorded``) and the one on disk now (``current``)."""

    recorded: dict
    current: dict

    @property
    def message(self) -> str:
        now = (f"the build on disk is from {self.current.get('created_at')}" if self.current.get("built")
               else "no such build is on disk now")
        was = self.recorded.get("created_at") or "an unrecorded date"
        return (f"This evaluation was made on the dataset built {was} ({self.recorded.get('manifest')}), "
                f"but {now}: windows, labels and frames may no longer match the table. "
                "Evaluate the run again to browse the current build.")


def dataset_drift(evaluation: dict, manifest_path: str | os.PathLike) -> DatasetDrift | None:
    """How the dataset on disk differs from the one ``evaluation`` was made on (None when it is the same)."""
    recorded = evaluation.get("dataset") or {}
    current = dataset_stamp(manifest_path)
    if recorded.get("fingerprint") == current.get("fingerprint"):
        return None
    return DatasetDrift(recorded=recorded, current=current)


# -- building the table ---------------------------------------------------------------------------
def build_table(y_true: Sequence[int], p_crossing: Sequence[float], rows: Sequence[dict], *,
                split: str, home=None) -> pd.DataFrame:
    """One row per scored sample, with its metadata (the module docstring lists the columns).

    Args:
        y_true: (N,) labels; p_crossing: (N,) P(crossing); rows: N metadata dicts, the
            ``labels.csv`` / ``crops.csv`` rows or, for detections, ``{"sample_id", "video_id",
            "frame", "xyxy", "image_wh"}``.
        split: the split the samples come from.
    """
    if len(rows) != len(y_true) or len(p_crossing) != len(y_true):
        raise DataError(f"{len(y_true)} labels, {len(p_crossing)} probabilities and {len(rows)} metadata "
                        "rows: the predictions table needs one of each per sample.")
    full = not all("tte" in row for row in rows) or any("xyxy" in row for row in rows)
    videos = _videos({str(row["video_id"]).strip() for row in rows}, home, full=full)
    records = []
    for row, label, p in zip(rows, y_true, p_crossing):
        record = _sample(row, videos)
        record.update(label=int(label), p_crossing=float(p), split=split)
        records.append(record)
    frame = pd.DataFrame(records, columns=list(COLUMNS))
    return _typed(frame)


def _sample(row: dict, videos: dict) -> dict:
    """The columns of one sample: its own, then its context, then its pedestrian's attributes."""
    video_id = str(row["video_id"]).strip()
    video = videos.get(video_id) or _Video(None, {})
    annotation = video.annotation
    if "sequence_id" in row:
        kind, sample_id = "window", row["sequence_id"]
        start, end = int(row["start_frame"]), int(row["end_frame"])
    else:
        kind = "detection" if "xyxy" in row else "crop"
        sample_id = row.get("crop_id") or row.get("sample_id")
        start = end = int(row["frame"])
    track_id = str(row.get("track_id") or "").strip()
    if kind == "detection" and annotation is not None:
        track_id = _matched_track(annotation, end, row["xyxy"], row.get("image_wh"))
    track = annotation.track(track_id) if annotation is not None and track_id else None
    record = {"sample_id": str(sample_id).strip(), "kind": kind, "video_id": video_id,
              "track_id": track_id or UNKNOWN, "start_frame": start, "end_frame": end}
    record.update(_context(row, annotation, track, start, end))
    attributes = video.attributes.get(track_id, {})
    if record["event_source"] is None:  # an intent build's event: its crossing point, else the track's end
        crossing_point = attributes.get("crossing_point")
        record["event_source"] = "crossing_point" if crossing_point is not None and crossing_point == \
            record["event_frame"] else "track_end" if record["event_frame"] is not None else UNKNOWN
    record.update({name: _text(attributes.get(name)) for name in ATTRIBUTE_COLUMNS})
    return record


def _context(row: dict, annotation, track, start: int, end: int) -> dict:
    """TTE, event, occlusion, time of day, weather and track label: the build's columns when it has
    them (``intent`` builds), else derived from the annotation by the protocol's rules."""
    if "tte" in row and str(row["tte"]).strip() != "":
        tte = int(float(row["tte"]))
        return {"tte": tte, "tte_bin": _tte_bin(tte), "event_frame": int(float(row["event_frame"])),
                "event_source": None,  # from the attributes, in _sample
                "occlusion": _text(row.get("occlusion")), "time_of_day": _text(row.get("time_of_day")),
                "weather": _text(row.get("weather")), "track_label": _text(row.get("track_label"))}
    context = {"tte": None, "tte_bin": UNKNOWN, "event_frame": None, "event_source": UNKNOWN, "occlusion": UNKNOWN,
               "time_of_day": _text(getattr(annotation, "time_of_day", None)),
               "weather": _text(getattr(annotation, "weather", None)),
               "track_label": _text(getattr(track, "label", None))}
    if track is None:
        return context
    event = track_event(track)
    if isinstance(event, TrackEvent):
        context.update(tte=event.frame - end, tte_bin=_tte_bin(event.frame - end), event_frame=event.frame,
                       event_source=event.source)
    levels = [_occlusion_level(box) for box in track.boxes if start <= box.frame <= end]
    if levels:
        context["occlusion"] = OCCLUSION_LEVELS[max(levels)]
    return context


def _tte_bin(tte: int) -> str:
    """The protocol's TTE bin; ``after event`` for a sample that ends after its pedestrian's event
    (``action`` builds label every frame, crossing ones included)."""
    return AFTER_EVENT if tte < 0 else tte_bin(tte)


def _matched_track(annotation, frame: int, xyxy, image_wh) -> str:
    """The annotated pedestrian whose box in ``frame`` overlaps the detection's ground-truth box
    best (IoU ≥ 0.5), or "" when none does."""
    candidates = [(t, t.box_at(frame)) for t in annotation.tracks if t.label != "people"]
    candidates = [(t, b) for t, b in candidates if b is not None]
    if not candidates:
        return ""
    sx = sy = 1.0
    if image_wh and annotation.width > 0 and annotation.height > 0:
        sx, sy = image_wh[0] / annotation.width, image_wh[1] / annotation.height
    boxes = np.array([[b.xtl * sx, b.ytl * sy, b.xbr * sx, b.ybr * sy] for _, b in candidates], np.float32)
    iou = box_iou(np.asarray([xyxy], np.float32), boxes)[0]
    best = int(iou.argmax())
    return candidates[best][0].track_id if iou[best] >= 0.5 else ""


@dataclass(frozen=True)
class _Video:
    """One scored video: its parsed annotation (None when only the attributes were read) and
    ``{track id: attributes}``."""

    annotation: Any
    attributes: dict


def _videos(video_ids: set[str], home, *, full: bool) -> dict[str, _Video]:
    """The scored videos' attributes and (``full``) annotations; ``full=False`` reads only the
    attributes files (every other column then comes from the build). A video whose files cannot
    be read is left out (its columns read ``unknown``), with a warning in the log."""
    p = paths(home)
    found = {}
    for video in sorted(video_ids):
        attributes_file = p.attributes_file(video) if p.attributes_file(video).is_file() else None
        try:
            if full and p.annotation(video).is_file():
                annotation = parse_annotation(p.annotation(video), attributes_file)
                found[video] = _Video(annotation, {t.track_id: t.attributes for t in annotation.tracks})
            elif attributes_file is not None:
                found[video] = _Video(None, parse_attributes(attributes_file))
        except PedsenseError as exc:
            log.warning("predictions table: %s left without attributes (%s)", video, exc)
    return found


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return UNKNOWN
    text = str(value).strip()
    return text or UNKNOWN


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Column types the browser relies on: integers, nullable integers, floats and text."""
    ints = {"start_frame": "int64", "end_frame": "int64", "label": "int64"}
    frame = frame.astype({**ints, "p_crossing": "float64", "tte": "Int64", "event_frame": "Int64"})
    for column in set(COLUMNS) - set(ints) - {"p_crossing", "tte", "event_frame"}:
        frame[column] = frame[column].astype(str)
    return frame


# -- writing and reading ----------------------------------------------------------------------------
def write_predictions(run_dir: str | os.PathLike, split: str, table: pd.DataFrame) -> dict:
    """Write ``table`` to ``predictions_<split>.parquet`` atomically; returns the record the
    evaluation JSON keeps (``file``, ``rows``, ``kind``)."""
    target = predictions_path(run_dir, split)
    with atomic_path(target) as tmp:
        table.to_parquet(tmp, index=False)
    kinds = sorted(set(table["kind"])) if len(table) else []
    return {"file": target.name, "rows": int(len(table)), "kind": kinds[0] if len(kinds) == 1 else kinds}


def read_predictions(run_dir: str | os.PathLike, split: str, evaluation: dict | None) -> pd.DataFrame:
    """The predictions table of a run on ``split``.

    Raises:
        NotEvaluated: the run has no evaluation on ``split``, or one made before predictions
            were kept (the message says how to evaluate it).
        DataError: the evaluation scored nothing (no table to browse), or the file is unreadable.
    """
    run_dir = Path(run_dir)
    run_id = f"{run_dir.parent.name}/{run_dir.name}"
    fix = f"evaluate it (the Evaluate button, or `pedsense evaluate {run_id} --split {split}`)"
    if evaluation is None:
        raise NotEvaluated(f"Run {run_id} is not evaluated on {split} yet: {fix}.", evaluated=False)
    path = predictions_path(run_dir, split)
    if "predictions" not in evaluation:
        raise NotEvaluated(f"Run {run_id} was evaluated on {split} on {evaluation.get('evaluated_at', '?')}, "
                           f"before per-window predictions were kept (no {path.name}): {fix} again.",
                           evaluated=True)
    if not evaluation["predictions"]:
        skipped = (evaluation.get("benchmark") or {}).get("skipped") or "it scored no sample"
        raise DataError(f"Run {run_id}'s evaluation on {split} has no predictions to browse ({skipped}).")
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be read ({exc}): {fix} again to rewrite it.") from exc
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path} lacks the columns {', '.join(missing)}: {fix} again to rewrite it.")
    problem = values_problem(table)
    if problem:
        raise DataError(f"{path} {problem}: {fix} again to rewrite it.")
    return table


def values_problem(table: pd.DataFrame) -> str | None:
    """Why the scores or labels of a predictions table cannot be browsed, or None: every filter,
    metric and chart compares them, so a NaN would read as "no window matches" instead."""
    checks = (("p_crossing", "a probability in [0, 1]", lambda v: v.between(0.0, 1.0)),
              ("label", "0 or 1", lambda v: v.isin((0, 1))))
    for column, meant, valid in checks:
        bad = ~valid(pd.to_numeric(table[column], errors="coerce"))
        if bad.any():
            return (f"has {int(bad.sum())} of {len(table)} rows whose column {column} is not {meant} "
                    f"(first: {table[column][bad].iloc[0]!r} in sample {table['sample_id'][bad].iloc[0]})")
    return None
