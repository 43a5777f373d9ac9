"""The CLI's errors: a bug is one line plus the log file that holds its traceback (`--debug`
shows it), and a parameter out of its bounds is one line naming the bound."""

from __future__ import annotations

import pytest

import pedsense.commands.runs as runs_command
from pedsense.cli import main
from pedsense.config import paths


def _bug(args):
    raise RuntimeError("kaboom\nsecond line of the message")


def test_an_unexpected_error_is_one_line_and_the_log_path(tmp_home, monkeypatch, capsys):
    monkeypatch.setattr(runs_command, "cmd_runs", _bug)  # a bug inside a command
    assert main(["runs"]) == 1
    err = capsys.readouterr().err
    log = paths(tmp_home).logs / "pedsense.log"
    assert err.splitlines() == [
        f"error: unexpected RuntimeError: kaboom (a bug in pedsense; the traceback is in {log}, "
        "`pedsense --debug ...` shows it here)"]
    recorded = log.read_text()
    assert "pedsense runs" in recorded and "Traceback (most recent call last)" in recorded
    assert "second line of the message" in recorded and "in _bug" in recorded


def test_debug_shows_the_traceback(tmp_home, monkeypatch):
    monkeypatch.setattr(runs_command, "cmd_runs", _bug)
    with pytest.raises(RuntimeError, match="kaboom"):
        main(["--debug", "runs"])


def test_verbose_is_kept(tmp_home, capsys):
    assert main(["-v", "runs"]) == 0
    assert "No runs yet" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_an_infinite_learning_rate_is_refused_naming_the_bound(tmp_home, capsys, value):
    assert main(["train", "resnet-lstm", f"--learning-rate={value}"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: learning_rate: must be a finite number (a number > 0 and ≤ 1), "
                                f"got {float(value)}."]
    assert not paths(tmp_home).models.exists() or not any(paths(tmp_home).models.rglob("config.json"))
