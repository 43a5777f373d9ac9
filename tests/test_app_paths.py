"""Pages never show the server's absolute paths (one helper, ui.feedback.shown_path /
hide_paths), and a build's skipped videos and annotation files are listed in the Data page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pedsense.config import paths
from pedsense.data.yolo_format import build_yolo_dataset

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TEXT_KINDS = ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader", "expander")


def page_text(at: AppTest) -> str:
    """Everything a person reads on the page, sidebar included."""
    parts = []
    for kind in TEXT_KINDS:
        for element in getattr(at, kind, []):
            parts.append(str(getattr(element, "label", None) or getattr(element, "value", "")))
    parts += [str(e.value) for e in at.sidebar.markdown]
    parts += [str(d.value.to_dict()) for d in at.dataframe]
    parts += [str(j.value) for j in at.json]
    return "\n".join(parts)


@pytest.mark.parametrize("text, shown", [
    ("", ""),
    ("{home}", "<data home>"),
    ("No space left on {home}/data/processed/resnet: free 3 MB and rerun.",
     "No space left on data/processed/resnet: free 3 MB and rerun."),
    ("yolo_model {home}/models/base/x.pt is not a PyTorch checkpoint",
     "yolo_model models/base/x.pt is not a PyTorch checkpoint"),
    ("`{home}/data/raw/clips`, then", "`data/raw/clips`, then"),
    ("see /etc/ssh/sshd_config (outside)", "see …/sshd_config (outside)"),
    ("http://localhost:8501/runs, km/h, data/raw and 1/2 stay", "http://localhost:8501/runs, km/h, data/raw and 1/2 stay"),
])
def test_hide_paths_shows_paths_relative_to_the_data_home(tmp_home, text, shown):
    from ui.feedback import hide_paths, shown_path

    assert hide_paths(text.format(home=tmp_home)) == shown
    assert shown_path(tmp_home / "data" / "raw") == "data/raw"
    assert shown_path("data/raw") == "data/raw"


def test_sidebar_shows_the_data_home_by_name_only(tmp_home):
    at = AppTest.from_file(APP, default_timeout=60).run()
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert f"`{tmp_home.name}`" in sidebar and str(tmp_home) not in sidebar


@pytest.fixture
def flawed_home(demo_home):
    """The demo set plus an unreadable annotation and an annotated video without a clip, built."""
    annotations = paths(demo_home).annotations
    # replaced, never edited: the home's files are hard links shared with the session's demo set
    (annotations / "video_0003.xml").unlink()
    (annotations / "video_0003.xml").write_text("<annotations><track label='pedestrian'>")  # truncated
    shutil.copy(annotations / "video_0001.xml", annotations / "video_0099.xml")  # no clip, no frames
    build_yolo_dataset(home=demo_home, split="random")  # the official split names neither
    return demo_home


def test_the_data_page_lists_skipped_videos_and_files_without_server_paths(flawed_home):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [e.label for e in at.expander]
    assert any("YOLO dataset (2 classes): 1 annotation files skipped" in label for label in labels), labels
    assert any("YOLO dataset (2 classes): 1 videos skipped" in label for label in labels), labels
    tables = " ".join(str(d.value.to_dict()) for d in at.dataframe)
    assert "video_0099" in tables and "data/raw/annotations/video_0003.xml" in tables
    assert str(flawed_home) not in page_text(at)


def test_a_refused_detector_is_named_without_the_server_path(demo_home):
    base = paths(demo_home).base_models
    base.mkdir(parents=True, exist_ok=True)
    (base / "x.pt").write_text("not weights")
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/train_hybrid.py").run()
    at.selectbox(key="form.hybrid.yolo_model").set_value(str(base / "x.pt"))
    next(b for b in at.button if "Start training" in b.label).click()
    at.run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "models/base/x.pt is not a PyTorch checkpoint" in errors, errors
    assert str(demo_home) not in page_text(at)
    assert not paths(demo_home).models.joinpath("hybrid").exists()


def test_the_run_config_view_shows_paths_relative_to_the_data_home(tmp_home):
    from pedsense.runfolder import RunFolder

    run = RunFolder.create("yolo", "paths", home=tmp_home)
    run.write_config({"model_type": "yolo", "run_dir": str(run.path), "parameters": {"epochs": 1},
                      "dataset": {"data_yaml": str(paths(tmp_home).yolo / "data.yaml")}})
    run.set_status("completed")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["selected_run"] = run.run_id
    at.run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(str(j.value) for j in at.json)
    assert f"models/yolo/{run.name}" in shown and "data/processed/yolo/data.yaml" in shown, shown
    assert str(tmp_home) not in page_text(at)


def test_the_export_hint_names_the_run_by_its_id(tmp_home):
    from pedsense.infer.backends import read_export
    from pedsense.runfolder import RunFolder

    run = RunFolder.create("yolo", "hint", home=tmp_home)
    record, why = read_export(run.path, "yolo")
    assert record is None and f"pedsense export {run.run_id} --format onnx" in why and str(tmp_home) not in why

