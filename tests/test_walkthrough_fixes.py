"""What a first walkthrough met (issue 20): the learning-rate axis, epochs counted from 1, the
Train page's title before its preset, the Task box showing the value in force, the Overview's
metric labels with room to fit."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pedsense.runsummary import RunSummary
from ui import charts
from ui.feedback import progress_of

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _steps(lrs):
    return [{"stage": "train", "epoch": 1, "step": i + 1, "loss": 1.0 / (i + 1), "lr": lr} for i, lr in enumerate(lrs)]


@pytest.mark.parametrize("lrs", [[1e-4] * 5, [0.01, 0.005, 0.001, 1e-4, 1e-5], [0.0, 1e-4, 2e-4, 3e-4]])
def test_learning_rate_axis_never_reads_negative_and_holds_every_value(lrs):
    axis = charts.steps_figure(_steps(lrs)).layout.yaxis2
    low, high = axis.range
    if axis.type == "log":
        assert min(lrs) > 0 and low < __import__("math").log10(min(lrs)) and high > __import__("math").log10(max(lrs))
    else:
        assert low == 0 and high > max(lrs)


def test_a_constant_learning_rate_sits_mid_axis_on_a_log_scale():
    axis = charts.lr_axis([3e-4] * 10)
    assert axis["type"] == "log"
    low, high = axis["range"]
    assert low < -3.52 < high and high - low == pytest.approx(1.0)  # half a decade either side


def _running(done, total, batch=0, batches=0, status="running"):
    return RunSummary(run_id="resnet-lstm/x", model_type="resnet-lstm", name="x", path="/x", status=status,
                      epochs_done=done, epochs_total=total, batch=batch, total_batches=batches)


@pytest.mark.parametrize("summary, shown", [
    (_running(0, 3, 109, 113), "epoch 1/3 · batch 109/113"),  # the first epoch is epoch 1
    (_running(2, 3, 5, 113), "epoch 3/3 · batch 5/113"),
    (_running(3, 3), "epoch 3/3"),                            # saving after the last epoch
    (_running(0, 0), "epoch 1/?"),
])
def test_progress_counts_epochs_from_one(summary, shown):
    assert progress_of(summary)[1].startswith(shown)


def _page(path: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _order(at: AppTest) -> list:
    """The main area's elements in the order a reader meets them."""
    found = []

    def walk(node):
        found.append(node)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    return found


def test_train_page_title_comes_before_the_preset_and_the_task_box_shows_the_default(tmp_home):
    at = _page("pages/train_resnet_lstm.py")
    nodes = _order(at)
    title = next(i for i, n in enumerate(nodes) if n.type == "title")
    preset = next(i for i, n in enumerate(nodes) if getattr(n, "key", None) == "form.resnet-lstm.preset")
    assert title < preset
    task = at.selectbox(key="form.resnet-lstm.task")
    assert task.value is not None  # not the empty "Choose an option"
    assert task.format_func(task.value) == "as built (the dataset's task)"
    assert [task.format_func(o) for o in task.options][1:] == ["action", "intent"]
    at.selectbox(key="form.resnet-lstm.preset").set_value("Quick CPU preset" if "Quick CPU preset" in
                                                           at.selectbox(key="form.resnet-lstm.preset").options
                                                           else at.selectbox(key="form.resnet-lstm.preset").options[1]).run()
    assert at.selectbox(key="form.resnet-lstm.task").format_func(at.selectbox(key="form.resnet-lstm.task").value) \
        == "as built (the dataset's task)"  # a preset keeps the value in force shown


def test_overview_metric_labels_have_half_the_panel_each(demo_home):
    at = _page("pages/overview.py")
    labels = [m.label for m in at.metric]
    assert "Pedestrian tracks" in labels
    for label in labels:  # every column holding a metric is at least half its row: labels fit
        holders = [c for c in at.columns if any(m.label == label for m in c.metric)]
        assert holders and min(c.weight for c in holders) >= 0.5, (label, [c.weight for c in holders])
