"""Data-parallel training: device lists, the sharded sampler, the launcher, DDP on two gloo
processes (torchrun and the trainer's own), YOLO's DDP followed through results.csv."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pedsense import worker
from pedsense.device import DeviceError, parse_device_list, resolve_device_list
from pedsense.errors import ConfigError
from pedsense.launches import queue_run
from pedsense.runfolder import RunFolder
from pedsense.runqueue import claim_next
from pedsense.train import distributed
from pedsense.train.distributed import (Distributed, DistributedError, ShardedBatchSampler, explain_exit,
                                        launch_command)
from pedsense.train.events import BatchEnd, EpochEnd, RunFinished, RunStarted, StageStarted, StepEnd, read_records
from pedsense.train.preflight import preflight
from pedsense.train.resnet_trainer import PedestrianSequenceDataset, train_resnet_lstm
from pedsense.worker import spawn_worker, worker_command
from test_train_fixtures import write_detector, write_resnet_crops, write_resnet_sequences, write_yolo_dataset

pytestmark = pytest.mark.filterwarnings("ignore:ImageNet weights", "ignore:Base weights")


@pytest.mark.parametrize("value, expected", [
    ("", None), ("cpu", ("cpu",)), ("cpu,cpu", ("cpu", "cpu")), ("CPU, cpu", ("cpu", "cpu")),
    ("cuda:0,cuda:1", ("cuda:0", "cuda:1")), ("0,1", ("cuda:0", "cuda:1")), ("cuda", ("cuda:0",)),
    (2, ("cuda:0", "cuda:1")), ("3", ("cuda:0", "cuda:1", "cuda:2")), (["cpu", "cpu"], ("cpu", "cpu")),
])
def test_device_lists(value, expected):
    assert (parse_device_list(value) if value != "" else None) == expected


@pytest.mark.parametrize("value, message", [
    ("cpu,cuda:0", "mixes the CPU and GPUs"), ("0,0", "names a GPU twice"), ("tpu", "is not a device"),
    (0, "1 to 64 GPUs"), (65, "1 to 64 GPUs"), (True, "device list"), ("cpu," * 65, "at most 64"),
])
def test_bad_device_lists_name_the_problem(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_device_list(value)


def test_a_device_list_naming_a_gpu_that_does_not_exist_is_refused(tmp_home, monkeypatch):
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    with pytest.raises(DeviceError, match="names GPUs, but no CUDA GPU is visible"):
        resolve_device_list("cuda:0,cuda:1")
    assert "no CUDA GPU" in preflight("resnet-lstm", {"devices": "0,1"})["devices"]
    assert "Ultralytics trains YOLO on several devices only on CUDA GPUs" in \
        preflight("yolo", {"devices": "cpu,cpu"})["devices"]
    with pytest.raises(DeviceError):
        train_resnet_lstm(devices="cuda:0,cuda:1", batch_size=2)
    assert not (tmp_home / "models").exists()  # refused before any run folder
    # on a machine with two GPUs (the GPU mocked), a third one is named with the visible ones
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DeviceError, match=r"cuda:3 does not exist; 2 GPU\(s\) are visible: cuda:0, cuda:1"):
        resolve_device_list("cuda:0,cuda:3")


@pytest.mark.parametrize("n, batch, world, min_per_rank", [
    (12, 4, 2, 1), (13, 4, 2, 1), (14, 4, 2, 1), (15, 4, 2, 1), (9, 4, 3, 1), (14, 4, 2, 2), (7, 8, 2, 1),
])
def test_the_sharded_sampler_covers_what_one_process_would(n, batch, world, min_per_rank):
    one_process = n - 1 if n % batch == 1 and n > batch else n  # make_loader's drop rule
    for epoch in (1, 2):
        shards = []
        for rank in range(world):
            sampler = ShardedBatchSampler(n, batch, rank=rank, world_size=world, shuffle=True, seed=3,
                                          min_per_rank=min_per_rank)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        assert len({len(s) for s in shards}) == 1  # every rank takes as many steps (DDP needs it)
        seen = [i for shard in shards for batch_ in shard for i in batch_]
        assert len(seen) == len(set(seen))  # each sample once
        if min_per_rank == 1:
            assert len(seen) == one_process
        else:
            assert len(seen) >= one_process - world * min_per_rank
        assert all(len(b) >= min_per_rank for shard in shards for b in shard)
    orders = [[i for b in ShardedBatchSampler(n, batch, rank=0, world_size=world, shuffle=True, seed=3)
               for i in b]]
    resampled = ShardedBatchSampler(n, batch, rank=0, world_size=world, shuffle=True, seed=3)
    resampled.set_epoch(5)
    assert [i for b in resampled for i in b] != orders[0]  # re-seeded each epoch
    evaluation = [ShardedBatchSampler(n, batch, rank=r, world_size=world, shuffle=False) for r in range(world)]
    assert sorted(i for s in evaluation for b in s for i in b) == list(range(n))  # validation: all of it


def test_launch_commands(tmp_path, monkeypatch):
    lstm, yolo = tmp_path / "models" / "resnet-lstm" / "r_1", tmp_path / "models" / "yolo" / "y_1"
    command = launch_command(lstm, "cpu,cpu")
    assert Path(command[0]).name == "torchrun"
    assert command[1:] == ["--standalone", "--nnodes", "1", "--nproc-per-node", "2", "-m", "pedsense.worker",
                           str(lstm)]
    assert launch_command(lstm, None) == [sys.executable, "-m", "pedsense.worker", str(lstm)]
    # Ultralytics starts its own DDP processes; the hybrid starts its classifier's itself
    assert launch_command(yolo, "0,1") == [sys.executable, "-m", "pedsense.worker", str(yolo)]
    with pytest.raises(ConfigError, match="not a device"):
        launch_command(lstm, "gpu0,gpu1")
    # no torchrun beside the interpreter nor on PATH: a clear message, not a failed exec
    lonely = tmp_path / "env" / "bin"
    lonely.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(lonely / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DistributedError, match="torchrun, PyTorch's launcher, was found neither beside"):
        launch_command(lstm, "cpu,cpu")


def test_queueing_a_cpu_run_checks_its_devices_without_importing_torch(tmp_home):
    """`pedsense train --queue --device cpu` (or devices cpu,cpu) returns at once: nothing of a
    CPU device needs torch, whose import alone takes 2 s (the worker that trains imports it)."""
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    code = ("import sys; from pedsense.launches import queue_run; "
            "queue_run('resnet-lstm', {'epochs': 1, 'batch_size': 2, 'device': 'cpu', 'devices': 'cpu,cpu'}); "
            "print(sorted(m for m in ('torch', 'torchvision', 'ultralytics') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert [RunFolder(f).status for f in (tmp_home / "models" / "resnet-lstm").iterdir()] == ["queued"]


@pytest.mark.parametrize("code, log, words", [
    (1, "RuntimeError: ... EADDRINUSE ... address already in use", "rendezvous port is in use"),
    (1, "torch.distributed.elastic.multiprocessing.errors.ChildFailedError", "a training process failed"),
    (1, "RendezvousTimeoutError: rendezvous timeout", "timed out waiting for each other"),
    (3, "", "exited with code 3"),
])
def test_launcher_exits_in_words(code, log, words):
    assert words in explain_exit(code, log)


def test_a_process_that_cannot_join_its_group_says_so(monkeypatch):
    monkeypatch.setattr(distributed, "GROUP_TIMEOUT", datetime.timedelta(seconds=2))
    lonely = Distributed(rank=1, world_size=2, init_method="tcp://127.0.0.1:9", launcher="spawn")
    with pytest.raises(DistributedError, match="Process 1 of 2 could not join the data-parallel group"):
        lonely.join()


def test_under_torchrun_the_hybrid_wants_a_trained_detector(tmp_home, monkeypatch):
    from pedsense.train.hybrid_trainer import train_hybrid

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="Under torchrun the hybrid trains its classifier only"):
        train_hybrid(devices="cpu,cpu")


def test_a_batch_smaller_than_the_processes_is_refused(tmp_home):
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    with pytest.raises(ConfigError, match="batch_size=1 is smaller than the 2 training processes"):
        train_resnet_lstm(devices="cpu,cpu", batch_size=1)


# -- real DDP: two gloo processes on the CPU ----------------------------------------------------
DDP_PARAMS = {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3, "backbone": "resnet18", "crop_size": 32,
              "pretrained": False, "devices": "cpu,cpu", "num_workers": 0, "prediction_samples": 0}


def start_queued(home: Path) -> tuple[RunFolder, list[subprocess.Popen]]:
    """Claim the queued run as the run manager does and start its worker (``spawn_worker``)."""
    started: list[subprocess.Popen] = []
    folder = claim_next(home, lambda f, claim: started.append(spawn_worker(f)))
    return folder, started


@pytest.mark.slow
def test_a_queued_run_on_two_devices_trains_under_torchrun_through_the_worker(tmp_home):
    write_resnet_sequences(tmp_home)  # 12 training sequences of 4 frames: 3 global batches of 4
    queued = queue_run("resnet-lstm", {**DDP_PARAMS, "epochs": 3, "batch_size": 4, "name": "ddp"}, tmp_home)
    assert Path(worker_command(queued.path)[0]).name == "torchrun"  # the supervisor's seam
    folder, started = start_queued(tmp_home)
    assert folder.path == queued.path and len(started) == 1
    assert started[0].wait(timeout=600) == 0, folder.worker_log_path.read_text()[-3000:]
    assert folder.status == "completed"
    rows = folder.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # one row per epoch, written by rank 0 alone
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    record = folder.read_config()["distributed"]
    assert record["world_size"] == 2 and record["backend"] == "gloo" and record["launcher"] == "torchrun"
    digests = record["weights_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # identical weights on both ranks
    assert record["samples_per_epoch"] == len(PedestrianSequenceDataset("train", home=tmp_home)) == 12
    assert folder.read_log().count("train epoch 1/3") == 1
    assert sorted(p.name for p in folder.path.glob("*.pt")) == ["best.pt", "last.pt"]
    finished = [r for r in read_records(folder.events_path)[0] if r.get("type") == "RunFinished"]
    assert len(finished) == 1  # rank 0's events alone


def test_torchrun_missing_fails_the_queued_run_with_the_reason(tmp_home, monkeypatch):
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    queued = queue_run("resnet-lstm", {**DDP_PARAMS, "batch_size": 2}, tmp_home)
    lonely = tmp_home / "env" / "bin"
    lonely.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(lonely / "python"))
    monkeypatch.setenv("PATH", str(tmp_home / "empty"))
    folder, started = start_queued(tmp_home)
    assert folder is None and started == []  # nothing started
    status = queued.read_status()
    assert status["status"] == "failed"
    assert "its worker could not be started: torchrun, PyTorch's launcher, was found neither" in status["error"]
    # a resume or a waiting worker runs in one process (its trainer starts its own processes)
    assert worker_command(queued.path, wait=True)[1:] == ["-m", "pedsense.worker", str(queued.path), "--wait"]


def test_a_worker_of_rank_above_zero_writes_nothing(tmp_home, monkeypatch):
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    queued = queue_run("resnet-lstm", {**DDP_PARAMS, "batch_size": 2}, tmp_home)
    before = {p.name: p.read_bytes() for p in queued.path.iterdir() if p.is_file()}
    monkeypatch.setenv("RANK", "1")
    calls = []
    monkeypatch.setattr(worker, "_train", lambda folder, launch, *a: calls.append(launch["params"]["devices"]))
    assert worker.main([str(queued.path)]) == 0
    assert calls == ["cpu,cpu"]  # it trained beside rank 0 ...
    assert {p.name: p.read_bytes() for p in queued.path.iterdir() if p.is_file()} == before  # ... silently


@pytest.mark.slow
def test_hybrid_classifier_on_two_processes_it_starts_itself_with_cached_features(tmp_home):
    from pedsense.train.hybrid_trainer import train_hybrid

    write_resnet_crops(tmp_home)
    detector = write_detector(tmp_home / "det.pt")
    events = []
    run_dir = train_hybrid(yolo_model=str(detector), epochs=3, batch_size=4, learning_rate=1e-3,
                           backbone="resnet18", crop_size=32, frozen_children=8, devices="cpu,cpu", prediction_samples=0,
                           on_event=events.append,  # rank 0's events, relayed; the stop, passed on
                           should_stop=lambda: sum(isinstance(e, EpochEnd) for e in events) >= 2)
    folder = RunFolder(run_dir)
    assert folder.status == "stopped"
    assert [r["epoch"] for r in folder.read_metrics()] == [1, 2]
    kinds = [type(e) for e in events if not isinstance(e, (BatchEnd, StepEnd))]
    assert kinds == [RunStarted, StageStarted, EpochEnd, EpochEnd, RunFinished]
    assert events[-1].status == "stopped"
    config = folder.read_config()
    assert config["feature_cache"]["train"]["status"] == "built"  # by rank 0; rank 1 loaded it
    digests = config["distributed"]["weights_digests"]
    assert config["distributed"]["launcher"] == "spawn" and digests[0] == digests[1]
    assert (run_dir / "resnet_classifier.pt").is_file() and (run_dir / "yolo_detector.pt").is_file()


# -- YOLO: Ultralytics' own DDP, followed through results.csv (the GPUs mocked) -----------------
RESULTS_HEADER = ("epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),"
                  "metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,"
                  "val/dfl_loss,lr/pg0,lr/pg1,lr/pg2\n")


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def fake_ddp_train(calls: list, hold: bool = False):
    """What Ultralytics' DDP parent does to its save folder: empties it, then rank 0 appends one
    results.csv row and saves weights per epoch (the children are not ours to run here)."""
    def train(self, **kwargs):
        calls.append(kwargs)
        save_dir = Path(kwargs["project"]) / kwargs["name"]
        shutil.rmtree(save_dir, ignore_errors=True)  # generate_ddp_command removes save_dir
        (save_dir / "weights").mkdir(parents=True)
        (save_dir / "results.csv").write_text(RESULTS_HEADER)
        for epoch in range(1, kwargs["epochs"] + 1):
            with open(save_dir / "results.csv", "a") as f:
                f.write(f"{epoch},{epoch * 1.5},1.2,0.9,1.1,0.5,0.4,0.{epoch}5,0.{epoch}2,1.3,1.0,1.2,0.01,0.01,0.01\n")
            for name in ("last.pt", "best.pt"):
                (save_dir / "weights" / name).write_bytes(b"weights of epoch %d" % epoch)
            if hold:  # the launcher keeps training until pedsense ends it
                subprocess.run([sys.executable, "-c", "import time; time.sleep(120)", "torch.distributed.run"],
                               check=True)
            time.sleep(1.3)
    return train


def test_yolo_on_two_gpus_streams_its_epochs_from_results_csv(tmp_home, two_gpus, monkeypatch):
    from ultralytics import YOLO

    from pedsense.train.yolo_trainer import train_yolo

    write_yolo_dataset(tmp_home)
    calls, events = [], []
    monkeypatch.setattr(YOLO, "train", fake_ddp_train(calls))
    run_dir = train_yolo(epochs=2, batch_size=4, imgsz=64, workers=0, devices="cuda:0,cuda:1",
                         on_event=events.append)
    assert calls[0]["device"] == "0,1" and calls[0]["batch"] == 4  # the global batch, Ultralytics splits it
    folder = RunFolder(run_dir)
    assert folder.status == "completed"  # its own files survived Ultralytics emptying its folder
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    rows = folder.read_metrics()
    assert [r["mAP50"] for r in rows] == [0.15, 0.25] and rows[0]["train_loss"] == pytest.approx(3.2)
    assert folder.read_config()["best_metric"]["epoch"] == 2
    assert (run_dir / "best.pt").read_bytes() == b"weights of epoch 2" and (run_dir / "results.csv").is_file()
    assert (run_dir / "ultralytics" / "results.csv").is_file()


def test_a_stop_ends_ultralytics_ddp_launcher_and_keeps_the_last_epoch(tmp_home, two_gpus, monkeypatch):
    from ultralytics import YOLO

    from pedsense.train.yolo_trainer import train_yolo

    write_yolo_dataset(tmp_home)
    events = []
    monkeypatch.setattr(YOLO, "train", fake_ddp_train([], hold=True))
    run_dir = train_yolo(epochs=3, batch_size=4, imgsz=64, workers=0, devices="0,1", on_event=events.append,
                         should_stop=lambda: any(isinstance(e, EpochEnd) for e in events))
    assert RunFolder(run_dir).status == "stopped"
    assert [r["epoch"] for r in RunFolder(run_dir).read_metrics()] == [1]  # ended, not waited out
    assert (run_dir / "last.pt").read_bytes() == b"weights of epoch 1"
