"""A damaged run file never stops run management: the folder is listed as `unreadable` with the
reason, and every other run, the CLI and the pages keep working."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pedsense.cli import main
from pedsense.runfolder import UNREADABLE, RunFolder, list_runs
from pedsense.runsummary import read_summary
from pedsense.runs import RunManager

APP = str(Path(__file__).resolve().parent.parent / "app.py")

# (file, bytes written over it, words the reason must hold)
DAMAGE = {
    "status-number": ("status.json", b"5", "status.json holds 5, not a JSON object"),
    "status-list": ("status.json", b"[1,2,3]", "status.json holds [1, 2, 3], not a JSON object"),
    "status-word": ("status.json", b'{"status": 5}', "status.json names the status 5"),
    "status-pid": ("status.json", b'{"status": "running", "pid": "abc"}', "'pid' that is not a process id"),
    "status-truncated": ("status.json", b'{"status": "comp', "status.json is not valid JSON"),
    "config-number": ("config.json", b"5", "config.json holds 5, not a JSON object"),
    "config-list": ("config.json", b"[1,2,3]", "config.json holds [1, 2, 3], not a JSON object"),
    "metrics-binary": ("metrics.csv", b"\xff\xfe\x00\x81garbage", "metrics.csv is not UTF-8 text"),
}


def make_run(home: Path, name: str) -> RunFolder:
    run = RunFolder.create("resnet-lstm", name, home=home)
    run.write_config({"model_type": "resnet-lstm", "parameters": {"epochs": 1}, "epochs_total": 1})
    run.set_status("running")
    run.append_metrics({"epoch": 1, "val_acc": 0.75, "val_loss": 0.5})
    run.set_status("completed")
    return run


def damage(home: Path, case: str) -> RunFolder:
    file, content, _ = DAMAGE[case]
    run = make_run(home, case)
    (run.path / file).write_bytes(content)
    return run


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_run_is_listed_unreadable_and_the_others_still_read(tmp_home, case):
    good = make_run(tmp_home, "good")
    bad = damage(tmp_home, case)
    manager = RunManager(tmp_home)  # marking interrupted runs reads every status.json
    try:
        summaries = {s.run_id: s for s in manager.runs()}
    finally:
        manager.shutdown()
    assert summaries[good.run_id].status == "completed"
    assert summaries[good.run_id].best_metric["value"] == 0.75
    assert summaries[bad.run_id].status == UNREADABLE
    assert DAMAGE[case][2] in summaries[bad.run_id].error
    assert f"delete the run's folder models/{bad.run_id}" in summaries[bad.run_id].error


def test_a_damaged_file_put_back_reads_again(tmp_home):
    bad = damage(tmp_home, "config-number")
    assert read_summary(bad).status == UNREADABLE
    bad.write_config({"model_type": "resnet-lstm"})
    assert read_summary(bad).status == "completed"


def test_unreadable_is_never_written(tmp_home):
    run = make_run(tmp_home, "x")
    with pytest.raises(ValueError, match="Unknown status"):
        run.set_status(UNREADABLE)


def test_pedsense_runs_prints_an_unreadable_run_as_a_row(tmp_home, capsys):
    make_run(tmp_home, "good")
    bad = damage(tmp_home, "metrics-binary")
    damage(tmp_home, "status-list")
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 4  # header + 3 runs
    row = next(line for line in out.splitlines() if line.startswith(bad.run_id))
    assert UNREADABLE in row
    assert main(["runs", "--json"]) == 0
    assert "metrics.csv is not UTF-8 text" in capsys.readouterr().out


@pytest.fixture
def damaged_home(tmp_home):
    make_run(tmp_home, "good")
    for case in ("status-number", "config-list", "metrics-binary", "status-pid"):
        damage(tmp_home, case)
    return tmp_home


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/runs.py", "pages/viewer.py",
                                  "pages/train_yolo.py", "pages/train_resnet_lstm.py", "pages/train_hybrid.py"])
def test_pages_keep_working_with_unreadable_runs(damaged_home, page):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page != "pages/overview.py":
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error if "cannot be read" not in e.value]


def test_runs_page_says_why_a_run_is_unreadable(damaged_home):
    bad = next(r for r in list_runs(damaged_home) if r.name.startswith("config-list"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["selected_run"] = bad.run_id
    at.run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("config.json holds [1, 2, 3], not a JSON object" in e for e in errors), errors
    table = at.dataframe[0].value
    assert (table["status"] == UNREADABLE).sum() == 4 and (table["status"] == "completed").sum() == 1


def test_the_viewer_offers_only_readable_completed_runs(damaged_home):
    at = AppTest.from_file(str(Path(APP).parent / "pages" / "viewer.py"), default_timeout=60).run()
    assert not at.exception
    options = at.selectbox(key="viewer_run").options
    assert len(options) == 1 and options[0].startswith("resnet-lstm/good_")
