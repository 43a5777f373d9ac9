"""Runs as worker processes: live across processes, stop and kill, dead workers, a server that
restarts, two servers and the CLI on one data home, the slot limit, the device pool.

Every run here is a real (tiny) ResNet-LSTM training in a real worker process
(``python -m pedsense.worker``) on a few 32 px sequences; the "servers" are RunManagers in
subprocesses, killed with SIGKILL where the fault asks for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pedsense import supervisor
from pedsense.config import REPO_ROOT
from pedsense.device import DeviceError
from pedsense.launches import queue_run
from pedsense.io import write_json_atomic
from pedsense.procs import process_start_token, read_heartbeat, same_process
from pedsense.runfolder import RunFolder, list_runs
from pedsense.runqueue import read_settings
from pedsense.runs import RunManager
from pedsense.train.events import read_records
from pedsense.train.params import FormError
from test_train_fixtures import write_resnet_sequences

pytestmark = pytest.mark.filterwarnings("ignore:ImageNet weights")
TINY = {"batch_size": 2, "backbone": "resnet18", "crop_size": 32, "hidden_size": 16,
        "learning_rate": 1e-3, "num_workers": 0, "device": "cpu", "prediction_samples": 0}
TINY_ARGS = ["--batch-size", "2", "--backbone", "resnet18", "--crop-size", "32", "--hidden-size", "16",
             "--learning-rate", "1e-3", "--num-workers", "0", "--device", "cpu",
             "--prediction-samples", "0"]
SERVER = """
import json, sys, time
from pedsense.runs import RunManager
manager = RunManager(sys.argv[1])
if len(sys.argv) > 2:
    print(manager.submit("resnet-lstm", json.loads(sys.argv[2])), flush=True)
print("serving", flush=True)
while True:
    manager.active()
    time.sleep(0.2)
"""


@pytest.fixture
def home(tmp_home):
    """A data home with 4 training and 2 validation sequences of 2 frames (2 batches an epoch)."""
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    return tmp_home


@pytest.fixture
def managers(tmp_home):
    """Every RunManager a test makes is shut down at the end, and no worker outlives the test."""
    made = []
    yield lambda home: made.append(RunManager(home)) or made[-1]
    for manager in made:
        manager.shutdown(timeout=60)
    for folder in list_runs(tmp_home):
        worker = read_heartbeat(folder.worker_path)
        if worker and same_process(worker):
            os.kill(worker["pid"], signal.SIGKILL)


@pytest.fixture
def spawn():
    """Start a subprocess (killed at the end): ``spawn(args) -> Popen`` with pipes."""
    started = []

    def start(args, home):
        env = {**os.environ, "PEDSENSE_HOME": str(home), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO_ROOT)}
        started.append(subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=60)


def wait_for(condition, timeout=120.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def worker_pid(manager, run_id) -> int:
    return read_heartbeat(RunFolder(manager.snapshot(run_id).path).worker_path)["pid"]


def test_a_worker_run_is_live_in_the_manager_and_stops_within_a_batch(home, managers):
    manager = managers(home)
    run_id = manager.submit("resnet-lstm", {**TINY, "name": "live", "epochs": 500})
    assert manager.snapshot(run_id).status == "queued"  # on disk before its worker starts
    live = wait_for(lambda: (s := manager.snapshot(run_id)).epochs_done >= 1 and s.batch >= 1 and s,
                    what="an epoch and a batch in the live snapshot")
    assert live.status == "running" and live.live and live.metrics[0]["epoch"] == 1
    assert worker_pid(manager, run_id) != os.getpid()  # trained in a worker process
    assert manager.stop(run_id) == "running"
    assert manager.snapshot(run_id).stop_requested
    stopped = manager.wait(run_id, 120)
    assert stopped.status == "stopped" and stopped.error is None
    folder = RunFolder(stopped.path)
    assert (folder.path / "last.pt").is_file() and not folder.stop_path.exists()
    # "Within one batch": after the stop request the trainer finished at most the batch it was in.
    records, _ = read_records(folder.events_path)
    kinds = [r["type"] for r in records]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert [r["epoch"] for r in records if r["type"] == "EpochEnd"] == [r["epoch"] for r in folder.read_metrics()]
    assert stopped.epochs_done <= live.epochs_done + 1


def test_a_worker_killed_mid_epoch_fails_with_the_signal_and_the_manager_serves_on(home, managers):
    manager = managers(home)
    run_id = manager.submit("resnet-lstm", {**TINY, "name": "victim", "epochs": 500})
    wait_for(lambda: (s := manager.snapshot(run_id)).epochs_done >= 1 and s.batch >= 1, what="mid-epoch")
    os.kill(worker_pid(manager, run_id), signal.SIGKILL)
    failed = manager.wait(run_id, 60)
    assert failed.status == "failed"
    assert "SIGKILL" in failed.error and "Last lines of train.log" in failed.error
    assert len(RunFolder(failed.path).read_metrics()) >= 1  # metrics kept
    assert RunFolder(failed.path).status == "failed"
    # The manager still serves: the next run starts in a fresh worker.
    next_id = manager.submit("resnet-lstm", {**TINY, "name": "next", "epochs": 1})
    assert manager.wait(next_id, 120).status == "completed"


@pytest.mark.slow
def test_a_server_killed_mid_run_leaves_the_run_training_and_a_new_one_reattaches(home, managers, spawn):
    server = spawn([sys.executable, "-c", SERVER, str(home), json.dumps({**TINY, "name": "survivor", "epochs": 6})],
                   home)
    run_id = server.stdout.readline().strip()
    folder = RunFolder(home / "models" / run_id)
    wait_for(lambda: len(folder.read_metrics()) >= 1, what="the first epoch")
    server.kill()  # SIGKILL: no clean-up of any kind
    server.wait(60)
    assert folder.status == "running"

    manager = managers(home)  # the dashboard starts again
    assert manager.interrupted == []
    first = manager.snapshot(run_id)
    assert first.status == "running" and first.live
    wait_for(lambda: manager.snapshot(run_id).epochs_done > first.epochs_done, what="the live snapshot to move")
    done = manager.wait(run_id, 180)
    assert done.status == "completed"
    assert [r["epoch"] for r in folder.read_metrics()] == [1, 2, 3, 4, 5, 6]  # continuous
    assert [r["epoch"] for r in done.metrics] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_two_servers_on_one_home_start_each_queued_run_once_and_one_at_a_time(home, managers, spawn):
    queued = [queue_run("resnet-lstm", {**TINY, "name": f"q{i}", "epochs": 2}, home) for i in range(2)]
    server = spawn([sys.executable, "-c", SERVER, str(home)], home)
    assert server.stdout.readline().strip() == "serving"
    manager = managers(home)
    for folder in queued:
        assert manager.wait(folder.run_id, 240).status == "completed"
    spans = []
    for folder in queued:
        assert folder.worker_log_path.read_text().count("pedsense worker ") == 1  # started once
        assert folder.read_log().count("training started") == 1
        records, _ = read_records(folder.events_path)
        spans.append((records[0]["t"], records[-1]["t"]))
    (start_a, end_a), (start_b, end_b) = sorted(spans)
    assert end_a <= start_b  # max_parallel=1 held across the two processes


@pytest.mark.slow
def test_a_cli_run_is_visible_counted_and_stoppable_from_a_manager(home, managers, spawn):
    cli = spawn([sys.executable, "-m", "pedsense", "train", "resnet-lstm", "--epochs", "500", "--name", "cli",
                 *TINY_ARGS], home)
    manager = managers(home)
    active = wait_for(lambda: [s for s in manager.active() if s.batch >= 1], what="the CLI run in the manager")
    (cli_run,) = active
    assert cli_run.run_id.startswith("resnet-lstm/cli_") and cli_run.status == "running" and cli_run.live
    # It holds the only slot: a run launched from the dashboard waits.
    waiting = manager.submit("resnet-lstm", {**TINY, "name": "waits", "epochs": 1})
    time.sleep(2 * supervisor.SCAN_EVERY_S)
    assert manager.snapshot(waiting).status == "queued"
    assert manager.stop(cli_run.run_id) == "running"
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 130, err
    assert "run stopped" in out
    assert manager.wait(cli_run.run_id, 60).status == "stopped"
    # The slot is free again: the waiting run starts now.
    assert manager.wait(waiting, 180).status == "completed"


def test_a_worker_that_does_not_stop_is_killed_after_the_grace_period(home, managers, monkeypatch):
    monkeypatch.setattr(supervisor, "STOP_GRACE_S", 0.5)
    monkeypatch.setattr(supervisor, "KILL_AFTER_S", 0.5)
    manager = managers(home)
    run_id = manager.submit("resnet-lstm", {**TINY, "name": "stuck", "epochs": 500})
    wait_for(lambda: manager.snapshot(run_id).batch >= 1, what="the first batch")
    pid = worker_pid(manager, run_id)
    os.kill(pid, signal.SIGSTOP)  # hung (think: a native library that never returns)
    try:
        manager.stop(run_id)
        ended = manager.wait(run_id, 60)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert ended.status == "stopped"
    assert "killed after not stopping within 0.5 s" in ended.error
    assert "killing it" in RunFolder(ended.path).read_log()


def test_a_device_that_does_not_exist_is_refused_before_launch(home, managers):
    manager = managers(home)
    with pytest.raises(DeviceError, match="cuda:7"):
        manager.set_queue_settings(devices="cpu,cuda:7")
    assert read_settings(home).devices == ()
    with pytest.raises(FormError) as info:
        manager.submit("resnet-lstm", {**TINY, "device": "cuda:7"})
    assert "device" in info.value.field_errors
    assert list_runs(home) == []
    from pedsense.cli import main

    assert main(["runs", "--devices", "cuda:7"]) == 2
    assert manager.set_queue_settings(max_parallel=2, devices="cpu").as_dict() == {"max_parallel": 2,
                                                                                   "devices": ["cpu"]}
    with pytest.raises(Exception, match="whole number from 1 to 64"):
        manager.set_queue_settings(max_parallel=0)


@pytest.mark.slow
def test_train_detach_leaves_the_run_to_a_worker_and_pedsense_stop_ends_it(home, spawn):
    cli = spawn([sys.executable, "-m", "pedsense", "train", "resnet-lstm", "--detach", "--epochs", "500",
                 "--name", "detached", *TINY_ARGS], home)
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    run_id = out.strip()
    assert run_id.startswith("resnet-lstm/detached_") and "pedsense stop" in err
    folder = RunFolder(home / "models" / run_id)
    wait_for(lambda: len(folder.read_metrics()) >= 1, what="the detached run's first epoch")
    assert folder.status == "running"
    stop = spawn([sys.executable, "-m", "pedsense", "stop", run_id], home)
    out, err = stop.communicate(timeout=120)
    assert stop.returncode == 0, err
    assert f"{run_id}: stopped" in out and "stop requested" in err
    assert folder.status == "stopped" and (folder.path / "last.pt").is_file()


def test_cli_train_waits_for_a_slot_saying_why_and_ctrl_c_cancels_it(home, spawn):
    holder = RunFolder.create("resnet-lstm", "holder", home=home)
    holder.set_status("running")
    sleeper = spawn([sys.executable, "-c", "import time; time.sleep(120)"], home)
    write_json_atomic(holder.worker_path, {"pid": sleeper.pid, "start": process_start_token(sleeper.pid),
                                           "heartbeat_at": time.time()})  # a live run holds the slot
    cli = spawn([sys.executable, "-m", "pedsense", "train", "resnet-lstm", "--epochs", "1", "--name", "waiter",
                 *TINY_ARGS], home)
    for line in cli.stderr:
        if "waiting for a free slot" in line:
            assert holder.run_id in line and "--max-parallel" in line
            break
    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 130, err
    (waiter,) = [f for f in list_runs(home) if f.name.startswith("waiter_")]
    assert waiter.status == "stopped" and waiter.read_status()["error"] == "cancelled before it started"
    assert waiter.read_metrics() == []
