"""Hybrid trainer: both stages for real on the demo set, reuse of a detector, bad input."""

from __future__ import annotations

import inspect

import pytest
import yaml

from pedsense.config import paths
from pedsense.errors import ConfigError, DataError
from pedsense.runfolder import RunFolder
from pedsense.train.checkpoints import load_classifier
from pedsense.train.events import BatchEnd, EpochEnd, RunFinished, RunStarted, StageStarted, StepEnd
from pedsense.train.hybrid_trainer import PedestrianCropDataset, train_hybrid
from pedsense.train.transforms import crops_to_tensor
from test_train_fixtures import check_step_curve, write_resnet_crops

pytestmark = pytest.mark.filterwarnings("ignore:Base weights", "ignore:ImageNet weights")
TINY = dict(imgsz=64, yolo_batch_size=4, workers=0, backbone="resnet18", crop_size=32, learning_rate=1e-3)


def test_seed_signature_and_defaults():
    parameters = inspect.signature(train_hybrid).parameters
    positional = {n: p.default for n, p in parameters.items() if p.kind is not p.KEYWORD_ONLY}
    assert positional == {"name": None, "yolo_model": None, "epochs": 30, "batch_size": 16,
                          "learning_rate": 1e-4, "yolo_epochs": 50, "device": None}
    assert list(positional) == ["name", "yolo_model", "epochs", "batch_size", "learning_rate",
                                "yolo_epochs", "device"]


def test_two_stages_then_reuse_of_the_detector(demo_home):
    events = []
    detector_extras = dict(optimizer="AdamW", lr0=0.003, warmup_epochs=0.3, nbs=4)
    run_dir = train_hybrid("hy", epochs=2, batch_size=8, yolo_epochs=1, on_event=events.append,
                           **detector_extras, **TINY)
    for name in ("yolo_detector.pt", "resnet_classifier.pt", "best.pt", "last.pt", "config.json",
                 "metrics.csv", "status.json", "detector/weights/best.pt", "detector/results.csv"):
        assert (run_dir / name).is_file(), name
    flow = [(type(e).__name__, getattr(e, "stage", None), getattr(e, "epoch", None))
            for e in events if not isinstance(e, (BatchEnd, StepEnd))]
    assert flow == [("RunStarted", None, None), ("StageStarted", "detector", None),
                    ("EpochEnd", "detector", 1), ("StageStarted", "classifier", None),
                    ("EpochEnd", "classifier", 1), ("EpochEnd", "classifier", 2),
                    ("RunFinished", None, None)]
    folder = RunFolder(run_dir)
    assert folder.status == "completed"
    check_step_curve(events, run_dir, "detector")
    check_step_curve(events, run_dir, "classifier")
    rows = folder.read_metrics()
    assert [(r["stage"], r["epoch"]) for r in rows] == [("detector", 1), ("classifier", 1), ("classifier", 2)]
    assert rows[0]["mAP50"] is not None and rows[1]["val_acc"] is not None
    config = folder.read_config()
    assert config["weights_source"]["detector"].startswith("scratch (offline:")
    assert config["weights_source"]["classifier"].startswith("scratch (offline:")
    assert "val_acc" in config["best_metric"] and "mAP50" in config["detector_best_metric"]
    # stage 1 ran with the detector settings given, and the run records them
    ultralytics_args = yaml.safe_load((run_dir / "detector" / "args.yaml").read_text())
    assert {k: ultralytics_args[k] for k in detector_extras} == detector_extras
    assert {k: config["parameters"][k] for k in detector_extras} == detector_extras

    model, meta = load_classifier(run_dir / "resnet_classifier.pt")
    assert meta["model"] == "ResNetClassifier" and meta["crop_size"] == [32, 32]
    crops = [__import__("cv2").imread(str(p)) for p in PedestrianCropDataset("val").samples[:3]]
    assert model(crops_to_tensor(crops, meta["crop_size"])).shape == (len(crops), 2)

    # Stage 1 skipped with an existing detector; crops.csv missing -> built by the run.
    (paths(demo_home).resnet / "crops.csv").unlink()
    events.clear()
    reuse_dir = train_hybrid(yolo_model=str(run_dir / "yolo_detector.pt"), epochs=1, batch_size=8,
                             on_event=events.append, **TINY)
    assert [e.stage for e in events if isinstance(e, StageStarted)] == ["classifier"]
    assert (reuse_dir / "yolo_detector.pt").is_file() and RunFolder(reuse_dir).status == "completed"
    assert RunFolder(reuse_dir).read_config()["dataset"]["crops_built_by_run"] is True
    assert reuse_dir.name.startswith("hybrid_")


def test_stop_during_the_classifier_keeps_weights(tmp_home):
    write_resnet_crops(tmp_home)
    detector = tmp_home / "det.pt"
    detector.write_bytes(b"not really weights; only copied when reused")
    events = []
    run_dir = train_hybrid(yolo_model=str(detector), epochs=3, batch_size=4, on_event=events.append,
                           should_stop=lambda: sum(isinstance(e, BatchEnd) for e in events) >= 2,
                           **TINY)
    assert RunFolder(run_dir).status == "stopped"
    assert (run_dir / "best.pt").is_file() and (run_dir / "resnet_classifier.pt").is_file()
    assert isinstance(events[-1], RunFinished) and events[-1].status == "stopped"


def test_missing_yolo_model_is_refused(tmp_home):
    write_resnet_crops(tmp_home)
    with pytest.raises(ConfigError, match="does not exist"):
        train_hybrid(yolo_model=str(tmp_home / "nope.pt"), batch_size=4)
    assert not paths(tmp_home).models.exists()


def test_detector_dataset_not_built_points_at_preprocess(tmp_home):
    with pytest.raises(DataError, match="pedsense preprocess detector"):
        train_hybrid(epochs=1)


def test_batch_larger_than_the_crops_is_refused(tmp_home):
    write_resnet_crops(tmp_home, {"train": 2, "val": 1})
    (tmp_home / "d.pt").write_bytes(b"x")
    with pytest.raises(ConfigError, match="batch_size=16 is larger than the 4 training crops"):
        train_hybrid(yolo_model=str(tmp_home / "d.pt"))
