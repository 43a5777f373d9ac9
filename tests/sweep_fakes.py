"""A tiny trainer with the seed's hook contract, for sweep tests that need many fast trials.

Its validation accuracy is a known function of its parameters (``learning_rate * 100`` reached
linearly over the epochs, plus ``seed / 1000``), so a test knows every trial's value. It writes
through the real ``RunFolder`` and honours ``should_stop`` within an epoch, as the real trainers
do. Importable by child processes (``tests/`` on ``sys.path``), which run :func:`work`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from pedsense.runfolder import RunFolder, best_record
from pedsense.train import events as ev

EPOCH_S = float(os.environ.get("SWEEP_FAKE_EPOCH_S", "0.1"))
BARRIER = "SWEEP_FAKE_BARRIER"   # a folder: the first trial of each process waits for the others
BARRIER_N = "SWEEP_FAKE_WORKERS"


def value_at(learning_rate: float, seed: int, epoch: int, epochs: int) -> float:
    return round(learning_rate * 100 * epoch / epochs + seed / 1000, 6)


def _barrier() -> None:
    folder = os.environ.get(BARRIER)
    if not folder or getattr(_barrier, "done", False):
        return
    _barrier.done = True
    Path(folder, f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while len(list(Path(folder).glob("ready-*"))) < int(os.environ.get(BARRIER_N, "2")):
        if time.monotonic() > deadline:
            raise RuntimeError("the other workers never started")
        time.sleep(0.05)


def tiny_trainer(name=None, epochs=3, batch_size=8, learning_rate=1e-3, device=None, *, seed=42,
                 dropout=0.3, hidden_size=256, on_event=None, should_stop=None, run_dir=None, home=None):
    _barrier()
    folder = RunFolder(run_dir)
    folder.update_config(device="cpu")
    folder.set_status("running")
    ev.emit(on_event, ev.RunStarted(folder.run_id, folder.path, "resnet-lstm", {}))
    rows = []
    for epoch in range(1, epochs + 1):
        for _ in range(10):
            time.sleep(EPOCH_S / 10)
            if ev.stop_requested(should_stop):
                folder.set_status("stopped")
                return folder.path
        row = {"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.0 / epoch,
               "val_acc": value_at(learning_rate, seed, epoch, epochs)}
        rows.append(row)
        folder.append_metrics(row)
        ev.emit(on_event, ev.EpochEnd(folder.run_id, epoch, epochs, row))
    best = max(rows, key=lambda r: r["val_acc"])
    folder.update_config(best_metric=best_record("val_acc", best))
    folder.set_status("completed")
    return folder.path


def fake_manager(home):
    from pedsense.runs import RunManager

    return RunManager(home, trainers={"resnet-lstm": tiny_trainer}, check_data=False)


def work(home: str, name: str) -> None:
    """A child process's sweep worker; prints its report as JSON."""
    from pedsense.sweeps import run_worker

    report = run_worker(name, home=home, manager=fake_manager(home), poll_s=0.05)
    print(json.dumps({"pid": os.getpid(), "reason": report.reason,
                      "trials": [o.number for o in report.outcomes],
                      "states": [o.state for o in report.outcomes]}))


if __name__ == "__main__":
    work(sys.argv[1], sys.argv[2])
