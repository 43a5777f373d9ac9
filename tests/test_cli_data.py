"""The data commands: `pedsense setup`, `demo-data`, `preprocess`, `info`, and `python -m pedsense`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from pedsense.cli import main
from pedsense.commands.data import TerminalProgress, parse_crop_size
from pedsense.data.intent import parse_tte
from pedsense.config import REPO_ROOT, paths
from pedsense.data.frames import annotated_video_ids, frames_meta
from pedsense.errors import ConfigError


def test_setup_creates_folders_and_names_the_next_step(tmp_home, capsys):
    assert main(["setup"]) == 0
    out = capsys.readouterr().out
    for folder in (paths().clips, paths().annotations, paths().frames, paths().processed, paths().base_models):
        assert folder.is_dir()
    assert "annotations: 0 XML" in out and "pedsense demo-data" in out


def test_setup_on_raw_data_suggests_preprocessing(demo_raw_home, capsys):
    assert main(["setup"]) == 0
    assert "preprocess frames" in capsys.readouterr().out


def test_demo_data_if_missing_keeps_existing_annotations(demo_raw_home, capsys):
    before = sorted(p.stat().st_mtime_ns for p in paths().annotations.glob("*.xml"))
    assert main(["demo-data", "--if-missing"]) == 0
    assert "not writing" in capsys.readouterr().out
    assert sorted(p.stat().st_mtime_ns for p in paths().annotations.glob("*.xml")) == before


def test_demo_data_rejects_zero_videos(tmp_home, capsys):
    assert main(["demo-data", "--videos", "0"]) == 2
    assert "--videos" in capsys.readouterr().err


def test_preprocess_before_frames_is_a_clear_error(demo_raw_home, capsys):
    assert main(["preprocess", "yolo"]) == 2
    err = capsys.readouterr().err
    assert "preprocess frames" in err and "Traceback" not in err


def test_preprocess_all_on_the_demo_set(demo_raw_home, capsys):
    code = main(["preprocess", "all", "--crop-size", "32", "--sequence-length", "8", "--stride", "8",
                 "--frame-step", "4"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert all(frames_meta(v) for v in annotated_video_ids())
    for marker in (paths().yolo / "data.yaml", paths().yolo_detector / "data.yaml",
                   paths().resnet / "labels.csv", paths().resnet / "crops.csv"):
        assert marker.exists()
    assert "frames:" in out.out and "resnet:" in out.out
    assert "[" in out.err  # the progress bars
    assert main(["preprocess", "yolo", "--frame-step", "4"]) == 0
    assert "reused" in capsys.readouterr().out


def test_preprocess_frames_options(demo_raw_home, capsys):
    video = annotated_video_ids()[0]
    assert main(["preprocess", "frames", "--video", video, "--fps", "10", "--annotated-only"]) == 0
    meta = frames_meta(video)
    assert meta["annotated_only"] and meta["fps"] == 10
    assert [v for v in annotated_video_ids() if frames_meta(v)] == [video]


def test_preprocess_frames_reports_a_missing_clip(demo_raw_home, capsys):
    missing = annotated_video_ids()[0]
    paths().clip(missing).unlink()
    assert main(["preprocess", "frames"]) == 0
    out = capsys.readouterr()
    warning, = [line for line in out.err.splitlines() if line.startswith("warning:")]
    assert "1 of 3 annotated videos have no clip" in warning and warning.count(missing) == 1
    assert "1 failed (1 without a clip)" in out.out


def test_info_prints_statistics(demo_raw_home, capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "annotations: " in out and "not built" in out


def test_bad_crop_size_option(demo_raw_home, capsys):
    assert main(["preprocess", "resnet", "--crop-size", "huge"]) == 2
    assert "--crop-size" in capsys.readouterr().err


@pytest.mark.parametrize("text, expected", [("224", (224, 224)), ("128x96", (128, 96)), ("64,64", (64, 64))])
def test_parse_crop_size(text, expected):
    assert parse_crop_size(text) == expected


@pytest.mark.parametrize("text", ["", "x", "4", "10x2", "1x2x3"])
def test_parse_crop_size_rejects(text):
    with pytest.raises(ConfigError):
        parse_crop_size(text)


def test_progress_bar_without_a_terminal():
    import io

    stream = io.StringIO()
    bar = TerminalProgress("frames", stream=stream, width=4)
    for done in range(5):
        bar(done, 4, f"video {done}")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("frames") and "[####] 4/4" in lines[-1]
    assert len(lines) == 5


def test_python_dash_m_pedsense():
    result = subprocess.run([sys.executable, "-m", "pedsense", "preprocess", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--sequence-length" in result.stdout and "--annotated-only" in result.stdout
    for option in ("--task", "--sample-type", "--tte", "--overlap", "--irrelevant", "--placement",
                   "high_visibility"):
        assert option in result.stdout


def test_preprocess_intent_records_the_options_and_says_what_was_skipped(intent_home, capsys):
    import json

    code = main(["preprocess", "resnet", "--task", "intent", "--sample-type", "all", "--tte", "35", "60",
                 "--overlap", "0.5", "--crop-size", "32", "--irrelevant", "exclude"])
    out = capsys.readouterr()
    assert code == 0, out.err
    manifest = json.loads((paths().sequences / "manifest.json").read_text())
    assert manifest["task"] == "intent" and manifest["split"]["source"] == "official:default"
    assert manifest["intent_options"] == {"obs_length": 16, "tte": [35, 60], "overlap": 0.5,
                                          "sample_type": "all", "irrelevant": "exclude",
                                          "placement": "boxes"}
    assert "task intent (obs 16, TTE 35-60, overlap 0.5, sample all" in out.out
    assert "1 pedestrians skipped: 1 track shorter than observation + max TTE" in out.out
    assert "leakage check passed" in out.out
    assert main(["preprocess", "yolo", "--task", "intent"]) == 0
    out = capsys.readouterr().out
    assert "reused" in out and "unlabelled" in out and "`ped` bystanders left out" in out


def test_preprocess_rejects_bad_intent_options(intent_home, capsys):
    assert main(["preprocess", "crops", "--task", "intent", "--tte", "60", "30"]) == 2
    assert "tte must be (min, max)" in capsys.readouterr().err
    assert main(["preprocess", "resnet", "--task", "intent", "--overlap", "1.5"]) == 2
    assert "overlap" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["preprocess", "yolo", "--split", "official"])
    with pytest.raises(SystemExit):
        main(["preprocess", "yolo", "--task", "predict"])


@pytest.mark.parametrize("values, expected", [([30, 60], (30, 60)), ([45], (45, 45)), ([0, 0], (0, 0))])
def test_parse_tte(values, expected):
    assert parse_tte(values) == expected


@pytest.mark.parametrize("values", [[60, 30], [-1, 5], [1, 2, 3]])
def test_parse_tte_rejects(values):
    with pytest.raises(ConfigError):
        parse_tte(values)


# -- real JAAD annotations without their clips ------------------------------------------------
@pytest.fixture
def jaad_home(jaad_dir, tmp_home):
    """The 12 real annotation files (with attributes and splits) in a data home with no clip."""
    for folder in ("annotations", "annotations_attributes", "split_ids"):
        shutil.copytree(jaad_dir / folder, paths().raw / folder)
    return tmp_home


def _write_clip(video_id: str, frames: int) -> None:
    path = paths().clip(video_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (64, 36))
    for i in range(frames):
        writer.write(np.full((36, 64, 3), i % 255, np.uint8))
    writer.release()


def test_setup_says_the_clips_are_missing_and_where_they_go(jaad_home, capsys):
    assert main(["setup"]) == 0
    out = capsys.readouterr().out
    clips_line = next(line for line in out.splitlines() if "clips:" in line)
    assert "0 of 12 annotated videos have a clip" in clips_line and "clips are missing" in clips_line
    assert str(paths().clips) in clips_line and "README, 'JAAD data'" in clips_line
    next_line = next(line for line in out.splitlines() if line.startswith("next:"))
    assert str(paths().clips) in next_line and "JAAD data" in next_line
    assert not next_line.startswith("next: `pedsense preprocess frames`")


@pytest.mark.parametrize("step", ["all", "frames"])
def test_preprocess_without_any_clip_stops_before_any_work_with_one_message(jaad_home, capsys, step):
    assert main(["preprocess", step]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    error, = out.err.splitlines()
    assert error.startswith("error: None of the 12 annotated videos has a clip")
    assert str(paths().clips) in error and "README, 'JAAD data'" in error
    assert "video_0005" not in error  # one answer, not a line per video
    assert not any(paths().frames.glob("*/*"))


def test_a_build_without_any_clip_names_the_real_cause(jaad_home, capsys):
    assert main(["preprocess", "yolo"]) == 2
    err = capsys.readouterr().err
    assert "has a clip" in err and str(paths().clips) in err and "JAAD data" in err
    assert "Run `pedsense preprocess frames` first" not in err


def test_preprocess_names_each_missing_clip_once_and_summarises_past_ten(jaad_home, capsys):
    _write_clip("video_0207", 60)
    assert main(["preprocess", "frames"]) == 0
    out = capsys.readouterr()
    warnings = [line for line in out.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    warning = warnings[0]
    assert "11 of 12 annotated videos have no clip" in warning and str(paths().clips) in warning
    missing = [v for v in annotated_video_ids() if v != "video_0207"]
    assert all(warning.count(v) == 1 for v in missing[:10]) and missing[10] not in warning
    assert warning.rstrip().endswith("or move their annotations away.") and "... and 1 more" in warning
    assert frames_meta("video_0207")["frame_count"] == 60
    assert "1 videos extracted" in out.out and "11 failed (11 without a clip)" in out.out


def test_info_imports_neither_torch_nor_ultralytics_nor_opencv(demo_raw_home):
    code = ("import sys; from pedsense.cli import main; rc = main(['info']); "
            "print('\\n', rc, *(m in sys.modules for m in ('torch', 'ultralytics', 'cv2')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PEDSENSE_HOME": str(demo_raw_home)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["0", "False", "False", "False"]
    assert "Dataset: synthetic demo set" in result.stdout


def test_every_command_is_mapped_to_the_module_that_adds_it():
    """`pedsense.cli` registers only the module of the command it runs: its map must be complete."""
    import argparse
    import importlib

    from pedsense.cli import COMMAND_MODULES

    for module, commands in COMMAND_MODULES.items():
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(subparsers)
        assert tuple(subparsers.choices) == commands, module
