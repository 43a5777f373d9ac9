"""Predictions as training goes: the format of ``<run>/predictions/`` (written by the trainers
through ``pedsense.train.previews``, read by the run view's slider).

- ``predictions/epochs.jsonl``  one JSON line per scored epoch (append-only; a resumed run that
  trains an epoch again appends it again, and the last line of an epoch wins)::

      {"stage": "train", "epoch": 3, "picture": "train_epoch_003.jpg" | null,
       "samples": [{"id": "video_0001_p1_s04", "label": 1, "p_crossing": 0.83,
                    "boxes": [[x1, y1, x2, y2, class, confidence], ...]   (YOLO only)
                    "truth": [[x1, y1, x2, y2, class], ...]}],            (YOLO only)
       "problems": ["sample video_0003.jpg cannot be read (...): left out"]}

- ``predictions/<stage>_epoch_<NNN>.jpg``  the epoch's sheet: each sample's picture with its
  label and P(crossing) (YOLO: the frame with the predicted boxes). A family whose samples have
  no picture (a model of annotation features) writes no sheet; its lines still hold P(crossing)
  against the label, which the run view shows as a table.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Mapping

from pedsense.io import atomic_path

PREDICTIONS_DIR = "predictions"
RECORDS_FILE = "epochs.jsonl"
_LOCK = threading.Lock()


def predictions_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / PREDICTIONS_DIR


def picture_name(stage: str, epoch: int) -> str:
    return f"{stage}_epoch_{int(epoch):03d}.jpg"


def append_epoch(run_dir: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Append one epoch's record (flushed) to ``predictions/epochs.jsonl``."""
    folder = predictions_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    line = json.dumps(dict(record), default=str) + "\n"
    with _LOCK, open(folder / RECORDS_FILE, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def write_picture(run_dir: str | os.PathLike, name: str, jpeg: bytes) -> Path:
    """The sheet ``name`` written atomically into ``predictions/``."""
    path = predictions_dir(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        Path(temporary).write_bytes(jpeg)
    return path


def read_epochs(run_dir: str | os.PathLike) -> list[dict]:
    """Every scored epoch in training order (stages in the order they came), the last record
    of an epoch trained twice winning; a line being written (or damaged) is skipped."""
    try:
        text = (predictions_dir(run_dir) / RECORDS_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    found: dict[tuple, dict] = {}
    stages: dict[Any, int] = {}
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
            continue
        stage = record.get("stage") or "train"
        stages.setdefault(stage, len(stages))
        found[(stage, record["epoch"])] = record
    return [found[key] for key in sorted(found, key=lambda k: (stages[k[0]], k[1]))]


def picture_path(run_dir: str | os.PathLike, record: Mapping[str, Any]) -> Path | None:
    """The sheet of ``record`` when it has one on disk."""
    name = record.get("picture")
    if not name or "/" in str(name) or str(name).startswith("."):
        return None
    path = predictions_dir(run_dir) / str(name)
    return path if path.is_file() else None

