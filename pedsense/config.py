"""Where pedsense keeps its data, and the defaults every module shares.

The data home is the repository root, or ``$PEDSENSE_HOME`` when that is set. It is read on
every call (not at import), so tests, the CLI and the dashboard can point it elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

SEQUENCE_LENGTH = 16
SEQUENCE_STRIDE = 8
CROP_SIZE = (224, 224)
TRAIN_SPLIT = 0.8
RANDOM_SEED = 42

CLASS_NAMES = ("not-crossing", "crossing")
DETECTOR_CLASS_NAMES = ("pedestrian",)
MODEL_TYPES = ("yolo", "resnet-lstm", "hybrid", "context")


def data_home() -> Path:
    """The folder every data and model path derives from."""
    env = os.environ.get("PEDSENSE_HOME")
    return Path(env).expanduser().resolve() if env else REPO_ROOT


@dataclass(frozen=True)
class Paths:
    """Every path in SPEC.md's data layout, rooted at one data home."""

    home: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def raw(self) -> Path:
        return self.data / "raw"

    @property
    def clips(self) -> Path:
        return self.raw / "clips"

    @property
    def annotations(self) -> Path:
        return self.raw / "annotations"

    @property
    def attributes(self) -> Path:
        return self.raw / "annotations_attributes"

    @property
    def split_ids(self) -> Path:
        return self.raw / "split_ids"

    @property
    def frames(self) -> Path:
        return self.raw / "frames"

    @property
    def processed(self) -> Path:
        return self.data / "processed"

    @property
    def yolo(self) -> Path:
        return self.processed / "yolo"

    @property
    def yolo_detector(self) -> Path:
        return self.processed / "yolo_detector"

    @property
    def resnet(self) -> Path:
        return self.processed / "resnet"

    @property
    def sequences(self) -> Path:
        return self.resnet / "sequences"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def base_models(self) -> Path:
        return self.models / "base"

    @property
    def logs(self) -> Path:
        """``logs/``: what the CLI and the dashboard record of unexpected errors (tracebacks)."""
        return self.home / "logs"

    def clip(self, video_id: str) -> Path:
        """The clip of ``video_id``: ``.mp4`` unless another extension exists on disk."""
        mp4 = self.clips / f"{video_id}.mp4"
        if not mp4.exists():
            for other in sorted(self.clips.glob(f"{video_id}.*")):
                return other
        return mp4

    def annotation(self, video_id: str) -> Path:
        return self.annotations / f"{video_id}.xml"

    def attributes_file(self, video_id: str) -> Path:
        return self.attributes / f"{video_id}_attributes.xml"

    def video_frames(self, video_id: str) -> Path:
        return self.frames / video_id

    def frame(self, video_id: str, frame: int) -> Path:
        return self.frames / video_id / f"frame_{frame:06d}.jpg"


def paths(home: str | os.PathLike | None = None) -> Paths:
    """Paths under ``home`` (default: the configured data home)."""
    return Paths(Path(home).expanduser().resolve() if home is not None else data_home())
