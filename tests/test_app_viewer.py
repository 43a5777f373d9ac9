"""The Viewer page and the evaluation panel render in AppTest with real tiny runs and a demo clip."""

from __future__ import annotations

import json
import sys

import pytest
from streamlit.testing.v1 import AppTest

from pedsense.config import REPO_ROOT
from test_infer_fixtures import demo_clip, infer_home, infer_home_base, run_of  # noqa: F401

pytestmark = pytest.mark.slow
VIEWER = str(REPO_ROOT / "pages" / "viewer.py")


def _run_id(path) -> str:
    return f"{path.parent.name}/{path.name}"


def _texts(at) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "error")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def test_viewer_without_runs_says_what_to_do(tmp_home):
    at = AppTest.from_file(VIEWER, default_timeout=60).run()
    assert not at.exception
    assert "No completed run yet" in _texts(at)


@pytest.mark.parametrize("model_type", ["yolo", "hybrid", "resnet-lstm"])
def test_viewer_shows_a_frame_with_a_run_and_a_clip_selected(infer_home, model_type):
    clip = demo_clip(infer_home)
    at = AppTest.from_file(VIEWER, default_timeout=120)
    at.session_state["viewer_run"] = _run_id(run_of(infer_home, model_type))
    at.session_state["viewer_clip"] = clip.name
    at.session_state["viewer_frame"] = 20
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.slider(key="viewer_frame").value == 20
    assert "frame 20/" in _texts(at)
    # ground truth off, crops on, threshold up: the page redraws without errors
    at.toggle(key="viewer_gt").set_value(False)
    at.toggle(key="viewer_crops").set_value(True)
    at.slider(key="viewer_conf").set_value(0.5)
    at.run()
    assert not at.exception and not at.error


def test_viewer_renders_the_clip(infer_home):
    at = AppTest.from_file(VIEWER, default_timeout=180)
    at.session_state["viewer_run"] = _run_id(run_of(infer_home, "yolo"))
    at.session_state["viewer_clip"] = demo_clip(infer_home).name
    at.run()
    at.button(key="viewer_render").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    rendered = at.session_state["viewer_rendered"]
    assert rendered["frames"] > 0 and rendered["output"].endswith(".webm")
    # served as what it is (OpenCV writes VP9/VP8 WebM): the media URL's type is WebM, not mp4
    videos = at.get("video")
    assert videos and videos[0].proto.url.endswith(".webm"), [v.proto.url for v in videos]
    assert [m.label for m in at.metric][:1] == ["Pedestrians"]


def test_evaluation_panel_evaluates_and_shows_the_matrix(infer_home):
    run = run_of(infer_home, "resnet-lstm")
    script = ("from ui.evaluation import evaluation_panel\n"
              f"evaluation_panel({str(run)!r})\n")
    at = AppTest.from_string(script, default_timeout=120).run()
    assert not at.exception
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert (run / "evaluation_val.json").is_file()
    # the metrics table, the trivial baselines on the same samples, then (benchmark view of an
    # `action` run: no breakdown) the published reference beside the run, marked as another task
    assert len(at.dataframe) == 3
    baselines = at.dataframe[1].value
    assert list(baselines["model"]) == ["always crossing", "always not-crossing"]
    assert {"auc_binary", "roc_auc"} <= set(baselines.columns)
    reference = at.dataframe[2].value
    assert reference["comparison"].iloc[0] == "this run"
    assert "task 'action'" in reference["caveats"].iloc[0]


def test_viewer_on_a_clip_without_annotations(infer_home_base, tmp_path, monkeypatch):
    import os
    import shutil

    home = tmp_path / "home"
    shutil.copytree(infer_home_base, home, copy_function=os.link)
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    clip = demo_clip(home)
    shutil.copy(clip, clip.with_name("zz_unannotated.mp4"))
    for model_type in ("yolo", "resnet-lstm"):
        at = AppTest.from_file(VIEWER, default_timeout=120)
        at.session_state["viewer_run"] = _run_id(run_of(home, model_type))
        at.session_state["viewer_clip"] = "zz_unannotated.mp4"
        at.run()
        assert not at.exception, at.exception
        assert "ground truth is unavailable" in _texts(at)
        assert at.toggle(key="viewer_gt").disabled
        if model_type == "resnet-lstm":
            # no ground-truth tracks: the LSTM tracks with a detector run the user picks
            tracker = at.selectbox(key="viewer_tracker")
            assert tracker.value in {_run_id(run_of(home, "yolo")), _run_id(run_of(home, "hybrid"))}
        assert not at.error, [e.value for e in at.error]


def test_two_viewer_sessions_keep_their_own_clip_state(infer_home):
    """Two tabs on one ResNet-LSTM run (one shared cached model): stepping on in one tab after
    the other moved still needs one frame, not a replay of the buffers."""
    from pedsense.infer.clips import list_clips

    run = _run_id(run_of(infer_home, "resnet-lstm"))
    clips = list_clips(infer_home)
    tabs = []
    for clip, frame in ((clips[0], 20), (clips[1], 30)):
        at = AppTest.from_file(VIEWER, default_timeout=120)
        at.session_state["viewer_run"] = run
        at.session_state["viewer_clip"] = clip.name
        at.session_state["viewer_frame"] = frame
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert "16 frames replayed" in _texts(at), "a jump replays the buffer"
        tabs.append(at)
    for at, frame in zip(tabs, (21, 31)):  # each tab steps on, in turn
        at.slider(key="viewer_frame").set_value(frame).run()
        assert not at.exception and not at.error
        assert f"frame {frame}/" in _texts(at)
        assert "frames replayed" not in _texts(at) and "inference" in _texts(at)


def test_viewer_exports_and_then_runs_each_stage_on_the_fastest_engine(infer_home_base, tmp_path, monkeypatch,
                                                                      copy_home):
    home = copy_home(infer_home_base, tmp_path / "home")
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    monkeypatch.setitem(sys.modules, "openvino", None)  # OpenVINO not installed: ONNX is the one export offered
    at = AppTest.from_file(VIEWER, default_timeout=180)
    at.session_state["viewer_run"] = _run_id(run_of(home, "hybrid"))
    at.session_state["viewer_clip"] = demo_clip(home).name
    at.run()
    assert "Inference: PyTorch" in _texts(at)
    at.button(key="viewer_export").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert set(json.loads((run_of(home, "hybrid") / "export.json").read_text())["formats"]) == {"onnx"}
    # ONNX Runtime and PyTorch timed on first use; each stage runs on the faster
    assert "detector: fastest measured here (" in _texts(at) and "classifier: fastest measured here (" in _texts(at)
    assert not [b for b in at.button if b.key == "viewer_export"], "nothing left to export"
