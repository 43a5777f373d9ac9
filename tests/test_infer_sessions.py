"""One shared predictor, per-session clip state: sessions interleaving frames of two clips (or
running in two threads) predict what each would alone; batched prediction equals frame by frame."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pedsense.data.video import iter_frames
from pedsense.infer import load_clip_ground_truth, load_predictor, predict_frame, render_video
from pedsense.infer.clips import list_clips
from test_infer_fixtures import infer_home, infer_home_base, run_of, short_copy  # noqa: F401

pytestmark = pytest.mark.slow
FRAMES = 18  # more than a ResNet-LSTM's 16-frame buffer, so tracks get decided
LOW_TRACKER = ("tracker_type: bytetrack\ntrack_high_thresh: 0.001\ntrack_low_thresh: 0.0005\n"
               "new_track_thresh: 0.001\ntrack_buffer: 30\nmatch_thresh: 0.8\nfuse_score: True\n")


def clip_items(home, clip, use_truth=True):
    """[(index, frame, ground truth or None)] of the first FRAMES frames."""
    truth, _ = load_clip_ground_truth(clip, home)
    items = []
    for index, frame in iter_frames(clip):
        if index >= FRAMES:
            break
        items.append((index, frame, truth.at(index) if use_truth else None))
    return items


def rows(predictions):
    """What a viewer shows of each frame, comparable exactly (probabilities rounded)."""
    return [(p.frame_index, p.labels, p.track_ids.tolist(), p.buffer_fill.tolist(),
             np.round(np.nan_to_num(p.crossing_scores, nan=-1), 4).tolist(), np.round(p.xyxy, 2).tolist())
            for p in predictions]


def alone(predictor, items):
    state = predictor.new_state()
    return [predictor.predict(frame, index, truth, state=state) for index, frame, truth in items]


@pytest.fixture
def two_clips(infer_home):
    clips = list_clips(infer_home)
    assert len(clips) >= 2
    return clips[0], clips[1]


@pytest.mark.parametrize("tracks", ["ground-truth", "tracker"])
def test_two_sessions_interleaving_two_clips_predict_as_each_alone(infer_home, two_clips, tmp_path, tracks):
    options = {}
    if tracks == "tracker":
        (tmp_path / "low.yaml").write_text(LOW_TRACKER)
        options = dict(conf=0.001, tracker_run=run_of(infer_home, "yolo"), track_source="tracker",
                       tracker_config=tmp_path / "low.yaml")
    shared = load_predictor(run_of(infer_home, "resnet-lstm"), device="cpu", **options)
    a_items, b_items = (clip_items(infer_home, clip, use_truth=tracks == "ground-truth") for clip in two_clips)
    expected_a, expected_b = alone(shared, a_items), alone(shared, b_items)
    assert any(label != "buffering" for p in expected_a for label in p.labels) or tracks == "tracker"
    assert sum(len(p) for p in expected_a + expected_b) > 0

    first, second = shared.new_state(), shared.new_state()
    got_a, got_b = [], []
    for (ia, fa, ta), (ib, fb, tb) in zip(a_items, b_items):  # two browser tabs, one frame each in turn
        got_a.append(shared.predict(fa, ia, ta, state=first))
        got_b.append(shared.predict(fb, ib, tb, state=second))
    assert rows(got_a) == rows(expected_a)
    assert rows(got_b) == rows(expected_b)

    # the same two sessions in two threads at once (as two Streamlit script runs)
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded_a, threaded_b = pool.map(lambda items: alone(shared, items), (a_items, b_items))
    assert rows(threaded_a) == rows(expected_a)
    assert rows(threaded_b) == rows(expected_b)


def test_predict_batch_equals_frame_by_frame_even_across_a_jump(infer_home, two_clips):
    predictor = load_predictor(run_of(infer_home, "resnet-lstm"), device="cpu")
    items = clip_items(infer_home, two_clips[0])
    items = items[:10] + items[12:]  # frames 10 and 11 skipped: the buffers start again at 12
    expected = alone(predictor, items)
    state = predictor.new_state()
    batched = []
    for start in range(0, len(items), 8):
        chunk = items[start:start + 8]
        indices, frames, truths = zip(*chunk)
        batched += predictor.predict_batch(frames, indices, truths, state=state)
    assert rows(batched) == rows(expected)
    assert max(p.buffer_fill.max(initial=0) for p in batched[10:]) == len(items) - 10, "restarted at the jump"

    streamed = [p for *_, p in predictor.predict_stream(items, state=predictor.new_state(), chunk=5)]
    assert rows(streamed) == rows(expected)


def test_a_render_leaves_a_viewer_sessions_clip_state_alone(infer_home, two_clips, tmp_path):
    clip = two_clips[0]
    truth, _ = load_clip_ground_truth(clip, infer_home)
    predictor = load_predictor(run_of(infer_home, "resnet-lstm"), device="cpu")
    viewer = predictor.new_state()
    predict_frame(predictor, clip, 20, ground_truth=truth, state=viewer)
    buffers = {key: len(buffer) for key, buffer in viewer.buffers.items()}
    other_truth, _ = load_clip_ground_truth(two_clips[1], infer_home)
    other = short_copy(two_clips[1], tmp_path / two_clips[1].name, FRAMES)  # its buffers fill, as in a whole clip
    summary = render_video(predictor, other, tmp_path / "other.webm", ground_truth=other_truth)  # another session
    assert summary.frames == FRAMES and summary.crossing + summary.not_crossing > 0, "the render decided tracks"
    assert viewer.position is not None and viewer.position[1] == 20
    assert {key: len(buffer) for key, buffer in viewer.buffers.items()} == buffers
    _, following = predict_frame(predictor, clip, 21, ground_truth=truth, state=viewer)  # play on: one frame
    assert (following.buffer_fill == predictor.sequence_length).any()
