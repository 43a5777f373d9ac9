"""ResNet-LSTM: the seed API, real tiny training on the demo set, events, stop, failure, bad input."""

from __future__ import annotations

import csv
import inspect
import shutil

import cv2
import pytest
import torch

from pedsense.config import paths
from pedsense.device import DeviceError
from pedsense.errors import ConfigError, DataError
from pedsense.runfolder import RunFolder
from pedsense.train.checkpoints import load_classifier
from pedsense.train.events import BatchEnd, EpochEnd, RunFinished, RunStarted, StageStarted, StepEnd
from pedsense.train.resnet_lstm import ResNetClassifier, ResNetLSTM
from pedsense.train.resnet_trainer import PedestrianSequenceDataset, train_resnet_lstm
from pedsense.train.transforms import crops_to_tensor
from test_train_fixtures import check_step_curve, write_resnet_sequences

TINY = dict(backbone="resnet18", crop_size=32, learning_rate=1e-3)
pytestmark = pytest.mark.filterwarnings("ignore:ImageNet weights")


def defaults(function) -> dict:
    return {n: p.default for n, p in inspect.signature(function).parameters.items()
            if p.kind is not p.KEYWORD_ONLY}


def test_seed_signatures_and_defaults():
    assert defaults(train_resnet_lstm) == {"name": None, "epochs": 30, "batch_size": 8,
                                           "learning_rate": 1e-4, "device": None}
    assert list(defaults(train_resnet_lstm)) == ["name", "epochs", "batch_size", "learning_rate", "device"]
    assert defaults(ResNetLSTM.__init__) == {"self": inspect.Parameter.empty, "num_classes": 2,
                                             "hidden_size": 256, "num_layers": 1, "dropout": 0.3}
    assert defaults(ResNetClassifier.__init__) == {"self": inspect.Parameter.empty, "num_classes": 2,
                                                   "dropout": 0.3}
    assert defaults(PedestrianSequenceDataset.__init__) == {"self": inspect.Parameter.empty,
                                                            "split": "train", "transform": None}
    hooks = inspect.signature(train_resnet_lstm).parameters
    assert hooks["on_event"].default is None and hooks["should_stop"].default is None


def test_models_shapes_and_frozen_children():
    model = ResNetLSTM(backbone="resnet18", pretrained=False)
    out = model(torch.zeros(2, 3, 3, 32, 32))
    assert out.shape == (2, 2)
    frozen = list(model.features.frozen.children())
    assert len(frozen) == 6 and all(not p.requires_grad for p in model.features.frozen.parameters())
    assert all(p.requires_grad for p in model.features.trainable.parameters())
    model.train()
    assert not model.features.frozen.training and model.features.trainable.training
    assert ResNetClassifier(backbone="resnet18", pretrained=False)(torch.zeros(3, 3, 32, 32)).shape == (3, 2)


def test_resnet50_feature_dim_is_2048():
    model = ResNetLSTM(pretrained=False)
    assert model.features.feature_dim == 2048 and model.lstm.input_size == 2048 and model.lstm.batch_first


def test_offline_pretrained_falls_back_with_a_warning():
    with pytest.warns(UserWarning, match="not available"):
        model = ResNetClassifier(backbone="resnet18")
    assert model.weights_source.startswith("scratch (offline: PEDSENSE_OFFLINE=1")


def test_dataset_items_match_crops_to_tensor(demo_home):
    dataset = PedestrianSequenceDataset("train")
    sequence, label = dataset[0]
    assert sequence.shape == (16, 3, 64, 64) and sequence.dtype == torch.float32 and label in (0, 1)
    frames = [cv2.imread(str(p)) for p in dataset.samples[0]]
    assert torch.allclose(crops_to_tensor(frames, (64, 64)), sequence)
    small = PedestrianSequenceDataset("val", crop_size=32)
    assert small[0][0].shape == (16, 3, 32, 32)


def test_trains_on_demo_set_with_events_files_and_reloadable_best(demo_home):
    events = []
    run_dir = train_resnet_lstm("demo", epochs=2, batch_size=4, on_event=events.append, **TINY)
    assert run_dir.parent == paths(demo_home).models / "resnet-lstm" and run_dir.name.startswith("demo_")
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "metrics.csv", "status.json", "train.log", "best.pt", "last.pt"} <= names
    kinds = [type(e) for e in events if not isinstance(e, (BatchEnd, StepEnd))]
    assert kinds == [RunStarted, StageStarted, EpochEnd, EpochEnd, RunFinished]
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    batches = [e for e in events if isinstance(e, BatchEnd)]
    assert batches and batches[0].batch == 1 and batches[-1].batch == batches[-1].total_batches
    # the loss curve: a few hundred points at most, here every optimizer step (= batch) of both epochs
    steps = check_step_curve(events, run_dir)
    assert [e.step for e in steps] == list(range(1, 2 * batches[-1].total_batches + 1))
    assert steps[0].lr == 1e-3 and steps[-1].epoch == 2
    first = next(i for i, e in enumerate(events) if isinstance(e, StepEnd))
    assert isinstance(events[first - 1], StageStarted)  # drawn from the first batch on

    folder = RunFolder(run_dir)
    assert folder.status == "completed"
    rows = folder.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "val_loss", "train_acc", "val_acc", "lr", "seconds"} <= set(rows[0])
    config = folder.read_config()
    assert config["model_type"] == "resnet-lstm" and config["class_names"] == ["not-crossing", "crossing"]
    assert config["device"] == "cpu" and config["parameters"]["epochs"] == 2
    assert config["weights_source"].startswith("scratch (offline:")
    assert config["epochs_done"] == 2 and config["best_metric"]["val_acc"] == max(r["val_acc"] for r in rows)
    assert config["dataset"]["train"] > 0 and config["dataset"]["val"] > 0

    model, meta = load_classifier(run_dir / "best.pt")
    assert meta["model"] == "ResNetLSTM" and meta["crop_size"] == [32, 32] and meta["sequence_length"] == 16
    sequence, _ = PedestrianSequenceDataset("val", crop_size=32)[0]
    with torch.no_grad():
        probabilities = model(sequence.unsqueeze(0)).softmax(1)
    assert probabilities.shape == (1, 2) and torch.isclose(probabilities.sum(), torch.tensor(1.0))


@pytest.fixture
def tiny_home(tmp_home):
    """A hand-made dataset of a few 32 px, 4-frame sequences (faster than the demo set)."""
    write_resnet_sequences(tmp_home, {"train": 4, "val": 2}, frames=4, size=32)
    return tmp_home


def test_stop_mid_epoch_keeps_weights_and_reads_stopped(tiny_home):
    events = []
    batches = lambda: sum(isinstance(e, BatchEnd) for e in events)  # noqa: E731
    run_dir = train_resnet_lstm(epochs=3, batch_size=2, on_event=events.append,
                                should_stop=lambda: batches() >= 2, **TINY)
    assert RunFolder(run_dir).status == "stopped"
    assert batches() == 2  # stopped within one batch
    assert (run_dir / "best.pt").exists() and (run_dir / "last.pt").exists()
    assert not any(isinstance(e, EpochEnd) for e in events)
    assert events[-1].status == "stopped"
    load_classifier(run_dir / "last.pt")


def test_label_smoothing_reaches_the_loss_and_the_config(tiny_home):
    """The same seed and data: smoothing the targets changes the training loss, and is recorded."""
    plain = train_resnet_lstm(name="plain", epochs=1, batch_size=2, **TINY)
    smooth = train_resnet_lstm(name="smooth", epochs=1, batch_size=2, label_smoothing=0.4, **TINY)
    losses = [RunFolder(r).read_metrics()[0]["train_loss"] for r in (plain, smooth)]
    assert losses[0] != pytest.approx(losses[1], rel=1e-6)
    assert RunFolder(smooth).read_config()["parameters"]["label_smoothing"] == 0.4
    assert RunFolder(plain).read_config()["parameters"]["label_smoothing"] == 0.0


def test_raise_mid_run_leaves_failed_with_metrics_kept(tiny_home):
    def explode(event):
        if isinstance(event, EpochEnd) and event.epoch == 2:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        train_resnet_lstm(epochs=3, batch_size=4, on_event=explode, **TINY)
    (run_dir,) = (paths(tiny_home).models / "resnet-lstm").iterdir()
    status = RunFolder(run_dir).read_status()
    assert status["status"] == "failed" and "disk on fire" in status["error"]
    assert [r["epoch"] for r in RunFolder(run_dir).read_metrics()] == [1, 2]


def test_uses_a_pre_created_run_dir(tiny_home):
    queued = RunFolder.create("resnet-lstm", "queued")
    queued.set_status("queued")
    assert train_resnet_lstm(epochs=1, batch_size=4, run_dir=queued.path, **TINY) == queued.path
    assert queued.status == "completed" and len(queued.read_metrics()) == 1


@pytest.mark.parametrize("name, expected", [("../x", "x_"), ("a/b", "a-b_"), (None, "resnet-lstm_")])
def test_run_names_are_sanitised(tmp_home, name, expected):
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2, size=32)
    run_dir = train_resnet_lstm(name, epochs=1, batch_size=2, **TINY)
    assert run_dir.parent == paths(tmp_home).models / "resnet-lstm" and run_dir.name.startswith(expected)


def test_dataset_not_built_points_at_preprocess(tmp_home):
    with pytest.raises(DataError, match="pedsense preprocess resnet"):
        train_resnet_lstm(epochs=1)
    assert not paths(tmp_home).models.exists()  # refused before any run folder


def test_bad_inputs_fail_before_training(tmp_home):
    root = write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    with pytest.raises(ConfigError, match="batch_size=99"):
        train_resnet_lstm(batch_size=99)
    with pytest.raises(ConfigError, match="epochs"):
        train_resnet_lstm(epochs=0)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            train_resnet_lstm(device="cuda", batch_size=2)
    shutil.rmtree(next((root / "sequences" / "val").iterdir()))
    with pytest.raises(DataError, match="missing on disk"):
        train_resnet_lstm(batch_size=2)


def test_empty_split_is_refused(tmp_home):
    root = write_resnet_sequences(tmp_home, {"train": 2}, frames=2)
    with pytest.raises(DataError, match="no 'val' samples"):
        train_resnet_lstm(batch_size=2)
    assert root.exists()


def test_refused_input_leaves_a_queued_run_to_the_manager(tmp_home):
    # Input refused before the run starts: the trainer raises and writes nothing; the run
    # manager that queued the folder records it failed (tests/test_run_manager.py).
    queued = RunFolder.create("resnet-lstm", "q")
    queued.set_status("queued")
    with pytest.raises(DataError, match="pedsense preprocess resnet"):
        train_resnet_lstm(run_dir=queued.path)
    assert queued.status == "queued"


def test_labels_csv_with_an_unknown_label_is_refused(tmp_home):
    root = write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    rows = list(csv.DictReader(open(root / "labels.csv")))
    rows[0]["label"] = "maybe"
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DataError, match="'maybe'"):
        PedestrianSequenceDataset("train")
