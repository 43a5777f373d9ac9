"""Tiny hand-made datasets in the formats the trainers read (no tests here, only builders).

The shared ``demo_home`` fixture builds the real demo set; these builders make datasets of a
few dozen 32-64 px images so each trainer test runs in seconds on 2 cores.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np


def _figure(label: int, size: int, rng: np.random.Generator, shift: int = 0) -> np.ndarray:
    """A dark crop with a bright bar: upright for not-crossing (0), lying for crossing (1)."""
    image = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    third = size // 3
    if label:
        cv2.rectangle(image, (2 + shift, third), (size - 3, 2 * third), (40, 200, 240), -1)
    else:
        cv2.rectangle(image, (third, 2 + shift), (2 * third, size - 3), (240, 200, 40), -1)
    return image


def write_resnet_sequences(home: Path, per_class: dict[str, int] | None = None, frames: int = 4,
                           size: int = 32, seed: int = 0) -> Path:
    """``data/processed/resnet/{sequences/<split>/<id>/frame_XX.jpg, labels.csv}`` under ``home``."""
    per_class = per_class or {"train": 6, "val": 3}
    rng = np.random.default_rng(seed)
    root = home / "data" / "processed" / "resnet"
    rows = []
    for split, count in per_class.items():
        for label in (0, 1):
            for k in range(count):
                seq_id = f"video_{label:04d}_{split}_{k:03d}"
                folder = root / "sequences" / split / seq_id
                folder.mkdir(parents=True, exist_ok=True)
                for t in range(frames):
                    cv2.imwrite(str(folder / f"frame_{t:02d}.jpg"), _figure(label, size, rng, t % 3))
                rows.append({"sequence_id": seq_id, "label": label, "video_id": f"video_{label:04d}",
                             "track_id": f"0_{k}_{label}b", "start_frame": 0, "end_frame": frames - 1,
                             "split": split})
    _write_csv(root / "labels.csv", rows)
    return root


def write_resnet_crops(home: Path, per_class: dict[str, int] | None = None, size: int = 32,
                       seed: int = 1) -> Path:
    """``data/processed/resnet/{crops/<split>/<id>.jpg, crops.csv}`` under ``home``."""
    per_class = per_class or {"train": 10, "val": 4}
    rng = np.random.default_rng(seed)
    root = home / "data" / "processed" / "resnet"
    rows = []
    for split, count in per_class.items():
        (root / "crops" / split).mkdir(parents=True, exist_ok=True)
        for label in (0, 1):
            for k in range(count):
                crop_id = f"video_{label:04d}_{k:03d}_{split}"
                cv2.imwrite(str(root / "crops" / split / f"{crop_id}.jpg"), _figure(label, size, rng, k % 3))
                rows.append({"crop_id": crop_id, "label": label, "video_id": f"video_{label:04d}",
                             "track_id": f"0_{k}_{label}b", "frame": k, "split": split})
    _write_csv(root / "crops.csv", rows)
    return root


def write_yolo_dataset(home: Path, folder: str = "yolo", names: tuple[str, ...] = ("not-crossing", "crossing"),
                       images: dict[str, int] | None = None, size: int = 64, seed: int = 2) -> Path:
    """A YOLO detection dataset ``data/processed/<folder>/{images,labels}/<split>/`` + ``data.yaml``."""
    images = images or {"train": 4, "val": 2}
    rng = np.random.default_rng(seed)
    root = home / "data" / "processed" / folder
    for split, count in images.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            image = rng.integers(60, 90, (size, size, 3), dtype=np.uint8)
            lines = []
            for j, (cx, cls) in enumerate(((0.3, 0), (0.7, 1))):
                cls = min(cls, len(names) - 1)
                x1, x2 = int((cx - 0.1) * size), int((cx + 0.1) * size)
                y1, y2 = int(0.3 * size), int(0.8 * size)
                cv2.rectangle(image, (x1, y1), (x2, y2), (20, 20, 200) if cls else (200, 20, 20), -1)
                lines.append(f"{cls} {cx:.4f} 0.5500 0.2000 0.5000")
            cv2.imwrite(str(root / "images" / split / f"img_{k:03d}.jpg"), image)
            (root / "labels" / split / f"img_{k:03d}.txt").write_text("\n".join(lines) + "\n")
    name_lines = "".join(f"  {i}: {n}\n" for i, n in enumerate(names))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{name_lines}")
    return root


def check_step_curve(events: list, run_dir: Path, stage: str = "train") -> list:
    """The run's ``StepEnd`` events of ``stage``, checked: steps rise from 1, loss and lr are
    finite, and ``steps.csv`` holds the same points (its ``time`` rising)."""
    from pedsense.runfolder import RunFolder
    from pedsense.train.events import StepEnd

    steps = [e for e in events if isinstance(e, StepEnd) and e.stage == stage]
    assert steps and steps[0].step == 1
    assert [e.step for e in steps] == sorted({e.step for e in steps})
    assert all(math.isfinite(e.loss) and math.isfinite(e.lr) and e.lr >= 0 for e in steps)
    rows = [r for r in RunFolder(run_dir).read_steps() if r["stage"] == stage]
    assert [(r["epoch"], r["step"]) for r in rows] == [(e.epoch, e.step) for e in steps]
    assert all(math.isclose(r["loss"], e.loss, rel_tol=1e-5) and math.isclose(r["lr"], e.lr, rel_tol=1e-5)
               for r, e in zip(rows, steps))
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    return steps


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


_DETECTOR: list[Path] = []


def write_detector(path: Path) -> Path:
    """Untrained YOLO26n detector weights at ``path`` (built offline from Ultralytics' yaml once
    per test session, then hard-linked or copied): a real checkpoint for a hybrid to reuse."""
    import atexit
    import os
    import shutil
    import tempfile

    if not _DETECTOR:
        from ultralytics import YOLO

        folder = tempfile.mkdtemp(prefix="pedsense-detector-")
        atexit.register(shutil.rmtree, folder, True)  # the test session's, not left in /tmp
        built = Path(folder) / "yolo26n_untrained.pt"
        YOLO("yolo26n.yaml").save(built)
        _DETECTOR.append(built)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(_DETECTOR[0], path)
    except OSError:
        shutil.copy2(_DETECTOR[0], path)
    return path
