"""Fusion (issue 18.6): the ResNet-LSTM with the context encoder, on the demo set's benchmark windows.

The sequence build carries the context build's features for the same windows; a real tiny fused
run trains (through the feature cache), reloads from its checkpoint alone and predicts in the
viewer's predictor and in ``evaluate``; bad input gets the rebuild / leak messages.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from pedsense.config import paths
from pedsense.data.context_features import ContextFeatureError
from pedsense.data.context_format import build_context, load_context_split
from pedsense.data.sequence_context import CONTEXT_FILE, load_sequence_context
from pedsense.errors import DataError
from pedsense.runfolder import list_runs
from pedsense.train.checkpoints import load_classifier
from pedsense.train.feature_cache import FeatureDataset, FromFrozen, load_or_build
from pedsense.train.preflight import preflight
from pedsense.train.params import CONTEXT
from pedsense.train.resnet_lstm import ResNetLSTM
from pedsense.train.resnet_trainer import PedestrianSequenceDataset, train_resnet_lstm

pytestmark = pytest.mark.filterwarnings("ignore:ImageNet weights")
FUSED = "box,vehicle,traffic"


def test_the_seed_model_is_unchanged_without_context():
    model = ResNetLSTM(2, 8, backbone="resnet18", pretrained=False)
    assert model.context is None and model.context_groups == () and "context" not in model.model_args
    assert model.classifier.in_features == 8
    assert not any(key.startswith("context.") for key in model.state_dict())


def test_sequence_build_carries_the_context_builds_features_for_the_same_windows(intent_home):
    manifest = json.loads((paths(intent_home).sequences / "manifest.json").read_text())
    assert manifest["context"]["sample_type"] == "beh"
    assert list(manifest["context"]["groups"]) == ["box", "vehicle", "traffic", "history", "behaviour"]
    build_context(intent_home)  # annotations only: the context family's own build of the same windows
    dataset = PedestrianSequenceDataset("val", home=intent_home, context_features=FUSED, cache=False)
    windows = load_context_split(intent_home, "val")
    by_window = {(r.video_id, str(r.track_id), int(r.start_frame)): i
                 for i, r in enumerate(windows.windows.itertuples())}
    assert len(dataset) == len(windows) > 0 and set(dataset.context) == {"box", "vehicle", "traffic"}
    with open(paths(intent_home).resnet / "labels.csv", newline="") as f:
        labels = {r["sequence_id"]: r for r in csv.DictReader(f)}
    for k, sequence_id in enumerate(dataset.sequence_ids):
        row = labels[sequence_id]
        i = by_window[(row["video_id"], row["track_id"], int(row["start_frame"]))]
        for group in dataset.context:
            np.testing.assert_array_equal(dataset.context[group][k], windows.groups[group][i])
    (sequence, groups), label = dataset[0]
    assert sequence.shape[0] == 16 and groups["box"].shape == (15, 9) and label == dataset.labels[0]


def test_a_build_without_context_features_asks_for_a_rebuild(intent_home):
    (paths(intent_home).sequences / CONTEXT_FILE).unlink()
    with pytest.raises(DataError, match="carries no context features.*pedsense preprocess resnet"):
        train_resnet_lstm(epochs=1, context_features="box", home=intent_home)
    errors = preflight("resnet-lstm", {"context_features": "box"}, intent_home)
    assert "pedsense preprocess resnet" in errors["context_features"]
    assert preflight("resnet-lstm", {}, intent_home) == {}  # crops alone still train on it


def test_leaks_and_unknown_groups_are_refused_by_the_catalogue(intent_home):
    with pytest.raises(ContextFeatureError, match="Unknown context feature `speed`.*box, vehicle"):
        load_sequence_context(intent_home, "train", "box,speed", [])
    with pytest.raises(ContextFeatureError, match="never be a context feature"):
        load_sequence_context(intent_home, "train", "crossing", [])
    manifest_path = paths(intent_home).sequences / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["intent_options"]["sample_type"] = "all"  # the same arrays, read as a JAAD_all build
    manifest_path.unlink()  # a hard link to the read-only fixture: replace, never write through
    manifest_path.write_text(json.dumps(manifest))
    errors = preflight("resnet-lstm", {"context_features": "box,behaviour"}, intent_home)
    assert "presence leak" in errors["context_features"]


def test_the_form_has_the_field_and_refuses_a_fusion_the_build_cannot_feed(intent_home):
    from test_app_train import fill, manager, open_train_page, submit

    (paths(intent_home).sequences / CONTEXT_FILE).unlink()
    at = open_train_page("resnet-lstm")
    fill(at, "resnet-lstm", {"context_features": "box,vehicle"})
    submit(at)
    errors = " ".join(e.value for e in at.error)
    assert "Context features (fusion)" in errors and "pedsense preprocess resnet" in errors, errors
    assert list_runs(intent_home) == []
    manager().shutdown(timeout=60)


@pytest.fixture(scope="module")
def fused_run(intent_built, copy_home, tmp_path_factory):
    """One real fused run (1 epoch, resnet18 from scratch, 32x32 crops) through the fp32 feature cache."""
    home = copy_home(intent_built, tmp_path_factory.mktemp("fused") / "home")
    run = train_resnet_lstm("fused", epochs=1, batch_size=16, learning_rate=1e-3, home=home, backbone="resnet18",
                            pretrained=False, crop_size=32, hidden_size=8, feature_cache="fp32",
                            context_features=FUSED)
    return home, run


@pytest.mark.slow
def test_a_fused_run_trains_through_the_cache_and_reloads_from_its_checkpoint_alone(fused_run, tmp_path):
    home, run = fused_run
    config = json.loads((run / "config.json").read_text())
    assert config["context_features"] == ["box", "vehicle", "traffic"]
    assert config["parameters"]["context_features"] == FUSED
    assert config["feature_cache"]["train"]["status"] in ("built", "hit")
    assert config["model_args"]["context"]["group_dims"] == {"box": 9, "vehicle": 6, "traffic": 12}

    alone = tmp_path / "elsewhere.pt"
    shutil.copy(run / "best.pt", alone)  # nothing of the run or the build beside it
    model, meta = load_classifier(alone)
    assert model.context_groups == ("box", "vehicle", "traffic")
    # the context family's default encoder: its GRU's state beside its window MLP's
    assert model.classifier.in_features == 8 + model.context.out_dim == 8 + 2 * CONTEXT["hidden_size"].default
    assert float(model.context.std_box.sum()) != 9.0  # the training windows' normalisation came along

    val = PedestrianSequenceDataset("val", home=home, crop_size=32, context_features=FUSED)
    (sequence, groups), _ = val[0]
    with torch.no_grad():
        direct = model(sequence.unsqueeze(0), {g: t.unsqueeze(0) for g, t in groups.items()})
        # the cache path: the same window from its cached frozen features gives the same logits
        cached = FeatureDataset(val, load_or_build(val, model.features, "fp32", device="cpu", home=home))
        (frozen, context), _ = cached.__getitems__([0])
        from_cache = FromFrozen(model)(frozen, context)
    assert direct.softmax(1).sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(direct, from_cache, atol=1e-4, rtol=1e-4)
    with pytest.raises(DataError, match="fuses context features"):
        model(sequence.unsqueeze(0))


@pytest.mark.slow
def test_the_viewer_and_evaluate_feed_a_fused_run_its_context(fused_run):
    from pedsense.evaluation import evaluate
    from pedsense.infer import load_clip_ground_truth, load_predictor
    from pedsense.infer.predictors import TracksUnavailable

    home, run = fused_run
    predictor = load_predictor(run, device="cpu")
    assert predictor.context_groups == ("box", "vehicle", "traffic")
    clip = sorted(paths(home).clips.glob("*.mp4"))[0]
    truth, why = load_clip_ground_truth(clip, home)
    assert why == "" and truth.annotation.scene is not None
    capture = cv2.VideoCapture(str(clip))
    frames = [capture.read()[1] for _ in range(20)]
    capture.release()
    results = predictor.predict_batch(frames, list(range(20)), [truth.at(i) for i in range(20)])
    scored = [r for r in results if np.isfinite(r.crossing_scores).any()]
    assert scored and all(label != "buffering" for label in scored[-1].labels)
    with pytest.raises(TracksUnavailable, match="fuses context features.*annotated clips"):
        predictor.predict_batch(frames[:16], list(range(100, 116)),  # boxes without their annotation
                                [dataclasses.replace(truth.at(i), annotation=None) for i in range(16)])
    with pytest.raises(TracksUnavailable, match="fuses context features"):
        load_predictor(run, device="cpu", track_source="tracker")

    evaluation = evaluate(run, "test", home=home, device="cpu")
    assert evaluation["intent"]["n"] > 0
    assert evaluation["intent"]["source"].endswith("+ context box, vehicle, traffic")
    assert evaluation["benchmark"]["inputs"] == ["rgb", "box", "speed", "traffic"]  # compared as what it sees
