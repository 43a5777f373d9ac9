"""The Runs page's controls: Resume on a run that ended early, Extend on a completed one, the
queue settings; and the same through `pedsense resume|extend|stop`.

The runs are real tiny trainings (in-process, 2 frames of 32 px); resuming and extending go
through the data home's queue to a worker process, like a launch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pedsense.runfolder import RunFolder, list_runs
from pedsense.runqueue import read_settings
from test_train_fixtures import write_resnet_sequences

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TINY = {"batch_size": 2, "backbone": "resnet18", "crop_size": 32, "hidden_size": 16,
        "learning_rate": 1e-3, "num_workers": 0, "device": "cpu", "prediction_samples": 0}
pytestmark = pytest.mark.filterwarnings("ignore:ImageNet weights")


@pytest.fixture
def ended_runs(tmp_home):
    """A data home with one completed run and one stopped after its first epoch."""
    from pedsense.train.resnet_trainer import train_resnet_lstm

    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    done = RunFolder(train_resnet_lstm("done", epochs=1, **TINY))
    epochs = []
    stopped = RunFolder(train_resnet_lstm("halted", epochs=3, **TINY, on_event=epochs.append,
                                          should_stop=lambda: any(type(e).__name__ == "EpochEnd" for e in epochs)))
    assert (done.status, stopped.status) == ("completed", "stopped")
    return done, stopped


@pytest.fixture
def app_manager():
    """The dashboard's cached manager, shut down (its workers stopped) after the test."""
    from ui.state import run_manager

    yield run_manager
    run_manager().shutdown(timeout=60)


def runs_page(run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/runs.py")
    at.run()
    next(s for s in at.selectbox if s.label == "Run").set_value(run_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_resume_and_extend_buttons_show_by_status_and_the_queue_settings_save(ended_runs, app_manager, tmp_home):
    done, stopped = ended_runs
    at = runs_page(stopped.run_id)
    keys = {b.key for b in at.button}
    assert f"resume.{stopped.run_id}" in keys and f"extend.{stopped.run_id}" not in keys
    at = runs_page(done.run_id)
    keys = {b.key for b in at.button}
    assert f"extend.{done.run_id}" in keys and f"resume.{done.run_id}" not in keys
    limit = next(n for n in at.number_input if n.label == "Runs at a time")
    limit.set_value(2)
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert not at.exception and read_settings(tmp_home).max_parallel == 2


def test_resume_button_queues_the_run_and_it_goes_on_in_its_folder(ended_runs, app_manager):
    _, stopped = ended_runs
    at = runs_page(stopped.run_id)
    next(b for b in at.button if b.key == f"resume.{stopped.run_id}").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert stopped.status in ("queued", "running")
    resumed = app_manager().wait(stopped.run_id, 180)
    assert resumed.status == "completed", resumed.error
    assert [r["epoch"] for r in stopped.read_metrics()] == [1, 2, 3]


def test_extend_button_queues_a_linked_run(ended_runs, app_manager):
    done, _ = ended_runs
    at = runs_page(done.run_id)
    at.number_input(key=f"extend.epochs.{done.run_id}").set_value(2)
    next(b for b in at.button if b.key == f"extend.{done.run_id}").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    queued_id = at.session_state["selected_run"]
    assert queued_id != done.run_id and "-extended_" in queued_id

    def children():
        return [r for r in list_runs() if r.read_config().get("parent_run") == done.run_id]

    # The queued folder, whose id the page showed, is the one that trains; it starts from the
    # parent's weights and says so.
    (child,) = wait_for(lambda: (found := children()) and found[0].status not in ("queued", "running") and found)
    assert child.run_id == queued_id
    assert child.status == "completed", child.read_status().get("error")
    assert child.read_config()["extends_epochs"] == 2
    assert child.read_config()["weights_source"] == f"file ({(done.path / 'last.pt').resolve()})"
    assert len(list_runs()) == 3


def wait_for(condition, timeout=180.0):
    import time

    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def test_cli_refusals_are_one_clear_line_and_extend_names_its_folder(ended_runs, capsys):
    """The CLI: a completed run is not resumed (extend it), a stopped run whose last.pt is
    corrupt or empty is refused and keeps its status; an extension trains in the folder whose
    id it printed, from the parent's weights."""
    from pedsense.cli import main

    done, stopped = ended_runs
    assert main(["resume", done.run_id]) == 2
    err = capsys.readouterr().err
    assert "completed" in err and "Extend" in err and "Traceback" not in err
    assert main(["extend", stopped.run_id, "--epochs", "2"]) == 2
    assert "resume it instead" in capsys.readouterr().err
    assert main(["stop", done.run_id]) == 0 and done.status == "completed"
    (stopped.path / "last.pt").write_bytes(b"not a checkpoint")
    before = stopped.status_path.read_bytes()
    assert main(["resume", stopped.run_id]) == 2
    assert "last.pt" in capsys.readouterr().err
    assert stopped.status_path.read_bytes() == before
    (stopped.path / "last.pt").write_bytes(b"")  # a save cut short by a kill or a full disk
    assert main(["resume", stopped.run_id]) == 2
    err = capsys.readouterr().err
    assert "last.pt" in err and "is empty (0 bytes)" in err and "train the run again" in err
    assert stopped.status_path.read_bytes() == before
    assert main(["extend", done.run_id, "--epochs", "1"]) == 0
    named = capsys.readouterr().err.split("extension of ")[1].split()[1]
    children = [r for r in list_runs() if r.read_config().get("parent_run") == done.run_id]
    assert [c.run_id for c in children] == [named] and children[0].status == "completed"
    assert children[0].read_config()["weights_source"] == f"file ({(done.path / 'last.pt').resolve()})"
