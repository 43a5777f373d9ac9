"""The run view a researcher lives in (issue 20): a toast in every tab when a run ends, a failed
run's view that starts with why, tags and notes (page and CLI), the Runs table's filters and
its actions on a selection (compare, archive, delete), and a run's data taken elsewhere (CSV,
zip).

Runs end through a second run manager on the same data home (as another dashboard or the
``pedsense`` command would end them) with tiny in-thread trainers: real run folders, real
status files, no torch.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pedsense.cli import main
from pedsense.runfolder import RunFolder, list_runs
from pedsense.runlabels import read_labels
from pedsense.runs import RunManager

APP = str(Path(__file__).resolve().parent.parent / "app.py")
GATE = threading.Event()


def _gated_trainer(name=None, epochs=1, batch_size=8, learning_rate=1e-4, device=None, *,
                   on_event=None, should_stop=None, run_dir=None, home=None):
    """Records one epoch, waits for ``GATE``, then completes — or fails when named ``boom``."""
    from pedsense.train.common import TrainingRun

    run = TrainingRun.open("resnet-lstm", name, run_dir=run_dir, home=home, on_event=on_event,
                           should_stop=should_stop)
    with run.guarded():
        run.start({"parameters": {"epochs": epochs}, "sweep": {"name": "gated", "trial": 0},
                   "dataset": {"manifest": {"synthetic": True, "task": "action"}}})
        run.epoch_end(1, epochs, {"epoch": 1, "train_loss": 0.6, "val_loss": 0.7, "val_acc": 0.6})
        run.folder.log("epoch 1 done; loading the next batch")
        GATE.wait(60)
        if name == "boom":
            raise RuntimeError("CUDA error: device-side assert triggered (simulated)")
        return run.finish({"epoch": 1, "val_acc": 0.6})


@pytest.fixture
def app_manager():
    from ui.state import run_manager

    yield run_manager
    run_manager().shutdown(timeout=60)


@pytest.fixture
def other(tmp_home):
    """Another process's manager on the same data home (its runs train in its thread)."""
    GATE.clear()
    manager = RunManager(tmp_home, trainers={"resnet-lstm": _gated_trainer}, check_data=False)
    yield manager
    GATE.set()
    manager.shutdown()


def runs_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/runs.py")
    return rerun(at)


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def toasts(at: AppTest) -> list[str]:
    return [t.value for t in at.toast]


# -- notifications ---------------------------------------------------------------------------------
def test_every_tab_gets_one_toast_when_a_run_launched_elsewhere_ends(other, app_manager):
    done = other.submit("resnet-lstm", {"name": "quiet", "epochs": 1, "device": "cpu"})
    broke = other.submit("resnet-lstm", {"name": "boom", "epochs": 1, "device": "cpu"})
    wait_until(lambda: app_manager().snapshot(done).status == "running")
    tab1, tab2 = runs_page(), runs_page()  # two sessions open while it trains
    assert not toasts(tab1) and not toasts(tab2)
    GATE.set()
    assert other.wait(done, 60).status == "completed" and other.wait(broke, 60).status == "failed"
    # the dashboard's manager follows both ends (its watcher reruns each tab when it has)
    wait_until(lambda: (app_manager().snapshot(done).status, app_manager().snapshot(broke).status)
               == ("completed", "failed"))
    for tab in (rerun(tab1), rerun(tab2)):  # the sidebar's watcher reruns each tab like this
        told = toasts(tab)
        assert len(told) == 2, told
        quiet = next(t for t in told if done in t)
        assert "completed" in quiet and f"runs?run={done.replace('/', '%2F')}" in quiet
        assert "failed: RuntimeError: CUDA error" in next(t for t in told if broke in t)
        assert not toasts(rerun(tab))  # told once
    late = runs_page()  # a tab opened after the ends hears nothing of them
    assert not toasts(rerun(late))


def test_a_failed_runs_view_starts_with_the_error_log_lines_and_folded_traceback(other, app_manager):
    broke = other.submit("resnet-lstm", {"name": "boom", "epochs": 1, "device": "cpu"})
    GATE.set()
    assert other.wait(broke, 60).status == "failed"
    at = runs_page()
    next(s for s in at.selectbox if s.label == "Run").set_value(broke)
    rerun(at)
    assert at.error[0].value.startswith("The run failed: RuntimeError: CUDA error")
    code = [c.value for c in at.code]
    assert any("loading the next batch" in c for c in code)           # the last log lines
    traceback = next(e for e in at.expander if e.label == "Traceback")
    assert "Traceback (most recent call last)" in traceback.code[0].value
    assert "raise RuntimeError" in traceback.code[0].value


def test_a_link_from_a_toast_opens_that_runs_view(tmp_home, app_manager):
    first, second = _ended(tmp_home, "first"), _ended(tmp_home, "second")
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/runs.py")
    at.query_params["run"] = first.run_id
    rerun(at)
    assert next(s for s in at.selectbox if s.label == "Run").value == first.run_id
    assert second.run_id != first.run_id


# -- tags, notes, filters, archive --------------------------------------------------------------------
def _ended(home: Path, name: str, *, status="completed", sweep=None, synthetic=True, epochs=1) -> RunFolder:
    folder = RunFolder.create("resnet-lstm", name, home=home)
    config = {"model_type": "resnet-lstm", "parameters": {"epochs": epochs},
              "dataset": {"manifest": {"synthetic": synthetic, "task": "action"}}}
    if sweep:
        config["sweep"] = {"name": sweep, "trial": 0}
    folder.write_config(config)
    folder.set_status("running")
    for epoch in range(1, epochs + 1):
        folder.append_metrics({"epoch": epoch, "train_loss": 1 / epoch, "val_loss": 1.1 / epoch, "val_acc": 0.5})
    folder.set_status(status)
    return folder


def table_names(at: AppTest) -> list[str]:
    return list(at.dataframe(key="runs.table").value["name"]) if [d for d in at.dataframe if d.key == "runs.table"] else []


def test_tags_and_notes_from_the_cli_and_the_page_filter_the_table(tmp_home, app_manager, capsys):
    a, b, c = _ended(tmp_home, "a"), _ended(tmp_home, "b", sweep="lr"), _ended(tmp_home, "c", synthetic=False)
    assert main(["tag", a.run_id, "+baseline", "+keep"]) == 0
    assert main(["tag", a.run_id, "-keep"]) == 0
    assert read_labels(a).tags == ("baseline",)
    assert main(["tag", a.run_id, "my tag"]) == 2 and "has a space" in capsys.readouterr().err
    assert main(["tag", a.run_id, "x" * 500]) == 2 and "500 characters" in capsys.readouterr().err
    assert main(["note", b.run_id, "**not bold** <script>x</script>"]) == 0
    at = runs_page()
    assert sorted(table_names(at)) == sorted([a.name, b.name, c.name])
    at.multiselect(key="runs.filter.tag").set_value(["baseline"])
    assert table_names(rerun(at)) == [a.name]
    at.multiselect(key="runs.filter.tag").set_value([])
    at.multiselect(key="runs.filter.sweep").set_value(["lr"])
    assert table_names(rerun(at)) == [b.name]
    at.multiselect(key="runs.filter.sweep").set_value([])
    at.multiselect(key="runs.filter.dataset").set_value(["JAAD · action"])
    assert table_names(rerun(at)) == [c.name]
    at.multiselect(key="runs.filter.dataset").set_value([])
    at.multiselect(key="runs.filter.tag").set_value(["baseline"])
    at.multiselect(key="runs.filter.sweep").set_value(["lr"])  # facets combine: both at once
    rerun(at)
    assert not table_names(at) and any("No run matches" in i.value for i in at.info)
    at.multiselect(key="runs.filter.tag").set_value([])
    at.multiselect(key="runs.filter.sweep").set_value([])
    assert len(table_names(rerun(at))) == 3
    # the note is shown as typed, never rendered; tags edited on the page (a bad one saves nothing)
    next(s for s in at.selectbox if s.label == "Run").set_value(b.run_id)
    rerun(at)
    assert "**not bold** <script>x</script>" in [t.value for t in at.text]
    at.text_input(key=f"labels.tags.{b.run_id}").set_value("good, my tag")
    save_labels(at)
    rerun(at)
    assert any("Nothing was saved" in e.value and "has a space" in e.value for e in at.error)
    assert read_labels(b).tags == ()
    at.text_input(key=f"labels.tags.{b.run_id}").set_value("good, lr-0.01")
    save_labels(at)
    rerun(at)
    assert read_labels(b).tags == ("good", "lr-0.01")


def save_labels(at: AppTest) -> None:
    next(e for e in at.expander if e.label == "Edit tags and note").button[0].click()


def _select(at: AppTest, names: list[str]) -> AppTest:
    frame = at.dataframe(key="runs.table").value
    rows = [int(i) for i in frame.index[frame["name"].isin(names)]]
    at.session_state["runs.table"] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return rerun(at)


def test_a_selection_is_compared_archived_and_deleted(tmp_home, app_manager, other):
    a, b, c = _ended(tmp_home, "a", epochs=2), _ended(tmp_home, "b", epochs=2), _ended(tmp_home, "c")
    live = other.submit("resnet-lstm", {"name": "live", "epochs": 1, "device": "cpu"})
    wait_until(lambda: app_manager().snapshot(live).status == "running")
    at = runs_page()
    frame = at.dataframe(key="runs.table").value.set_index("name")
    live_name = live.split("/")[1]
    assert frame.loc[live_name, "status"] == "running"  # a live run is found by what it trains on
    assert (frame.loc[live_name, "sweep"], frame.loc[live_name, "dataset"]) == ("gated", "synthetic · action")
    _select(at, [a.name, b.name])
    at.button(key="runs.table.compare").click()
    rerun(at)
    assert sorted(at.multiselect(key="compare.runs").value) == sorted([a.run_id, b.run_id])
    # archive a and the live run: the live one is refused and says why; a is hidden, kept on disk
    _select(at, [a.name, live_name])
    at.button(key="runs.table.archive").click()
    rerun(at)
    assert any("cannot be archived" in e.value and live in e.value for e in at.error)
    assert read_labels(a).archived and not read_labels(RunFolder(tmp_home / "models" / live)).archived
    assert a.name not in table_names(at) and a.path.is_dir()
    at.toggle(key="runs.filter.archived").set_value(True)
    assert a.name in table_names(rerun(at))
    at.toggle(key="runs.filter.archived").set_value(False)
    rerun(at)
    # delete b and the live run: the live one is refused, b goes after the confirmation
    _select(at, [b.name, live_name])
    at.button(key="runs.table.delete").click()
    rerun(at)
    assert any("Not deleted while queued or running" in e.value for e in at.error)
    assert any(b.run_id in w.value and "cannot be undone" in w.value for w in at.warning)
    assert b.path.is_dir()
    at.button(key="runs.table.delete.yes").click()
    rerun(at)
    assert not b.path.exists() and (tmp_home / "models" / live).is_dir()
    assert {r.name for r in list_runs(tmp_home)} == {a.name, c.name, live_name}


# -- taking it elsewhere -----------------------------------------------------------------------------
def test_charts_offer_csv_and_the_run_downloads_as_one_zip(tmp_home, app_manager):
    run = _ended(tmp_home, "exported", epochs=3)
    run.log("a line of the log")
    at = runs_page()
    buttons = {d.key: d for d in at.get("download_button")}
    csv_keys = [k for k in buttons if k.endswith(".csv")]
    assert set(csv_keys) == {f"chart.{run.run_id}.Loss.csv", f"chart.{run.run_id}.Accuracy.csv",
                             "compare.chart.csv"}  # every chart on the page, compare's included
    from ui.charts import figure_frame, run_figures

    loss = dict(run_figures(run.read_metrics(), []))["Loss"]
    frame = figure_frame(loss)
    assert list(frame.columns) == ["series", "epoch", "y"] and len(frame) == 6  # 2 losses × 3 epochs
    assert set(frame["series"]) == {"train_loss", "val_loss"}
    from pedsense.runreport import run_zip

    names = zipfile.ZipFile(io.BytesIO(run_zip(run))).namelist()
    assert {f"{run.name}/{n}" for n in ("metrics.csv", "config.json", "status.json", "train.log")} <= set(names)
    assert f"download.zip.{run.run_id}" in buttons
