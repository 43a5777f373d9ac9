"""Train pages → run manager → Runs page, with real (tiny) trainings on the demo set.

Each form is filled the way a person would (preset, then a few fields), submitted, and must land
on the Runs page with that run selected; its metrics then show in the live view.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pedsense.runfolder import RunFolder, list_runs

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TRAIN_PAGES = {"yolo": "pages/train_yolo.py", "resnet-lstm": "pages/train_resnet_lstm.py",
               "hybrid": "pages/train_hybrid.py"}
# Tiny settings: one epoch, small images and backbone, no worker processes, CPU.
TINY = {
    "yolo": {"epochs": 1, "batch_size": 4, "imgsz": 64, "workers": 0, "device": "cpu"},
    "resnet-lstm": {"epochs": 1, "batch_size": 8, "backbone": "resnet18", "pretrained": False,
                    "num_workers": 0, "device": "cpu", "crop_size": 32, "hidden_size": 16},
    "hybrid": {"epochs": 1, "batch_size": 8, "backbone": "resnet18", "pretrained": False,
               "num_workers": 0, "workers": 0, "device": "cpu", "imgsz": 64, "yolo_epochs": 1,
               "crop_size": 32},
}


_USED_MANAGERS = []


@pytest.fixture(autouse=True)
def _quiet_managers():
    """No training thread outlives its test (each test has its own data home and manager)."""
    yield
    while _USED_MANAGERS:
        _USED_MANAGERS.pop().shutdown(timeout=60)


def manager():
    """The app's cached run manager for the current data home (the one the pages use)."""
    from ui.state import run_manager

    found = run_manager()
    _USED_MANAGERS.append(found)
    return found


def open_train_page(model_type: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(TRAIN_PAGES[model_type])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def fill(at: AppTest, model_type: str, values: dict) -> None:
    for param, value in values.items():
        key = f"form.{model_type}.{param}"
        widget = at.get_by_key(key) if hasattr(at, "get_by_key") else None
        widget = widget or next(w for kind in ("number_input", "text_input", "selectbox", "checkbox")
                                for w in getattr(at, kind) if w.key == key)
        widget.set_value(value)


def submit(at: AppTest) -> None:
    next(b for b in at.button if "Start training" in b.label).click()
    at.run()


def launch(model_type: str, values: dict, confirm: bool = False) -> tuple[AppTest, str]:
    at = open_train_page(model_type)
    fill(at, model_type, values)
    submit(at)
    if confirm:  # a name that changes is shown first; the second press launches
        assert any("will be saved as" in w.value for w in at.warning), [w.value for w in at.warning]
        assert list_runs() == []
        submit(at)
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Runs"], [e.value for e in at.error]
    run_id = at.session_state["selected_run"]
    assert run_id.startswith(model_type + "/")
    return at, run_id


def show_runs(at: AppTest) -> None:
    """Rerun the Runs page (AppTest reruns its first page otherwise; a browser stays on Runs)."""
    at.switch_page("pages/runs.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def assert_finished_with_charts(at: AppTest, run_id: str) -> dict:
    snap = manager().wait(run_id, 300)
    assert snap.status == "completed", snap.error
    show_runs(at)
    assert not at.exception, [e.value for e in at.exception]
    shown = [m.value for m in at.markdown]
    assert any(run_id.split("/")[1] in m and "completed" in m for m in shown), (
        [t.value for t in at.title], shown)
    assert len(at.get("plotly_chart")) >= 2  # loss + accuracy or detection charts
    assert len(RunFolder(snap.path).read_metrics()) >= 1
    return snap


@pytest.mark.slow
def test_resnet_form_launches_a_real_run_shown_live(demo_home):
    at, run_id = launch("resnet-lstm", {**TINY["resnet-lstm"], "name": "../form test"}, confirm=True)
    assert "/form-test_" in run_id  # the name was sanitised, and said so before launching
    snap = assert_finished_with_charts(at, run_id)
    assert {"train_loss", "val_acc"} <= set(snap.metrics[0])


@pytest.mark.slow
def test_yolo_form_then_hybrid_reusing_that_yolo_model(demo_home):
    # The smallest runs that still finish end to end: what this test proves is the form → run →
    # reuse path, not the models (no prediction samples, a tenth of the images, 32-pixel inputs).
    smallest = {"prediction_samples": 0}
    at, yolo_id = launch("yolo", {**TINY["yolo"], **smallest, "imgsz": 32, "fraction": 0.1,
                                  "warmup_epochs": 0.0})
    assert_finished_with_charts(at, yolo_id)
    # The hybrid form offers the completed YOLO run's weights (a select box, no free path).
    weights = str(Path(manager().snapshot(yolo_id).path) / "best.pt")
    at = open_train_page("hybrid")
    assert f"{yolo_id} (best.pt)" in at.selectbox(key="form.hybrid.yolo_model").options
    at, hybrid_id = launch("hybrid", {**TINY["hybrid"], **smallest, "crop_size": 16, "yolo_model": weights})
    snap = assert_finished_with_charts(at, hybrid_id)
    assert (Path(snap.path) / "resnet_classifier.pt").is_file()


def test_invalid_form_input_shows_errors_and_launches_nothing(demo_home):
    at = open_train_page("yolo")
    # Every number box holds its parameter's bounds: out-of-range values cannot be typed in.
    epochs, batch = at.number_input(key="form.yolo.epochs"), at.number_input(key="form.yolo.batch_size")
    assert (epochs.min, epochs.max, batch.min, batch.max) == (1, 10000, 1, 4096)
    fill(at, "yolo", {"imgsz": 100})
    submit(at)
    errors = " ".join(e.value for e in at.error)
    assert "Image size" in errors and "multiple of 32" in errors
    assert "Nothing was launched" in errors
    assert [t.value for t in at.title] == ["Train YOLO26"]

    at = open_train_page("resnet-lstm")
    fill(at, "resnet-lstm", {"learning_rate": 0.0})
    submit(at)
    assert any("Learning rate" in e.value and "> 0" in e.value for e in at.error)

    # What the trainer would refuse at its start is refused here: a batch larger than the data.
    at = open_train_page("resnet-lstm")
    fill(at, "resnet-lstm", {"batch_size": 4000})
    submit(at)
    assert any("Batch size" in e.value and "larger than the" in e.value for e in at.error)
    assert list_runs(demo_home) == []


def test_presets_fill_the_form(demo_home):
    at = open_train_page("resnet-lstm")
    assert at.number_input(key="form.resnet-lstm.epochs").value == 30  # the seed default
    preset = at.selectbox(key="form.resnet-lstm.preset")
    quick = next(o for o in preset.options if "quick" in o.lower())
    preset.set_value(quick)
    at.run()
    assert at.number_input(key="form.resnet-lstm.epochs").value < 30
    assert at.selectbox(key="form.resnet-lstm.backbone").value == "resnet18"


@pytest.mark.slow
def test_stop_and_cancel_from_the_run_view(demo_home):
    at, long_id = launch("resnet-lstm", {**TINY["resnet-lstm"], "epochs": 200, "name": "long"})
    at2, queued_id = launch("resnet-lstm", {**TINY["resnet-lstm"], "name": "queued"})
    assert manager().snapshot(queued_id).status == "queued"
    show_runs(at2)
    next(b for b in at2.button if b.key == f"stop.{queued_id}").click()
    at2.run()
    assert manager().snapshot(queued_id).status == "stopped"

    show_runs(at)  # the first tab still shows the long run
    next(b for b in at.button if b.key == f"stop.{long_id}").click()
    at.run()
    snap = manager().wait(long_id, 120)
    assert snap.status == "stopped"
    assert snap.epochs_done < 200
    assert RunFolder(snap.path).status == "stopped"

    # A finished run can be deleted, after a confirmation.
    show_runs(at)
    next(b for b in at.button if b.key == f"delete.{long_id}").click()
    at.run()
    next(b for b in at.button if b.key == f"delete.yes.{long_id}").click()
    at.run()
    assert not Path(snap.path).exists()
    assert not at.exception


def _crashing_trainer(name=None, epochs=30, batch_size=8, learning_rate=1e-4, device=None, *,
                      on_event=None, should_stop=None, run_dir=None, home=None):
    from pedsense.train.common import TrainingRun

    run = TrainingRun.open("resnet-lstm", name, run_dir=run_dir, home=home, on_event=on_event)
    with run.guarded():
        run.start({"parameters": {"epochs": epochs}})
        raise RuntimeError("the GPU fell off the bus (simulated)")


def test_a_failing_run_shows_its_error_and_the_app_keeps_serving(tmp_home):
    from pedsense.runs import RunManager
    from pedsense.train.params import FormError

    # No dataset at all: refused before launch, nothing is created.
    with pytest.raises(FormError, match="not built yet"):
        manager().submit("resnet-lstm", {"epochs": 1, "device": "cpu"})
    assert list_runs(tmp_home) == []
    # A run that starts and then raises: the run view says why.
    crashing = RunManager(tmp_home, trainers={"resnet-lstm": _crashing_trainer})
    snap = crashing.wait(crashing.submit("resnet-lstm", {"epochs": 1, "device": "cpu"}), 120)
    assert snap.status == "failed" and "fell off the bus" in snap.error
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/runs.py")
    at.run()
    assert not at.exception
    assert any("The run failed" in e.value for e in at.error)
