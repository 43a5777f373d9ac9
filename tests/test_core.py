"""The shared pieces: data home, atomic files, run folders, crops, clip errors, the library/UI seam."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import pedsense
from pedsense.config import REPO_ROOT, data_home, paths
from pedsense.data.crops import crop_pedestrian, square_box
from pedsense.data.video import open_video, read_video_frame, video_info
from pedsense.errors import DataError
from pedsense.io import link_or_copy, read_json, write_json_atomic
from pedsense.runfolder import RunFolder, RunNotFound, find_run, list_runs, sanitize_name


def test_data_home_follows_env(monkeypatch, tmp_path):
    monkeypatch.delenv("PEDSENSE_HOME", raising=False)
    assert data_home() == REPO_ROOT
    monkeypatch.setenv("PEDSENSE_HOME", str(tmp_path))
    assert data_home() == tmp_path.resolve()
    p = paths()
    assert p.clips == tmp_path.resolve() / "data/raw/clips"
    assert p.sequences == tmp_path.resolve() / "data/processed/resnet/sequences"
    assert p.frame("video_0001", 7).name == "frame_000007.jpg"
    assert p.attributes_file("video_0001").name == "video_0001_attributes.xml"


def test_write_json_atomic_leaves_no_temp_and_keeps_old_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    write_json_atomic(target, {"status": "running"})

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_json_atomic(target, {"status": "completed"})
    assert read_json(target) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_a_reader_sees_the_old_file_or_the_whole_new_one_while_a_write_is_under_way(tmp_path):
    """Read the target in the middle of a write (flushed, so a file renamed too early would show
    it): the old file, whole; a new target does not exist until the write is complete."""
    from pedsense.io import atomic_open, atomic_path

    target = tmp_path / "status.json"
    write_json_atomic(target, {"status": "running"})
    old = target.read_bytes()
    with atomic_open(target) as f:
        f.write('{"status": "comp')
        f.flush()
        assert target.read_bytes() == old
        f.write('leted"}\n')
        f.flush()
        assert target.read_bytes() == old
    assert read_json(target) == {"status": "completed"}
    fresh = tmp_path / "fresh.json"
    with atomic_open(fresh) as f:
        f.write("{")
        f.flush()
        assert not fresh.exists()
    table = tmp_path / "table.bin"
    table.write_bytes(b"old table")
    with atomic_path(table) as tmp:
        tmp.write_bytes(b"half")
        assert table.read_bytes() == b"old table"
    assert table.read_bytes() == b"half"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.json", "status.json", "table.bin"]


def test_read_json_tolerates_missing_and_truncated(tmp_path):
    (tmp_path / "cut.json").write_text('{"status": "runn')
    assert read_json(tmp_path / "cut.json", {"status": "unknown"}) == {"status": "unknown"}
    assert read_json(tmp_path / "missing.json") is None


def test_link_or_copy_hard_links(tmp_path):
    src = tmp_path / "a.jpg"
    src.write_bytes(b"jpeg")
    dst = link_or_copy(src, tmp_path / "sub" / "b.jpg")
    assert dst.read_bytes() == b"jpeg"
    assert os.stat(src).st_ino == os.stat(dst).st_ino


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, "yolo"),
        ("", "yolo"),
        ("   ", "yolo"),
        ("../x", "x"),
        ("a/b", "a-b"),
        ("..", "yolo"),
        ("/etc/passwd", "etc-passwd"),
        ("my run #1", "my-run-1"),
        ("ok_name-2.5", "ok_name-2.5"),
    ],
)
def test_sanitize_name(raw, expected):
    assert sanitize_name(raw, "yolo") == expected


def test_run_folder_never_escapes_models(tmp_home):
    for bad in ("../x", "a/b", "../../etc", "/abs"):
        run = RunFolder.create("yolo", bad)
        assert run.path.parent == (tmp_home / "models" / "yolo").resolve()
    names = sorted(p.name for p in (tmp_home / "models" / "yolo").iterdir())
    assert len(names) == 4 and len(set(names)) == 4


def test_run_folder_lifecycle(tmp_home):
    run = RunFolder.create("resnet-lstm", "demo")
    assert run.run_id.startswith("resnet-lstm/demo_")
    run.write_config({"epochs": 2})
    run.set_status("queued")
    run.set_status("running")
    run.append_metrics({"epoch": 1, "train_loss": 0.5})
    run.append_metrics({"epoch": 2, "train_loss": 0.25})
    run.log("epoch 2 done")
    status = run.set_status("completed")
    assert status["started_at"] and status["finished_at"] and status["error"] is None
    assert run.read_metrics() == [{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.25}]
    assert "epoch 2 done" in run.read_log()
    assert run.update_config(best={"val_acc": 0.9})["epochs"] == 2
    assert find_run(run.run_id) == run
    assert find_run(run.name) == run
    assert list_runs() == [run]
    with pytest.raises(RunNotFound, match="pedsense runs"):
        find_run("nope")
    with pytest.raises(ValueError):
        run.set_status("bogus")


def test_metrics_widen_when_a_stage_adds_columns(tmp_home):
    run = RunFolder.create("hybrid", None)
    run.append_metrics({"stage": "detector", "epoch": 1, "mAP50": 0.1})
    run.append_metrics({"stage": "classifier", "epoch": 1, "val_acc": 0.75})
    rows = run.read_metrics()
    assert rows[0]["mAP50"] == 0.1 and rows[0]["val_acc"] is None
    assert rows[1]["stage"] == "classifier" and rows[1]["val_acc"] == 0.75


def test_metrics_appends_from_threads_are_not_lost(tmp_home):
    run = RunFolder.create("yolo", "threads")

    def writer(offset):
        for i in range(25):
            run.append_metrics({"epoch": offset + i, "loss": 1.0})

    threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(run.read_metrics()) == 100


def test_runs_sort_newest_first(tmp_home):
    from datetime import datetime

    old = RunFolder.create("yolo", "a", when=datetime(2024, 1, 1, 0, 0, 0))
    new = RunFolder.create("resnet-lstm", "b", when=datetime(2025, 1, 1, 0, 0, 0))
    for r in (old, new):
        r.write_config({})
    assert list_runs() == [new, old]


@pytest.mark.parametrize(
    "xyxy, expected",
    [
        ((10, 10, 30, 50), (-2, 8, 42, 52)),   # tall box -> square on its height (+10%)
        ((0, 0, 0, 0), (-1, -1, 1, 1)),       # degenerate box still gives a small square
    ],
)
def test_square_box(xyxy, expected):
    assert square_box(xyxy) == expected


def test_crop_pedestrian_pads_outside_the_frame():
    image = np.full((100, 200, 3), 255, np.uint8)
    crop = crop_pedestrian(image, (-20, -20, 20, 60), crop_size=(32, 32))
    assert crop.shape == (32, 32, 3)
    assert crop[0, 0].tolist() == [0, 0, 0]        # padding
    assert crop[-1, -1].tolist() == [255, 255, 255]  # image


def test_crop_pedestrian_wholly_outside_gives_black():
    crop = crop_pedestrian(np.full((10, 10, 3), 9, np.uint8), (50, 50, 60, 70), crop_size=(8, 16))
    assert crop.shape == (16, 8, 3) and not crop.any()


def test_video_errors_name_the_fix(tmp_path):
    with pytest.raises(DataError, match="pedsense demo-data"):
        video_info(tmp_path / "missing.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(DataError, match="will not open|no decodable frame"):
        video_info(broken)


def test_video_roundtrip_and_frame_range(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 24))
    for i in range(5):
        writer.write(np.full((24, 32, 3), i * 40, np.uint8))
    writer.release()
    info = video_info(path)
    assert (info.frame_count, info.width, info.height) == (5, 32, 24)
    assert abs(int(read_video_frame(path, 3).mean()) - 120) < 8
    with pytest.raises(DataError, match="0-4"):
        read_video_frame(path, 5)


def test_library_never_imports_streamlit():
    code = (
        "import importlib, pkgutil, sys, pedsense\n"
        "for m in pkgutil.walk_packages(pedsense.__path__, 'pedsense.'):\n"
        "    if m.name != 'pedsense.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "assert 'streamlit' not in sys.modules, 'a pedsense module imported streamlit'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_cli_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "pedsense", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "pedsense" in out.stdout
