"""Every label follows state; charts a researcher would keep; the server idles cheaply.

The state changes come from outside the page (another manager on the same data home, as another
dashboard or a ``pedsense`` command would make them) and the page is then run again, the way the
sidebar's watcher (``ui.sidebar.watch_ui``) reruns it when ``RunManager.status_version`` moved.
"""

from __future__ import annotations

import threading
import time
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pedsense.runfolder import RunFolder
from pedsense.runs import RunManager
from ui import charts

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")


# -- the server's idle cost -------------------------------------------------------------------
def test_streamlit_does_not_collect_garbage_after_every_fragment_run():
    """Streamlit's default ``runner.postScriptGC`` ran gc.collect(2) after each run of the
    sidebar's one-second watcher: ~70 % of the server's CPU on an idle Runs page (21 % of a core;
    1.4 % without it, bench/bench_watch.py)."""
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


# -- the watcher's stamp ----------------------------------------------------------------------
def _run(home: Path, name: str, status: str = "completed") -> RunFolder:
    folder = RunFolder.create("resnet-lstm", name, home=home)
    folder.write_config({"model_type": "resnet-lstm", "parameters": {"epochs": 3, "batch_size": 8}})
    folder.set_status(status)
    return folder


def test_status_version_moves_with_status_not_with_progress(tmp_home):
    manager = RunManager(tmp_home)
    try:
        first = manager.status_version()
        folder = _run(tmp_home, "a")
        appeared = manager.status_version()
        assert appeared != first
        folder.append_metrics({"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "val_acc": 0.7})
        assert manager.status_version() == appeared  # a new chart point is not a status change
        time.sleep(0.01)
        folder.set_status("stopped")
        assert manager.status_version() != appeared
    finally:
        manager.shutdown()


# -- Stop -> Stopping… -> stopped, in two sessions -------------------------------------------
RELEASE = threading.Event()


def _held_trainer(name=None, epochs=30, batch_size=8, learning_rate=1e-4, device=None, *,
                  on_event=None, should_stop=None, run_dir=None, home=None):
    """Runs until asked to stop, then waits for ``RELEASE`` (the "Stopping…" moment) and ends."""
    from pedsense.train.common import TrainingRun

    run = TrainingRun.open("resnet-lstm", name, run_dir=run_dir, home=home, on_event=on_event,
                           should_stop=should_stop)
    with run.guarded():
        run.start({"parameters": {"epochs": epochs}})
        while not run.batch_end(1, 1, 1000):
            time.sleep(0.05)
        RELEASE.wait(180)  # the test sets it; a busy machine may take a minute to show "Stopping…"
        return run.finish()


def runs_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/runs.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def stop_button(at: AppTest, run_id: str):
    return next(b for b in at.button if b.key == f"stop.{run_id}")


def shown(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] +
                     [i.value for i in at.info] + [e.value for e in at.error])


def wait_until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def app_manager():
    from ui.state import run_manager

    yield run_manager
    run_manager().shutdown(timeout=60)


def test_stop_from_one_tab_shows_stopping_then_stopped_in_both(tmp_home, app_manager):
    RELEASE.clear()
    other = RunManager(tmp_home, trainers={"resnet-lstm": _held_trainer}, check_data=False)
    try:
        run_id = other.submit("resnet-lstm", {"name": "held", "epochs": 2, "device": "cpu"})
        wait_until(lambda: app_manager().snapshot(run_id).status == "running")
        tab1, tab2 = runs_page(), runs_page()
        for tab in (tab1, tab2):
            selector = next(s for s in tab.selectbox if s.label == "Run")
            assert selector.value == run_id and "(running)" in selector.format_func(run_id)
            assert "running" in shown(tab)
            assert "Stop" in stop_button(tab, run_id).label and not stop_button(tab, run_id).disabled
            assert "No weights yet" in shown(tab)
        stop_button(tab1, run_id).click()
        rerun(tab1)
        wait_until(lambda: app_manager().snapshot(run_id).stop_requested)
        for tab in (tab1, rerun(tab2)):
            button = stop_button(tab, run_id)
            assert "Stopping…" in button.label and button.disabled
        RELEASE.set()
        assert other.wait(run_id, 60).status == "stopped"
        wait_until(lambda: app_manager().snapshot(run_id).status == "stopped")
        for tab in (rerun(tab1), rerun(tab2)):
            assert not [b for b in tab.button if b.key == f"stop.{run_id}"]
            assert next(s for s in tab.selectbox if s.label == "Run").format_func(run_id).endswith("(stopped)")
            assert "Stopped on request" in shown(tab)
            assert "stopped without saving weights" in shown(tab)
            assert "before recording any metrics" in shown(tab)
    finally:
        RELEASE.set()
        other.shutdown()


def test_weights_notice_follows_best_pt_and_failed_runs_say_why(tmp_home, app_manager):
    done = _run(tmp_home, "done")
    failed = _run(tmp_home, "broke", status="running")
    failed.set_status("failed", error="CUDA out of memory (simulated)")
    at = runs_page()
    next(s for s in at.selectbox if s.label == "Run").set_value(done.run_id)
    rerun(at)
    assert "completed without saving weights" in shown(at)
    assert "This run recorded no metrics." in shown(at)
    (done.path / "best.pt").write_bytes(b"0" * 2048)
    rerun(at)
    assert any("Download best.pt" in b.label for b in at.get("download_button"))
    assert "without saving weights" not in shown(at)
    next(s for s in at.selectbox if s.label == "Run").set_value(failed.run_id)
    rerun(at)
    assert "The run failed: CUDA out of memory (simulated)" in shown(at)
    assert "This run failed before recording any metrics" in shown(at)


# -- charts ---------------------------------------------------------------------------------------
ROWS = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "val_acc": 0.5 + e / 50} for e in range(1, 24)]
HYBRID = ([{"stage": "detector", "epoch": e, "train_loss": 2 / e, "map50": e / 10} for e in (1, 2, 3)] +
          [{"stage": "classifier", "epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_acc": 0.6}
           for e in (1, 2)])


def test_epoch_axes_have_whole_number_ticks():
    for _, figure in charts.run_figures(ROWS, []):
        axis = figure.layout.xaxis
        assert axis.tickformat == "d" and axis.dtick == int(axis.dtick) >= 1 and axis.tick0 == 1
    short = charts.metrics_figure(ROWS[:2], ["val_loss"], "Loss").layout.xaxis
    assert short.dtick == 1  # two epochs: ticks 1 and 2, never 1.5
    compare = charts.compare_figure([("a", ROWS)], "val_loss").layout.xaxis
    assert compare.tickformat == "d" and compare.dtick == 3  # 23 epochs: every 3rd


def test_hybrid_stages_are_separate_panels_with_one_legend_entry_per_metric():
    figures = dict(charts.run_figures(HYBRID, []))
    loss = figures["Loss"]
    titles = [a.text for a in loss.layout.annotations]
    assert titles == ["Stage 1: detector", "Stage 2: classifier"]
    assert {t.xaxis for t in loss.data} == {"x", "x2"}
    legend = [t.name for t in loss.data if t.showlegend is not False]
    assert sorted(legend) == sorted(set(legend))  # each metric once in the legend
    detection = figures["Detection (precision / recall / mAP)"]
    assert not detection.layout.annotations  # only the detector has mAP: one panel, no facet title


def test_a_run_keeps_its_colour_on_every_figure_and_hover_names_it():
    series = [("resnet-lstm/a_1", ROWS), ("hybrid/b_2", HYBRID)]
    for metric in ("val_loss", "train_loss"):
        figure = charts.compare_figure(series, metric)
        for trace in figure.data:
            assert trace.line.color == charts.run_colour(trace.name)
            assert trace.name in trace.hovertemplate and "epoch" in trace.hovertemplate
    assert charts.run_colour("resnet-lstm/a_1") == charts.run_colour("resnet-lstm/a_1")
    assert charts.run_colour("resnet-lstm/a_1") != charts.run_colour("hybrid/b_2")


# -- the Train page's labels follow the form; Compare offers runs with data -------------------------
def test_train_page_title_task_default_and_offline_badge(tmp_home):
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/train_resnet_lstm.py")
    rerun(at)
    assert [t.value for t in at.title] == ["Train ResNet-50 + LSTM"]  # the seed defaults
    task = at.selectbox(key="form.resnet-lstm.task")
    assert task.format_func(task.value) == task.format_func(task.options[0]) == "as built (the dataset's task)"
    assert any("offline: from scratch" in m.value for m in at.markdown)  # PEDSENSE_OFFLINE=1
    preset = at.selectbox(key="form.resnet-lstm.preset")
    preset.set_value(next(o for o in preset.options if "quick" in o.lower()))
    rerun(at)
    assert [t.value for t in at.title] == ["Train ResNet-18 + LSTM"]
    assert any("32×32" in c.value or "32x32" in c.value for c in at.caption)


def test_compare_offers_only_runs_with_metrics(tmp_home, app_manager):
    empty = _run(tmp_home, "empty")
    charted = _run(tmp_home, "charted")
    charted.append_metrics({"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "val_acc": 0.7})
    at = runs_page()
    options = at.multiselect(key="compare.runs").options
    assert any(charted.run_id in o for o in options) and not any(empty.run_id in o for o in options)
