"""Opening clips with errors that say what to do."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from pedsense.errors import DataError


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frame_count: int
    fps: float
    width: int
    height: int


@contextmanager
def open_video(path: str | os.PathLike) -> Iterator[cv2.VideoCapture]:
    """Open a clip for reading, raising ``DataError`` when it is missing or will not decode."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"Clip {path} does not exist. Put the JAAD clips in data/raw/clips/ "
            "(see README, 'JAAD data') or run `pedsense demo-data` for the synthetic set."
        )
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(
                f"Clip {path} will not open (not a video OpenCV can decode, or truncated). "
                "Re-download it or convert it to H.264 MP4 (e.g. `ffmpeg -i in -c:v libx264 out.mp4`)."
            )
        yield capture
    finally:
        capture.release()


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame count, fps and size of a clip."""
    with open_video(path) as capture:
        ok, frame = capture.read()
        if not ok:
            raise DataError(f"Clip {path} opens but holds no decodable frame. Re-download or replace it.")
        return VideoInfo(
            path=Path(path),
            frame_count=int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
            fps=float(capture.get(cv2.CAP_PROP_FPS) or 30.0),
            width=frame.shape[1],
            height=frame.shape[0],
        )


def iter_frames(path: str | os.PathLike, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, BGR frame)`` from ``start`` to the end of the clip."""
    with open_video(path) as capture:
        if start:
            capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        index = start
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield index, frame
            index += 1


def read_video_frame(path: str | os.PathLike, index: int) -> np.ndarray:
    """One BGR frame by index; ``DataError`` names the valid range when ``index`` is outside it."""
    with open_video(path) as capture:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if index < 0 or (count and index >= count):
            raise DataError(f"Frame {index} is out of range for {Path(path).name}: it has frames 0-{count - 1}.")
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if not ok:
            raise DataError(f"Frame {index} of {Path(path).name} could not be decoded; the clip may be truncated.")
        return frame
