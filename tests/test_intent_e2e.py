"""The benchmark protocol end to end: tiny runs on `intent` data, evaluated on `test`.

A ResNet-LSTM and a hybrid (1-epoch detector at 64 px, 1-epoch classifier) train once on the
`intent` demo set; the tests check what their config records, the test-split evaluation
(metrics, breakdown, published reference rows), the CLI tables, the refusals, the Runs page's
evaluation panel and the Viewer's intent-over-time chart.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from pedsense.data.annotation import BoundingBox, Track
from pedsense.errors import ConfigError
from pedsense.infer.intent_series import track_intent_series
from pedsense.infer.predictions import Predictions

pytestmark = pytest.mark.filterwarnings("ignore:Base weights", "ignore:ImageNet weights")
# The whole backbone frozen (frozen_children=8): on 2 shared cores the backbone's backward pass
# and AdamW step would cost most of a minute, and the flow under test is the same.
TINY_LSTM = dict(epochs=1, batch_size=16, device="cpu", backbone="resnet18", crop_size=32,
                 pretrained=False, num_workers=0, frozen_children=8, prediction_samples=0)
TINY_HYBRID = dict(epochs=1, batch_size=32, yolo_epochs=1, yolo_batch_size=4, imgsz=64, device="cpu",
                   backbone="resnet18", crop_size=32, pretrained=False, num_workers=0, workers=0,
                   frozen_children=8, fraction=0.25, prediction_samples=0)


# -- the series function (pure) ---------------------------------------------------------------------
def _track(frames, crossing_point=None, label="pedestrian", old_id="pedestrian1", crossing=1):
    boxes = [BoundingBox(frame=f, xtl=10.0 + f, ytl=20.0, xbr=30.0 + f, ybr=80.0) for f in frames]
    attributes = {} if crossing_point is None else {"crossing": crossing, "crossing_point": crossing_point}
    return Track(label=label, track_id="0_1_2b", boxes=boxes, attributes=attributes, old_id=old_id)


def _predictions(frame, boxes, scores):
    return Predictions.build(frame, np.array(boxes, np.float32), ["crossing"] * len(boxes),
                             crossing_scores=scores)


def test_series_matches_the_pedestrian_and_marks_event_and_tte_window():
    track = _track(range(0, 100), crossing_point=90)
    predictions = {
        5: _predictions(5, [[200, 0, 220, 40], [15, 20, 35, 80]], [0.9, 0.25]),  # 2nd box is the pedestrian
        6: _predictions(6, [[200, 0, 220, 40]], [0.8]),                          # nothing overlaps it
        7: _predictions(7, [[17, 20, 37, 80]], [float("nan")]),                   # still buffering
        60: _predictions(60, [[70, 20, 90, 80]], [0.7]),
    }
    series = track_intent_series(track, predictions, video_id="video_0001")
    assert series.frames == tuple(range(100))
    assert series.event_frame == 90 and series.event_source == "crossing_point"
    assert series.tte_window == (30, 60) and series.crossing == 1
    values = dict(zip(series.frames, series.p_crossing))
    assert values[5] == pytest.approx(0.25) and values[60] == pytest.approx(0.7)
    assert values[6] is None and values[7] is None and values[0] is None
    assert series.predicted_frames == 2
    rows = {r["frame"]: r for r in series.rows()}
    assert rows[30]["in_tte_window"] and rows[60]["in_tte_window"] and not rows[61]["in_tte_window"]
    assert rows[60]["frames_to_event"] == 30
    # the same predictions as an iterable; another TTE range moves the window
    again = track_intent_series(track, list(predictions.values()), tte=(10, 20))
    assert again.p_crossing == series.p_crossing and again.tte_window == (70, 80)


def test_series_of_a_bystander_ends_at_its_third_to_last_frame():
    series = track_intent_series(_track(range(10, 50), label="ped", old_id="ped1"), {})
    assert series.event_frame == 47 and series.event_source == "track_end"
    assert series.predicted_frames == 0 and series.track_label == "ped"
    outside = track_intent_series(_track(range(10, 50), crossing_point=70), {})
    assert outside.event_frame is None and outside.tte_window is None
    assert outside.skip == "event_outside_track"


# -- tiny runs on intent data -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def intent_runs_home(intent_built, tmp_path_factory, copy_home) -> Path:
    """``intent_built`` plus a tiny ResNet-LSTM and a tiny hybrid run, both asked for ``intent``."""
    from pedsense.train.hybrid_trainer import train_hybrid
    from pedsense.train.resnet_trainer import train_resnet_lstm

    home = copy_home(intent_built, tmp_path_factory.mktemp("intent_runs") / "home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PEDSENSE_HOME", str(home))
        patch.setenv("YOLO_OFFLINE", "1")
        patch.setenv("PEDSENSE_OFFLINE", "1")
        train_resnet_lstm("lstm", task="intent", home=home, **TINY_LSTM)
        train_hybrid("hy", task="intent", home=home, **TINY_HYBRID)
    return home


@pytest.fixture
def intent_runs(intent_runs_home, monkeypatch) -> dict[str, Path]:
    from pedsense.runfolder import list_runs

    monkeypatch.setenv("PEDSENSE_HOME", str(intent_runs_home))
    runs = {r.model_type: r.path for r in list_runs(intent_runs_home) if r.status == "completed"}
    assert set(runs) == {"resnet-lstm", "hybrid"}, runs
    return runs


def _evaluated(run: Path, split: str = "test") -> dict:
    from pedsense.evaluation import evaluate, load_evaluation

    return load_evaluation(run, split) or evaluate(run, split, device="cpu", max_images=4, conf=0.001)


@pytest.mark.slow
def test_config_records_the_task_and_protocol(intent_runs):
    from pedsense.runfolder import RunFolder

    for model_type, run in intent_runs.items():
        config = RunFolder(run).read_config()
        assert config["task"] == "intent", model_type
        assert config["intent_options"]["tte"] == [30, 60]
        assert config["intent_options"]["sample_type"] == "beh"
        assert config["parameters"]["task"] == "intent"
        assert config["dataset"]["manifest"]["task"] == "intent"
    hybrid = RunFolder(intent_runs["hybrid"]).read_config()
    assert hybrid["dataset"]["detector_task"]["task"] == "intent"


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["resnet-lstm", "hybrid"])
def test_test_split_evaluation_has_metrics_breakdown_and_reference(intent_runs, model_type):
    from pedsense.breakdown import BREAKDOWN_FACTORS

    run = intent_runs[model_type]
    result = _evaluated(run)
    saved = json.loads((run / "evaluation_test.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["task"] == "intent" and saved["split"] == "test"
    bench = saved["benchmark"]
    assert bench["task"] == "intent" and bench["synthetic"] is True
    metrics = bench["metrics"]
    assert metrics["n"] == saved["intent"]["n"] > 0
    for key in ("accuracy", "f1", "precision", "recall"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["accuracy"] == pytest.approx(saved["intent"]["accuracy"])
    # breakdown: an overall row, then every factor, each factor's groups covering every sample
    rows = bench["breakdown"]
    assert rows[0]["factor"] == "all" and rows[0]["n"] == metrics["n"]
    for factor in BREAKDOWN_FACTORS:
        groups = [r for r in rows if r["factor"] == factor]
        assert groups and sum(r["n"] for r in groups) == metrics["n"], factor
    tte_groups = {r["group"] for r in rows if r["factor"] == "tte_bin"}
    assert tte_groups & {"30-39", "40-49", "50-60"}
    # reference: the run's own row first, then the published ones, each marked
    reference = bench["reference"]
    assert reference[0]["comparison"] == "this run" and reference[0]["model"] == saved["run"]
    assert reference[0]["accuracy"] == pytest.approx(metrics["accuracy"])
    assert "synthetic" in reference[0]["caveats"]
    published = {r["model"]: r for r in reference[1:]}
    assert published["PCPA"]["comparison"] == "not comparable" and "pose" in published["PCPA"]["caveats"]
    assert published["PCPA"]["accuracy"] == 0.85 and published["C3D"]["comparison"] == "not comparable"
    assert "pose" not in published["C3D"]["caveats"] and "synthetic" in published["C3D"]["caveats"]
    assert all(r["comparable"] is False for r in reference[1:])  # synthetic data: never comparable
    assert reference[0]["auc_binary"] == metrics["auc_binary"] and reference[0]["roc_auc"] == metrics["roc_auc"]
    if model_type == "hybrid":
        assert "per frame" in reference[0]["caveats"]


@pytest.mark.slow
def test_cli_prints_the_benchmark_tables(intent_runs, capsys):
    from pedsense.cli import main

    run = intent_runs["resnet-lstm"]
    assert main(["evaluate", str(run), "--split", "test", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "scored on the 'test' split" in out and "benchmark metrics on the 'test' split" in out
    assert "task intent" in out and "auc_binary is the benchmark's AUC" in out
    assert "breakdown by TTE bin" in out and "tte_bin" in out and "time_of_day" in out
    assert "not comparable" in out and "PCPA" in out and "C3D" in out
    assert main(["evaluate", str(run), "--split", "val", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "scored on the 'val' split" in out and "caveat: this evaluation is on 'val'" in out
    assert "published numbers are 'test'-split numbers" in out


@pytest.mark.slow
def test_trainers_refuse_a_dataset_built_for_another_task(intent_runs):
    from pedsense.train.hybrid_trainer import train_hybrid
    from pedsense.train.resnet_trainer import train_resnet_lstm

    with pytest.raises(ConfigError, match="built for task 'intent'.*--task action"):
        train_resnet_lstm(task="action", **TINY_LSTM)
    detector = intent_runs["hybrid"] / "yolo_detector.pt"
    with pytest.raises(ConfigError, match="built for task 'intent'"):
        train_hybrid(yolo_model=str(detector), task="action", **TINY_HYBRID)
    with pytest.raises(ConfigError, match="another intent protocol: sample_type='beh'"):
        train_hybrid(yolo_model=str(detector), task="intent", sample_type="all", **TINY_HYBRID)
    with pytest.raises(ConfigError, match="task: must be one of none, action, intent"):
        train_resnet_lstm(task="intention", **TINY_LSTM)


@pytest.mark.slow
def test_evaluate_refuses_a_dataset_rebuilt_for_the_other_task(intent_runs):
    from pedsense.config import paths
    from pedsense.evaluation import evaluate
    from pedsense.io import read_json, write_json_atomic

    manifest_path = paths().sequences / "manifest.json"
    manifest = read_json(manifest_path)
    write_json_atomic(manifest_path, {**manifest, "task": "action"})  # replaces the hard link
    try:
        with pytest.raises(ConfigError, match="trained on task 'intent'.*built for task 'action'"):
            evaluate(intent_runs["resnet-lstm"], "test", device="cpu")
    finally:
        write_json_atomic(manifest_path, manifest)


# -- the dashboard ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_evaluation_panel_shows_benchmark_breakdown_and_reference(intent_runs):
    from streamlit.testing.v1 import AppTest

    run = intent_runs["resnet-lstm"]
    _evaluated(run)
    script = ("from ui.evaluation import evaluation_panel\n"
              f"evaluation_panel({str(run)!r})\n")
    at = AppTest.from_string(script, default_timeout=60)
    at.session_state[f"evaluation_split_{run.name}"] = "test"
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    frames = [df.value for df in at.dataframe]
    reference = next(df for df in frames if "comparison" in df.columns)
    assert set(reference["comparison"]) == {"this run", "not comparable"} and "PCPA" in set(reference["model"])
    assert any("never charted beside published JAAD results" in str(c.value) for c in at.caption)
    breakdown = next(df for df in frames if "factor" in df.columns)
    assert {"tte_bin", "occlusion", "time_of_day", "weather"} <= set(breakdown["factor"])
    assert any("Task **intent**" in str(m.value) for m in at.markdown)


@pytest.mark.slow
def test_viewer_draws_intent_over_time_for_a_pedestrian(intent_runs):
    from streamlit.testing.v1 import AppTest

    from pedsense.config import REPO_ROOT
    from pedsense.infer.clips import list_clips
    from pedsense.infer.intent_series import clip_annotation, pedestrian_tracks

    run = intent_runs["resnet-lstm"]
    clip = list_clips()[0]
    track = next(t for t in pedestrian_tracks(clip_annotation(clip)) if t.crossing_point is not None)
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "viewer.py"), default_timeout=120)
    at.session_state["viewer_run"] = f"{run.parent.name}/{run.name}"
    at.session_state["viewer_clip"] = clip.name
    at.session_state["viewer_intent"] = True
    at.session_state["viewer_pedestrian"] = track.track_id
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart"), "no intent chart drawn"
    assert any("crossing_point" in str(c.value) for c in at.caption)


def test_data_page_builds_intent_datasets_and_the_train_pages_offer_the_task(intent_raw, tmp_path,
                                                                              monkeypatch):
    from streamlit.testing.v1 import AppTest

    from ui.state import job_manager
    from pedsense.config import REPO_ROOT
    from pedsense.io import read_json

    home = tmp_path / "home"
    shutil.copytree(intent_raw, home, copy_function=os.link)
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data.task").set_value("intent").run()
    at.selectbox(key="data.sample_type").set_value("all").run()
    next(b for b in at.button if "Prepare everything" in b.label).click().run()
    job_manager().wait_idle(180)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    for folder in ("resnet/sequences", "resnet/crops", "yolo", "yolo_detector"):
        manifest = read_json(home / "data/processed" / folder / "manifest.json")
        assert manifest["task"] == "intent" and manifest["intent_options"]["sample_type"] == "all", folder
    text = " ".join(m.value for m in at.markdown)
    assert "task intent (obs 16, TTE 30-60" in text and "leakage check passed" in text
    assert any("build summary" in e.label for e in at.expander)
    skipped = next(df.value for df in at.dataframe if "reason" in df.value.columns)
    assert set(skipped["reason"]) and (skipped["count"] > 0).all()
    # the Train pages say what the data on disk answers, and offer the task
    at.switch_page("pages/train_resnet_lstm.py").run()
    assert any("built for intent (obs 16, TTE 30-60, all" in c.value for c in at.caption)
    task = at.selectbox(key="form.resnet-lstm.task")
    assert task.options == ["as built (the dataset's task)", "action", "intent"]
    at.switch_page("pages/train_hybrid.py").run()
    assert at.selectbox(key="form.hybrid.sample_type").options == ["beh", "all"]
    assert not at.exception
