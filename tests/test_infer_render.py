"""Rendered overlay videos decode with the source's frame count and size; bad clips and uploads
get clear messages; the `pedsense predict` and `pedsense evaluate` commands work end to end."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pedsense.data.video import video_info
from pedsense.errors import DataError, PedsenseError
from pedsense.infer import load_clip_ground_truth, load_predictor, predict_frame, render_video
from pedsense.infer.clips import UploadError, save_upload
from test_infer_fixtures import demo_clip, infer_home, infer_home_base, run_of, short_copy  # noqa: F401

pytestmark = pytest.mark.slow
#: the renders' clip: the demo clip's first frames, more than a ResNet-LSTM's 16-frame buffer (so
#: tracks get decided); a whole clip proves nothing more and costs 5 times the predictions
RENDER_FRAMES = 24


@pytest.fixture(scope="module")
def short_clip(infer_home_base, tmp_path_factory):
    """(the demo clip's first RENDER_FRAMES frames as a clip, the whole clip it was cut from)."""
    clip = demo_clip(infer_home_base)
    return short_copy(clip, tmp_path_factory.mktemp("short_clip") / clip.name, RENDER_FRAMES), clip


def decoded(path):
    capture = cv2.VideoCapture(str(path))
    frames, size = 0, None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames, size = frames + 1, frame.shape[:2]
    capture.release()
    return frames, size


@pytest.mark.parametrize("model_type", ["yolo", "resnet-lstm"])
def test_render_keeps_frame_count_and_size(infer_home, short_clip, tmp_path, model_type):
    clip, whole = short_clip
    source = video_info(clip)
    assert source.frame_count == RENDER_FRAMES
    truth, _ = load_clip_ground_truth(whole, infer_home)
    predictor = load_predictor(run_of(infer_home, model_type), device="cpu", conf=0.01)
    calls = []
    summary = render_video(predictor, clip, tmp_path / "out.webm", ground_truth=truth,
                           progress=lambda done, total, message: calls.append((done, total)))
    assert summary.output.is_file() and summary.output.suffix == ".webm"
    assert summary.codec in ("VP90", "VP80")
    frames, size = decoded(summary.output)
    assert frames == source.frame_count == summary.frames
    assert size == (source.height, source.width)
    assert calls[-1] == (source.frame_count, source.frame_count)
    assert summary.fps_achieved > 0
    assert summary.detections == summary.crossing + summary.not_crossing + summary.buffering
    if model_type == "resnet-lstm":
        assert summary.buffering > 0 and summary.pedestrians > 0
    assert not list(tmp_path.glob(".*partial*")), "no temporary file is left behind"


def test_render_without_annotations_still_draws(infer_home, short_clip, tmp_path):
    clip, _ = short_clip
    predictor = load_predictor(run_of(infer_home, "hybrid"), device="cpu")
    summary = render_video(predictor, clip, tmp_path / "plain.webm", ground_truth=None)
    assert not summary.ground_truth
    assert decoded(summary.output)[0] == video_info(clip).frame_count


def test_predict_frame_checks_the_range_and_replays_history(infer_home):
    clip = demo_clip(infer_home)
    truth, _ = load_clip_ground_truth(clip, infer_home)
    count = video_info(clip).frame_count
    predictor = load_predictor(run_of(infer_home, "resnet-lstm"), device="cpu")
    with pytest.raises(PedsenseError, match="out of range"):
        predict_frame(predictor, clip, count + 5, ground_truth=truth)
    frame, predictions = predict_frame(predictor, clip, 40, ground_truth=truth)
    assert frame.ndim == 3 and predictions.frame_index == 40
    full = predictions.buffer_fill == predictor.sequence_length
    assert full.any(), "jumping to a frame replays enough history for a prediction"
    _, following = predict_frame(predictor, clip, 41, ground_truth=truth)  # play-through: one more frame
    assert following.frame_index == 41 and (following.buffer_fill == predictor.sequence_length).any()


def test_a_clip_that_will_not_decode(infer_home, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01 definitely not a video" * 10)
    predictor = load_predictor(run_of(infer_home, "yolo"), device="cpu")
    with pytest.raises(DataError, match="will not open|no decodable frame"):
        render_video(predictor, bad, tmp_path / "out.webm")
    assert not (tmp_path / "out.webm").exists()


def test_uploads_are_checked(infer_home):
    with pytest.raises(UploadError, match="not a video this viewer reads"):
        save_upload("notes.txt", b"hello")
    with pytest.raises(UploadError, match="will not decode"):
        save_upload("fake.mp4", b"hello" * 100)
    clip = demo_clip(infer_home)
    with pytest.raises(UploadError, match="upload limit"):
        save_upload("big.mp4", clip.read_bytes(), max_mb=len(clip.read_bytes()) / 2**20 / 2)
    path, info = save_upload("my clip.mp4", clip.read_bytes())
    assert path.suffix == ".mp4" and len(path.stem) == 16  # named by its content (sha256 prefix)
    assert info.frame_count == video_info(clip).frame_count
    assert not list(path.parent.glob(".*partial*"))


def test_cli_predict_and_evaluate(infer_home, tmp_path, capsys):
    from pedsense.cli import main

    clip = demo_clip(infer_home)
    out = tmp_path / "cli.webm"
    assert main(["predict", str(run_of(infer_home, "yolo")), clip.stem, "-o", str(out)]) == 0
    assert decoded(out)[0] == video_info(clip).frame_count
    assert "wrote" in capsys.readouterr().out
    assert main(["predict", str(run_of(infer_home, "yolo")), str(tmp_path / "missing.mp4")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["predict", str(run_of(infer_home, "yolo")), clip.stem, "-o", "/proc/x.webm"]) == 2
    err = capsys.readouterr().err  # checked before the model loads: one line, not OpenCV's spam
    assert err.startswith("error: Cannot write the video into /proc (") and "a folder you can write to" in err
    assert len(err.strip().splitlines()) == 1 and "VP9" not in err, err
    run = run_of(infer_home, "resnet-lstm")
    assert main(["evaluate", str(run)]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert (run / "evaluation_val.json").is_file()


def test_draw_on_a_real_frame_changes_it(infer_home):
    from pedsense.infer import draw_overlay

    clip = demo_clip(infer_home)
    truth, _ = load_clip_ground_truth(clip, infer_home)
    frame, predictions = predict_frame(load_predictor(run_of(infer_home, "yolo"), device="cpu", conf=0.01),
                                       clip, 3, ground_truth=truth)
    image = draw_overlay(frame, predictions, truth.at(3))
    assert image.shape == frame.shape and not np.array_equal(image, frame)


def test_predict_frame_past_the_decodable_end_of_a_clip_says_so(infer_home, tmp_path):
    """A truncated clip whose header promises more frames than decode: jumping past the last
    decodable frame is an error, not the predictions of an earlier frame shown as this one."""
    clip = demo_clip(infer_home)
    truth, _ = load_clip_ground_truth(clip, infer_home)
    info = video_info(clip)
    whole = tmp_path / "whole.webm"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"VP80"), 30, (info.width, info.height))
    capture = cv2.VideoCapture(str(clip))
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(frame)
    capture.release()
    writer.release()
    cut = tmp_path / f"{clip.stem}.webm"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    decodable, _ = decoded(cut)
    assert 20 < decodable < video_info(cut).frame_count - 10, "the header promises more than decodes"
    predictor = load_predictor(run_of(infer_home, "resnet-lstm"), device="cpu")
    with pytest.raises(PedsenseError, match="could not be decoded"):
        predict_frame(predictor, cut, decodable + 5, ground_truth=truth)
