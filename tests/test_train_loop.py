"""The training loop: divergence, crash-safe epochs on a full disk, true resume and extend.

Tiny real runs on hand-made datasets (4-frame 32 px sequences, a few 64 px YOLO images).
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import math

import pytest
import torch

from pedsense.config import paths
from pedsense.errors import ConfigError, DataError, DiskFull, TrainingDiverged
from pedsense.runfolder import RunFolder
from pedsense.train.checkpoints import load_classifier, nonfinite_tensors, read_checkpoint, save_classifier
from pedsense.train.common import TrainingRun
from pedsense.train.events import BatchEnd, EpochEnd, StageStarted, StepEnd
from pedsense.train.resnet_lstm import ResNetLSTM
from pedsense.train.resnet_trainer import FitSettings, PedestrianSequenceDataset, fit_classifier, train_resnet_lstm
from pedsense.train.resume import extend_run, resume_run
from test_train_fixtures import write_resnet_crops, write_resnet_sequences, write_yolo_dataset

pytestmark = pytest.mark.filterwarnings("ignore:ImageNet weights", "ignore:Base weights")
# resnet18 frozen up to its pooling: the LSTM, head, optimizer and dropout train, in seconds on 2 cores
TINY = dict(backbone="resnet18", frozen_children=8, crop_size=32, learning_rate=1e-3, batch_size=2)
YOLO_TINY = dict(imgsz=64, batch_size=2, workers=0, warmup_epochs=0, nbs=2)


@pytest.fixture
def tiny_home(tmp_home):
    """8 train / 4 val sequences of 4 frames at 32 px: 4 batches of 2 per epoch."""
    write_resnet_sequences(tmp_home, {"train": 4, "val": 2}, frames=4, size=32)
    return tmp_home


def stop_at(events: list, epoch: int, batch: int, stage: str = "train"):
    """A should_stop hook that says stop once batch ``batch`` of ``epoch`` (of ``stage``) ended."""
    return lambda: any(isinstance(e, BatchEnd) and (e.stage, e.epoch, e.batch) == (stage, epoch, batch)
                       for e in events)


def epochs_of(run_dir, stage: str | None = None) -> list:
    return [r["epoch"] for r in RunFolder(run_dir).read_metrics() if stage is None or r.get("stage") == stage]


# -- 2. divergence ----------------------------------------------------------------------------
def _fit(run: TrainingRun, model, epochs: int, learning_rate: float) -> dict:
    train_set = PedestrianSequenceDataset("train", crop_size=32)
    val_set = PedestrianSequenceDataset("val", crop_size=32)
    settings = FitSettings(epochs, 2, learning_rate, 1e-4, "cpu", 0, sequence_length=train_set.sequence_length)
    return fit_classifier(run, model, train_set, val_set, settings)


def test_a_diverging_loss_fails_the_run_and_never_overwrites_finite_weights(tiny_home):
    # The loop itself (the seed functions' parameter checks may refuse an infinite rate first).
    run = TrainingRun.open("resnet-lstm", "diverge")
    model = ResNetLSTM(backbone="resnet18", pretrained=False, frozen_children=8)
    with run.guarded():
        run.start({"device": "cpu"})
        _fit(run, model, 1, 1e-3)
    finite = {name: (run.path / name).read_bytes() for name in ("best.pt", "last.pt")}

    events = []
    run.on_event = events.append
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 1, batch 2 \(loss nan\); lower the learning rate"):
        with run.guarded():
            _fit(run, model, 2, float("inf"))
    status = RunFolder(run.path).read_status()
    assert status["status"] == "failed" and "diverged at epoch 1, batch 2 (loss nan)" in status["error"]
    assert "last.pt keeps the weights of the last finite epoch" in status["error"]
    assert {name: (run.path / name).read_bytes() for name in finite} == finite
    assert read_checkpoint(run.path / "last.pt")["epoch"] == 1
    assert events[-1].status == "failed" and not any(isinstance(e, EpochEnd) for e in events)
    assert all(math.isfinite(e.loss) for e in events if isinstance(e, StepEnd))


def test_non_finite_weights_are_never_written_and_refused_when_loaded(tmp_path):
    model = ResNetLSTM(backbone="resnet18", pretrained=False)
    meta = dict(class_names=["not-crossing", "crossing"], crop_size=(32, 32), epoch=1, metrics={})
    good = save_classifier(tmp_path / "resnet-lstm" / "run_1" / "last.pt", model, **meta)
    before = good.read_bytes()
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="not finite"):
        save_classifier(good, model, **meta)
    assert good.read_bytes() == before and list(good.parent.iterdir()) == [good]

    # A file written by other means (an older version, by hand) is refused on load, naming the run.
    checkpoint = torch.load(good, weights_only=True)
    checkpoint["state_dict"]["classifier.weight"] = model.classifier.weight.detach().clone()
    torch.save(checkpoint, good)
    with pytest.raises(DataError, match=r"run resnet-lstm/run_1\) are not finite.*lower learning rate"):
        load_classifier(good)


def test_the_finite_check_names_exactly_the_tensors_holding_nan_or_inf():
    state = {"a": torch.ones(3), "b": torch.zeros(2, dtype=torch.float16), "steps": torch.tensor(7),
             "c": torch.ones(2, dtype=torch.float64)}
    assert nonfinite_tensors(state) == [] and nonfinite_tensors({}) == []
    assert nonfinite_tensors({**state, "huge": torch.full((4,), 1e30)}) == []  # finite, though its norm overflows
    state["b"][1] = float("inf")
    state["c"][0] = float("nan")
    assert nonfinite_tensors(state) == ["b", "c"]


def test_checkpoints_load_with_weights_only(tmp_path):
    model = ResNetLSTM(backbone="resnet18", pretrained=False)
    path = save_classifier(tmp_path / "best.pt", model, class_names=["a", "b"], crop_size=(32, 32), epoch=1,
                           metrics={"val_acc": torch.tensor(0.5)})
    assert torch.load(path, weights_only=True)["metrics"] == {"val_acc": 0.5}
    # a pickle that would run code (any object beyond tensors and plain values) is not opened
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["args"] = argparse.Namespace(lr=1e-3)  # as torchvision scripts store theirs
    torch.save(checkpoint, path)
    with pytest.raises(DataError, match="could not be read"):
        read_checkpoint(path)


def test_a_diverging_yolo_run_fails_before_ultralytics_saves(tmp_home, monkeypatch):
    from ultralytics.utils.callbacks import base

    from pedsense.train.yolo_trainer import train_yolo

    def diverge(trainer):  # what an exploding update does, injected through Ultralytics' own hooks
        if trainer.epoch == 1:
            with torch.no_grad():
                for parameter in trainer.model.parameters():
                    parameter.fill_(float("inf"))

    # Ultralytics' learning rates are capped at 1, so the fault comes through its callback registry
    monkeypatch.setitem(base.default_callbacks, "on_train_batch_end",
                        [*base.default_callbacks["on_train_batch_end"], diverge])
    write_yolo_dataset(tmp_home, images={"train": 4, "val": 2})
    events = []
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 2, batch 2 \(loss (nan|inf)\); lower the learning rate"):
        train_yolo(epochs=2, on_event=events.append, **YOLO_TINY)
    (run_dir,) = (paths(tmp_home).models / "yolo").iterdir()
    status = RunFolder(run_dir).read_status()
    assert status["status"] == "failed" and "last.pt keeps the weights of the last finite epoch" in status["error"]
    assert epochs_of(run_dir) == [1]
    checkpoint = torch.load(run_dir / "weights" / "last.pt", weights_only=False)
    assert checkpoint["epoch"] == 0 and checkpoint["optimizer"] is not None  # epoch 1, resumable
    assert all(bool(torch.isfinite(v).all()) for v in checkpoint["ema"].state_dict().values()
               if v.is_floating_point())
    assert (run_dir / "last.pt").is_file()  # published at the run root although it failed


# -- 3. a full disk ---------------------------------------------------------------------------
def _full_disk(monkeypatch):
    def save(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save)  # the disk, not our code


def test_a_full_disk_keeps_the_epoch_row_and_says_how_much_to_free(tiny_home, monkeypatch):
    _full_disk(monkeypatch)
    events = []
    with pytest.raises(DiskFull, match=r"No space left on .*resnet-lstm.*: free \d+ MB and resume") as raised:
        train_resnet_lstm(epochs=2, on_event=events.append, **TINY)
    (run_dir,) = (paths(tiny_home).models / "resnet-lstm").iterdir()
    assert str(run_dir) in str(raised.value)
    assert epochs_of(run_dir) == [1]  # written before the checkpoint that could not be
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1]
    status = RunFolder(run_dir).read_status()
    assert status["status"] == "failed" and status["error"].startswith("No space left on")
    assert not list(run_dir.glob(".*.tmp")) and not list(run_dir.glob("*.pt"))
    assert "Traceback" not in RunFolder(run_dir).read_log()


def test_a_full_disk_under_ultralytics_keeps_the_epoch_row(tmp_home, monkeypatch):
    from pedsense.train.yolo_trainer import train_yolo

    write_yolo_dataset(tmp_home, images={"train": 4, "val": 2})
    _full_disk(monkeypatch)
    with pytest.raises(DiskFull, match=r"No space left on .*: free \d+ MB and resume"):
        train_yolo(epochs=1, **YOLO_TINY)
    (run_dir,) = (paths(tmp_home).models / "yolo").iterdir()
    assert epochs_of(run_dir) == [1]
    assert RunFolder(run_dir).read_status()["error"].startswith("No space left on")


def test_a_full_disk_while_ultralytics_writes_keeps_the_previous_checkpoint(tmp_home, monkeypatch):
    import pathlib

    from pedsense.train.yolo_trainer import train_yolo

    write_yolo_dataset(tmp_home, images={"train": 4, "val": 2})
    write_bytes, written = pathlib.Path.write_bytes, []

    def fills_up(self, data):  # the disk fills up half-way through epoch 2's last.pt
        if self.name == "last.pt":
            written.append(self)
            if len(written) == 2:
                write_bytes(self, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", fills_up)
    with pytest.raises(DiskFull, match="No space left on"):
        train_yolo(epochs=3, **YOLO_TINY)
    monkeypatch.undo()
    (run_dir,) = (paths(tmp_home).models / "yolo").iterdir()
    assert epochs_of(run_dir) == [1, 2]
    checkpoint = torch.load(run_dir / "weights" / "last.pt", weights_only=False)
    assert checkpoint["epoch"] == 0 and checkpoint["optimizer"] is not None  # epoch 1's, whole
    assert not list((run_dir / "weights").glob("*.previous"))

    resume_run(run_dir)  # epoch 2 again (its row too), then 3
    assert RunFolder(run_dir).status == "completed" and epochs_of(run_dir) == [1, 2, 3]


# -- 4. resume and extend ---------------------------------------------------------------------
def test_resume_after_a_stop_mid_epoch_continues_like_an_uninterrupted_run(tiny_home):
    straight_events = []
    straight = train_resnet_lstm("straight", epochs=3, on_event=straight_events.append, **TINY)

    events = []
    stopped = train_resnet_lstm("stopped", epochs=3, on_event=events.append,
                                should_stop=stop_at(events, epoch=2, batch=2), **TINY)
    assert RunFolder(stopped).status == "stopped" and epochs_of(stopped) == [1]
    checkpoint = read_checkpoint(stopped / "last.pt")
    assert checkpoint["epoch"] == 1  # the cut epoch 2 left it alone
    assert checkpoint["training"]["scaler"] is None  # CPU trains in float32: no AMP scaler
    assert {r["epoch"] for r in RunFolder(stopped).read_steps()} == {1, 2}

    events.clear()
    assert resume_run(stopped, on_event=events.append) == stopped
    assert RunFolder(stopped).status == "completed" and epochs_of(stopped) == [1, 2, 3]
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [2, 3]
    # weights, optimizer, schedule and random numbers continued: the same losses as without a stop
    for resumed, reference in zip(RunFolder(stopped).read_metrics(), RunFolder(straight).read_metrics()):
        for key in ("train_loss", "val_loss", "train_acc", "val_acc", "lr"):
            assert math.isclose(resumed[key], reference[key], rel_tol=1e-4, abs_tol=1e-6), (resumed, key)
    resumed_steps, reference_steps = RunFolder(stopped).read_steps(), RunFolder(straight).read_steps()
    assert [(r["epoch"], r["step"]) for r in resumed_steps] == [(r["epoch"], r["step"]) for r in reference_steps]
    assert all(math.isclose(a["loss"], b["loss"], rel_tol=1e-4) for a, b in zip(resumed_steps, reference_steps))
    config = RunFolder(stopped).read_config()
    assert config["epochs_done"] == 3 and len(config["resumes"]) == 1
    assert config["resumes"][0]["previous_status"] == "stopped"
    assert read_checkpoint(stopped / "last.pt")["epoch"] == 3

    # a completed run is not resumed but extended: a new run, linked, from the parent's weights
    with pytest.raises(ConfigError, match="completed.*Extend it"):
        resume_run(straight)
    child = extend_run(straight, 1)
    assert child != straight and child.parent == straight.parent and RunFolder(child).status == "completed"
    child_config = RunFolder(child).read_config()
    assert child_config["parent_run"] == RunFolder(straight).run_id and child_config["extends_epochs"] == 1
    assert "schedule restarted" in child_config["schedule_note"]
    assert child_config["init_weights"] == str(straight / "last.pt") and epochs_of(child) == [1]
    assert child_config["weights_source"] == f"file ({(straight / 'last.pt').resolve()})"
    assert child_config["parameters"]["epochs"] == 1
    RunFolder(child).set_status("stopped")
    with pytest.raises(ConfigError, match="not completed: resume it"):
        extend_run(child, 1)


def test_resume_refuses_corrupt_checkpoints_and_changed_datasets_without_writing(tiny_home):
    events = []
    run_dir = train_resnet_lstm(epochs=2, on_event=events.append, should_stop=stop_at(events, 1, 4), **TINY)
    folder = RunFolder(run_dir)
    assert folder.status == "stopped" and epochs_of(run_dir) == [1]
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != "train.log"}

    last = (run_dir / "last.pt").read_bytes()
    (run_dir / "last.pt").write_bytes(last[: len(last) // 2])  # cut short, as by a crash
    with pytest.raises(DataError, match="could not be read"):
        resume_run(run_dir)
    (run_dir / "last.pt").write_bytes(last)

    labels = paths(tiny_home).resnet / "labels.csv"
    original = labels.read_text()
    lines = original.splitlines()
    labels.write_text("\n".join(lines[:1] + lines[:0:-1]) + "\n")  # the same rows, another order
    with pytest.raises(ConfigError, match="dataset of run .* changed since it started.*confirm_dataset_change"):
        resume_run(run_dir)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != "train.log"} == before

    labels.unlink()  # confirmed, but the trainer then refuses the missing data: the run stays stopped
    with pytest.raises(DataError, match="pedsense preprocess resnet"):
        resume_run(run_dir, confirm_dataset_change=True)
    assert folder.status == "stopped" and epochs_of(run_dir) == [1]

    labels.write_text("\n".join(lines[:1] + lines[:0:-1]) + "\n")
    resume_run(run_dir, confirm_dataset_change=True)
    assert folder.status == "completed" and epochs_of(run_dir) == [1, 2]
    assert len(folder.read_config()["dataset_change_confirmed"]) == 2  # both confirmations recorded


def test_resume_without_a_checkpoint_is_refused(tiny_home):
    run_dir = train_resnet_lstm(epochs=1, **TINY)
    RunFolder(run_dir).set_status("interrupted")
    (run_dir / "last.pt").unlink()
    with pytest.raises(DataError, match="no last.pt to resume from"):
        resume_run(run_dir)
    assert RunFolder(run_dir).status == "interrupted"


def test_an_empty_yolo_checkpoint_is_named_empty_with_what_to_do(tmp_path):
    from pedsense.train.yolo_checkpoints import resume_point

    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "last.pt").write_bytes(b"")
    with pytest.raises(DataError, match=r"last.pt is empty \(0 bytes\).*free disk space.*start a new run"):
        resume_point(tmp_path)


def test_yolo_resumes_through_ultralytics_and_retrains_the_cut_epoch(tmp_home):
    from pedsense.train.yolo_trainer import train_yolo

    write_yolo_dataset(tmp_home, images={"train": 4, "val": 2})
    events = []
    run_dir = train_yolo(epochs=2, on_event=events.append, should_stop=stop_at(events, 2, 1), **YOLO_TINY)
    assert RunFolder(run_dir).status == "stopped"
    assert epochs_of(run_dir) == [1, 2]  # the cut epoch 2, validated once
    assert (run_dir / "weights" / "resume.pt").is_file()  # epoch 1 with its optimizer, set aside
    steps_before = max(r["step"] for r in RunFolder(run_dir).read_steps() if r["epoch"] == 1)

    events.clear()
    resume_run(run_dir, on_event=events.append)
    folder = RunFolder(run_dir)
    assert folder.status == "completed" and epochs_of(run_dir) == [1, 2]
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [2]
    steps = [e.step for e in events if isinstance(e, StepEnd)]
    assert steps[0] == steps_before + 1  # Ultralytics went on from epoch 1's optimizer steps
    rows = folder.read_steps()
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})
    import csv

    with open(run_dir / "results.csv", newline="") as f:
        assert [int(float(r["epoch"])) for r in csv.DictReader(f)] == [1, 2]
    assert not (run_dir / "weights" / "resume.pt").exists()
    assert (run_dir / "best.pt").is_file() and (run_dir / "last.pt").is_file()

    child = extend_run(run_dir, 1)  # fine-tunes from the finished run's weights/last.pt
    config = RunFolder(child).read_config()
    assert RunFolder(child).status == "completed" and epochs_of(child) == [1]
    assert config["parameters"]["model_variant"] == str(run_dir / "weights" / "last.pt")
    assert config["parent_run"] == folder.run_id and config["extends_epochs"] == 1


def test_hybrid_resumes_at_the_stage_and_epoch_it_reached(tmp_home):
    from pedsense.train.hybrid_trainer import train_hybrid

    write_yolo_dataset(tmp_home, folder="yolo_detector", names=("pedestrian",), images={"train": 4, "val": 2})
    write_resnet_crops(tmp_home, {"train": 4, "val": 2})
    options = dict(yolo_epochs=1, epochs=2, batch_size=2, imgsz=64, yolo_batch_size=2, workers=0,
                   warmup_epochs=0, nbs=2, backbone="resnet18", frozen_children=8, crop_size=32,
                   learning_rate=1e-3)
    events = []
    run_dir = train_hybrid(on_event=events.append, should_stop=stop_at(events, 1, 1, "detector"), **options)
    folder = RunFolder(run_dir)
    assert folder.status == "stopped" and epochs_of(run_dir, "classifier") == []

    assert epochs_of(run_dir, "detector") == [1]  # its cut first epoch, validated once

    events.clear()  # the detector's first epoch is trained again (nothing before it to resume from)
    resume_run(run_dir, on_event=events.append, should_stop=stop_at(events, 2, 1, "classifier"))
    assert folder.status == "stopped"
    assert [e.stage for e in events if isinstance(e, StageStarted)] == ["detector", "classifier"]
    assert epochs_of(run_dir, "detector") == [1] and epochs_of(run_dir, "classifier") == [1]
    assert "detector" in folder.read_config()["stages_done"]

    events.clear()
    resume_run(run_dir, on_event=events.append)
    assert folder.status == "completed"
    assert [e.stage for e in events if isinstance(e, StageStarted)] == ["classifier"]  # straight on
    assert [(e.stage, e.epoch) for e in events if isinstance(e, EpochEnd)] == [("classifier", 2)]
    assert [(r["stage"], r["epoch"]) for r in folder.read_metrics()] == [
        ("detector", 1), ("classifier", 1), ("classifier", 2)]
    assert len(folder.read_config()["resumes"]) == 2
    for name in ("yolo_detector.pt", "resnet_classifier.pt", "best.pt", "last.pt"):
        assert (run_dir / name).is_file(), name

    events.clear()  # extended: the classifier only, from the parent's last.pt, with its detector
    child = extend_run(run_dir, 1, on_event=events.append)
    assert [e.stage for e in events if isinstance(e, StageStarted)] == ["classifier"]
    config = RunFolder(child).read_config()
    assert RunFolder(child).status == "completed" and config["init_weights"] == str(run_dir / "last.pt")
    assert config["parameters"]["yolo_model"] == str(run_dir / "yolo_detector.pt")


@pytest.mark.cuda
def test_cuda_runs_resume_with_their_amp_scaler(tiny_home):
    events = []
    run_dir = train_resnet_lstm(epochs=2, device="cuda", on_event=events.append,
                                should_stop=stop_at(events, 1, 4), **TINY)
    state = read_checkpoint(run_dir / "last.pt")["training"]
    assert state["scaler"] is not None and state["scaler"]["scale"] > 0
    resume_run(run_dir)
    assert RunFolder(run_dir).status == "completed" and epochs_of(run_dir) == [1, 2]
