"""Run folders on disk: the format every run is written in, and nothing else.

Every training, however launched, writes one folder ``models/<model_type>/<name>_<YYYYmmdd_HHMMSS>/``:

- ``config.json``  the model type, the checked parameters, class names, device, weights source,
  the dataset, and at the end the best metric; written before epoch 1.
- ``metrics.csv``  one row per epoch, appended and flushed as each epoch ends.
- ``status.json``  one of :data:`STATUSES`, the error text and timestamps. Once a run is
  running, only its trainer's lifecycle (``pedsense.train.common.TrainingRun``) writes it; the
  run manager writes ``queued``, a cancellation, and the failure of a run that never started or
  whose worker died.
- ``train.log``    timestamped lines.
- weights, found by role with :meth:`RunFolder.weights`.
- ``events.jsonl`` (events as JSON lines, so any process follows the run live), ``worker.json``
  (a heartbeat), ``stop.request``, ``worker.log``: see ``pedsense.runqueue``.

This module is below the trainers and the run manager (it imports neither), and reads no
file twice (``pedsense.runsummary`` reads a run's state, cached by file stamp). The UI reads these
files, so a browser reload or an app restart loses nothing.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import threading
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from pedsense.config import MODEL_TYPES, paths
from pedsense.errors import PedsenseError
# append_row and read_rows are also imported from here
from pedsense.io import (append_row, filter_csv_rows, parse_row, read_json, read_object,  # noqa: F401
                         read_rows, sweep_stale_temp, write_csv_atomic, write_json_atomic)
from pedsense.procs import process_start_token

# The one status vocabulary of runs and data jobs. ``unreadable`` is never written: it is what a
# reader reports for a run folder whose status.json, config.json or metrics.csv cannot be read.
UNREADABLE = "unreadable"
STATUSES = ("queued", "running", "completed", "failed", "stopped", "interrupted", UNREADABLE)
WRITTEN_STATUSES = tuple(s for s in STATUSES if s != UNREADABLE)
LIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("completed", "failed", "stopped", "interrupted")
RESUMABLE_STATUSES = ("stopped", "interrupted", "failed")  # a completed run is extended instead

# What "best" means per model type: the metric and whether higher is better.
BEST_METRIC = {"yolo": ("mAP50-95", True), "resnet-lstm": ("val_acc", True),
               "hybrid": ("val_acc", True),
               # balanced accuracy on val: the benchmark's "AUC" (accuracy rewards the majority class)
               "context": ("val_auc_binary", True)}
# Weight files by (model type, role); the first that exists wins (YOLO keeps Ultralytics' weights/).
WEIGHT_FILES = {
    ("yolo", "best"): ("best.pt", "weights/best.pt"),
    ("yolo", "last"): ("last.pt", "weights/last.pt"),
    ("yolo", "detector"): ("best.pt", "weights/best.pt", "last.pt"),
    ("resnet-lstm", "best"): ("best.pt",),
    ("resnet-lstm", "last"): ("last.pt",),
    ("resnet-lstm", "classifier"): ("best.pt",),
    ("hybrid", "best"): ("best.pt",),
    ("hybrid", "last"): ("last.pt",),
    ("hybrid", "classifier"): ("resnet_classifier.pt",),
    ("hybrid", "detector"): ("yolo_detector.pt",),
    ("context", "best"): ("best.pt",),
    ("context", "last"): ("last.pt",),
    ("context", "classifier"): ("best.pt",),
}
WEIGHT_ROLES = ("best", "last", "classifier", "detector")

_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")
_STAMP = re.compile(r"_(\d{8}_\d{6})(?:-(\d+))?$")


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


def parse_iso(text: Any) -> float | None:
    """Seconds since the epoch of an ISO timestamp, or None."""
    try:
        return datetime.fromisoformat(str(text)).timestamp() if text else None
    except ValueError:
        return None


def iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, timezone.utc).astimezone().isoformat(timespec="seconds")


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

    @property
    def steps_path(self) -> Path:
        """``steps.csv``: the smoothed training loss and learning rate every N steps."""
        return self.path / "steps.csv"

    # events.jsonl: the trainer's events (append-only JSON lines); worker.json: the heartbeat of
    # the process running it; stop.request: a stop asked by anyone; worker.log: a worker's output.
    events_path = property(lambda self: self.path / "events.jsonl")
    worker_path = property(lambda self: self.path / "worker.json")
    stop_path = property(lambda self: self.path / "stop.request")
    worker_log_path = property(lambda self: self.path / "worker.log")

    def weights(self, role: str = "best", model_type: str | None = None) -> Path | None:
        """The weight file playing ``role`` (``best``, ``last``, ``classifier``, ``detector``)
        in a run of ``model_type`` (default: the folder's), or None when there is none."""
        if role not in WEIGHT_ROLES:
            raise ValueError(f"Unknown weights role {role!r}; use one of {', '.join(WEIGHT_ROLES)}.")
        for name in WEIGHT_FILES.get((model_type or self.model_type, role), ()):
            if (self.path / name).is_file():
                return self.path / name
        return None

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
            config = self.read_config()
            config.update(changes)
            write_json_atomic(self.config_path, config)
            return config

    def read_config(self) -> dict:
        """``config.json`` as a dict; ``{}`` when it is missing or unreadable (``read_summary`` says why)."""
        config, problem = read_object(self.config_path)
        return config if config is not None and problem is None else {}

    # -- status ---------------------------------------------------------------------------
    def read_status(self) -> dict:
        """The status dict. A folder without ``status.json`` reads as ``unknown``; one whose
        ``status.json`` is not a status record reads as ``unreadable``, the reason its error."""
        status, problem = read_object(self.status_path)
        if status is None and problem is None:
            return {"status": "unknown"}
        problem = problem or status_problem(status)
        if problem:
            return {"status": UNREADABLE, "error": f"status.json {problem}"}
        return status

    @property
    def status(self) -> str:
        return self.read_status().get("status", "unknown")

    def set_status(self, status: str, error: str | None = None, **extra: Any) -> dict:
        """Record ``status`` (atomically), keeping the timestamps already written."""
        if status not in WRITTEN_STATUSES:
            raise ValueError(f"Unknown status {status!r}; expected one of {WRITTEN_STATUSES}.")
        with self._lock:
            current = read_json(self.status_path, None)
            current = current if isinstance(current, dict) else {}
            current.update(extra)
            current["status"] = status
            current["error"] = error
            now = now_iso()
            current.setdefault("created_at", now)
            if status == "running":
                current.setdefault("started_at", now)
                current["pid"] = os.getpid()
                current["pid_start"] = process_start_token(os.getpid())
            if status in FINISHED_STATUSES:
                current["finished_at"] = now
            current["updated_at"] = now
            write_json_atomic(self.status_path, current, in_place_when_full=True)
            return current

    def update_status(self, **fields: Any) -> dict:
        """Change fields of ``status.json`` (atomically) without touching the status or its
        timestamps; a field given as None is removed."""
        with self._lock:
            current = read_json(self.status_path, None)
            current = current if isinstance(current, dict) else {"status": "queued"}
            for key, value in fields.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
            write_json_atomic(self.status_path, current)
            return current

    # -- metrics --------------------------------------------------------------------------
    def append_metrics(self, row: Mapping[str, Any]) -> None:
        """Append one row to ``metrics.csv`` and flush it to disk.

        When a row brings a column the file does not have yet (the hybrid's second stage),
        the file is rewritten atomically with the wider header; otherwise it is append-only.
        """
        append_row(self.metrics_path, row, self._lock)

    def read_metrics(self) -> list[dict]:
        """Rows of ``metrics.csv`` with numbers parsed (empty cells become ``None``)."""
        return read_rows(self.metrics_path)

    def append_step(self, row: Mapping[str, Any]) -> None:
        """Append one row to ``steps.csv`` (flushed)."""
        append_row(self.steps_path, row, self._lock)

    def read_steps(self) -> list[dict]:
        return read_rows(self.steps_path)

    def keep_metrics(self, keep: Callable[[dict], bool]) -> int:
        """Drop the ``metrics.csv`` rows ``keep(row)`` refuses (numbers parsed), atomically.

        Returns how many were dropped. A resumed run drops the epochs it trains again.
        """
        with self._lock:
            return filter_csv_rows(self.metrics_path, lambda raw: keep(parse_row(raw)))

    def keep_steps(self, keep: Callable[[dict], bool]) -> int:
        """Drop the ``steps.csv`` rows ``keep(row)`` refuses, atomically; returns how many."""
        with self._lock:
            return filter_csv_rows(self.steps_path, lambda raw: keep(parse_row(raw)))

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


# -- reading JSON records strictly ---------------------------------------------------------------
_TEXT_FIELDS = ("error", "created_at", "started_at", "finished_at", "updated_at")
_PID_FIELDS = ("pid", "owner_pid")


def status_problem(status: Mapping[str, Any]) -> str | None:
    """Why a ``status.json`` object is not a status record, or None when it is one."""
    word = status.get("status")
    if word not in WRITTEN_STATUSES:
        return (f"names the status {json.dumps(word, default=str)}, not one of "
                f"{', '.join(WRITTEN_STATUSES)}")
    for key in _TEXT_FIELDS:
        if status.get(key) is not None and not isinstance(status[key], str):
            return f"has a {key!r} that is not text"
    for key in _PID_FIELDS:
        value = status.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"has a {key!r} that is not a process id"
    return None


def unreadable_message(run_id: str, problems: Iterable[str]) -> str:
    """The error of an ``unreadable`` run: what is wrong, and the two ways out."""
    return ("; ".join(problems) + ". The file was edited or damaged outside pedsense; the other "
            f"runs are not affected. Put the file back as pedsense wrote it, or delete the run's "
            f"folder models/{run_id}.")


# -- finding runs -------------------------------------------------------------------------------
def list_runs(home: str | os.PathLike | None = None,
              model_types: Iterable[str] = MODEL_TYPES) -> list[RunFolder]:
    """Every run folder under ``models/``, newest first.

    Now and then (the first listing of a process, then once a minute) it also removes the
    temporary files writers killed mid-write left in run folders (``pedsense.io.sweep_stale_temp``).
    """
    root = paths(home).models
    found = []
    for model_type in model_types:
        for path in (root / model_type).glob("*"):
            if path.is_dir() and ((path / "config.json").exists() or (path / "status.json").exists()):
                found.append(RunFolder(path))
    found.sort(key=_stamp_key, reverse=True)
    sweep_stale_temp(f"runs:{root}:{','.join(model_types)}",
                     lambda: [f for run in found for f in (run.path, run.path / "weights")])
    return found


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


# -- the weights a run really has on disk ----------------------------------------------------------
class _Stub:
    """Stands for any class a checkpoint's pickle names (tensors, models): never built for real."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> "_Stub":
        return _Stub()

    def __setstate__(self, state: Any) -> None:
        pass


class _HeaderUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return _Stub

    def persistent_load(self, pid: Any) -> Any:
        return None


def checkpoint_epoch(path: str | os.PathLike) -> int | None:
    """The ``epoch`` a pedsense checkpoint (a ``torch.save`` zip) records, read from its pickle without
    loading torch or a tensor; None when the file is not one or records none. Nothing in the
    pickle is built: every class it names is a stub."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            if name is None:
                return None
            record = _HeaderUnpickler(io.BytesIO(archive.read(name))).load()
    except Exception:  # noqa: BLE001 - a damaged or foreign file: its epoch is unknown
        return None
    if not isinstance(record, dict) or not isinstance(record.get("model"), str):
        return None  # not a pedsense checkpoint (Ultralytics counts its epochs from 0)
    epoch = record.get("epoch")
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else None


def weights_on_disk(folder: RunFolder) -> dict[str, int | None]:
    """``{file: epoch it holds (None: unknown)}`` for the run's weight files that exist."""
    names = dict.fromkeys(n for (model_type, _), files in WEIGHT_FILES.items()
                          if model_type == folder.model_type for n in files)
    return {name: checkpoint_epoch(folder.path / name) for name in names if (folder.path / name).is_file()}


def describe_weights_on_disk(folder: RunFolder, weights: Mapping[str, int | None] | None = None) -> str:
    """``"weights on disk: last.pt (epoch 1), best.pt (epoch 1)"``, or that none were saved."""
    weights = weights_on_disk(folder) if weights is None else weights
    if not weights:
        return "no weights were saved (no checkpoint is on disk), so train it again rather than resume it"
    shown = ", ".join(name + (f" (epoch {epoch})" if epoch is not None else "") for name, epoch in weights.items())
    return f"weights on disk: {shown}"


def best_on_disk(folder: RunFolder, weights: Mapping[str, int | None] | None = None) -> dict:
    """The best metric a run's files support: the metrics of the epoch its best checkpoint holds
    (``value`` None when no best checkpoint is on disk, so no best is claimed)."""
    weights = weights_on_disk(folder) if weights is None else weights
    name = BEST_METRIC.get(folder.model_type, ("val_acc", True))[0]
    best_file = next((n for n in WEIGHT_FILES.get((folder.model_type, "best"), ()) if n in weights), None)
    if best_file is None:
        return {"name": name, "value": None, "epoch": None}
    try:
        rows = folder.read_metrics()
    except PedsenseError:
        rows = []
    epoch = weights[best_file]
    held = [r for r in rows if r.get("epoch") == epoch and r.get(name) is not None] if epoch is not None else []
    return best_record(name, held[-1]) if held else (best_of(folder.model_type, rows) or
                                                      {"name": name, "value": None, "epoch": None})


# -- the best metric: one shape ------------------------------------------------------------------
def best_of(model_type: str, rows: Iterable[Mapping[str, Any]]) -> dict | None:
    """The best epoch of ``rows`` by the model type's metric (:data:`BEST_METRIC`), in the one
    shape every run records: ``{"name", "value", "epoch", **that epoch's metrics}``."""
    name, higher = BEST_METRIC.get(model_type, ("val_acc", True))
    scored = [r for r in rows if isinstance(r.get(name), (int, float)) and not isinstance(r.get(name), bool)]
    if not scored:
        return None
    pick = (max if higher else min)(scored, key=lambda r: r[name])
    return best_record(name, pick)


def describe_best(best: Mapping[str, Any] | None) -> str:
    """``"val_acc 0.812 (epoch 3)"``, or ``"—"`` when there is no best metric yet."""
    if not best or best.get("value") is None:
        return "—"
    value = best["value"]
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    epoch = f" (epoch {best['epoch']})" if best.get("epoch") is not None else ""
    return f"{best.get('name', 'best')} {shown}{epoch}"


def best_record(name: str, metrics: Mapping[str, Any]) -> dict:
    """``{"name", "value", "epoch", **metrics}``: the shape of ``config.json``'s ``best_metric``."""
    values = {k: v for k, v in metrics.items() if k not in ("name", "value", "stage")}
    return {**values, "name": name, "value": metrics.get(name), "epoch": metrics.get("epoch")}
