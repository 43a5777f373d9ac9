"""Run folders on disk (``RunFolder``).

Every training, however launched, writes one folder
``models/<model_type>/<name>_<YYYYmmdd_HHMMSS>/`` holding ``config.json``, ``metrics.csv``,
``status.json``, weights and ``train.log``. The UI reads these files, so a browser reload or
an app restart loses nothing.
"""

from __future__ import annotations

import csv
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from pedsense.config import MODEL_TYPES, paths
from pedsense.errors import PedsenseError
from pedsense.io import read_json, write_csv_atomic, write_json_atomic

STATUSES = ("queued", "running", "completed", "failed", "stopped", "interrupted")
FINISHED_STATUSES = ("completed", "failed", "stopped", "interrupted")

_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


class RunNotFound(PedsenseError, FileNotFoundError):
    """No run folder matches what the user named."""


def sanitize_name(name: str | None, default: str) -> str:
    """Make ``name`` safe as one folder name: ``"../x"`` → ``"x"``, ``"a/b"`` → ``"a-b"``.

    Anything outside ``[A-Za-z0-9._-]`` becomes ``-``; leading dots and dashes go, so the
    result can never be ``.``, ``..`` or a hidden folder. Empty results fall back to ``default``.
    """
    if name is None or not str(name).strip():
        return default
    cleaned = _NAME_OK.sub("-", str(name).strip())
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip(".-_")
    return cleaned[:80] or default


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


class RunFolder:
    """One run's folder and the files in it. Safe to share between threads."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()

    # -- identity -------------------------------------------------------------------------
    @property
    def model_type(self) -> str:
        return self.path.parent.name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def run_id(self) -> str:
        """``<model_type>/<folder name>``: unique within a data home."""
        return f"{self.model_type}/{self.name}"

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # -- files ----------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @classmethod
    def create(cls, model_type: str, name: str | None = None, *, default_prefix: str | None = None,
               home: str | os.PathLike | None = None, when: datetime | None = None) -> "RunFolder":
        """Create ``models/<model_type>/<sanitised name>_<YYYYmmdd_HHMMSS>/`` (never reused)."""
        if model_type not in MODEL_TYPES:
            raise ValueError(f"Unknown model type {model_type!r}; expected one of {MODEL_TYPES}.")
        prefix = sanitize_name(name, default_prefix or model_type)
        stamp = (when or datetime.now()).strftime("%Y%m%d_%H%M%S")
        parent = paths(home).models / model_type
        parent.mkdir(parents=True, exist_ok=True)
        candidate = parent / f"{prefix}_{stamp}"
        n = 1
        while True:
            try:
                candidate.mkdir()
                break
            except FileExistsError:
                n += 1
                candidate = parent / f"{prefix}_{stamp}-{n}"
        folder = cls(candidate)
        assert folder.path.resolve().parent == parent.resolve()
        return folder

    # -- config ---------------------------------------------------------------------------
    def write_config(self, config: Mapping[str, Any]) -> None:
        with self._lock:
            write_json_atomic(self.config_path, dict(config))

    def update_config(self, **changes: Any) -> dict:
        with self._lock:
            config = read_json(self.config_path, {}) or {}
            config.update(changes)
            write_json_atomic(self.config_path, config)
            return config

    def read_config(self) -> dict:
        return read_json(self.config_path, {}) or {}

    # -- status ---------------------------------------------------------------------------
    def read_status(self) -> dict:
        """The status dict; a folder without ``status.json`` reads as ``unknown``."""
        return read_json(self.status_path, None) or {"status": "unknown"}

    @property
    def status(self) -> str:
        return self.read_status().get("status", "unknown")

    def set_status(self, status: str, error: str | None = None, **extra: Any) -> dict:
        """Record ``status`` (atomically), keeping the timestamps already written."""
        if status not in STATUSES:
            raise ValueError(f"Unknown status {status!r}; expected one of {STATUSES}.")
        with self._lock:
            current = read_json(self.status_path, None) or {}
            current.update(extra)
            current["status"] = status
            current["error"] = error
            now = now_iso()
            current.setdefault("created_at", now)
            if status == "running":
                current.setdefault("started_at", now)
                current["pid"] = os.getpid()
            if status in FINISHED_STATUSES:
                current["finished_at"] = now
            current["updated_at"] = now
            write_json_atomic(self.status_path, current)
            return current

    # -- metrics --------------------------------------------------------------------------
    def append_metrics(self, row: Mapping[str, Any]) -> None:
        """Append one row to ``metrics.csv`` and flush it to disk.

        When a row brings a column the file does not have yet (the hybrid's second stage),
        the file is rewritten atomically with the wider header; otherwise it is append-only.
        """
        with self._lock:
            row = dict(row)
            existing_header: list[str] | None = None
            if self.metrics_path.exists() and self.metrics_path.stat().st_size > 0:
                with open(self.metrics_path, newline="", encoding="utf-8") as f:
                    existing_header = next(csv.reader(f), None)
            if existing_header is None:
                write_csv_atomic(self.metrics_path, [row], list(row))
                return
            new_cols = [k for k in row if k not in existing_header]
            if new_cols:
                rows = self._read_metric_rows()
                write_csv_atomic(self.metrics_path, rows + [row], existing_header + new_cols)
                return
            with open(self.metrics_path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, fieldnames=existing_header, extrasaction="ignore").writerow(row)
                f.flush()
                os.fsync(f.fileno())

    def _read_metric_rows(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        with open(self.metrics_path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def read_metrics(self) -> list[dict]:
        """Rows of ``metrics.csv`` with numbers parsed (empty cells become ``None``)."""
        rows = []
        for raw in self._read_metric_rows():
            rows.append({k: _parse_cell(v) for k, v in raw.items() if k is not None})
        return rows

    # -- log ------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        """Append one timestamped line to ``train.log``."""
        line = f"{datetime.now().strftime('%Y-%m-%d %H:%M:%S')} {message.rstrip()}\n"
        with self._lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    def read_log(self, max_chars: int = 200_000) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return text[-max_chars:]


def _parse_cell(value: str | None) -> Any:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def list_runs(home: str | os.PathLike | None = None,
              model_types: Iterable[str] = MODEL_TYPES) -> list[RunFolder]:
    """Every run folder under ``models/``, newest first."""
    root = paths(home).models
    found = []
    for model_type in model_types:
        for path in (root / model_type).glob("*"):
            if path.is_dir() and ((path / "config.json").exists() or (path / "status.json").exists()):
                found.append(RunFolder(path))
    found.sort(key=_stamp_key, reverse=True)
    return found


_STAMP = re.compile(r"_(\d{8}_\d{6})(?:-(\d+))?$")


def _stamp_key(run: RunFolder) -> tuple:
    match = _STAMP.search(run.name)
    if not match:
        return ("", 0, run.name)
    return (match.group(1), int(match.group(2) or 1), run.name)


def find_run(run: str | os.PathLike, home: str | os.PathLike | None = None) -> RunFolder:
    """Resolve a run given as a path, a ``<model_type>/<name>`` id or a bare folder name."""
    candidate = Path(run)
    if candidate.is_dir():
        return RunFolder(candidate)
    models = paths(home).models
    if (models / candidate).is_dir():
        return RunFolder(models / candidate)
    matches = [r for r in list_runs(home) if r.name == str(run)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise RunNotFound(f"Run name {run!r} is ambiguous: " + ", ".join(r.run_id for r in matches))
    raise RunNotFound(
        f"No run {str(run)!r} under {models}. List runs with `pedsense runs`, "
        "or pass the run folder's path."
    )
