"""Temporary files a killed writer left (``.config.json.<random>.tmp``, a checkpoint's) are
removed from run and dataset folders once they are a few minutes old; fresh ones stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pedsense.catalogue import datasets_status
from pedsense.config import paths
from pedsense.jobs import JobManager
from pedsense.runfolder import RunFolder, list_runs
from pedsense.runs import RunManager


def leave_temp(folder: Path, name: str, age_s: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text('{"half": ')
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def a_run(home: Path) -> RunFolder:
    run = RunFolder.create("resnet-lstm", "r", home=home)
    run.write_config({"model_type": "resnet-lstm"})
    run.set_status("completed")
    return run


def test_the_run_manager_start_removes_stale_temp_files_and_keeps_fresh_ones(tmp_home):
    run = a_run(tmp_home)
    stale = [leave_temp(run.path, ".config.json.k1l2.tmp", 600),
             leave_temp(run.path, ".status.json.abcd.tmp", 3600),
             leave_temp(run.path / "weights", ".last.pt.x9.tmp", 900)]
    fresh = leave_temp(run.path, ".metrics.csv.new1.tmp", 5)
    RunManager(tmp_home).shutdown()
    assert not any(p.exists() for p in stale)
    assert fresh.exists() and (run.path / "config.json").is_file()


def test_listing_runs_removes_them_too(tmp_home):
    run = a_run(tmp_home)
    stale = leave_temp(run.path, ".config.json.zz.tmp", 600)
    assert [r.run_id for r in list_runs(tmp_home)] == [run.run_id]
    assert not stale.exists()


def test_dataset_folders_are_swept_when_listed_or_when_the_job_manager_starts(tmp_home, tmp_path):
    p = paths(tmp_home)
    stale = [leave_temp(p.yolo, ".data.yaml.q1.tmp", 600),
             leave_temp(p.sequences, ".manifest.json.q2.tmp", 600),
             leave_temp(p.frames / "video_0001", ".meta.json.q3.tmp", 600)]
    fresh = leave_temp(p.resnet, ".labels.csv.q4.tmp", 1)
    kept = leave_temp(p.yolo / "labels" / "train", "x.tmp", 600)  # deeper folders are not ours to sweep
    datasets_status(tmp_home)
    assert not any(s.exists() for s in stale) and fresh.exists() and kept.exists()
    other = tmp_path / "other"
    stale = leave_temp(paths(other).processed, ".x.json.r.tmp", 600)
    JobManager(other)
    assert not stale.exists()
