"""What a run keeps beside its metrics: predictions per epoch, TensorBoard event files, the
system load — read back with the readers others use (TensorBoard's EventAccumulator, OpenCV).

One tiny real ResNet-LSTM run (4-frame 32 px sequences) is shared by the module's tests.
"""

from __future__ import annotations

import builtins
import io
import json
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import pytest
from streamlit.testing.v1 import AppTest

from pedsense.epoch_predictions import picture_path, read_epochs
from pedsense.runfolder import RunFolder
from pedsense.sysmon import SystemSampler, gpu_columns, machine_load, read_system
from pedsense.train.previews import EpochPreviews, pick_indices
from test_app_run_controls import runs_page
from test_train_fixtures import write_resnet_sequences, write_yolo_dataset

pytestmark = pytest.mark.filterwarnings("ignore:ImageNet weights")
TINY = dict(backbone="resnet18", frozen_children=8, crop_size=32, learning_rate=1e-3, batch_size=2)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A completed 2-epoch ResNet-LSTM run scoring 4 prediction samples (feature cache on)."""
    from pedsense.train.resnet_trainer import train_resnet_lstm

    home = tmp_path_factory.mktemp("records") / "home"
    write_resnet_sequences(home, {"train": 4, "val": 3}, frames=4, size=32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PEDSENSE_HOME", str(home))
        patch.setenv("PEDSENSE_OFFLINE", "1")
        patch.setattr("pedsense.sysmon.SAMPLE_EVERY_S", 0.2)  # a tiny run lasts seconds
        run_dir = train_resnet_lstm(name="records", epochs=2, prediction_samples=4, **TINY)
    return RunFolder(run_dir)


# -- predictions as training goes ------------------------------------------------------------------
@pytest.mark.parametrize("labels, count, expected_classes", [
    ([], 8, set()),
    ([0] * 10, 4, {0}),
    ([0] * 20 + [1] * 3, 6, {0, 1}),
])
def test_prediction_samples_are_seeded_and_take_both_classes(labels, count, expected_classes):
    picked = pick_indices(labels, count, seed=7)
    assert picked == pick_indices(labels, count, seed=7) == sorted(picked)
    assert len(picked) == min(count, len(labels)) and len(set(picked)) == len(picked)
    assert {labels[i] for i in picked} == expected_classes
    if expected_classes == {0, 1}:
        assert sum(labels[i] for i in picked) == 3  # every crossing sample: the rarer class is not lost


@pytest.mark.slow
def test_each_epoch_keeps_the_same_samples_with_pictures_and_p_crossing(tiny_run):
    epochs = read_epochs(tiny_run.path)
    assert [e["epoch"] for e in epochs] == [1, 2]
    ids = [[s["id"] for s in e["samples"]] for e in epochs]
    assert ids[0] == ids[1] and len(ids[0]) == 4
    for epoch in epochs:
        labels = [s["label"] for s in epoch["samples"]]
        assert sorted(labels) == [0, 0, 1, 1]
        assert all(0.0 <= s["p_crossing"] <= 1.0 for s in epoch["samples"])
        sheet = cv2.imread(str(picture_path(tiny_run.path, epoch)))
        assert sheet is not None and sheet.shape[0] >= 128  # a real JPEG with the tiles
    config = tiny_run.read_config()
    assert config["parameters"]["prediction_samples"] == 4
    assert config["prediction_samples"]["samples"] == 4 and config["prediction_samples"]["epochs"] == 2


def test_a_sample_that_cannot_be_read_is_left_out_and_said(tmp_path):
    class Split:  # a validation split whose second item's picture is gone
        labels = [0, 1, 0, 1]

        def sample_id(self, index):
            return f"seq{index}"

        def preview_picture(self, index):
            if index == 1:
                raise OSError("frame_00.jpg: no such file")
            return __import__("numpy").zeros((32, 64, 3), "uint8")

    class Run:
        path = tmp_path
        lines: list[str] = []

        def log(self, message):
            self.lines.append(message)

    run = Run()
    previews = EpochPreviews.for_dataset(run, Split(), 4, seed=0)
    assert [s.sample_id for s in previews.samples] == ["seq0", "seq2", "seq3"]
    assert run.lines == ["prediction sample seq1 cannot be read (frame_00.jpg: no such file); left out, "
                         "training goes on"]
    previews.record(1, [{"p_crossing": 0.2}, {"p_crossing": 0.9}, {"p_crossing": 0.6}])
    (record,) = read_epochs(tmp_path)
    assert record["problems"] == run.lines and len(record["samples"]) == 3 and record["picture"]


def test_a_family_without_pictures_keeps_p_crossing_against_the_label(tmp_path):
    class Features:  # annotation features: labels and tensors, no picture
        labels = [1, 0, 1]

        def __getitem__(self, index):
            import torch
            return torch.full((5,), float(index)), self.labels[index]

    class Run:
        path = tmp_path

        def log(self, message):
            raise AssertionError(message)

    import torch

    previews = EpochPreviews.for_dataset(Run(), Features(), 8, seed=0)
    previews.score_classifier(torch.nn.Linear(5, 2), Features(), "cpu", epoch=3)
    (record,) = read_epochs(tmp_path)
    assert record["picture"] is None and record["epoch"] == 3
    assert [s["label"] for s in record["samples"]] == [1, 0, 1]
    assert all(0 <= s["p_crossing"] <= 1 for s in record["samples"])


# -- TensorBoard ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_tensorboard_reads_back_the_runs_curves_and_hparams(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tiny_run.path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/accuracy", "train/accuracy", "lr", "train/loss_smoothed",
            "best/val_acc"} <= tags
    rows = tiny_run.read_metrics()
    assert [(e.step, round(e.value, 5)) for e in events.Scalars("val/loss")] == \
        [(r["epoch"], round(r["val_loss"], 5)) for r in rows]
    plugins = events.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugins
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(plugins["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["epochs"].number_value == 2


@pytest.mark.slow
def test_a_run_without_tensorboard_trains_and_says_what_to_install(tmp_home, monkeypatch):
    from pedsense.train.resnet_trainer import train_resnet_lstm

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2, size=32)
    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    run = RunFolder(train_resnet_lstm(epochs=1, prediction_samples=0, **TINY))
    assert run.read_status()["status"] == "completed"
    assert "pip install tensorboard" in run.read_log()
    assert not list(run.path.glob("events.out.tfevents.*"))


# -- the system load -------------------------------------------------------------------------------
def test_the_sampler_sees_a_child_burning_cpu(tmp_path):
    sampler = SystemSampler(tmp_path, every_s=0.3).start()
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            rows = read_system(tmp_path)
            if any((r.get("cpu_percent") or 0) > 15 for r in rows):
                break
            time.sleep(0.3)
    finally:
        child.kill()
        child.wait()
        sampler.stop()
    rows = read_system(tmp_path)
    assert max(r["cpu_percent"] for r in rows) > 15, rows  # a shared 2-core machine gives it less than a core
    assert all(r["rss_mb"] > 10 and 0 <= r["machine_mem_percent"] <= 100 for r in rows)
    assert gpu_columns(rows) == [] or all(f"gpu{i}_mem_mb" in rows[0] for i in gpu_columns(rows))


@pytest.mark.slow
def test_a_run_samples_its_process_tree_and_the_machine_now(tiny_run):
    load = machine_load()
    assert load["cores"] >= 1 and 0 < load["mem_total_gb"] and isinstance(load["gpus"], list)
    rows = read_system(tiny_run.path)
    assert rows and {"time", "cpu_percent", "rss_mb", "machine_cpu_percent"} <= set(rows[0])
    assert max(r["cpu_percent"] for r in rows) > 0 and all(r["rss_mb"] > 50 for r in rows)  # torch is loaded


# -- MLflow ------------------------------------------------------------------------------------------
def _export(argv, home) -> int:
    from pedsense.cli import main

    return main(["--home", str(home), "mlflow-export", *argv])


@pytest.fixture(scope="module")
def exported(tiny_run):
    """The tiny run exported twice into the default store (sqlite:///<home>/mlflow.db)."""
    from pedsense.runlabels import change_tags, set_note

    home = tiny_run.path.parents[2]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PEDSENSE_HOME", str(home))
        first = _export([tiny_run.run_id], home)
        change_tags(tiny_run, add=["baseline"])  # labelled after the first export: the second adds them
        set_note(tiny_run, "first try <b>bold</b>")
        second = _export([], home)
    return home, first, second


@pytest.mark.slow
def test_mlflow_export_logs_a_run_once_and_reads_back(tiny_run, exported):
    from mlflow.tracking import MlflowClient

    home, first, second = exported
    assert first == second == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pedsense")
    (run,) = client.search_runs([experiment.experiment_id])  # exported twice, one MLflow run
    assert run.data.tags["pedsense.run_id"] == tiny_run.run_id and run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "2" and run.data.params["backbone"] == "resnet18"
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert sorted(m.step for m in history) == [1, 2]  # no value logged twice
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == \
        pytest.approx([r["val_acc"] for r in tiny_run.read_metrics()])
    assert "best/val_acc" in run.data.metrics
    assert run.data.tags["tag.baseline"] == "true" and run.data.tags["mlflow.note.content"] == "first try <b>bold</b>"
    assert [a.path for a in client.list_artifacts(run.info.run_id, "weights")] == ["weights/best.pt"]
    assert (home / "mlartifacts").is_dir()  # beside the store, never in the working directory


@pytest.mark.slow
def test_mlflow_export_refuses_bad_uris_in_one_line(tiny_run, exported, capsys):
    home = exported[0]
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    for uri, said in (("nonsense-uri", "does not parse"), (f"http://127.0.0.1:{closed}", "cannot be reached")):
        capsys.readouterr()
        assert _export([tiny_run.run_id, "--uri", uri], home) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: MLflow URI") and uri in err and said in err and "\n" not in err


@pytest.mark.slow
def test_mlflow_export_without_mlflow_names_the_package(tiny_run, exported, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    assert _export([tiny_run.run_id], exported[0]) == 2
    assert capsys.readouterr().err.strip() == "error: Exporting to MLflow needs the mlflow package: pip install mlflow"


@pytest.mark.slow
def test_the_setting_exports_each_run_as_it_ends(tmp_home, capsys):
    from mlflow.tracking import MlflowClient

    from pedsense.cli import main
    from pedsense.runfolder import list_runs

    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2, size=32)
    store = tmp_home / "elsewhere" / "runs.db"
    assert _export(["--on-end", "on", "--uri", f"sqlite:///{store}"], tmp_home) == 0
    assert json.loads((tmp_home / "models" / "settings.json").read_text())["mlflow"]["export_on_end"] is True
    assert main(["train", "resnet-lstm", "--epochs", "1", "--backbone", "resnet18", "--frozen-children", "8",
                 "--crop-size", "32", "--batch-size", "2", "--prediction-samples", "0"]) == 0
    (run,) = list_runs(tmp_home)
    assert "exported to MLflow" in run.read_log()
    (exported_run,) = MlflowClient(tracking_uri=f"sqlite:///{store}").search_runs(
        [MlflowClient(tracking_uri=f"sqlite:///{store}").get_experiment_by_name("pedsense").experiment_id])
    assert exported_run.data.tags["pedsense.run_id"] == run.run_id


# -- YOLO: frames with boxes, one MLflow path -----------------------------------------------------------
@pytest.mark.slow
def test_mlflow_callback_of_ultralytics_stays_off_for_a_yolo_run(tmp_home, tmp_path, monkeypatch):
    # Named test_mlflow_*: Ultralytics lets its own MLflow callback run under pytest only then.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from ultralytics.utils import SETTINGS

    from pedsense.train.yolo_trainer import train_yolo

    root = write_yolo_dataset(tmp_home, images={"train": 4, "val": 3})
    (root / "images" / "val" / "img_002.jpg").write_bytes(b"not a jpeg")  # Ultralytics skips it; so do we
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    settings_file = SETTINGS.file.read_text() if SETTINGS.file.exists() else None
    before = {k: SETTINGS[k] for k in ("mlflow", "tensorboard", "runs_dir")}
    for key, value in {"mlflow": True, "runs_dir": str(work / "runs")}.items():  # as a user's may say
        dict.__setitem__(SETTINGS, key, value)
    try:
        run = RunFolder(train_yolo(epochs=2, prediction_samples=3, imgsz=64, batch_size=2, workers=0,
                                   warmup_epochs=0, nbs=2))
        assert SETTINGS["mlflow"] is True  # given back after the run
    finally:
        for key, value in before.items():
            dict.__setitem__(SETTINGS, key, value)
    assert not (work / "runs").exists() and not (work / "mlruns").exists()
    assert (SETTINGS.file.read_text() if SETTINGS.file.exists() else None) == settings_file
    epochs = read_epochs(run.path)
    assert [e["epoch"] for e in epochs] == [1, 2]
    for epoch in epochs:
        assert [s["id"] for s in epoch["samples"]] == ["img_000", "img_001"]
        assert all(isinstance(s["boxes"], list) and len(s["truth"]) == 2 for s in epoch["samples"])
        assert epoch["problems"] == ["prediction sample img_002.jpg cannot be read (not an image OpenCV can "
                                     "decode); left out, training goes on"]
        assert cv2.imread(str(picture_path(run.path, epoch))) is not None
    assert "img_002.jpg cannot be read" in run.read_log()
    events = EventAccumulator(str(run.path))
    events.Reload()
    assert {"train/loss", "val/loss", "lr", "metrics/mAP50-95", "metrics/precision"} <= set(events.Tags()["scalars"])


# -- the dashboard ------------------------------------------------------------------------------------
APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def dashboard(tiny_run, monkeypatch):
    """The app on the tiny run's data home; its run manager shut down afterwards."""
    from ui.state import run_manager

    monkeypatch.setenv("PEDSENSE_HOME", str(tiny_run.path.parents[2]))
    yield
    run_manager().shutdown(timeout=60)


@pytest.mark.slow
def test_the_run_view_slides_over_each_epochs_predictions_under_the_system_chart(tiny_run, dashboard):
    at = runs_page(tiny_run.run_id)
    slider = next(s for s in at.select_slider if s.label == "Epoch")
    assert slider.options == ["epoch 1", "epoch 2"] and slider.value == "epoch 2"
    epochs = read_epochs(tiny_run.path)

    def shown_p() -> list:
        table = next(d.value for d in at.dataframe if "P(crossing)" in d.value.columns)
        return list(table["P(crossing)"])

    assert shown_p() == [s["p_crossing"] for s in epochs[1]["samples"]]
    slider.set_value("epoch 1")
    at.run()
    assert shown_p() == [s["p_crossing"] for s in epochs[0]["samples"]]
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Machine while training" in spec for spec in charts)
    assert f"chart.{tiny_run.run_id}.system.csv" in {d.key for d in at.get("download_button")}
    from pedsense.runreport import run_zip

    names = zipfile.ZipFile(io.BytesIO(run_zip(tiny_run))).namelist()
    assert {f"{tiny_run.name}/system.csv", f"{tiny_run.name}/predictions/epochs.jsonl"} <= set(names)


@pytest.mark.slow
def test_the_mlflow_setting_is_saved_from_the_runs_page_and_a_bad_uri_refused(tiny_run, dashboard):
    from pedsense.mlflow_export import read_setting

    at = runs_page(tiny_run.run_id)
    home = tiny_run.path.parents[2]
    save = next(b for b in at.button if b.proto.form_id == "tracking.settings")
    next(t for t in at.toggle if t.label.startswith("Export each run")).set_value(True)
    next(t for t in at.text_input if t.label == "MLflow tracking URI").set_value("nonsense-uri")
    save.click()
    at.run()
    assert any("does not parse" in e.value for e in at.error) and read_setting(home).export_on_end is False
    next(t for t in at.text_input if t.label == "MLflow tracking URI").set_value("")
    next(b for b in at.button if b.proto.form_id == "tracking.settings").click()
    at.run()
    assert read_setting(home).export_on_end is True and read_setting(home).uri is None
    from pedsense.mlflow_export import write_setting

    write_setting(home, export_on_end=False)


def test_the_sidebar_shows_the_machines_load(tmp_home):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    texts = [p.proto.text for p in at.sidebar.get("progress")]
    assert any(t.startswith("CPU ") and "cores" in t for t in texts)
    assert any(t.startswith("Memory ") and t.endswith("GB") for t in texts)
