"""RunManager: FIFO queue, stop, failures, interrupted runs, live snapshots.

The trainers here are tiny functions that honour the same hook contract as the real ones
(``on_event``/``should_stop``/``run_dir``) and write through the real ``RunFolder``; the real
trainers run through the manager in tests/test_app_train.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from pedsense.errors import ConfigError
from pedsense.io import write_json_atomic
from pedsense.procs import process_start_token
from pedsense.runfolder import RunFolder, list_runs
from pedsense.runs import RunManager
from pedsense.train.params import FormError
from pedsense.train import events as ev


class TinyTrainer:
    """A trainer with the seed shape: records the order it ran in; ``gate`` holds epoch 1."""

    def __init__(self):
        self.order: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, name=None, epochs=3, batch_size=2, learning_rate=1e-3, device=None, *,
                 fail_at_epoch=0, on_event=None, should_stop=None, run_dir=None, home=None):
        folder = RunFolder(run_dir)
        folder.set_status("running")
        self.order.append(name)
        ev.emit(on_event, ev.RunStarted(folder.run_id, folder.path, "resnet-lstm", {}))
        ev.emit(on_event, ev.StageStarted(folder.run_id, "train", epochs))
        self.started.set()
        for epoch in range(1, epochs + 1):
            self.gate.wait(60)
            for batch in range(1, 3):
                ev.emit(on_event, ev.BatchEnd(folder.run_id, epoch, batch, 2))
            if epoch == fail_at_epoch:
                raise RuntimeError("CUDA fell over (simulated)")
            row = {"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.2 / epoch,
                   "val_acc": 0.5 + epoch / 100}
            folder.append_metrics(row)
            ev.emit(on_event, ev.EpochEnd(folder.run_id, epoch, epochs, row))
            if ev.stop_requested(should_stop):
                folder.set_status("stopped")
                return folder.path
        folder.set_status("completed")
        return folder.path


@pytest.fixture
def trainer():
    return TinyTrainer()


@pytest.fixture
def manager(tmp_home, trainer):
    mgr = RunManager(tmp_home, trainers={"resnet-lstm": trainer})
    yield mgr
    mgr.shutdown()


def test_runs_in_fifo_order_one_at_a_time(manager, trainer):
    trainer.gate.clear()
    ids = [manager.submit("resnet-lstm", {"name": f"run{i}", "epochs": 2}) for i in range(3)]
    assert trainer.started.wait(60)
    states = [manager.snapshot(r).status for r in ids]
    assert states == ["running", "queued", "queued"]
    assert [manager.snapshot(r).queue_position for r in ids[1:]] == [1, 2]
    # The queued runs already exist on disk, so the Runs page (and other tabs) show them.
    assert [RunFolder(manager.snapshot(r).path).status for r in ids[1:]] == ["queued", "queued"]
    trainer.gate.set()
    manager.wait_idle(30)
    assert trainer.order == ["run0", "run1", "run2"]
    for run_id in ids:
        snap = manager.snapshot(run_id)
        assert snap.status == "completed"
        assert snap.epochs_done == snap.epochs_total == 2
        assert [row["epoch"] for row in snap.metrics] == [1, 2]
        assert snap.best_metric["name"] == "val_acc"


def test_stop_running_and_cancel_queued(manager, trainer):
    trainer.gate.clear()
    running = manager.submit("resnet-lstm", {"name": "long", "epochs": 50})
    queued = manager.submit("resnet-lstm", {"name": "never", "epochs": 2})
    assert trainer.started.wait(60)
    assert manager.stop(queued) == "stopped"
    assert manager.stop(running) == "running"
    trainer.gate.set()
    snap = manager.wait(running, 60)
    assert snap.status == "stopped"
    assert 1 <= snap.epochs_done < 50
    assert RunFolder(snap.path).status == "stopped"
    cancelled = manager.snapshot(queued)
    assert cancelled.status == "stopped" and cancelled.epochs_done == 0
    assert trainer.order == ["long"]


def test_trainer_exception_fails_the_run_and_the_queue_goes_on(manager, trainer):
    bad = manager.submit("resnet-lstm", {"name": "bad", "epochs": 3, "fail_at_epoch": 2})
    good = manager.submit("resnet-lstm", {"name": "good", "epochs": 1})
    manager.wait_idle(30)
    snap = manager.snapshot(bad)
    assert snap.status == "failed"
    assert "CUDA fell over" in snap.error
    assert len(snap.metrics) == 1  # the epoch before the crash is kept
    on_disk = RunFolder(snap.path)
    assert on_disk.status == "failed" and "CUDA fell over" in on_disk.read_status()["error"]
    assert "RuntimeError" in on_disk.read_log()
    assert manager.snapshot(good).status == "completed"


def test_invalid_params_create_nothing(manager, tmp_home):
    with pytest.raises(FormError) as info:
        manager.submit("resnet-lstm", {"epochs": 0, "batch_size": -1, "learning_rate": 0.0})
    assert set(info.value.field_errors) == {"epochs", "batch_size", "learning_rate"}
    with pytest.raises(FormError) as info:
        manager.submit("resnet-lstm", {"epochs": 1, "no_such_knob": 3})
    assert "no_such_knob" in info.value.field_errors
    with pytest.raises(ConfigError):
        manager.submit("transformer", {})
    assert list_runs(tmp_home) == []


def test_names_are_sanitised(manager):
    run_id = manager.submit("resnet-lstm", {"name": "../../etc/passwd", "epochs": 1})
    manager.wait(run_id, 60)
    path = manager.snapshot(run_id).path
    assert "/models/resnet-lstm/etc-passwd_" in path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _claim(folder: RunFolder, status: str, pid: int) -> None:
    """Write status.json as process ``pid`` would have (set_status always records our pid)."""
    write_json_atomic(folder.status_path, {**folder.set_status(status), "pid": pid, "pid_start": None})


def _heartbeat(folder: RunFolder, pid: int, start: str | None = None) -> None:
    """Write worker.json as the heartbeat of process ``pid`` would."""
    write_json_atomic(folder.worker_path, {"pid": pid, "start": start or process_start_token(pid),
                                           "heartbeat_at": time.time()})


def test_dead_process_runs_are_marked_interrupted_with_metrics_kept(tmp_home, trainer):
    crashed = RunFolder.create("resnet-lstm", "crashed", home=tmp_home)
    crashed.write_config({"model_type": "resnet-lstm", "epochs": 5})
    _claim(crashed, "running", _dead_pid())
    crashed.append_metrics({"epoch": 1, "train_loss": 0.9, "val_acc": 0.6})
    orphan = RunFolder.create("yolo", "orphan", home=tmp_home)
    orphan.set_status("queued", owner_pid=_dead_pid())
    finished = RunFolder.create("yolo", "done", home=tmp_home)
    finished.set_status("completed")
    # A run whose process is alive elsewhere (a CLI training) is left alone.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        elsewhere = RunFolder.create("hybrid", "cli", home=tmp_home)
        _claim(elsewhere, "running", sleeper.pid)
        _heartbeat(elsewhere, sleeper.pid)

        mgr = RunManager(tmp_home, trainers={"resnet-lstm": trainer})
        assert sorted(mgr.interrupted) == sorted([crashed.run_id, orphan.run_id])
        snap = mgr.snapshot(crashed.run_id)
        assert snap.status == "interrupted"
        assert snap.metrics[0]["val_acc"] == 0.6
        assert "gone" in snap.error
        assert finished.status == "completed"
        assert elsewhere.status == "running"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_reused_pid_does_not_keep_a_run_running(tmp_home, trainer):
    """A run recorded with a live pid but no start token, or a heartbeat whose start token is
    another process's, cannot be told from a reused pid: it is interrupted, so it can be deleted."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        no_token = RunFolder.create("resnet-lstm", "no-token", home=tmp_home)
        _claim(no_token, "running", sleeper.pid)
        wrong_token = RunFolder.create("resnet-lstm", "wrong-token", home=tmp_home)
        _claim(wrong_token, "running", sleeper.pid)
        _heartbeat(wrong_token, sleeper.pid, start="12345")
        stale = RunFolder.create("resnet-lstm", "stale", home=tmp_home)
        _claim(stale, "running", sleeper.pid)
        write_json_atomic(stale.worker_path, {"pid": sleeper.pid, "start": process_start_token(sleeper.pid),
                                              "heartbeat_at": time.time() - 3600})
        mgr = RunManager(tmp_home, trainers={"resnet-lstm": trainer})
        assert sorted(mgr.interrupted) == sorted([no_token.run_id, wrong_token.run_id, stale.run_id])
        for folder in (no_token, wrong_token, stale):
            assert folder.status == "interrupted"
            mgr.delete(folder.run_id)
        assert list_runs(tmp_home) == []
        mgr.shutdown()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_second_manager_leaves_live_runs_alone_and_sees_them(manager, trainer, tmp_home):
    trainer.gate.clear()
    run_id = manager.submit("resnet-lstm", {"name": "shared", "epochs": 1})
    assert trainer.started.wait(60)
    other = RunManager(tmp_home, trainers={"resnet-lstm": trainer})
    assert other.interrupted == []
    assert [r.run_id for r in other.runs()] == [run_id]
    trainer.gate.set()
    manager.wait(run_id, 60)


def test_delete_only_finished_runs(manager, trainer, tmp_home):
    trainer.gate.clear()
    run_id = manager.submit("resnet-lstm", {"name": "busy", "epochs": 1})
    assert trainer.started.wait(60)
    with pytest.raises(ConfigError, match="stop it"):
        manager.delete(run_id)
    trainer.gate.set()
    manager.wait(run_id, 60)
    manager.delete(run_id)
    assert manager.runs() == []


def test_live_snapshot_has_batch_progress_and_eta(manager, trainer):
    seen = []
    trainer.gate.clear()
    run_id = manager.submit("resnet-lstm", {"name": "eta", "epochs": 3})
    assert trainer.started.wait(60)
    trainer.gate.set()
    while manager.snapshot(run_id).status in ("queued", "running"):
        seen.append(manager.snapshot(run_id))
    final = manager.snapshot(run_id)
    assert final.duration_s is not None and final.eta_s is None
    assert all(isinstance(s.metrics, tuple) for s in seen)
    # Snapshots are copies: changing one never touches the manager's state (or its disk cache).
    for snapshot in (seen[-1], final):
        snapshot.metrics[0].clear()
    assert len(manager.snapshot(run_id).metrics) == 3 and manager.snapshot(run_id).metrics[0]["epoch"] == 1


def test_a_run_refused_by_its_trainer_before_starting_is_failed_by_the_manager(tmp_home):
    def refusing(name=None, epochs=3, batch_size=2, learning_rate=1e-3, device=None, *,
                 on_event=None, should_stop=None, run_dir=None, home=None):
        raise ConfigError("the dataset changed since submit (simulated): rebuild it")

    mgr = RunManager(tmp_home, trainers={"resnet-lstm": refusing})
    try:
        snap = mgr.wait(mgr.submit("resnet-lstm", {"epochs": 1}), 30)
    finally:
        mgr.shutdown()
    folder = RunFolder(snap.path)
    assert snap.status == "failed" and folder.status == "failed"
    assert "dataset changed since submit" in folder.read_status()["error"]
    assert "failed before training" in folder.read_log()
