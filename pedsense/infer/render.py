"""A whole clip with overlays, written as a WebM a browser plays (VP9, else VP8).

OpenCV's ``mp4v`` MPEG-4 Part 2 does not play in browsers and its H.264 (``avc1``) encoder is
not built into the pip wheels, so the viewer writes WebM with OpenCV's VP9/VP8 encoders.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from pedsense.data.video import iter_frames, video_info
from pedsense.errors import PedsenseError
from pedsense.infer.draw import draw_overlay
from pedsense.infer.ground_truth import ClipGroundTruth
from pedsense.infer.predictions import BUFFERING, CROSSING, NOT_CROSSING, Predictions
from pedsense.infer.predictors import ClipState, Predictor

Progress = Callable[[int, int, str], None]
CODECS = ("VP90", "VP80")


class RenderError(PedsenseError):
    """The overlay video could not be written."""


@dataclass(frozen=True)
class RenderSummary:
    """What a render produced and how fast.

    ``crossing``/``not_crossing``/``buffering`` count box-frames (a pedestrian seen in 10 frames
    counts 10); ``pedestrians`` counts distinct tracks, or the most boxes in one frame when the
    predictor does not track.
    """

    output: Path
    codec: str
    backend: str
    frames: int
    width: int
    height: int
    source_fps: float
    seconds: float
    fps_achieved: float
    pedestrians: int
    detections: int
    crossing: int
    not_crossing: int
    buffering: int
    ground_truth: bool

    def as_dict(self) -> dict:
        data = asdict(self)
        data["output"] = str(self.output)
        return data


class _Tally:
    """Running counts for the summary."""

    def __init__(self) -> None:
        self.tracks: set[int] = set()
        self.most_in_frame = 0
        self.counts = {CROSSING: 0, NOT_CROSSING: 0, BUFFERING: 0}

    def add(self, predictions: Predictions) -> None:
        self.tracks.update(int(t) for t in predictions.track_ids if t >= 0)
        self.most_in_frame = max(self.most_in_frame, len(predictions))
        for label in predictions.labels:
            self.counts[label] = self.counts.get(label, 0) + 1

    @property
    def pedestrians(self) -> int:
        return len(self.tracks) if self.tracks else self.most_in_frame


def open_writer(path: Path, fps: float, size_wh: tuple[int, int]) -> tuple[cv2.VideoWriter, str]:
    """A VideoWriter for ``path`` with the first browser-playable codec this OpenCV has."""
    for codec in CODECS:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size_wh)
        if writer.isOpened():
            return writer, codec
        writer.release()
    raise RenderError(
        "This OpenCV build has no VP9 or VP8 encoder, so no browser-playable video can be written. "
        "Install the `opencv-python` wheel from PyPI (it bundles FFmpeg with libvpx)."
    )


def check_output(output: str | os.PathLike) -> Path:
    """``output`` once its folder exists (made when missing) and takes a new file.

    Checked before any frame is predicted: OpenCV's writer only says "not opened", which would
    read as a missing encoder.

    Raises:
        RenderError: naming the folder and why it cannot be written.
    """
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output.parent, prefix=".pedsense-write-check-"):
            pass
    except OSError as exc:
        raise RenderError(f"Cannot write the video into {output.parent} ({exc.strerror or exc}): give an "
                          "output path in a folder you can write to.") from None
    return output


def default_output(run_dir: Path, video_path: Path) -> Path:
    """``<run>/renders/<clip>.webm``: renders live with the run that made them."""
    return Path(run_dir) / "renders" / f"{Path(video_path).stem}.webm"


def render_video(predictor: Predictor, video_path: str | os.PathLike, output: str | os.PathLike | None = None,
                 *, ground_truth: ClipGroundTruth | None = None, show_ground_truth: bool = True,
                 min_confidence: float = 0.0, progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> RenderSummary:
    """Predict every frame of a clip and write it, with overlays, to a WebM.

    The render has its own fresh ``ClipState``, so it shares nothing with other renders or
    viewer sessions using the same predictor, and holds no lock they wait for. Frames are
    predicted ``FRAME_CHUNK`` at a time (``Predictor.predict_stream``).

    Args:
        predictor: any loaded predictor (it may be shared).
        video_path: the source clip.
        output: the ``.webm`` to write (default ``<run>/renders/<clip>.webm``); written to a
            temporary name and renamed when complete, so a half-written file is never served.
        ground_truth: the clip's annotations; drawn when ``show_ground_truth`` and used as tracks
            by a ResNet-LSTM predictor.
        min_confidence: boxes below this detector confidence are not drawn or counted.
        progress: ``progress(done, total, message)`` after each frame.
        should_stop: polled each frame; when it returns true the render stops and raises.

    Returns:
        A ``RenderSummary``; its frame count and size equal the source clip's.
    """
    video_path = Path(video_path)
    info = video_info(video_path)
    output = check_output(output if output is not None else default_output(predictor.run_dir, video_path))
    partial = output.with_name(f".{output.stem}.partial.webm")
    writer, codec = open_writer(partial, info.fps or 30.0, (info.width, info.height))
    tally, frames, started = _Tally(), 0, time.perf_counter()

    def source():
        for index, frame in iter_frames(video_path):
            if should_stop is not None and should_stop():
                raise RenderError("Render stopped before the end of the clip; nothing was saved.")
            yield index, frame, ground_truth.at(index) if ground_truth is not None else None

    try:
        for index, frame, truth, predictions in predictor.predict_stream(source(), state=predictor.new_state()):
            predictions = predictions.above(min_confidence)
            tally.add(predictions)
            writer.write(draw_overlay(frame, predictions, truth if show_ground_truth else None))
            frames += 1
            if progress is not None:
                progress(frames, max(info.frame_count, frames), f"frame {index + 1}/{info.frame_count}")
        writer.release()
        if frames == 0:
            raise RenderError(f"{video_path.name} holds no decodable frame; nothing to render.")
        os.replace(partial, output)
    finally:
        writer.release()
        partial.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    return RenderSummary(
        output=output, codec=codec, backend=predictor.describe_backend(), frames=frames, width=info.width,
        height=info.height, source_fps=info.fps, seconds=round(seconds, 3), fps_achieved=round(frames / max(seconds, 1e-9), 2),
        pedestrians=tally.pedestrians, detections=sum(tally.counts.values()),
        crossing=tally.counts[CROSSING], not_crossing=tally.counts[NOT_CROSSING],
        buffering=tally.counts[BUFFERING], ground_truth=ground_truth is not None,
    )


def predict_frame(predictor: Predictor, video_path: str | os.PathLike, index: int, *,
                  ground_truth: ClipGroundTruth | None = None,
                  state: ClipState | None = None) -> tuple[np.ndarray, Predictions]:
    """One frame and its predictions, replaying the frames a sequence model needs before it.

    A ResNet-LSTM predicts only after ``sequence_length`` crops of a track, so jumping to frame
    ``index`` replays frames ``index - sequence_length + 1 .. index`` (in one batch); stepping to
    the next frame of the same clip (play-through) reads just that frame. Other predictors read
    one frame. ``state`` is the caller's per-clip state (a viewer session's; default: the
    predictor's own); its ``timing`` says how many frames were predicted, in how many seconds.

    Returns:
        ((H, W, 3) uint8 BGR frame, its Predictions).
    """
    info = video_info(video_path)
    if index < 0 or index >= max(info.frame_count, 1):
        raise PedsenseError(
            f"Frame {index} is out of range for {Path(video_path).name}: it has frames "
            f"0-{info.frame_count - 1}. Move the slider inside that range.")
    state = predictor.state if state is None else state
    clip = str(Path(video_path).resolve())
    with state.lock:
        continuing = predictor.history > 1 and state.position == (clip, index - 1)
        if not continuing:
            state.reset()
        start = index if continuing else max(0, index - max(predictor.history, 1) + 1)
        items = []
        for i, image in iter_frames(video_path, start=start):
            items.append((i, image, ground_truth.at(i) if ground_truth is not None else None))
            if i >= index:
                break
        frame, predictions = None, None
        if items and items[-1][0] == index:  # else the clip ended early: no frame to show
            indices, images, truths = zip(*items)
            started = time.perf_counter()
            frame, predictions = images[-1], predictor.predict_batch(images, indices, truths, state=state)[-1]
            state.timing = (len(items), time.perf_counter() - started)
        state.position = (clip, index) if predictions is not None else None
    if frame is None or predictions is None:
        raise PedsenseError(f"Frame {index} of {Path(video_path).name} could not be decoded; "
                            "the clip may be truncated. Try an earlier frame.")
    return frame, predictions
