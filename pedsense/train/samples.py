"""The sample tables the ResNet builds write (``labels.csv``, ``crops.csv``), read per split.

Trainers, the launch checks and the evaluation read them the same way. No torch here.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pedsense.config import CLASS_NAMES
from pedsense.errors import DataError


def parse_label(value: str, where: str) -> int:
    """A labels.csv ``label`` cell (``0``/``1`` or a class name) as a class index."""
    value = str(value).strip()
    if value in CLASS_NAMES:
        return CLASS_NAMES.index(value)
    try:
        label = int(float(value))
    except ValueError:
        label = -1
    if label not in range(len(CLASS_NAMES)):
        raise DataError(f"{where}: label {value!r} is not one of 0, 1 or {', '.join(CLASS_NAMES)}. "
                        "Rebuild the dataset with `pedsense preprocess resnet`.")
    return label


def read_split_rows(csv_path: Path, split: str, what: str, rebuild: str) -> list[dict]:
    """The rows of ``csv_path`` whose ``split`` column is ``split``."""
    if not csv_path.is_file():
        raise DataError(f"The {what} is not built yet: {csv_path} is missing. Run `{rebuild}` first.")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        needed = {"label", "split"}
        if not needed.issubset(reader.fieldnames or ()):
            raise DataError(f"{csv_path} has no {sorted(needed)} columns (header: {reader.fieldnames}). "
                            f"Rebuild it with `{rebuild}`.")
        rows = [row for row in reader if (row.get("split") or "").strip() == split]
    if not rows:
        raise DataError(f"The {what} has no '{split}' samples ({csv_path}). Rebuild it with `{rebuild}` "
                        "from more videos, or check the train/val split.")
    return rows


def check_missing(missing: list[str], total: int, what: str, rebuild: str) -> None:
    if missing:
        shown = ", ".join(missing[:3]) + (" …" if len(missing) > 3 else "")
        raise DataError(f"{len(missing)} of {total} {what} listed in the CSV are missing on disk ({shown}). "
                        f"Rebuild the dataset with `{rebuild}`.")


def count_split_rows(csv_path: Path, split: str) -> int:
    """How many rows of ``csv_path`` are in ``split`` (0 when the file is missing)."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            return sum(1 for row in csv.DictReader(f) if (row.get("split") or "").strip() == split)
    except FileNotFoundError:
        return 0
