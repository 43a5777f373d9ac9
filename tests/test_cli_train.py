"""`pedsense train …` and `pedsense runs`: every parameter exposed, presets, epoch lines, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from pedsense.cli import build_parser, main
import inspect

from pedsense.commands.train import resolve_params
from pedsense.train.params import HOOKS, spec_for
from pedsense.config import REPO_ROOT
from pedsense.runfolder import RunFolder, list_runs
from pedsense.train.presets import PRESETS, SEED_DEFAULTS, preset_params
from test_train_fixtures import write_resnet_sequences

pytestmark = pytest.mark.filterwarnings("ignore:ImageNet weights")
TINY_ARGS = ["--batch-size", "2", "--backbone", "resnet18", "--crop-size", "32", "--learning-rate", "1e-3"]


def trainer_parameters(model_type: str) -> dict[str, inspect.Parameter]:
    """The seed trainer's own signature, hooks left out."""
    signature = inspect.signature(spec_for(model_type).load_trainer())
    return {n: p for n, p in signature.parameters.items() if n not in HOOKS}


def _subparser(model_type):
    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    return train._subparsers._group_actions[0].choices[model_type]


@pytest.mark.parametrize("model_type", ["yolo", "resnet-lstm", "hybrid"])
def test_every_trainer_parameter_is_an_option(model_type):
    dests = {a.dest for a in _subparser(model_type)._actions}
    assert set(trainer_parameters(model_type)) <= dests


@pytest.mark.parametrize("model_type", ["yolo", "resnet-lstm", "hybrid"])
def test_presets_name_real_parameters_and_seed_defaults_match_signatures(model_type):
    parameters = trainer_parameters(model_type)
    for preset in PRESETS[model_type].values():
        assert set(preset.params) <= set(parameters), preset.key
    assert SEED_DEFAULTS[model_type] == {n: parameters[n].default for n in SEED_DEFAULTS[model_type]}


def test_explicit_options_override_the_preset():
    args = build_parser().parse_args(["train", "resnet-lstm", "--preset", "quick", "--epochs", "3"])
    params = resolve_params("resnet-lstm", args)
    assert params == {**preset_params("resnet-lstm", "quick"), "epochs": 3}
    args = build_parser().parse_args(["train", "yolo", "--cache", "false", "--no-verbose"])
    assert resolve_params("yolo", args) == {"cache": False, "verbose": False}


def test_train_prints_one_line_per_epoch_and_runs_lists_it(tmp_home, capsys):
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    assert main(["train", "resnet-lstm", "--epochs", "2", "--name", "cli", *TINY_ARGS]) == 0
    out = capsys.readouterr().out
    assert out.count("epoch 1/2") == 1 and out.count("epoch 2/2") == 1 and "run completed" in out
    assert main(["runs"]) == 0
    table = capsys.readouterr().out
    assert "resnet-lstm/cli_" in table and "completed" in table and "2/2" in table and "val_acc 0." in table
    assert main(["runs", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "completed" and row["epochs_done"] == 2


def test_bad_input_is_one_clear_line(tmp_home, capsys):
    assert main(["train", "yolo", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "pedsense preprocess yolo" in err and "Traceback" not in err
    assert main(["runs"]) == 0 and "No runs yet" in capsys.readouterr().out


def test_ctrl_c_stops_cleanly(tmp_home):
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    env = {**os.environ, "PEDSENSE_HOME": str(tmp_home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pedsense", "train", "resnet-lstm", "--epochs", "500",
                             *TINY_ARGS], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "epoch 1/500" in line:
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "run stopped" in out
    (run,) = list_runs(tmp_home)
    assert run.status == "stopped" and (run.path / "best.pt").is_file() and (run.path / "last.pt").is_file()
    assert 1 <= len(RunFolder(run.path).read_metrics()) < 500
