"""Ground truth of a clip, frame by frame, in the shape the viewer draws and compares."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pedsense.config import paths
from pedsense.errors import PedsenseError
from pedsense.infer.predictions import GroundTruth

if TYPE_CHECKING:
    from pedsense.data.annotation import VideoAnnotation


class ClipGroundTruth:
    """Visible annotated boxes per frame of one clip (``outside=1`` boxes are dropped)."""

    def __init__(self, video_id: str, frames: dict[int, list[tuple[tuple[float, ...], str, str]]],
                 frame_count: int | None = None, annotation: "VideoAnnotation | None" = None):
        self.video_id = video_id
        self._frames = frames
        self.frame_count = frame_count
        self.annotation = annotation  # what a fused ResNet-LSTM reads its context features from

    @classmethod
    def from_annotation(cls, annotation: "VideoAnnotation") -> "ClipGroundTruth":
        """Index a parsed ``pedsense.data.annotation.VideoAnnotation`` by frame."""
        frames: dict[int, list] = defaultdict(list)
        for track in annotation.tracks:
            track_id = str(track.track_id)
            for box in track.boxes:  # the parser already dropped outside="1" boxes
                # behaviour pedestrians carry `cross`; bystanders (`ped`) and groups (`people`)
                # are shown by their track label, which no intent metric counts
                label = box.cross or track.label
                frames[int(box.frame)].append((tuple(float(v) for v in box.xyxy), track_id, str(label)))
        return cls(annotation.video_id, dict(frames), annotation.num_frames, annotation)

    def at(self, frame_index: int) -> GroundTruth:
        """The annotated pedestrians of one frame (possibly none)."""
        entries = self._frames.get(int(frame_index), [])
        if not entries:
            return GroundTruth.empty(frame_index)
        boxes, ids, labels = zip(*entries)
        return GroundTruth.build(frame_index, np.array(boxes, np.float32), ids, labels, self.annotation)

    def annotated_frames(self) -> list[int]:
        return sorted(self._frames)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._frames.values())


def video_id_of(video_path: str | os.PathLike) -> str:
    """``data/raw/clips/video_0001.mp4`` → ``video_0001``."""
    return Path(video_path).stem


def load_clip_ground_truth(video_path: str | os.PathLike, home: str | os.PathLike | None = None
                           ) -> tuple[ClipGroundTruth | None, str]:
    """The clip's annotations when ``data/raw/annotations/<clip>.xml`` exists.

    Returns:
        (ground truth or None, a sentence for the user saying why there is none).
    """
    from pedsense.data.jaad import parse_annotation
    from pedsense.data.scene import parse_scene, scene_files

    video_id = video_id_of(video_path)
    xml = paths(home).annotation(video_id)
    if not xml.is_file():
        return None, (f"No annotations for {video_id} (expected {xml}): ground truth is unavailable, "
                      "predictions are still drawn.")
    try:
        annotation = parse_annotation(xml)
    except PedsenseError as exc:
        return None, f"Ground truth unavailable: {exc}"
    # the ego action and traffic scene join it, as in every build (a missing file: unknown)
    annotation.scene = parse_scene(*scene_files(xml.parent, video_id), annotation.num_frames)
    return ClipGroundTruth.from_annotation(annotation), ""
