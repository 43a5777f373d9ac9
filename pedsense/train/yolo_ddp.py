"""YOLO on several GPUs: Ultralytics' own DDP, followed through its ``results.csv``.

Given a device list (``"0,1"``) Ultralytics re-launches its training under
``torch.distributed.run`` in child processes. Its callbacks do not reach pedsense there (they
are pickled into the children, where they would hold copies of the run's hooks), so pedsense
attaches none: :class:`ResultsFollower` tails the ``results.csv`` rank 0 appends once per epoch
and turns each new row into the run's metrics row and ``EpochEnd``. A stop request ends the
launcher (the children follow): the weights of the last whole epoch are kept, and the run reads
``stopped``. Before launching, Ultralytics deletes its save folder, so a DDP run trains in
``<run>/ultralytics/`` and its weights and ``results.csv`` are published at the run root.
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from typing import Sequence

from pedsense.errors import ConfigError
from pedsense.train.common import TrainingRun

POLL_S = 1.0
DDP_FOLDER = "ultralytics"


def ultralytics_device(device: str) -> str:
    """pedsense device string -> Ultralytics' (``cuda:1`` -> ``1``)."""
    return device.split(":", 1)[1] if device.startswith("cuda:") else device


def ultralytics_devices(devices: Sequence[str]) -> str:
    """``("cuda:0", "cuda:1")`` -> ``"0,1"``, Ultralytics' device list.

    Raises:
        ConfigError: a CPU in the list (Ultralytics trains data-parallel on CUDA GPUs only).
    """
    if any(not d.startswith("cuda") for d in devices):
        raise ConfigError(f"devices={','.join(devices)}: Ultralytics trains YOLO on several devices only on "
                          "CUDA GPUs. Give GPUs (cuda:0,cuda:1), or one device (leave devices empty).")
    return ",".join(d.split(":", 1)[1] for d in devices)


class ResultsFollower:
    """Epoch rows of Ultralytics' ``results.csv`` -> ``run.epoch_end``, from a thread, while
    Ultralytics trains in its DDP children; same ``rows``/``best()`` as the callback bridge."""

    def __init__(self, run: TrainingRun, stage: str, total_epochs: int, results_csv: Path,
                 epochs_kept: int = 0):
        self.run, self.stage, self.total_epochs = run, stage, total_epochs
        self.path = results_csv
        self.rows: list[dict] = []
        self.seen = epochs_kept  # a resumed run's earlier epochs are in metrics.csv already
        self.stop_sent = False
        self.last_time = time.time()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="pedsense-results-follower", daemon=True)

    def __enter__(self) -> "ResultsFollower":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        self.poll()  # the rows written just before the end

    def _follow(self) -> None:
        while not self._done.wait(POLL_S):
            self.poll()
            if not self.stop_sent and self.run.stop_now():
                self.stop_sent = True
                stop_ddp_children()

    def poll(self) -> None:
        """Report every complete row not reported yet."""
        for raw in read_results(self.path)[self.seen:]:
            self.seen += 1
            row = results_row(raw, self.stage, self.last_time)
            self.last_time = time.time()
            self.rows.append(row)
            self.run.epoch_end(row["epoch"], self.total_epochs, row, self.stage)

    def best(self) -> dict:
        return best_detector_epoch(self.rows)


def read_results(path: Path) -> list[dict]:
    """The complete rows of a ``results.csv`` (a last line still being written is left out)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return []
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.DictReader(text.splitlines()))
    return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in rows]


def _number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def best_detector_epoch(rows: Sequence[dict]) -> dict:
    """The reported epoch with the highest mAP50-95 (Ultralytics' fitness leans on it), or {}."""
    scored = [r for r in rows if r.get("mAP50-95") is not None]
    if not scored:
        return {}
    top = max(scored, key=lambda r: (r["mAP50-95"], r["mAP50"] or 0.0))
    return {k: top[k] for k in ("epoch", "mAP50", "mAP50-95", "precision", "recall")}


def results_row(raw: dict, stage: str, since: float) -> dict:
    """One ``results.csv`` row as pedsense's YOLO metrics row (the callback bridge's columns)."""
    values = {k: _number(v) for k, v in raw.items()}
    train = {k: v for k, v in values.items() if k.startswith("train/") and v is not None}
    val = {k: v for k, v in values.items() if k.startswith("val/") and v is not None}

    def metric(name: str) -> float | None:
        value = values.get(f"metrics/{name}(B)")
        return None if value is None else round(value, 5)

    row = {"epoch": int(values.get("epoch") or 0), **({"stage": stage} if stage != "train" else {}),
           "train_loss": round(sum(train.values()), 5) if train else None,
           "val_loss": round(sum(val.values()), 5) if val else None,
           "precision": metric("precision"), "recall": metric("recall"),
           "mAP50": metric("mAP50"), "mAP50-95": metric("mAP50-95")}
    row.update({k.replace("/", "_"): round(v, 5) for k, v in {**train, **val}.items()})
    row["lr"] = values.get("lr/pg0")
    row["seconds"] = round(time.time() - since, 3)
    return row


def stop_ddp_children() -> int:
    """End the ``torch.distributed.run`` launcher(s) Ultralytics started from this process
    (its agent ends the workers). Returns how many were signalled."""
    import psutil

    signalled = 0
    for child in psutil.Process().children(recursive=True):
        try:
            if any("torch.distributed.run" in part or part.endswith("torchrun") for part in child.cmdline()):
                child.terminate()
                signalled += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return signalled
