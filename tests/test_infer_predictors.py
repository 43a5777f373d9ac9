"""Each predictor, loaded from a tiny trained run of the demo set, returns well-formed predictions."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from pedsense.data.video import read_video_frame
from pedsense.infer import (HybridPredictor, Predictions, ResNetLSTMPredictor, RunTypeError,
                            TracksUnavailable, WeightsMissing, YoloPredictor, load_clip_ground_truth,
                            load_predictor)
from test_infer_fixtures import demo_clip, infer_home, infer_home_base, run_of  # noqa: F401

pytestmark = pytest.mark.slow
# An untrained-ish 1-epoch detector is unsure of everything: a low threshold still yields boxes.
LOW_CONF = 0.001


def assert_well_formed(predictions: Predictions, frame_index: int, shape: tuple) -> None:
    n = len(predictions)
    assert predictions.frame_index == frame_index
    assert predictions.xyxy.shape == (n, 4) and predictions.xyxy.dtype == np.float32
    for column in (predictions.probabilities, predictions.crossing_scores, predictions.confidences,
                   predictions.track_ids):
        assert column.shape == (n,)
    assert set(predictions.labels) <= {"crossing", "not-crossing", "buffering"}
    decided = np.array([label != "buffering" for label in predictions.labels], bool)
    assert np.all((predictions.probabilities[decided] >= 0) & (predictions.probabilities[decided] <= 1))
    assert np.all(np.isnan(predictions.probabilities[~decided]))
    if n:
        height, width = shape[:2]
        assert np.all(predictions.xyxy[:, 2] >= predictions.xyxy[:, 0])
        assert np.all(predictions.xyxy[:, 3] >= predictions.xyxy[:, 1])
        assert predictions.xyxy.min() >= -1 and predictions.xyxy[:, 2].max() <= width + 1


def test_yolo_predictor(infer_home):
    clip = demo_clip(infer_home)
    predictor = load_predictor(run_of(infer_home, "yolo"), device="cpu", conf=LOW_CONF)
    assert isinstance(predictor, YoloPredictor)
    frame = read_video_frame(clip, 5)
    predictions = predictor.predict(frame, 5)
    assert_well_formed(predictions, 5, frame.shape)
    assert len(predictions) > 0
    assert np.all(predictions.confidences >= LOW_CONF)
    assert np.all(predictions.track_ids == -1)
    # the probability shown for a YOLO box is its class confidence
    assert np.allclose(predictions.probabilities, predictions.confidences)
    assert len(predictions.above(0.99)) <= len(predictions)


def test_hybrid_classifies_all_crops_of_a_frame_in_one_batch(infer_home):
    clip = demo_clip(infer_home)
    predictor = load_predictor(run_of(infer_home, "hybrid"), device="cpu", conf=LOW_CONF)
    assert isinstance(predictor, HybridPredictor)
    batches = []
    hook = predictor.classifier.model.register_forward_hook(lambda m, args, out: batches.append(len(args[0])))
    try:
        frame = read_video_frame(clip, 10)
        predictions = predictor.predict(frame, 10)
    finally:
        hook.remove()
    assert_well_formed(predictions, 10, frame.shape)
    assert len(predictions) > 1
    assert batches == [len(predictions)], "one forward pass holding every crop of the frame"
    assert np.all((predictions.crossing_scores >= 0) & (predictions.crossing_scores <= 1))
    # the batched and the one-by-one classifications agree
    crops = predictor.classifier.crops(frame, predictions.xyxy[:4])
    assert np.allclose(predictor.classifier.classify(crops), predictor.classifier.classify_one_by_one(crops),
                       atol=1e-4)


def test_on_a_cpu_pytorch_classifies_in_passes_of_a_few_crops_with_the_same_result(infer_home):
    # larger passes are slower per crop on a CPU (an 8-frame render chunk of ResNet-50 crops: 48 in
    # one pass 3.19 s, in passes of 16 2.63 s; bench/bench_onnx.py); a GPU keeps its big passes
    from pedsense.infer.models import CPU_BATCH_PIXELS, CropClassifier

    classifier = CropClassifier(run_of(infer_home, "hybrid") / "resnet_classifier.pt", device="cpu")
    height, width = classifier.crop_size
    assert classifier.batch_size == CPU_BATCH_PIXELS // (height * width)
    frame = read_video_frame(demo_clip(infer_home), 10)
    crop = classifier.crops(frame, np.array([[10, 10, 60, 120]], np.float32))[0]
    crops = [np.ascontiguousarray(np.roll(crop, k, axis=1)) for k in range(9)]
    classifier.batch_size = 4  # a few passes, without thousands of crops
    passes = []
    hook = classifier.model.register_forward_hook(lambda m, args, out: passes.append(len(args[0])))
    try:
        split = classifier.classify(crops)
    finally:
        hook.remove()
    assert passes == [4, 4, 1]
    assert np.allclose(split, classifier.classify_one_by_one(crops), atol=1e-4)


def test_resnet_lstm_buffers_ground_truth_tracks_then_predicts(infer_home):
    clip = demo_clip(infer_home)
    truth, why = load_clip_ground_truth(clip, infer_home)
    assert truth is not None, why
    predictor = load_predictor(run_of(infer_home, "resnet-lstm"), device="cpu")
    assert isinstance(predictor, ResNetLSTMPredictor)
    length = predictor.sequence_length
    first = truth.annotated_frames()[0]
    results = []
    for index in range(first, first + length):
        frame = read_video_frame(clip, index)
        results.append(predictor.predict(frame, index, truth.at(index)))
        assert_well_formed(results[-1], index, frame.shape)
    assert all(label == "buffering" for p in results[:-1] for label in p.labels)
    assert results[0].buffer_fill.tolist() == [1] * len(results[0])
    last = results[-1]
    present_throughout = last.buffer_fill == length
    assert present_throughout.any(), "some pedestrian is annotated in all of the first frames"
    assert all(last.labels[i] in ("crossing", "not-crossing") for i in np.flatnonzero(present_throughout))
    assert np.all(np.isnan(last.confidences)), "ground-truth tracks have no detector confidence"
    # buffering CNN features gives what the whole ResNet-LSTM gives on the buffered crops
    i = int(np.flatnonzero(present_throughout)[0])
    track = truth.at(first + length - 1).track_ids[i]
    crops = []
    for index in range(first, first + length):
        at = truth.at(index)
        crops += predictor.classifier.crops(read_video_frame(clip, index), at.xyxy[[at.track_ids.index(track)]])
    whole = predictor.classifier.classify_sequences([crops])[0]
    assert whole.max() == pytest.approx(float(last.probabilities[i]), abs=1e-4)
    # jumping elsewhere in the clip starts the buffers again
    jumped = predictor.predict(read_video_frame(clip, first + 3 * length), first + 3 * length,
                               truth.at(first + 3 * length))
    assert all(label == "buffering" for label in jumped.labels)


def test_resnet_lstm_tracks_with_a_detector_run_when_there_is_no_annotation(infer_home, tmp_path):
    clip = demo_clip(infer_home)
    # ByteTrack with thresholds a 1-epoch detector's confidences can pass
    tracker = tmp_path / "low_bytetrack.yaml"
    tracker.write_text("tracker_type: bytetrack\ntrack_high_thresh: 0.001\ntrack_low_thresh: 0.0005\n"
                       "new_track_thresh: 0.001\ntrack_buffer: 30\nmatch_thresh: 0.8\nfuse_score: True\n")
    predictor = load_predictor(run_of(infer_home, "resnet-lstm"), device="cpu", conf=LOW_CONF,
                               tracker_run=run_of(infer_home, "yolo"), tracker_config=tracker)
    seen = []
    for index in range(4):
        frame = read_video_frame(clip, index)
        predictions = predictor.predict(frame, index, None)
        assert_well_formed(predictions, index, frame.shape)
        assert np.all(predictions.track_ids >= 0)
        seen.append(predictions)
    assert sum(len(p) for p in seen) > 0
    assert all(label == "buffering" for p in seen for label in p.labels)


def test_resnet_lstm_without_tracks_says_what_to_do(infer_home):
    predictor = load_predictor(run_of(infer_home, "resnet-lstm"), device="cpu")
    frame = read_video_frame(demo_clip(infer_home), 0)
    with pytest.raises(TracksUnavailable, match="detector run"):
        predictor.predict(frame, 0, None)


def test_wrong_run_type_and_missing_weights(infer_home, tmp_path):
    with pytest.raises(RunTypeError, match="hybrid run, not a yolo run"):
        YoloPredictor(run_of(infer_home, "hybrid"))
    with pytest.raises(RunTypeError, match="no detector"):
        load_predictor(run_of(infer_home, "resnet-lstm"), tracker_run=run_of(infer_home, "resnet-lstm"))
    broken = tmp_path / "models" / "hybrid" / "broken_20250101_000000"
    shutil.copytree(run_of(infer_home, "hybrid"), broken)
    (broken / "resnet_classifier.pt").unlink()
    with pytest.raises(WeightsMissing, match="resnet_classifier.pt"):
        load_predictor(broken)
    (broken / "yolo_detector.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsMissing, match="could not be loaded"):
        load_predictor(broken)
    with pytest.raises(WeightsMissing, match="does not exist"):
        load_predictor(tmp_path / "nowhere")



def test_detector_calls_leave_torch_thread_count_as_it_was(infer_home):
    """Ultralytics' first predict/track on CPU sets NUM_THREADS for the calling thread; the
    classifier that runs next (hybrid crops, ResNet-LSTM buffers) must keep the caller's count."""
    import torch
    from ultralytics.utils import NUM_THREADS

    clip = demo_clip(infer_home)
    frame = read_video_frame(clip, 0)
    before = torch.get_num_threads()
    wanted = NUM_THREADS + 1  # a count Ultralytics would never pick, so a reset shows
    torch.set_num_threads(wanted)
    try:
        hybrid = load_predictor(run_of(infer_home, "hybrid"), device="cpu", conf=LOW_CONF)
        hybrid.predict(frame, 0)  # Detector.detect
        assert torch.get_num_threads() == wanted
        tracking = load_predictor(run_of(infer_home, "resnet-lstm"), device="cpu", conf=LOW_CONF,
                                  tracker_run=run_of(infer_home, "yolo"), track_source="tracker")
        tracking.predict(frame, 0, None)  # Detector.track
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)
