"""The frozen-feature cache: hits, misses, invalidation, corruption, and runs that match uncached ones."""

from __future__ import annotations

import os
import shutil
import time

import cv2
import numpy as np
import pytest
import torch

from pedsense.runfolder import RunFolder
from pedsense.train import feature_cache
from pedsense.train.checkpoints import load_classifier
from pedsense.train.events import BatchEnd, EpochEnd
from pedsense.train.feature_cache import FeatureDataset, FromFrozen, cache_root, load_or_build
from pedsense.train.hybrid_trainer import PedestrianCropDataset, train_hybrid
from pedsense.train.params import spec_for
from pedsense.train.resnet_lstm import ResNetLSTM
from pedsense.train.resnet_trainer import PedestrianSequenceDataset, train_resnet_lstm
from test_train_fixtures import write_detector, write_resnet_crops, write_resnet_sequences

pytestmark = pytest.mark.filterwarnings("ignore:ImageNet weights")
TINY = dict(backbone="resnet18", crop_size=32, learning_rate=1e-3, batch_size=4)


@pytest.fixture
def seq_home(tmp_home):
    """6 + 6 train / 3 + 3 val sequences of 4 frames at 32 px."""
    write_resnet_sequences(tmp_home, {"train": 6, "val": 3}, frames=4, size=32)
    return tmp_home


def features_of(seed: int = 42, frozen_children: int = 8) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = ResNetLSTM(backbone="resnet18", pretrained=False, frozen_children=frozen_children)
    return model.features


def metrics(run_dir) -> list[float]:
    """train/val loss and accuracy of every epoch, in one flat list."""
    return [r[k] for r in RunFolder(run_dir).read_metrics() for k in ("train_loss", "val_loss", "train_acc", "val_acc")]


def test_the_parameter_is_in_every_resnet_spec_with_its_choices():
    for model_type in ("resnet-lstm", "hybrid"):
        param = spec_for(model_type)["feature_cache"]
        assert param.default == "auto" and param.choices == ("auto", "fp16", "fp32", "off")
    assert spec_for("resnet-lstm").errors({"feature_cache": "maybe"})["feature_cache"].startswith("must be one of")


def test_first_load_builds_then_hits_and_equals_a_fresh_extraction(seq_home):
    dataset = PedestrianSequenceDataset("train", crop_size=32)
    features = features_of()
    built = load_or_build(dataset, features, "fp32", device="cpu")
    assert built.record["status"] == "built" and built.record["crops"] == 48  # 12 sequences x 4 frames
    assert built.index.shape == (12, 4) and built.features.shape == (48, 512, 1, 1)
    hit = load_or_build(dataset, features, "fp32", device="cpu")
    assert hit.record["status"] == "hit" and hit.record["key"] == built.record["key"]
    assert torch.equal(hit.features, built.features)
    entry = cache_root() / built.record["key"]
    assert {p.name for p in entry.iterdir()} == {"features.npy", "index.npy", "manifest.json"}
    # the cached vectors are what the frozen backbone computes for the crops
    features.eval()
    sequence, _ = dataset[3]
    with torch.no_grad():
        direct = features.frozen_features(sequence)
    assert torch.allclose(FeatureDataset(dataset, hit)[3][0], direct, atol=1e-5)


def test_overlapping_sequences_store_a_shared_crop_once(demo_home):
    dataset = PedestrianSequenceDataset("val", crop_size=32)  # stride 8, length 16: half of each shared
    cached = load_or_build(dataset, features_of(), "fp16", device="cpu")
    assert cached.record["crops"] < len(dataset) * dataset.sequence_length
    assert cached.features.dtype == torch.float16
    # the sequence items still read every one of their 16 frames
    assert FeatureDataset(dataset, cached)[0][0].shape == (16, 512, 1, 1)


def test_what_the_features_depend_on_makes_another_entry(seq_home):
    dataset = PedestrianSequenceDataset("train", crop_size=32)
    first = load_or_build(dataset, features_of(), "fp16", device="cpu").record["key"]
    keys = {first,
            load_or_build(PedestrianSequenceDataset("train", crop_size=24), features_of(), "fp16", device="cpu").record["key"],
            load_or_build(dataset, features_of(seed=7), "fp16", device="cpu").record["key"],   # other weights
            load_or_build(dataset, features_of(frozen_children=9), "fp16", device="cpu").record["key"],  # same cut (9)
            load_or_build(dataset, features_of(), "fp32", device="cpu").record["key"],
            load_or_build(PedestrianSequenceDataset("val", crop_size=32), features_of(), "fp16", device="cpu").record["key"]}
    assert len(keys) == 5  # frozen_children 8 and 9 both cut after the average pool: the same features
    # a changed dataset never reuses old features: one crop re-written, then the labels changed
    crop = dataset.samples[0][0]
    time.sleep(0.01)
    cv2.imwrite(str(crop), np.full((32, 32, 3), 255, np.uint8))
    changed = load_or_build(PedestrianSequenceDataset("train", crop_size=32), features_of(), "fp16", device="cpu")
    assert changed.record["status"] == "built" and changed.record["key"] != first
    labels = dataset.labels_path
    labels.write_text(labels.read_text().replace(",1,video_0001,", ",0,video_0001,", 1))
    relabelled = load_or_build(PedestrianSequenceDataset("train", crop_size=32), features_of(), "fp16", device="cpu")
    assert relabelled.record["status"] == "built" and relabelled.record["key"] != changed.record["key"]


@pytest.mark.parametrize("damage, reason", [
    (lambda entry: _flip_byte(entry / "features.npy"), "corrupted"),
    (lambda entry: (entry / "features.npy").write_bytes((entry / "features.npy").read_bytes()[:100]), "unreadable"),
    (lambda entry: (entry / "manifest.json").unlink(), "incomplete"),
    (lambda entry: (entry / "index.npy").unlink(), "unreadable"),
])
def test_a_damaged_entry_is_rebuilt_never_used(seq_home, damage, reason):
    dataset = PedestrianSequenceDataset("train", crop_size=32)
    good = load_or_build(dataset, features_of(), "fp32", device="cpu")
    damage(cache_root() / good.record["key"])
    again = load_or_build(dataset, features_of(), "fp32", device="cpu")
    assert again.record["status"] == "rebuilt" and reason in again.record["reason"]
    assert torch.equal(again.features, good.features) and torch.equal(again.index, good.index)
    assert load_or_build(dataset, features_of(), "fp32", device="cpu").record["status"] == "hit"
    assert [p.name for p in cache_root().iterdir()] == [good.record["key"]]  # nothing set aside is left


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[-7] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_dead_builds_staging_folder_is_cleaned_up(seq_home):
    root = cache_root()
    stale = root / ".abc.partial-999999999-1"  # no such process
    stale.mkdir(parents=True)
    (stale / "features.npy").write_bytes(b"half")
    load_or_build(PedestrianSequenceDataset("train", crop_size=32), features_of(), "fp16", device="cpu")
    assert not stale.exists()


def test_a_fully_frozen_cached_run_trains_and_predicts_as_an_uncached_one(seq_home):
    plain = train_resnet_lstm(epochs=1, frozen_children=8, feature_cache="off", **TINY)
    cached = train_resnet_lstm(epochs=1, frozen_children=8, feature_cache="fp32", **TINY)
    assert metrics(cached) == pytest.approx(metrics(plain), abs=1e-5)
    config = RunFolder(cached).read_config()
    assert config["parameters"]["feature_cache"] == "fp32"
    assert config["feature_cache"]["cut"] == 9 and config["feature_cache"]["train"]["status"] == "built"
    assert RunFolder(plain).read_config()["feature_cache"] == {"status": "off", "reason": "feature_cache=off"}
    # the checkpoint is the whole model: it loads alone and predicts on raw crops like the uncached run's
    (a, _), (b, meta) = load_classifier(plain / "best.pt"), load_classifier(cached / "best.pt")
    assert meta["model"] == "ResNetLSTM" and set(a.state_dict()) == set(b.state_dict())
    sequences = torch.stack([PedestrianSequenceDataset("val", crop_size=32)[i][0] for i in range(4)])
    with torch.no_grad():
        assert torch.allclose(a(sequences).softmax(1), b(sequences).softmax(1), atol=1e-5)


def test_auto_caches_a_frozen_backbone_in_fp16_across_runs_and_not_the_seeds_cut(seq_home):
    frozen = train_resnet_lstm(epochs=1, frozen_children=8, **TINY)
    record = RunFolder(frozen).read_config()["feature_cache"]
    assert record["dtype"] == "fp16" and record["val"]["status"] == "built"
    again = train_resnet_lstm(epochs=1, frozen_children=8, **TINY)
    assert RunFolder(again).read_config()["feature_cache"]["train"]["status"] == "hit"  # across runs
    assert metrics(again) == metrics(frozen)
    seed_cut = features_of(frozen_children=6)  # the seed's cut, after layer2: auto leaves it off
    assert feature_cache.cache_dtype("auto", seed_cut) is None and feature_cache.cache_dtype("fp16", seed_cut) == "fp16"
    assert "auto" in feature_cache.cache_off_record("auto", seed_cut)["reason"]


def test_at_the_seeds_cut_the_cached_model_predicts_raw_crops_as_it_trained(seq_home):
    run_dir = train_resnet_lstm(epochs=1, feature_cache="fp32", **TINY)
    record = RunFolder(run_dir).read_config()["feature_cache"]
    assert record["cut"] == 6 and record["train"]["shape"] == [128, 4, 4]  # layer2's maps at 32 px
    model, _ = load_classifier(run_dir / "best.pt")
    val = PedestrianSequenceDataset("val", crop_size=32)
    cached = FeatureDataset(val, load_or_build(val, model.features, "fp32", device="cpu"))
    assert cached.record["status"] == "hit"  # the frozen weights the run trained with: its own entry
    inputs, _ = cached.__getitems__([0, 1, 2])
    with torch.no_grad():
        through_cache = FromFrozen(model).eval()(inputs)
        raw = model(torch.stack([val[i][0] for i in range(3)]))
    assert torch.allclose(through_cache, raw, atol=1e-5)


@pytest.mark.slow
def test_cache_deleted_mid_run_or_corrupted_between_runs(seq_home):
    def delete_cache(event):
        if isinstance(event, EpochEnd) and event.epoch == 1:
            shutil.rmtree(cache_root())

    first = train_resnet_lstm(epochs=2, frozen_children=8, feature_cache="fp32", on_event=delete_cache, **TINY)
    assert RunFolder(first).status == "completed"  # its features were in memory
    second = train_resnet_lstm(epochs=2, frozen_children=8, feature_cache="fp32", **TINY)
    assert RunFolder(second).read_config()["feature_cache"]["train"]["status"] == "built"
    assert metrics(second) == metrics(first)
    key = RunFolder(second).read_config()["feature_cache"]["train"]["key"]
    _flip_byte(cache_root() / key / "features.npy")
    third = train_resnet_lstm(epochs=2, frozen_children=8, feature_cache="fp32", **TINY)
    record = RunFolder(third).read_config()["feature_cache"]["train"]
    assert record["status"] == "rebuilt" and "corrupted" in record["reason"]
    assert metrics(third) == metrics(first)  # never silently wrong
    assert "feature cache train: rebuilt" in RunFolder(third).read_log()


def test_a_stop_during_the_extraction_keeps_loadable_weights(seq_home, monkeypatch):
    monkeypatch.setattr(feature_cache, "EXTRACT_PIXELS", 8 * 32 * 32)  # 6 chunks of 8 crops
    events = []
    run_dir = train_resnet_lstm(epochs=2, frozen_children=8, on_event=events.append,
                                should_stop=lambda: sum(isinstance(e, BatchEnd) for e in events) >= 2, **TINY)
    assert RunFolder(run_dir).status == "stopped"
    assert not any(isinstance(e, EpochEnd) for e in events)
    assert [e.total_batches for e in events if isinstance(e, BatchEnd)] == [6, 6]  # extraction progress
    load_classifier(run_dir / "last.pt")
    assert not (cache_root().exists() and any(cache_root().iterdir()))  # nothing half-stored


def test_the_hybrid_classifier_trains_on_cached_crop_features(tmp_home):
    write_resnet_crops(tmp_home)
    detector = write_detector(tmp_home / "det.pt")
    run_dir = train_hybrid(yolo_model=str(detector), epochs=1, frozen_children=8, feature_cache="fp32", **TINY)
    config = RunFolder(run_dir).read_config()
    assert config["feature_cache"]["train"]["status"] == "built" and config["feature_cache"]["train"]["crops"] == 20
    assert [r["stage"] for r in RunFolder(run_dir).read_metrics()] == ["classifier"]
    model, meta = load_classifier(run_dir / "resnet_classifier.pt")
    assert meta["model"] == "ResNetClassifier"
    crops = PedestrianCropDataset("val", crop_size=32)
    cached = FeatureDataset(crops, load_or_build(crops, model.features, "fp32", device="cpu"))
    inputs, _ = cached.__getitems__(list(range(len(crops))))
    with torch.no_grad():
        raw = model(torch.stack([crops[i][0] for i in range(len(crops))]))
        assert torch.allclose(FromFrozen(model).eval()(inputs), raw, atol=1e-5)
    assert os.path.commonpath([config["feature_cache"]["val"]["path"], str(cache_root())]) == str(cache_root())
