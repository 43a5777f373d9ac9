"""JAAD CVAT XML -> :class:`VideoAnnotation` / :class:`Track` / :class:`BoundingBox`.

One ``annotations/video_XXXX.xml`` holds a video's meta data (frame count, frame size, time of
day, weather, location) and one ``<track>`` per pedestrian with one ``<box>`` per frame. The
optional ``annotations_attributes/video_XXXX_attributes.xml`` holds one ``<pedestrian>`` per
behaviour pedestrian (``crossing``, ``crossing_point``, ``decision_point``, ...).

The parser agrees track by track with JAAD's official interface (``jaad_data.py``,
github.com/ykotseruba/JAAD): a track's id and ``old_id`` come from the ``id`` / ``old_id``
attributes of its first box; a track has behaviour labels when its ``old_id`` contains
``pedestrian`` (so ``old_id="pedestrian"``, without a number, counts); attributes are matched
by the pedestrian ``id``; a later track with an id already seen replaces the earlier one. Unlike
the official interface, boxes with ``outside="1"`` (not visible) are dropped.

Boxes no build may label are left out of their track too, each recorded in
``VideoAnnotation.rejected_boxes`` with a logged warning naming file, track and frame:
:func:`box_problem` is the one rule (a label value outside JAAD's vocabulary, inverted or empty
corners, a box wholly outside the image). Non-finite coordinates (``nan``, ``inf``) are an
:class:`AnnotationError` naming file, line and track. Files declaring a DTD are refused before
parsing: JAAD never uses one, and entity expansion can blow a small file up to gigabytes.

Parsing streams (``iterparse``, elements cleared as they are read): the 346 JAAD files are
133 MB of XML, and a full tree of them would take several GB.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import pyexpat
import warnings
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pedsense.config import paths
from pedsense.data.annotation import (BoundingBox, RejectedBox, Track, VideoAnnotation,
                                      _int_or_text, box_problem)
from pedsense.data.scene import parse_scene, scene_files
from pedsense.data.xml_read import (_FIX_FILE, _PrologRead, _feed_until_stopped, _frames_text,
                                     _parse_error, _parse_small_xml, _refuse_dtd)
from pedsense.errors import AnnotationError, DataError

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


# -- parsing one file -----------------------------------------------------------------------
def parse_annotation(xml_path: str | os.PathLike,
                     attributes_path: str | os.PathLike | None = None) -> VideoAnnotation:
    """Parse one JAAD annotation file (and, when given, its attributes file).

    Boxes no build may label (:func:`box_problem`) are left out of their tracks, listed in
    ``rejected_boxes`` and logged as warnings.

    Raises:
        AnnotationError: the file is missing, malformed, truncated or declares a DTD (the
            message names the file and line), lacks the frame count or frame size, or has a
            box with a missing, non-numeric or non-finite coordinate.
    """
    xml_path = Path(xml_path)
    attributes = parse_attributes(attributes_path) if attributes_path is not None else {}
    with _gc_paused():
        annotation = _parse_video(xml_path, {})
    for track in annotation.tracks:
        track.attributes = dict(attributes.get(track.track_id, {}))
    return annotation


def parse_attributes(attributes_path: str | os.PathLike) -> dict[str, dict]:
    """``{pedestrian id: {attribute: value}}`` from a ``video_XXXX_attributes.xml``.

    Values are ``int`` where the text is an integer (``crossing``, ``crossing_point``, ...),
    else the text (``gender="female"``); ``old_id`` stays text and ``id`` is the key.
    """
    path = Path(attributes_path)
    root = _parse_small_xml(path)
    attributes = {}
    for pedestrian in root.iter("pedestrian"):
        values = {k: _int_or_text(v) for k, v in pedestrian.attrib.items() if k != "id"}
        if "old_id" in values:
            values["old_id"] = pedestrian.get("old_id")
        attributes[pedestrian.get("id", "")] = values
    return attributes


def read_frame_count(xml_path: str | os.PathLike) -> int:
    """The frame count (``<meta><task><size>``) of an annotation file, reading only its head.

    Raises:
        AnnotationError: the file cannot be read, is malformed or has no frame count.
    """
    path = Path(xml_path)
    _refuse_dtd(path)
    video = VideoAnnotation(video_id=path.stem, num_frames=-1, width=-1, height=-1)
    try:
        for _, element in ET.iterparse(path, events=("end",)):
            if element.tag == "meta":
                _read_meta(element, video, path)
                break
    except ET.ParseError as exc:
        raise _parse_error(path, exc) from None
    except OSError as exc:
        raise AnnotationError(f"Cannot read annotation file {path}: {exc}. {_FIX_FILE}") from None
    if video.num_frames < 0:
        raise AnnotationError(f"{path} has no <meta><task><size> (frame count): it is not a JAAD "
                              f"annotation file. {_FIX_FILE}")
    return video.num_frames


def _parse_video(path: Path, strings: dict[str, str]) -> VideoAnnotation:
    """Stream ``path`` into a VideoAnnotation (attributes not attached).

    ``strings`` pools repeated texts: one str object for 'not-looking' in 100 000 boxes.
    """
    _refuse_dtd(path)
    intern = strings.setdefault
    video = VideoAnnotation(video_id=path.stem, num_frames=-1, width=-1, height=-1,
                            source=str(path))
    tracks: dict[str, Track] = {}
    boxes: list[tuple[dict, BoundingBox | None]] = []  # the current track's (attributes, box)
    n_tracks = 0
    try:
        for _, element in ET.iterparse(path, events=("end",)):
            tag = element.tag
            if tag == "box":
                boxes.append(_read_box(element, intern))
                element.clear()
            elif tag == "track":
                fallback_id = f"{video.video_id}_track{n_tracks}"
                _add_track(tracks, _build_track(element.get("label", ""), boxes, fallback_id), path)
                n_tracks += 1
                boxes = []
                element.clear()
            elif tag == "meta":
                _read_meta(element, video, path)
                element.clear()
    except ET.ParseError as exc:
        raise _parse_error(path, exc) from None
    except OSError as exc:
        raise AnnotationError(f"Cannot read annotation file {path}: {exc}. {_FIX_FILE}") from None
    except _BadBox as exc:
        track_id = (boxes[0][0].get("id") if boxes else None) or exc.box_id or "?"
        line, column = _box_position(path, n_tracks, len(boxes))
        raise AnnotationError(f"{path}, line {line}, column {column}: track {track_id}, "
                              f"frame {exc.frame}: {exc.problem}. {_FIX_FILE}") from None
    if video.num_frames < 0:
        raise AnnotationError(f"{path} has no <meta><task><size> (frame count): it is not a JAAD "
                              f"annotation file. {_FIX_FILE}")
    video.tracks = list(tracks.values())
    _reject_boxes(video, path)
    return video


def _read_meta(meta: ET.Element, video: VideoAnnotation, path: Path) -> None:
    """Frame count, frame size and the video attributes from ``<meta><task>``."""
    task = meta.find("task")
    if task is None:
        return
    try:
        video.num_frames = int(task.findtext("size", "-1"))
        size = task.find("original_size")
        if size is None:
            raise AnnotationError(f"{path} has no <meta><task><original_size> (frame width and "
                                  f"height). {_FIX_FILE}")
        video.width = int(size.findtext("width", "-1"))
        video.height = int(size.findtext("height", "-1"))
    except ValueError as exc:
        raise AnnotationError(f"{path}: bad frame count or size in <meta><task> ({exc}). "
                              f"{_FIX_FILE}") from None
    attributes = task.find("video_attributes")
    if attributes is not None:
        video.time_of_day = (attributes.findtext("time_of_day") or "").strip()
        video.weather = (attributes.findtext("weather") or "").strip()
        video.location = (attributes.findtext("location") or "").strip()


class _BadBox(Exception):
    """A box whose frame or corners cannot be read; :func:`_parse_video` adds file and line."""

    def __init__(self, box_id: str | None, frame: str, problem: str):
        super().__init__(problem)
        self.box_id, self.frame, self.problem = box_id, frame, problem


def _read_box(element: ET.Element, intern: Callable[[str, str], str]
              ) -> tuple[dict, BoundingBox | None]:
    """The box's ``<attribute>`` values, and the box itself (None when ``outside="1"``)."""
    values = {child.get("name"): intern(child.text, child.text) for child in element}
    header = element.attrib
    if header.get("outside") == "1":
        return values, None  # not visible; its id still names the track
    frame = header.get("frame", "?")
    try:
        box = BoundingBox(int(header["frame"]), float(header["xtl"]), float(header["ytl"]),
                          float(header["xbr"]), float(header["ybr"]),
                          occluded=header.get("occluded") == "1", extra=values)
    except (KeyError, ValueError) as exc:
        raise _BadBox(values.get("id"), frame,
                      f"box (id {values.get('id', '?')}, frame {frame}) has a missing or "
                      f"non-numeric frame or coordinate ({exc!r})") from None
    if not all(map(math.isfinite, box.xyxy)):
        name = next(n for n in ("xtl", "ytl", "xbr", "ybr") if not math.isfinite(float(header[n])))
        raise _BadBox(values.get("id"), frame,
                      f"box coordinate {name}={header[name]!r} is not a finite number")
    if "keyframe" in header:
        values["keyframe"] = intern(header["keyframe"], header["keyframe"])
    return values, box


def _build_track(label: str, boxes: list[tuple[dict, BoundingBox | None]], fallback_id: str
                 ) -> Track:
    """A Track from its boxes; the id and old_id come from the first box (JAAD's rule)."""
    first = boxes[0][0] if boxes else {}
    track_id = first.get("id") or fallback_id
    track = Track(label=label, track_id=track_id, old_id=first.get("old_id") or "")
    behavioural = track.is_behavioural
    for values, box in boxes:
        if box is None:
            continue
        box.occlusion = values.pop("occlusion", None) or "none"
        if behavioural:
            box.action = values.pop("action", None)
            box.cross = values.pop("cross", None)
            box.look = values.pop("look", None)
        track.boxes.append(box)
    return track


def _add_track(tracks: dict[str, Track], track: Track, path: Path) -> None:
    if track.track_id in tracks:
        # JAAD's interface keys tracks by id, so the later track wins; say so rather than hide it.
        log.warning("%s: two tracks have id %s; the later one is kept (as JAAD's interface does)",
                    path, track.track_id)
    tracks[track.track_id] = track


def _reject_boxes(video: VideoAnnotation, path: Path) -> None:
    """Take the boxes :func:`box_problem` refuses out of their tracks; record and log them."""
    for track in video.tracks:
        kept = []
        for box in track.boxes:
            problem = box_problem(box, video.width, video.height)
            if problem is None:
                kept.append(box)
            else:
                video.rejected_boxes.append(RejectedBox(track.track_id, box.frame, *problem))
        if len(kept) < len(track.boxes):
            track.boxes = kept
            track._by_frame = None
    by_problem: dict[tuple[str, str], list[int]] = defaultdict(list)
    for rejected in video.rejected_boxes:
        by_problem[(rejected.track_id, rejected.detail)].append(rejected.frame)
    for (track_id, detail), frames in by_problem.items():
        # one line per track and problem: a file with 253 bad labels is one warning, not 253
        log.warning("%s: track %s, %s: %s; %s left out of every dataset", path, track_id,
                    _frames_text(frames), detail, "the box is" if len(frames) == 1 else "the boxes are")


def _box_position(path: Path, track_index: int, box_index: int) -> tuple[int, int]:
    """(line, column) where box ``box_index`` of track ``track_index`` starts (0-based indices).

    Only called for an error message: iterparse does not give element positions, so expat reads
    the file once more up to that box.
    """
    parser = pyexpat.ParserCreate()
    counts = {"track": -1, "box": -1}
    found: list[tuple[int, int]] = []

    def start(tag, _attrs):
        if tag == "track":
            counts["track"], counts["box"] = counts["track"] + 1, -1
        elif tag == "box" and counts["track"] == track_index:
            counts["box"] += 1
            if counts["box"] == box_index:
                found.append((parser.CurrentLineNumber, parser.CurrentColumnNumber + 1))
                raise _PrologRead  # stop: found it

    parser.StartElementHandler = start
    _feed_until_stopped(parser, path)
    return found[0] if found else (0, 0)


# -- loading a folder -----------------------------------------------------------------------
class AnnotationWarning(UserWarning):
    """Some annotation files could not be read and were skipped (``.skipped`` lists them), or
    some attributes files could not be read (``.attributes_missing``: their boxes are kept)."""

    def __init__(self, message: str, skipped: dict[str, str],
                 attributes_missing: dict[str, str] | None = None):
        super().__init__(message)
        self.skipped = skipped
        self.attributes_missing = attributes_missing or {}


def load_annotations(annotations_dir: str | os.PathLike | None = None,
                     attributes_dir: str | os.PathLike | None = None,
                     video_ids: Iterable[str] | None = None,
                     progress: Progress | None = None) -> dict[str, VideoAnnotation]:
    """Parse every ``video_XXXX.xml`` of a folder (with ``video_XXXX_attributes.xml``).

    Args:
        annotations_dir: default ``paths().annotations``.
        attributes_dir: default the ``annotations_attributes`` folder beside ``annotations_dir``.
        video_ids: only these videos (each must have an XML file).
        progress: ``progress(done, total, video_id)`` after each file.

    Returns:
        ``{video_id: VideoAnnotation}`` in video id order. Unreadable files are skipped with an
        :class:`AnnotationWarning` listing them. A video whose attributes file cannot be read
        keeps its boxes (its ``attributes_error`` says why; the warning names the file).

    Raises:
        DataError: the folder is missing or holds no XML, a requested video has no XML, or
            no file could be read.
    """
    loaded, skipped = load_annotation_folder(annotations_dir, attributes_dir, video_ids, progress)
    missing = {video.source: video.attributes_error for video in loaded.values()
               if video.attributes_error}
    if skipped or missing:
        parts = []
        if skipped:
            details = "\n".join(f"  {message}" for message in skipped.values())
            parts.append(f"Skipped {len(skipped)} unreadable annotation file(s):\n{details}")
        if missing:
            details = "\n".join(f"  {message}" for message in missing.values())
            parts.append(f"The attributes of {len(missing)} video(s) are missing (their boxes "
                         f"are kept; samples that need attributes are left out):\n{details}")
        warnings.warn(AnnotationWarning("\n".join(parts), skipped, missing), stacklevel=2)
    return loaded


def load_annotation_folder(annotations_dir: str | os.PathLike | None = None,
                           attributes_dir: str | os.PathLike | None = None,
                           video_ids: Iterable[str] | None = None,
                           progress: Progress | None = None
                           ) -> tuple[dict[str, VideoAnnotation], dict[str, str]]:
    """:func:`load_annotations` without the Python warning: ``(videos, skipped)``.

    ``skipped`` maps each unreadable annotation file to the reason, for callers (the dataset
    builds) that record it themselves. The problems are still logged.

    Raises:
        DataError: as :func:`load_annotations`.
    """
    ann_dir = Path(annotations_dir) if annotations_dir is not None else paths().annotations
    attr_dir = (Path(attributes_dir) if attributes_dir is not None
                else ann_dir.parent / "annotations_attributes")
    xml_files = _annotation_files(ann_dir, video_ids)
    strings: dict[str, str] = {}  # shared by all files: the same texts repeat everywhere
    loaded: dict[str, VideoAnnotation] = {}
    skipped: dict[str, str] = {}
    with _gc_paused():
        for done, xml in enumerate(xml_files, start=1):
            try:
                loaded[xml.stem] = _load_one(xml, attr_dir, strings)
            except AnnotationError as exc:
                skipped[str(xml)] = str(exc)
            if progress is not None:
                progress(done, len(xml_files), xml.stem)
    _log_skipped(skipped, loaded, ann_dir)
    return loaded, skipped


def _load_one(xml: Path, attr_dir: Path, strings: dict[str, str]) -> VideoAnnotation:
    annotation = _parse_video(xml, strings)
    # the ego action and traffic scene join the video; a missing file leaves them unknown
    annotation.scene = parse_scene(*scene_files(xml.parent, xml.stem), annotation.num_frames)
    attributes_file = attr_dir / f"{xml.stem}_attributes.xml"
    if attributes_file.is_file():
        try:
            attributes = parse_attributes(attributes_file)
        except AnnotationError as exc:
            # Keep the boxes: only the samples that need attributes (intent labels) go.
            annotation.attributes_error = str(exc)
            log.warning("attributes missing for %s: %s is unreadable, so the video's boxes are "
                        "kept without attributes", xml.stem, attributes_file)
            return annotation
        for track in annotation.tracks:
            track.attributes = dict(attributes.get(track.track_id, {}))
    return annotation


def _annotation_files(ann_dir: Path, video_ids: Iterable[str] | None) -> list[Path]:
    files = sorted(p for p in ann_dir.glob("*.xml") if not p.name.startswith(".")) \
        if ann_dir.is_dir() else []
    if not files:
        raise DataError(
            f"No JAAD annotation XML in {ann_dir}. Fix: run `pedsense demo-data` for the synthetic "
            f"demo set, or download JAAD's annotations (github.com/ykotseruba/JAAD) into {ann_dir}."
        )
    if video_ids is None:
        return files
    by_id = {p.stem: p for p in files}
    wanted = list(dict.fromkeys(video_ids))
    missing = [vid for vid in wanted if vid not in by_id]
    if missing:
        raise DataError(f"No annotation XML for {', '.join(missing[:10])} in {ann_dir}. Fix: add "
                        "the files, or leave those videos out.")
    return sorted(by_id[vid] for vid in wanted)


def _log_skipped(skipped: dict[str, str], loaded: dict, ann_dir: Path) -> None:
    if not skipped:
        return
    details = "\n".join(f"  {message}" for message in skipped.values())
    if not loaded:
        raise DataError(f"None of the {len(skipped)} annotation files in {ann_dir} could be "
                        f"read:\n{details}")
    log.warning(f"Skipped {len(skipped)} unreadable annotation file(s):\n{details}")

# -- small helpers --------------------------------------------------------------------------
@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building hundreds of thousands of objects.

    They hold no reference cycles, yet each collection walks all of them again: on the full
    dataset that is about a third of the parse time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
