"""YOLO trainer: the seed API, real tiny Ultralytics training, events once per epoch, stop, bad input."""

from __future__ import annotations

import inspect

import cv2
import pytest

from pedsense.config import paths
from pedsense.errors import ConfigError, DataError
from pedsense.runfolder import RunFolder
from pedsense.train.events import BatchEnd, EpochEnd, RunFinished, RunStarted, StageStarted, StepEnd
from pedsense.train.yolo_inputs import check_model_variant, spread_subset
from pedsense.train.yolo_trainer import train_yolo
from test_train_fixtures import check_step_curve, write_yolo_dataset

pytestmark = pytest.mark.filterwarnings("ignore:Base weights")
TINY = dict(imgsz=64, batch_size=4, workers=0)


def test_seed_signature_and_defaults():
    parameters = inspect.signature(train_yolo).parameters
    positional = {n: p.default for n, p in parameters.items() if p.kind is not p.KEYWORD_ONLY}
    assert positional == {"name": None, "epochs": 50, "batch_size": 16, "imgsz": 640,
                          "model_variant": "yolo26n", "device": None}
    assert list(positional) == ["name", "epochs", "batch_size", "imgsz", "model_variant", "device"]
    assert parameters["on_event"].default is None and parameters["should_stop"].default is None


def test_trains_on_demo_set_reporting_each_epoch_once(demo_home):
    events = []
    run_dir = train_yolo("det", epochs=2, on_event=events.append, **TINY)
    assert run_dir.parent == paths(demo_home).models / "yolo" and run_dir.name.startswith("det_")
    for name in ("config.json", "metrics.csv", "status.json", "train.log", "best.pt", "last.pt",
                 "results.csv", "args.yaml", "weights/best.pt", "weights/last.pt"):
        assert (run_dir / name).is_file(), name
    kinds = [type(e) for e in events if not isinstance(e, (BatchEnd, StepEnd))]
    # Ultralytics' extra on_fit_epoch_end after the final validation must not add a third epoch
    assert kinds == [RunStarted, StageStarted, EpochEnd, EpochEnd, RunFinished]
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    assert any(isinstance(e, BatchEnd) for e in events)
    # the loss curve through Ultralytics' batch callback: optimizer steps counted across epochs
    steps = check_step_curve(events, run_dir)
    assert {e.epoch for e in steps} == {1, 2}

    folder = RunFolder(run_dir)
    assert folder.status == "completed"
    rows = folder.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "val_loss", "precision", "recall", "mAP50", "mAP50-95", "lr", "seconds",
            "train_box_loss", "train_cls_loss", "val_box_loss"} <= set(rows[0])
    config = folder.read_config()
    assert config["model_type"] == "yolo" and config["class_names"] == ["not-crossing", "crossing"]
    assert config["weights_source"] == "scratch (offline: PEDSENSE_OFFLINE=1)"
    assert config["base_model"] == "yolo26n.yaml" and config["epochs_done"] == 2
    assert "mAP50" in config["best_metric"]

    from ultralytics import YOLO

    image = next((paths(demo_home).yolo / "images" / "val").iterdir())
    result = YOLO(str(run_dir / "best.pt"))(cv2.imread(str(image)), imgsz=64, verbose=False)[0]
    assert result.names == {0: "not-crossing", 1: "crossing"}


def test_fraction_spreads_over_the_frames_and_threads_survive(tmp_home):
    import torch
    import yaml

    write_yolo_dataset(tmp_home, images={"train": 8, "val": 2})
    torch.set_num_threads(2)
    run_dir = train_yolo(epochs=1, imgsz=64, batch_size=2, workers=0, fraction=0.5, warmup_epochs=0, nbs=2)
    # Ultralytics' CPU device selection set 1 thread (cpu_count - 1 on 2 cores); the caller's
    # count is back, so a ResNet stage trained next in this thread does not run on one core
    assert torch.get_num_threads() == 2
    subset = (run_dir / "train_subset.txt").read_text().split()
    assert [s.rsplit("/", 1)[1] for s in subset] == ["img_000.jpg", "img_002.jpg", "img_004.jpg", "img_006.jpg"]
    assert yaml.safe_load((run_dir / "dataset.yaml").read_text())["train"] == str(run_dir / "train_subset.txt")
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    assert (args["nbs"], args["warmup_epochs"], args["fraction"]) == (2, 0.0, 1.0)
    parameters = RunFolder(run_dir).read_config()["parameters"]
    assert (parameters["fraction"], parameters["nbs"], parameters["warmup_epochs"]) == (0.5, 2, 0.0)


def test_spread_subset_covers_every_video():
    frames = [f"video_{v}_{f:03d}.jpg" for v in range(4) for f in range(100)]
    subset = spread_subset(frames, 0.05)
    assert len(subset) == 20 and subset == sorted(set(subset))
    assert {name.split("_")[1] for name in subset} == {"0", "1", "2", "3"}  # Ultralytics' head: video 0 only
    assert spread_subset(frames[:3], 0.01) == frames[:1]


def test_stop_after_first_batch_keeps_weights(tmp_home):
    write_yolo_dataset(tmp_home, images={"train": 4, "val": 2})
    events = []
    run_dir = train_yolo(epochs=5, imgsz=64, batch_size=2, workers=0, on_event=events.append,
                         should_stop=lambda: any(isinstance(e, BatchEnd) for e in events))
    folder = RunFolder(run_dir)
    assert folder.status == "stopped"
    assert sum(isinstance(e, BatchEnd) for e in events) == 1
    assert (run_dir / "best.pt").is_file() and (run_dir / "last.pt").is_file()
    assert [r["epoch"] for r in folder.read_metrics()] == [1]  # the cut epoch, validated once
    assert events[-1].status == "stopped"


def test_raise_in_a_callback_leaves_failed(tmp_home):
    write_yolo_dataset(tmp_home)

    def explode(event):
        if isinstance(event, EpochEnd):
            raise RuntimeError("listener broke")

    with pytest.raises(RuntimeError, match="listener broke"):
        train_yolo(epochs=3, on_event=explode, **TINY)
    (run_dir,) = (paths(tmp_home).models / "yolo").iterdir()
    status = RunFolder(run_dir).read_status()
    assert status["status"] == "failed" and "listener broke" in status["error"]
    assert len(RunFolder(run_dir).read_metrics()) == 1


def test_dataset_not_built_points_at_preprocess(tmp_home):
    with pytest.raises(DataError, match="pedsense preprocess yolo"):
        train_yolo(epochs=1)
    assert not paths(tmp_home).models.exists()


def test_bad_inputs_fail_before_training(tmp_home):
    write_yolo_dataset(tmp_home)
    with pytest.raises(ConfigError, match="model_variant: must be a YOLO variant .* got 'yolo99q'"):
        train_yolo(model_variant="yolo99q", **TINY)
    with pytest.raises(ConfigError, match="does not exist"):
        train_yolo(model_variant=str(tmp_home / "missing.pt"), **TINY)
    with pytest.raises(ConfigError, match="batch_size=50"):
        train_yolo(imgsz=64, batch_size=50)
    with pytest.raises(ConfigError, match="multiple of 32"):
        train_yolo(imgsz=70, batch_size=2)
    with pytest.raises(ConfigError, match="nbs"):
        train_yolo(nbs=0, **TINY)
    with pytest.raises(ConfigError, match="warmup_epochs"):
        train_yolo(warmup_epochs=-1, **TINY)
    assert not paths(tmp_home).models.exists()


def test_empty_split_is_refused(tmp_home):
    write_yolo_dataset(tmp_home, images={"train": 2})
    with pytest.raises(DataError, match="'val' split"):
        train_yolo(**TINY)


@pytest.mark.parametrize("variant, expected", [("yolo26n", ("variant", "yolo26n")),
                                               ("yolo26s.pt", ("variant", "yolo26s")),
                                               ("yolo11n", ("variant", "yolo11n")),
                                               ("yolo26n.yaml", ("file", "yolo26n.yaml"))])
def test_model_variants(variant, expected):
    assert check_model_variant(variant) == expected


def test_a_pt_variant_that_holds_no_detector_is_refused_before_any_folder(tmp_home, tmp_path, capsys):
    from pedsense.cli import main
    from pedsense.train.preflight import preflight

    weights = tmp_path / "f.pt"
    weights.write_text("not weights\n")
    with pytest.raises(ConfigError, match="is not a PyTorch checkpoint"):
        check_model_variant(weights)
    assert "is not a PyTorch checkpoint" in preflight("yolo", {"model_variant": str(weights)}, tmp_home)["model_variant"]
    assert main(["train", "yolo", "--model-variant", str(weights), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"model_variant {weights} is not a PyTorch checkpoint" in err and "'yolo26n'" in err
    assert "unexpected" not in err and not (paths(tmp_home).models / "yolo").exists()
