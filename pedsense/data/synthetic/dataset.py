"""``make_demo_dataset``: write the synthetic demo set into a data home, safely and reproducibly.

It refuses to write over real annotations (unless told to), writes the marker first so a crash
part-way leaves files known to be ours, reuses an identical finished set, and replaces the files
of a previous set made with other values.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pedsense.config import Paths, paths
from pedsense.data.splits import OFFICIAL_SPLITS
from pedsense.data.synthetic.jaad_xml import (TrackRecord, annotation_xml, appearance_xml,
                                              attributes_xml, build_tracks, traffic_xml,
                                              vehicle_xml)
from pedsense.data.synthetic.marker import SYNTHETIC_NOTE, marker_path, read_marker
from pedsense.data.synthetic.render import VideoPlan, plan_video, write_clip
from pedsense.errors import ConfigError, DataError
from pedsense.io import write_json_atomic, write_text_atomic

FORMAT_VERSION = 1
DEFAULT_NUM_FRAMES = 300
DEFAULT_WIDTH, DEFAULT_HEIGHT = 640, 360
SPLIT_SETS = OFFICIAL_SPLITS  # the demo set writes every official split JAAD ships

ProgressFn = Callable[[int, int, str], None]


# ============================================================================================
# Files on disk
# ============================================================================================


def _video_files(p: Paths, video_id: str) -> list[Path]:
    raw = p.raw
    return [p.clips / f"{video_id}.mp4", p.annotation(video_id), p.attributes_file(video_id),
            raw / "annotations_appearance" / f"{video_id}_appearance.xml",
            raw / "annotations_traffic" / f"{video_id}_traffic.xml",
            raw / "annotations_vehicle" / f"{video_id}_vehicle.xml"]


def write_video_annotations(p: Paths, plan: VideoPlan, tracks: Sequence[TrackRecord]) -> None:
    _, annotation, attributes, appearance, traffic, vehicle = _video_files(p, plan.video_id)
    write_text_atomic(annotation, annotation_xml(plan, tracks))
    write_text_atomic(attributes, attributes_xml(tracks))
    write_text_atomic(appearance, appearance_xml(tracks))
    write_text_atomic(traffic, traffic_xml(plan.num_frames))
    write_text_atomic(vehicle, vehicle_xml(plan.num_frames))


def assign_splits(video_ids: Sequence[str], seed: int) -> dict[str, list[str]]:
    """Video-level train/val/test (8 videos: 5/1/2); every video holds both classes."""
    n = len(video_ids)
    order = [video_ids[i] for i in np.random.default_rng([int(seed), 99]).permutation(n)]
    n_val = max(1, n // 8) if n >= 2 else 0
    n_test = max(1, n // 4) if n >= 3 else 0
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def write_splits(p: Paths, splits: dict[str, list[str]]) -> None:
    for subset in SPLIT_SETS:
        for part, videos in splits.items():
            write_text_atomic(p.split_ids / subset / f"{part}.txt", "".join(f"{v}\n" for v in videos))



def _foreign_files(p: Paths, ours: set[str], new_ids: Sequence[str]) -> list[Path]:
    """Annotation files (and clips we would overwrite) that the demo generator did not write."""
    foreign = []
    for folder in (p.annotations, p.attributes):
        if folder.is_dir():
            foreign += [f for f in sorted(folder.glob("*.xml"))
                        if f.stem.replace("_attributes", "") not in ours]
    foreign += [p.clips / f"{v}.mp4" for v in new_ids if v not in ours and (p.clips / f"{v}.mp4").exists()]
    return foreign


def _check_target(p: Paths, video_ids: Sequence[str], overwrite: bool) -> dict | None:
    """Refuse to write over real data unless ``overwrite``; return the previous marker, if any."""
    old = read_marker(p.home)
    if overwrite:
        return old
    ours = set(old.get("videos", [])) if old else set()
    foreign = _foreign_files(p, ours, video_ids)
    if foreign:
        examples = ", ".join(str(f.relative_to(p.home)) for f in foreign[:3])
        raise DataError(
            f"{p.raw} already holds real data not written by the demo generator ({len(foreign)} files, "
            f"e.g. {examples}); the synthetic demo set would mix with or overwrite it. Use another data home "
            "(set PEDSENSE_HOME or pass root=...), or pass overwrite=True (CLI: `pedsense demo-data --overwrite`) "
            "to write it there anyway."
        )
    return old


def _remove_stale(p: Paths, old: dict | None, video_ids: Sequence[str]) -> None:
    """Delete the files of synthetic videos from a previous, larger set."""
    for video in (old or {}).get("videos", []):
        if video not in video_ids:
            for f in _video_files(p, video):
                f.unlink(missing_ok=True)


def _parameters(seed, n_videos, num_frames, width, height, fps) -> dict:
    return {"seed": int(seed), "n_videos": int(n_videos), "num_frames": int(num_frames), "width": int(width),
            "height": int(height), "fps": float(fps), "format_version": FORMAT_VERSION}


def _fingerprint(parameters: dict) -> str:
    return hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:16]


def _check_options(n_videos, num_frames, width, height, fps) -> None:
    problems = []
    if not isinstance(n_videos, int) or n_videos < 1:
        problems.append(f"n_videos={n_videos!r} must be a whole number >= 1")
    if not isinstance(num_frames, int) or num_frames < 30:
        problems.append(f"num_frames={num_frames!r} must be a whole number >= 30")
    if not isinstance(width, int) or not isinstance(height, int) or width < 64 or height < 48:
        problems.append(f"width x height = {width!r} x {height!r} must be at least 64 x 48 pixels")
    if not isinstance(fps, (int, float)) or not 1 <= fps <= 120:
        problems.append(f"fps={fps!r} must be between 1 and 120")
    if problems:
        raise ConfigError("Invalid demo-set options: " + "; ".join(problems) + ".")


def _complete_and_present(p: Paths, old: dict | None, parameters: dict, video_ids: Sequence[str]) -> bool:
    if not old or old.get("status") != "complete" or old.get("parameters") != parameters:
        return False
    return all(f.exists() for v in video_ids for f in _video_files(p, v))


def make_demo_dataset(root=None, n_videos: int = 8, seed: int = 0, *, num_frames: int = DEFAULT_NUM_FRAMES,
                      width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT, fps: float = 30,
                      progress: ProgressFn | None = None, overwrite: bool = False) -> dict:
    """Write the synthetic JAAD-format demo set under ``<root>/data/raw/``.

    Args:
        root: the data home (default: the configured one, ``$PEDSENSE_HOME`` or the repository).
        n_videos: clips to draw (the same values of these six give the same files).
        seed: the random seed of the people, weather and occluders.
        num_frames: frames per clip.
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frames per second of the clips.
        progress: called as ``progress(done, total, message)`` after each video.
        overwrite: write even where real (non-synthetic) annotations or clips are present.

    Returns:
        a summary dict: ``home``, ``raw``, ``videos``, ``splits``, ``parameters``, ``stats``,
        ``seconds`` and ``reused`` (True when an identical complete set was already there).

    Raises:
        ConfigError: invalid options. DataError: real data present and ``overwrite`` is False.
    """
    _check_options(n_videos, num_frames, width, height, fps)
    started = time.perf_counter()
    p = paths(root)
    video_ids = [f"video_{i:04d}" for i in range(1, n_videos + 1)]
    old = _check_target(p, video_ids, overwrite)
    parameters = _parameters(seed, n_videos, num_frames, width, height, fps)
    splits = assign_splits(video_ids, seed)
    if not overwrite and _complete_and_present(p, old, parameters, video_ids):
        _report(progress, n_videos, n_videos, "The synthetic demo set is already there")
        return _summary(p, old["videos"], splits, parameters, old.get("stats", {}), started, reused=True)
    marker = {"synthetic": True, "note": SYNTHETIC_NOTE,
              "generator": "pedsense.data.synthetic.make_demo_dataset",
              "status": "writing", "parameters": parameters, "fingerprint": _fingerprint(parameters),
              "videos": sorted(set(video_ids) | set((old or {}).get("videos", []))), "splits": splits}
    # The marker goes first, so a crash part-way leaves files that are still known to be ours.
    write_json_atomic(marker_path(p.home), marker)
    _remove_stale(p, old, video_ids)
    stats = _write_videos(p, video_ids, seed, num_frames, width, height, fps, progress)
    write_splits(p, splits)
    marker.update(status="complete", videos=video_ids, stats=stats,
                  written_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json_atomic(marker_path(p.home), marker)
    return _summary(p, video_ids, splits, parameters, stats, started, reused=False)


def _write_videos(p: Paths, video_ids, seed, num_frames, width, height, fps, progress) -> dict:
    stats = {"tracks": {"pedestrian": 0, "ped": 0}, "crossing_pedestrians": 0, "not_crossing_pedestrians": 0,
             "boxes": {"crossing": 0, "not-crossing": 0, "ped": 0}, "max_people_in_a_frame": 0}
    _report(progress, 0, len(video_ids), "Drawing the synthetic demo set")
    serial = 1
    for number, video_id in enumerate(video_ids, start=1):
        plan = plan_video(seed, number, num_frames, width, height, fps)
        observations = write_clip(plan, p.clips / f"{video_id}.mp4")
        tracks = build_tracks(plan, observations, serial)
        serial += len(plan.people)
        write_video_annotations(p, plan, tracks)
        _add_stats(stats, tracks, observations)
        _report(progress, number, len(video_ids), f"Wrote {video_id} ({len(tracks)} tracks, {num_frames} frames)")
    return stats


def _add_stats(stats: dict, tracks: Sequence[TrackRecord], observations) -> None:
    for t in tracks:
        stats["tracks"][t.label] += 1
        if t.label == "ped":
            stats["boxes"]["ped"] += len(t.frames)
            continue
        key = "crossing_pedestrians" if t.attributes["crossing"] == "1" else "not_crossing_pedestrians"
        stats[key] += 1
        for o in t.observations:
            stats["boxes"][o.cross] += 1
    stats["max_people_in_a_frame"] = max([stats["max_people_in_a_frame"]] + [len(seen) for seen in observations])


def _report(progress: ProgressFn | None, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(done, total, message)


def _summary(p: Paths, video_ids, splits, parameters, stats, started, reused: bool) -> dict:
    return {"home": str(p.home), "raw": str(p.raw), "videos": list(video_ids), "splits": splits,
            "parameters": parameters, "stats": stats, "synthetic": True, "marker": str(marker_path(p.home)),
            "seconds": round(time.perf_counter() - started, 2), "reused": reused}
