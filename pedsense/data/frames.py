"""Frame extraction: ``data/raw/clips/<video>.mp4`` → ``data/raw/frames/<video>/frame_NNNNNN.jpg``.

File names carry the ORIGINAL frame index (the index JAAD's annotations use), also when only
some frames are kept (``fps`` sub-sampling or ``annotated_only``). Each video folder gets a
``meta.json`` written last: it is the completion marker. A video is skipped only when that
marker says it finished with the same settings from the same clip; anything else (a crash
mid-video, other settings, a replaced clip) is redone from scratch. ``meta.json`` also records the
annotation's frame count: a clip shorter than its XML gets a warning there, which every build
using those frames repeats in its manifest.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Callable, Collection

import cv2
import numpy as np

from pedsense.config import Paths, paths
from pedsense.data.jaad import parse_annotation, read_frame_count
from pedsense.data.manifest import FRAMES_META_NAME as META_NAME
from pedsense.data.manifest import (annotated_video_ids, file_stamp, frames_meta, list_videos,
                                    missing_clips, no_annotations_error, no_clips_message, now_iso)
from pedsense.data.video import open_video, read_video_frame
from pedsense.errors import AnnotationError, DataError
from pedsense.io import disk_full_error, is_disk_full, read_json, tree_size, write_json_atomic

log = logging.getLogger(__name__)

DEFAULT_QUALITY = 95
# Encoding a JPEG costs about as much as decoding a frame; cv2 releases the GIL in both, so
# two writer threads keep the decoder busy without holding many frames in memory.
_WRITER_THREADS = 2
_MAX_PENDING = 8

Progress = Callable[[int, int, str], None]


# -- extraction -----------------------------------------------------------------------------
def extract_frames(video_id: str | None = None, fps: float | None = None,
                   annotated_only: bool = False, *, home=None, progress: Progress | None = None,
                   quality: int = DEFAULT_QUALITY) -> dict:
    """Extract JPEG frames of one video, or of every annotated video.

    Args:
        video_id: one video (its problems raise), or None for every video with an annotation
            (problems with one video are reported in the summary and the others still run).
        fps: keep about this many frames per second (None: every frame).
        annotated_only: keep only frames where at least one box is visible.
        progress: ``progress(done_videos, total_videos, message)``.
        quality: JPEG quality, 1-100.

    Returns:
        ``{"videos", "extracted", "skipped", "failed": {video: message}, "missing_clips": [video],
        "warnings": [line], "frames_written", "frames_total"}``. ``warnings`` names each video
        without a clip once (summarised past ten) and each clip shorter than its annotation.

    Raises:
        DataError: no annotations; no annotated video has a clip (nothing is tried: the message
            says where the clips go); every video failed; or the one video asked for has no
            clip / a clip that will not open / no annotation while ``annotated_only``.
    """
    p = paths(home)
    _check_options(fps, quality)
    video_ids = [video_id] if video_id else annotated_video_ids(p.home)
    if not video_ids:
        raise no_annotations_error(p)
    no_clip = missing_clips(video_ids, p.home) if not video_id else []
    if no_clip and len(no_clip) == len(video_ids) and not any(frames_meta(v, p.home) for v in video_ids):
        raise DataError(no_clips_message(p, len(video_ids)))
    summary = {"videos": video_ids, "extracted": [], "skipped": [], "failed": {},
               "missing_clips": [], "warnings": [], "frames_written": 0, "frames_total": 0}
    for done, vid in enumerate(video_ids):
        if progress:
            progress(done, len(video_ids), f"{vid}: extracting frames")
        try:
            meta, written = _extract_video(p, vid, fps, annotated_only, quality)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            raise _disk_full(p, vid, len(video_ids) - done) from exc
        except DataError as exc:
            if video_id:
                raise
            log.debug("skipping %s: %s", vid, exc)  # reported once, in the summary
            summary["failed"][vid] = str(exc)
            if vid in no_clip:
                summary["missing_clips"].append(vid)
            continue
        summary["extracted" if written else "skipped"].append(vid)
        summary["frames_written"] += len(meta["frames"]) if written else 0
        summary["frames_total"] += len(meta["frames"])
        summary["warnings"] += meta.get("warnings", [])
    if progress:
        progress(len(video_ids), len(video_ids), "frames extracted")
    _report_failures(p, summary)
    return summary


def _report_failures(p: Paths, summary: dict) -> None:
    """Put the missing clips in one warning line; raise when no video could be extracted."""
    missing = summary["missing_clips"]
    if missing:
        summary["warnings"].insert(0, (
            f"{len(missing)} of {len(summary['videos'])} annotated videos have no clip in {p.clips} "
            f"and were skipped: {list_videos(missing)}. Put their clips there (see README, 'JAAD "
            "data') and run `pedsense preprocess frames` again, or move their annotations away."))
    failed = summary["failed"]
    if failed and not summary["extracted"] and not summary["skipped"]:
        others = {v: m for v, m in failed.items() if v not in missing}
        details = "".join(f"\n  {v}: {m}" for v, m in list(others.items())[:10])
        raise DataError(f"Frame extraction failed for every one of the {len(failed)} videos; "
                        "nothing was extracted." + (f" {summary['warnings'][0]}" if missing else "")
                        + details)


def _disk_full(p: Paths, video_id: str, videos_left: int) -> Exception:
    """Remove the video's half-written frames; the error says how much room the videos left need."""
    out = p.video_frames(video_id)
    written, count = tree_size(out), len(list(out.glob("frame_*.jpg")))
    shutil.rmtree(out, ignore_errors=True)
    frames = _annotation_frame_count(p, video_id) or count
    needed = written / max(count, 1) * frames * videos_left
    return disk_full_error(p.frames, max(needed, written), "rerun the frame extraction "
                           "(finished videos are kept)")


def _check_options(fps: float | None, quality: int) -> None:
    if fps is not None and not fps > 0:
        raise DataError(f"fps={fps!r} must be a positive number of frames per second (or None for all frames).")
    if not 1 <= int(quality) <= 100:
        raise DataError(f"JPEG quality={quality!r} must be between 1 and 100.")


def _extract_video(p: Paths, video_id: str, fps: float | None, annotated_only: bool,
                   quality: int) -> tuple[dict, bool]:
    """Extract one video unless its completion marker matches. Returns ``(meta, written)``."""
    clip = p.clip(video_id)
    out = p.video_frames(video_id)
    settings = {"fps": fps, "annotated_only": bool(annotated_only), "quality": int(quality)}
    meta = read_json(out / META_NAME)
    if _is_finished(meta, settings, clip, out):
        return meta, False
    if not clip.exists() and p.annotation(video_id).exists():
        raise DataError(
            f"{video_id} has an annotation ({p.annotation(video_id).name}) but no clip in {p.clips}. "
            f"Put {video_id}.mp4 there (see README, 'JAAD data'), or move the annotation away."
        )
    wanted = _annotated_frames(p, video_id) if annotated_only else None
    with open_video(clip) as capture:
        source_fps = float(capture.get(cv2.CAP_PROP_FPS) or 30.0)
        reported = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        # Remove the old folder rather than overwrite files in it: a half-written set must not
        # survive, and files may be hard links shared with other copies of the data home.
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        keep = _frame_filter(source_fps, fps, wanted)
        frames, decoded, size = _decode_and_write(capture, out, keep, quality)
    if decoded == 0:
        raise DataError(f"Clip {clip} opens but holds no decodable frame. Re-download or replace it.")
    annotated = _annotation_frame_count(p, video_id)
    meta = {"video_id": video_id, "clip": clip.name, "clip_stamp": file_stamp(clip),
            "frame_count": decoded, "reported_frame_count": reported,
            "annotation_frame_count": annotated, "fps": source_fps,
            "width": size[0], "height": size[1], **settings,
            # the largest gap between kept frames that still counts as "consecutive"
            "frame_step": max(1, math.ceil(source_fps / fps)) if fps else 1, "frames": frames,
            "warnings": _short_clip_warnings(video_id, decoded, annotated),
            "created_at": now_iso(), "complete": True}
    write_json_atomic(out / META_NAME, meta)
    return meta, True


def _is_finished(meta, settings: dict, clip: Path, out: Path) -> bool:
    """True when ``meta`` marks a finished extraction with these settings from this clip."""
    if not isinstance(meta, dict) or not meta.get("complete"):
        return False
    if any(meta.get(key) != value for key, value in settings.items()):
        return False
    if clip.exists() and meta.get("clip_stamp") != file_stamp(clip):
        return False
    present = {entry.name for entry in os.scandir(out)}
    return all(f"frame_{index:06d}.jpg" in present for index in meta.get("frames", []))


def _annotation_frame_count(p: Paths, video_id: str) -> int | None:
    """The annotation's ``meta/task/size``; None without a readable annotation (the builds
    report an unreadable file themselves)."""
    try:
        return read_frame_count(p.annotation(video_id))
    except AnnotationError as exc:
        log.debug("no frame count for %s: %s", video_id, exc)
        return None


def _short_clip_warnings(video_id: str, decoded: int, annotated: int | None) -> list[str]:
    if annotated is None or decoded >= annotated:
        return []
    return [f"{video_id}: the clip has {decoded} frames but its annotation {annotated} "
            f"(meta/task/size), so frames {decoded}-{annotated - 1} have no image and their boxes "
            "are left out of every dataset. Re-download the clip if it was cut short."]


def _annotated_frames(p: Paths, video_id: str) -> set[int]:
    """Frames where at least one box of any track is visible."""
    xml = p.annotation(video_id)
    if not xml.exists():
        raise DataError(f"annotated_only needs {xml}, which does not exist. Put the video's "
                        "annotation there or extract all frames (annotated_only=False).")
    annotation = parse_annotation(xml)
    return {box.frame for track in annotation.tracks for box in track.boxes}


def _frame_filter(source_fps: float, fps: float | None,
                  wanted: Collection[int] | None) -> Callable[[int], bool]:
    """Which original frame indices to keep.

    With ``fps``, frame ``i`` is kept when it starts a new 1/fps time slot (exact integer
    maths, so 30 → 10 fps keeps 0, 3, 6, … and 30 → 12 fps keeps 0, 3, 5, 8, …).
    """
    ratio = Fraction(fps).limit_denominator(1000) / Fraction(source_fps).limit_denominator(1000) \
        if fps else None

    def keep(index: int) -> bool:
        if wanted is not None and index not in wanted:
            return False
        if ratio is None or ratio >= 1 or index == 0:
            return True
        return int(index * ratio) != int((index - 1) * ratio)

    return keep


def _decode_and_write(capture: cv2.VideoCapture, out: Path, keep: Callable[[int], bool],
                      quality: int) -> tuple[list[int], int, tuple[int, int]]:
    """Decode sequentially; JPEG-encode and write kept frames on writer threads.

    Returns:
        (kept frame indices, number of frames decoded, (width, height)).
    """
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    kept: list[int] = []
    pending: deque[Future] = deque()
    size = (0, 0)
    index = 0
    with ThreadPoolExecutor(_WRITER_THREADS, thread_name_prefix="frames") as pool:
        while capture.grab():  # grab() skips colour conversion for frames we drop
            if keep(index):
                ok, frame = capture.retrieve()
                if not ok:
                    break
                size = (frame.shape[1], frame.shape[0])
                pending.append(pool.submit(_write_jpeg, out / f"frame_{index:06d}.jpg", frame, params))
                kept.append(index)
                while len(pending) > _MAX_PENDING:
                    pending.popleft().result()
            index += 1
        for future in pending:
            future.result()
    if size == (0, 0) and index:
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return kept, index, size


def _write_jpeg(path: Path, frame: np.ndarray, params: list[int]) -> None:
    ok, buffer = cv2.imencode(".jpg", frame, params)
    if not ok:
        raise DataError(f"Could not encode {path.name} as JPEG.")
    with open(path, "wb") as f:
        f.write(buffer.data)


# -- reading --------------------------------------------------------------------------------
def load_frame(video_id: str, index: int, home=None) -> np.ndarray:
    """One frame as a (H, W, 3) BGR uint8 array.

    The extracted JPEG when there is one, else decoded from the clip.

    Raises:
        DataError: index out of range (the message names the range), or neither the frame
            nor the clip exists.
    """
    p = paths(home)
    index = int(index)
    jpeg = p.frame(video_id, index)
    if index >= 0 and jpeg.exists():
        image = cv2.imread(str(jpeg), cv2.IMREAD_COLOR)
        if image is not None:
            return image
    meta = frames_meta(video_id, p.home)
    if meta and not 0 <= index < meta["frame_count"]:
        raise DataError(f"Frame {index} is out of range for {video_id}: it has frames "
                        f"0-{meta['frame_count'] - 1}.")
    clip = p.clip(video_id)
    if not clip.exists():
        raise DataError(
            f"Frame {index} of {video_id} is not extracted ({jpeg} is missing) and the clip {clip} "
            "does not exist. Put the clip in data/raw/clips/ and run `pedsense preprocess frames`."
        )
    if index < 0:
        raise DataError(f"Frame {index} is out of range for {video_id}: frame indices start at 0.")
    return read_video_frame(clip, index)
