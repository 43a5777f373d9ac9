"""The run queue on disk, heartbeats and events as JSON lines (no training here)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pedsense.errors import ConfigError
from pedsense.io import write_json_atomic
from pedsense.procs import Heartbeat, heartbeat_alive, me, process_start_token, read_heartbeat
from pedsense.runfolder import RunFolder
from pedsense.runqueue import (claim_next, claim_own, enqueue, read_settings, request_stop, settle_orphans,
                               slot_holders, write_settings, RunTaken)
from pedsense.train import events as ev

EVENTS = [
    ev.RunStarted("m/r", Path("/runs/r"), "resnet-lstm", {"device": "cpu", "parameters": {"epochs": 2}}),
    ev.StageStarted("m/r", "classifier", 3),
    ev.BatchEnd("m/r", 1, 2, 5, "detector"),
    ev.EpochEnd("m/r", 2, 3, {"val_acc": 0.75, "train_loss": 0.5}, "classifier"),
    ev.RunFinished("m/r", Path("/runs/r"), "failed", "boom", {"name": "val_acc", "value": 0.75}),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_events_cross_as_json_records(event):
    import json

    record = json.loads(json.dumps(ev.to_record(event)))
    assert record["type"] == type(event).__name__ and isinstance(record["t"], float)
    assert ev.from_record(record) == event


@pytest.mark.parametrize("record", [{}, {"type": "NoSuchEvent"}, {"type": "EpochEnd", "epoch": 1}, []])
def test_unknown_or_broken_records_are_skipped(record):
    assert ev.from_record(record) is None


def test_read_records_leaves_a_line_still_being_written(tmp_path):
    path = tmp_path / "events.jsonl"
    assert ev.read_records(path) == ([], 0)
    path.write_text('{"type": "A"}\nnot json\n{"type": "B"}\n{"type": "C", "par')
    records, offset = ev.read_records(path)
    assert [r["type"] for r in records] == ["A", "B"]
    with open(path, "a") as f:
        f.write('tial": 1}\n')
    more, _ = ev.read_records(path, offset)
    assert more == [{"type": "C", "partial": 1}]


def test_recorder_throttles_batches_but_keeps_every_epoch_and_the_last_batch(tmp_path):
    seen = []
    recorder = ev.EventRecorder(tmp_path / "events.jsonl", seen.append)
    for epoch in (1, 2):
        for batch in range(1, 51):
            recorder(ev.BatchEnd("m/r", epoch, batch, 50))
        recorder(ev.EpochEnd("m/r", epoch, 2, {"val_acc": 0.5}))
    recorder(ev.RunFinished("m/r", tmp_path, "completed"))
    assert len(seen) == 103  # the caller's hook gets every event
    kinds = [(r["type"], r.get("batch")) for r in ev.read_records(tmp_path / "events.jsonl")[0]]
    assert kinds.count(("EpochEnd", None)) == 2 and kinds[-1] == ("RunFinished", None)
    assert ("BatchEnd", 50) in kinds and len([k for k in kinds if k[0] == "BatchEnd"]) <= 6


def test_heartbeat_is_alive_only_while_fresh_and_from_the_same_process(tmp_path):
    path = tmp_path / "worker.json"
    assert not heartbeat_alive(path)
    with Heartbeat(path):
        assert heartbeat_alive(path) and read_heartbeat(path)["pid"] == me()["pid"]
    assert heartbeat_alive(path)  # fresh until it goes stale
    assert not heartbeat_alive(path, stale_s=0.0)
    write_json_atomic(path, {**me(), "start": "not-its-start", "heartbeat_at": time.time()})
    assert not heartbeat_alive(path)  # a reused pid


def _queued(home, name, **launch) -> RunFolder:
    folder = RunFolder.create("resnet-lstm", name, home=home)
    folder.write_config({"model_type": "resnet-lstm", "parameters": {"epochs": 1}})
    enqueue(folder, {"action": "train", "params": {"epochs": 1}, **launch})
    time.sleep(0.01)  # distinct queued_at
    return folder


@pytest.fixture
def sleepers():
    started = []

    def start():
        started.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        return started[-1]

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_claims_take_the_oldest_free_run_and_respect_max_parallel(tmp_home, sleepers):
    runs = [_queued(tmp_home, f"r{i}") for i in range(3)]
    write_settings(tmp_home, max_parallel=2)
    workers = {}

    def start(folder, claim):  # a "worker": a sleeping process with a heartbeat
        workers[folder.run_id] = sleepers()
        pid = workers[folder.run_id].pid
        write_json_atomic(folder.worker_path, {"pid": pid, "start": process_start_token(pid),
                                               "heartbeat_at": time.time()})

    assert [claim_next(tmp_home, start) for _ in range(3)] == [runs[0], runs[1], None]
    assert [f.run_id for f, _ in slot_holders(tmp_home)] == [runs[0].run_id, runs[1].run_id]
    assert claim_own(runs[2]) is not None  # no free slot: the reason to wait
    workers[runs[0].run_id].kill()
    workers[runs[0].run_id].wait()
    assert settle_orphans(tmp_home) == [runs[0].run_id]
    assert runs[0].status == "interrupted" and "gone" in runs[0].read_status()["error"]
    assert claim_next(tmp_home, start) == runs[2]


def test_settings_are_checked(tmp_home):
    assert read_settings(tmp_home).as_dict() == {"max_parallel": 1, "devices": []}
    for bad in (0, 65, 1.5, "two"):
        with pytest.raises(ConfigError, match="whole number"):
            write_settings(tmp_home, max_parallel=bad)
    assert write_settings(tmp_home, max_parallel="3", devices="cpu, cpu").as_dict() == {
        "max_parallel": 3, "devices": ["cpu"]}


def test_stop_cancels_a_free_queued_run_and_a_queued_resume_goes_back(tmp_home):
    fresh = _queued(tmp_home, "fresh")
    assert request_stop(fresh) == "stopped"
    assert fresh.read_status()["cancelled"] and fresh.read_status()["error"] == "cancelled before it started"
    with pytest.raises(RunTaken, match="no longer queued"):
        claim_own(fresh)
    failed = RunFolder.create("resnet-lstm", "failed", home=tmp_home)
    failed.set_status("failed", error="CUDA fell over")
    enqueue(failed, {"action": "resume", "previous_status": "failed", "previous_error": "CUDA fell over"})
    assert request_stop(failed) == "failed"
    assert failed.read_status()["error"] == "CUDA fell over"


def test_runs_reserved_by_a_live_process_wait_for_it_and_orphan_when_it_dies(tmp_home, sleepers):
    mine = _queued(tmp_home, "mine")
    enqueue(mine, {"action": "train"}, reserved_by=me())
    sleeper = sleepers()
    theirs = _queued(tmp_home, "theirs")
    enqueue(theirs, {"action": "train"}, reserved_by={"pid": sleeper.pid, "start": process_start_token(sleeper.pid)})
    assert claim_next(tmp_home, lambda folder, claim: None) is None  # nobody else starts them
    with pytest.raises(RunTaken, match="another process"):
        claim_own(theirs)
    assert settle_orphans(tmp_home) == []
    sleeper.kill()
    sleeper.wait()
    assert settle_orphans(tmp_home) == [theirs.run_id] and theirs.status == "interrupted"
    assert claim_own(mine) is None and mine.read_status()["claim"]["by"] == me()


def test_claim_own_refuses_a_run_another_process_already_claimed(tmp_home, sleepers):
    run = _queued(tmp_home, "taken")
    write_settings(tmp_home, max_parallel=2)  # a slot is free: only the claim itself may refuse
    worker = sleepers()
    other = {"pid": worker.pid, "start": process_start_token(worker.pid)}

    def start(folder, claim):  # another process's worker took it: its claim and its heartbeat
        folder.update_status(claim={**claim, "by": other})
        write_json_atomic(folder.worker_path, {**other, "heartbeat_at": time.time()})

    assert claim_next(tmp_home, start) == run
    theirs = run.read_status()["claim"]
    with pytest.raises(RunTaken, match="taken by another process"):
        claim_own(run)
    assert run.read_status()["claim"] == theirs and run.status == "queued"


def test_a_refused_resume_leaves_the_run_as_it_was(tmp_home):
    """Whatever refuses it (no resume support, no recorded parameters), the run keeps its status,
    its error and its metrics; the refusal is recorded beside them."""
    from pedsense.errors import PedsenseError
    from pedsense.worker import execute

    folder = RunFolder.create("resnet-lstm", "halted", home=tmp_home)
    folder.write_config({"model_type": "resnet-lstm"})
    folder.append_metrics({"epoch": 1, "val_acc": 0.5})
    folder.set_status("stopped", error="stopped by hand")
    enqueue(folder, {"action": "resume", "previous_status": "stopped", "previous_error": "stopped by hand"})
    with pytest.raises(PedsenseError):
        execute(folder)
    status = folder.read_status()
    assert status["status"] == "stopped" and status["error"] == "stopped by hand"
    assert status["resume_error"] and not status.get("resuming")
    assert folder.read_metrics() == [{"epoch": 1, "val_acc": 0.5}]
