"""Dataset statistics for ``pedsense info`` and the dashboard's overview."""

from __future__ import annotations

import os
from collections import Counter
from typing import Mapping

from pedsense.config import paths
from pedsense.data.jaad import load_annotations
from pedsense.data.annotation import REJECT_REASON_TEXT, TRACK_LABELS, VideoAnnotation
from pedsense.data.splits import split_videos
from pedsense.data.synthetic import is_synthetic


def dataset_stats(home: str | os.PathLike | None = None, *,
                  annotations: Mapping[str, VideoAnnotation] | None = None) -> dict:
    """Counts over the annotations of a data home.

    Args:
        home: the data home (default the configured one).
        annotations: already parsed ``{video_id: VideoAnnotation}``; parsed from ``home`` if None.

    Returns:
        ``{"home", "synthetic", "videos", "videos_without_tracks", "frames", "tracks" {label: n},
        "boxes" {label: n}, "behaviour_pedestrians" {"crossing", "not_crossing", "unknown"},
        "cross_boxes" {"crossing", "not-crossing", "other"}, "time_of_day", "weather",
        "location" ({value: n}), "rejected_boxes" ({reason: n}, boxes the parser left out),
        "attributes_missing" (videos whose attributes file is unreadable), "split" (the default
        split's sizes)}``. ``behaviour_pedestrians``
        uses the track-level ``crossing`` attribute (1 / 0; -1 "irrelevant" and no attributes
        count as unknown); ``cross_boxes`` the per-frame ``cross`` label of behaviour tracks.

    Raises:
        DataError: no annotations in ``home`` (the message says how to get them).
    """
    p = paths(home)
    if annotations is None:
        annotations = load_annotations(p.annotations, p.attributes)
    videos = list(annotations.values())
    stats = {"home": str(p.home), "synthetic": bool(is_synthetic(p.home)),
             "videos": len(videos), "videos_without_tracks": sum(not v.tracks for v in videos),
             "frames": sum(max(v.num_frames, 0) for v in videos)}
    stats.update(_track_counts(videos))
    for key in ("time_of_day", "weather", "location"):
        stats[key] = dict(Counter(getattr(v, key) or "unknown" for v in videos).most_common())
    stats["rejected_boxes"] = dict(Counter(b.reason for v in videos for b in v.rejected_boxes).most_common())
    stats["attributes_missing"] = sorted(v.video_id for v in videos if v.attributes_error)
    stats["split"] = _split_summary(sorted(annotations), p.home)
    return stats


def format_stats(stats: Mapping) -> str:
    """A readable multi-line summary of :func:`dataset_stats`."""
    kind = "synthetic demo set (not JAAD)" if stats.get("synthetic") else "JAAD annotations"
    tracks, boxes = stats["tracks"], stats["boxes"]
    behaviour, cross = stats["behaviour_pedestrians"], stats["cross_boxes"]
    lines = [
        f"Dataset: {kind} in {stats['home']}",
        f"Videos: {stats['videos']:,} ({stats['videos_without_tracks']:,} without tracks), "
        f"{stats['frames']:,} frames",
        f"Tracks: {sum(tracks.values()):,} ({_join(tracks)})",
        f"Boxes: {sum(boxes.values()):,} visible ({_join(boxes)})",
        f"Behaviour pedestrians: {sum(behaviour.values()):,} (cross {behaviour['crossing']:,}, "
        f"do not cross {behaviour['not_crossing']:,}, unknown {behaviour['unknown']:,})",
        f"Behaviour boxes by frame label: crossing {cross['crossing']:,}, "
        f"not-crossing {cross['not-crossing']:,}" + (f", other {cross['other']:,}"
                                                     if cross.get("other") else ""),
        f"Time of day: {_join(stats['time_of_day'])}",
        f"Weather: {_join(stats['weather'])}",
        f"Location: {_join(stats['location'])}",
    ]
    rejected = stats.get("rejected_boxes")
    if rejected:
        lines.append(f"Boxes left out as invalid: {sum(rejected.values()):,} ("
                     + ", ".join(f"{n:,} {REJECT_REASON_TEXT.get(r, r)}" for r, n in rejected.items()) + ")")
    if stats.get("attributes_missing"):
        lines.append(f"Attributes missing (unreadable file): {', '.join(stats['attributes_missing'])}")
    split = stats.get("split")
    if split:
        lines.append(_format_split(split))
    return "\n".join(lines)


def _track_counts(videos: list[VideoAnnotation]) -> dict:
    tracks = Counter({label: 0 for label in TRACK_LABELS})
    boxes = Counter({label: 0 for label in TRACK_LABELS})
    behaviour = {"crossing": 0, "not_crossing": 0, "unknown": 0}
    cross = {"crossing": 0, "not-crossing": 0, "other": 0}
    for video in videos:
        for track in video.tracks:
            tracks[track.label] += 1
            boxes[track.label] += len(track.boxes)
            if not track.is_behavioural:
                continue
            behaviour[{1: "crossing", 0: "not_crossing"}.get(track.crossing, "unknown")] += 1
            for box in track.boxes:
                cross[box.cross if box.cross in ("crossing", "not-crossing") else "other"] += 1
    return {"tracks": dict(tracks), "boxes": dict(boxes),
            "behaviour_pedestrians": behaviour, "cross_boxes": cross}


def _split_summary(video_ids: list[str], home) -> dict | None:
    """Sizes of the split every build uses (None when there are no videos)."""
    if not video_ids:
        return None
    split = split_videos(video_ids, "default", home=home)
    return {"source": split.source, "train": len(split.train), "val": len(split.val),
            "test": len(split.test), "unassigned": len(split.unassigned),
            "missing": len(split.missing)}


def _format_split(split: Mapping) -> str:
    text = f"Split ({split['source']}): train {split['train']}, val {split['val']}"
    if split.get("test"):
        text += f", test {split['test']}"
    if split.get("unassigned"):
        text += f"; {split['unassigned']} video(s) in no split file"
    return text


def _join(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {value:,}" for key, value in counts.items()) or "none"
