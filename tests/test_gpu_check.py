"""``bench/gpu_check.py``: its CPU mode runs every step on tiny data and prints one table, and
a step that fails (or a GPU that disappears) is said in the table and the exit code."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cpu_mode_runs_every_step_and_prints_one_table(demo_home, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the check works in its data home, and comes back here
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    gpu_check = load_gpu_check()
    code = gpu_check.main(["--cpu", "--home", str(demo_home), "--budget", "900"])
    out = capsys.readouterr().out
    assert Path.cwd() == tmp_path
    assert list(temp.glob("pedsense-*")) == []  # its trimmed copy and the runs trained in it (about 1 GB) are gone
    assert out.startswith("No CUDA GPU here: running the same steps on the CPU at tiny sizes.\n")
    rows = {line.split("  ")[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert code == 0, out
    for step in ("train yolo: trainer / bare", "train resnet-lstm: trainer / bare", "train hybrid: trainer / bare",
                 "infer hybrid: openvino", "infer resnet-lstm: onnx", "torchrun data-parallel", "feature cache"):
        assert "  ok  " in rows[step], rows.get(step)
    assert "samples/s =" in rows["train resnet-lstm: trainer / bare"]
    assert "2 x gloo" in rows["torchrun data-parallel"] and "built, then hit" in rows["feature cache"]
    assert "skip" in rows["tests marked cuda"]


def test_a_lost_gpu_stops_the_check_and_the_table_says_where():
    gpu_check = load_gpu_check()
    check = gpu_check.Check("cuda:0", budget_s=60)
    check.gpu_lost = lambda: True  # the GPU is gone (mocked: there is none here)

    def fails():
        raise RuntimeError("CUDA error: unspecified launch failure")

    assert check.step("train yolo: trainer / bare", lambda: ("1.00", ""))
    assert not check.step("train resnet-lstm: trainer / bare", fails)
    assert not check.step("feature cache", lambda: ("built, then hit", ""))
    table = check.table()
    assert "GPU lost: RuntimeError: CUDA error: unspecified launch failure" in table
    assert "stopped at train resnet-lstm: trainer / bare" in table.splitlines()[-1]
    assert check.failed and check.stopped_at == "train resnet-lstm: trainer / bare"


def test_a_failing_step_fails_the_check_and_the_rest_still_runs():
    gpu_check = load_gpu_check()
    check = gpu_check.Check("cpu", budget_s=60)

    def skipped():
        raise gpu_check.SkipStep("TensorrtExecutionProvider is not in onnxruntime's providers")

    assert not check.step("infer hybrid: onnx-tensorrt", skipped)
    assert not check.step("infer hybrid: pytorch", lambda: 1 / 0)
    assert check.step("feature cache", lambda: "built, then hit")
    lines = check.table().splitlines()
    assert "skip" in lines[1] and "FAIL" in lines[2] and "ZeroDivisionError" in lines[2] and "ok" in lines[3]
    assert check.failed and check.stopped_at is None


def test_a_home_whose_datasets_are_not_built_is_named_and_nothing_trains(tmp_path, capsys):
    gpu_check = load_gpu_check()
    home = tmp_path / "home"
    (home / "data/raw/annotations").mkdir(parents=True)
    assert gpu_check.main(["--cpu", "--home", str(home)]) == 1
    out = capsys.readouterr().out
    assert "--home has no yolo, detector, resnet, crops build" in out and "preprocess all" in out
    assert "train yolo" not in out  # the check stops at its data step
