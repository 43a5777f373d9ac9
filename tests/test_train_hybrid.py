"""Hybrid trainer: both stages for real on the demo set, reuse of a detector, bad input."""

from __future__ import annotations

import inspect

import pytest
import yaml

from pedsense.config import paths
from pedsense.errors import ConfigError, DataError
from pedsense.runfolder import RunFolder
from pedsense.train.checkpoints import load_classifier
from pedsense.train.events import (BatchEnd, EpochEnd, RunFinished, RunStarted, StageStarted, StepEnd, from_record,
                                   read_records)
from pedsense.train.hybrid_trainer import PedestrianCropDataset, train_hybrid
from pedsense.train.transforms import crops_to_tensor
from test_infer_fixtures import HYBRID_DETECTOR_EXTRAS, infer_home_base, run_of  # noqa: F401
from test_train_fixtures import check_step_curve, write_detector, write_resnet_crops

pytestmark = pytest.mark.filterwarnings("ignore:Base weights", "ignore:ImageNet weights")
TINY = dict(imgsz=64, yolo_batch_size=4, workers=0, backbone="resnet18", crop_size=32, learning_rate=1e-3)


def test_seed_signature_and_defaults():
    parameters = inspect.signature(train_hybrid).parameters
    positional = {n: p.default for n, p in parameters.items() if p.kind is not p.KEYWORD_ONLY}
    assert positional == {"name": None, "yolo_model": None, "epochs": 30, "batch_size": 16,
                          "learning_rate": 1e-4, "yolo_epochs": 50, "device": None}
    assert list(positional) == ["name", "yolo_model", "epochs", "batch_size", "learning_rate",
                                "yolo_epochs", "device"]


def test_two_stages_then_reuse_of_the_detector(infer_home_base, tmp_path, monkeypatch, copy_home):
    # the session's tiny hybrid run (test_infer_fixtures, trained once for every inference test),
    # its events read back from events.jsonl, as any process follows a run
    run_dir = run_of(infer_home_base, "hybrid")
    records, _ = read_records(RunFolder(run_dir).events_path)
    events = [from_record(record) for record in records]
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
    assert {k: ultralytics_args[k] for k in HYBRID_DETECTOR_EXTRAS} == HYBRID_DETECTOR_EXTRAS
    assert {k: config["parameters"][k] for k in HYBRID_DETECTOR_EXTRAS} == HYBRID_DETECTOR_EXTRAS

    home = copy_home(infer_home_base, tmp_path / "home")
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    model, meta = load_classifier(run_dir / "resnet_classifier.pt")
    assert meta["model"] == "ResNetClassifier" and meta["crop_size"] == [32, 32]
    crops = [__import__("cv2").imread(str(p)) for p in PedestrianCropDataset("val").samples[:3]]
    assert model(crops_to_tensor(crops, meta["crop_size"])).shape == (len(crops), 2)

    # Stage 1 skipped with an existing detector; crops.csv missing -> built by the run.
    (paths(home).resnet / "crops.csv").unlink()
    events.clear()
    reuse_dir = train_hybrid(yolo_model=str(run_dir / "yolo_detector.pt"), epochs=1, batch_size=32,
                             on_event=events.append, **TINY)
    assert [e.stage for e in events if isinstance(e, StageStarted)] == ["classifier"]
    assert (reuse_dir / "yolo_detector.pt").is_file() and RunFolder(reuse_dir).status == "completed"
    assert RunFolder(reuse_dir).read_config()["dataset"]["crops_built_by_run"] is True
    assert reuse_dir.name.startswith("hybrid_")


def test_stop_during_the_classifier_keeps_weights(tmp_home):
    write_resnet_crops(tmp_home)
    detector = write_detector(tmp_home / "det.pt")
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
    write_detector(tmp_home / "d.pt")
    with pytest.raises(ConfigError, match="batch_size=16 is larger than the 4 training crops"):
        train_hybrid(yolo_model=str(tmp_home / "d.pt"))


# -- the detector to reuse is loaded before any work ------------------------------------------
NOT_WEIGHTS = "is not a PyTorch checkpoint"


@pytest.fixture
def text_pt(tmp_home):
    write_resnet_crops(tmp_home)
    fake = tmp_home / "x.pt"
    fake.write_text("hello, I am not weights\n")
    return fake


def test_a_text_file_named_pt_is_refused_before_a_run_folder(text_pt):
    with pytest.raises(ConfigError, match=f"yolo_model .*x.pt {NOT_WEIGHTS}.*leave it empty"):
        train_hybrid(yolo_model=str(text_pt), batch_size=4)
    assert not paths(text_pt.parent).models.exists()


def test_preflight_and_the_manager_refuse_it_without_a_run(text_pt):
    from pedsense.runs import RunManager
    from pedsense.train.params import FormError
    from pedsense.train.preflight import preflight

    assert NOT_WEIGHTS in preflight("hybrid", {"yolo_model": str(text_pt), "batch_size": 4})["yolo_model"]
    manager = RunManager(text_pt.parent)
    try:
        with pytest.raises(FormError, match=NOT_WEIGHTS):
            manager.submit("hybrid", {"yolo_model": str(text_pt), "batch_size": 4})
    finally:
        manager.shutdown()
    assert not any(paths(text_pt.parent).models.rglob("config.json"))


def test_the_cli_refuses_it_in_one_line(text_pt, capsys):
    from pedsense.cli import main

    assert main(["train", "hybrid", "--yolo-model", str(text_pt), "--batch-size", "4"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and NOT_WEIGHTS in err, err
    assert not any(paths(text_pt.parent).models.rglob("config.json"))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 a truncated zip", "a classifier"])
def test_other_files_that_are_not_a_detector_are_refused(tmp_home, content):
    from pedsense.train.hybrid_trainer import check_yolo_model

    path = tmp_home / "w.pt"
    if content == "a classifier":  # a real checkpoint, but a pedsense ResNet, not a detector
        import torch
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="yolo_model .*w.pt (is not a PyTorch checkpoint|cannot be "
                                          "loaded as Ultralytics weights|holds no Ultralytics model)"):
        check_yolo_model(path)


def test_real_detector_weights_pass(tmp_home):
    from pedsense.train.hybrid_trainer import check_yolo_model

    weights = write_detector(tmp_home / "det.pt")
    assert check_yolo_model(weights) == weights.resolve()
