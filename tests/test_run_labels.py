"""Tags, notes and archiving (``pedsense.runlabels``), the run filter, and `pedsense tag|note|
archive|runs` on real run folders: bad input is one clear line and changes nothing."""

from __future__ import annotations

import json
import threading

import pytest

from pedsense.cli import main
from pedsense.errors import ConfigError
from pedsense.runfilter import RunFilter
from pedsense.runfolder import RunFolder
from pedsense.runlabels import NOTE_MAX, change_tags, check_tag, labels_path, read_labels, set_archived, set_note
from pedsense.runreport import failure_of, split_log


def _run(home, name, status="completed") -> RunFolder:
    folder = RunFolder.create("resnet-lstm", name, home=home)
    folder.write_config({"model_type": "resnet-lstm", "parameters": {"epochs": 1}})
    folder.set_status(status)
    return folder


@pytest.mark.parametrize("tag, problem", [
    ("", "empty tag"), ("my tag", "has a space"), ("x" * 500, "500 characters"),
    ("<b>", "characters a tag cannot hold"), ("-lead", "characters a tag cannot hold"),
])
def test_bad_tags_are_named_with_the_fix(tag, problem):
    with pytest.raises(ConfigError, match=problem):
        check_tag(tag)


@pytest.mark.parametrize("tag", ["baseline", "lr-1e-4", "jaad:beh", "v2.1", "team/alice"])
def test_good_tags_pass(tag):
    assert check_tag(tag) == tag


def test_edits_from_two_threads_both_land(tmp_home):
    folder = _run(tmp_home, "busy")
    threads = [threading.Thread(target=change_tags, args=(folder, [f"t{i}"])) for i in range(8)]
    threads.append(threading.Thread(target=set_note, args=(folder, "kept")))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    labels = read_labels(folder)
    assert labels.tags == tuple(sorted(f"t{i}" for i in range(8))) and labels.note == "kept"
    assert json.loads(labels_path(folder).read_text())["tags"] == list(labels.tags)
    assert not list(folder.path.glob("*.tmp")) and not list(folder.path.glob(".*.tmp"))


def test_a_long_note_and_a_live_run_are_refused_and_nothing_changes(tmp_home, capsys):
    folder = _run(tmp_home, "live", status="running")
    with pytest.raises(ConfigError, match=f"keep it to {NOTE_MAX}"):
        set_note(folder, "x" * (NOTE_MAX + 1))
    with pytest.raises(ConfigError, match="Stop it first"):
        set_archived(folder)
    assert not labels_path(folder).exists()
    done = _run(tmp_home, "done")
    assert main(["archive", folder.run_id, done.run_id]) == 2  # the live one refused, the other archived
    captured = capsys.readouterr()
    assert "cannot be archived" in captured.err and f"{done.run_id}: archived" in captured.out
    assert read_labels(done).archived and not read_labels(folder).archived


def test_runs_lists_tags_hides_archived_and_filters_by_tag(tmp_home, capsys):
    kept, hidden = _run(tmp_home, "kept"), _run(tmp_home, "hidden")
    assert main(["tag", kept.run_id, "+baseline"]) == 0
    assert main(["archive", hidden.run_id]) == 0
    capsys.readouterr()
    assert main(["runs"]) == 0
    out, err = capsys.readouterr()
    assert kept.run_id in out and "baseline" in out and hidden.run_id not in out and "1 archived" in err
    assert main(["runs", "--archived", "--json"]) == 0
    rows = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[hidden.run_id]["archived"] and rows[kept.run_id]["tags"] == ["baseline"]
    assert main(["runs", "--tag", "nothing-has-it"]) == 0 and "No run matches" in capsys.readouterr().out
    assert main(["archive", hidden.run_id, "--restore"]) == 0 and not read_labels(hidden).archived
    with pytest.raises(ValueError, match="Unknown facet"):
        RunFilter({"colour": ["red"]})


def test_the_failure_report_finds_the_last_traceback_among_log_lines(tmp_home):
    folder = _run(tmp_home, "failed", status="failed")
    folder.log("epoch 1/3 val_acc 0.61")
    folder.log("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nValueError: old")
    folder.log("resumed")
    folder.log("Traceback (most recent call last):\n  File \"y.py\", line 2, in fit\nRuntimeError: new")
    folder.log("run ended: failed (RuntimeError: new)")
    plain, trace = split_log(folder.read_log())
    assert trace.splitlines()[-1] == "RuntimeError: new" and trace.startswith("Traceback")
    assert [line.split(" ", 2)[2] for line in plain] == ["epoch 1/3 val_acc 0.61", "resumed",
                                                         "run ended: failed (RuntimeError: new)"]
    failure = failure_of(folder, "RuntimeError: new")
    assert failure.error == "RuntimeError: new" and len(failure.last_lines) == 3
    assert failure_of(_run(tmp_home, "quiet", status="failed")).traceback == ""
