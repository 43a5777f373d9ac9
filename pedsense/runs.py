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
from typing import Any, Callable, Iterable, Mapping

from pedsense.config import MODEL_TYPES, paths
from pedsense.errors import PedsenseError
from pedsense.io import filter_csv_rows, read_json, write_csv_atomic, write_json_atomic

# Columns of a run's steps.csv (pedsense.train.events.StepEnd plus seconds since the run began).
STEP_COLUMNS = ("stage", "epoch", "step", "loss", "lr", "time")

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
        return [_parse_row(raw) for raw in self._read_metric_rows()]

    def keep_metrics(self, keep: Callable[[dict], bool]) -> int:
        """Drop the ``metrics.csv`` rows ``keep(row)`` refuses (rows with numbers parsed), atomically.

        Returns how many rows were dropped. A resumed run uses it to drop epochs it retrains.
        """
        with self._lock:
            return filter_csv_rows(self.metrics_path, lambda raw: keep(_parse_row(raw)))

    # -- steps (the loss curve between epochs) ----------------------------------------------
    @property
    def steps_path(self) -> Path:
        return self.path / "steps.csv"

    def append_steps(self, row: Mapping[str, Any]) -> None:
        """Append one ``stage,epoch,step,loss,lr,time`` row to ``steps.csv`` and flush it."""
        with self._lock:
            new = not self.steps_path.exists() or self.steps_path.stat().st_size == 0
            with open(self.steps_path, "a", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=STEP_COLUMNS, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(row)
                f.flush()
                os.fsync(f.fileno())

    def read_steps(self) -> list[dict]:
        """Rows of ``steps.csv`` with numbers parsed (empty when the run has none)."""
        if not self.steps_path.exists():
            return []
        with open(self.steps_path, newline="", encoding="utf-8") as f:
            return [_parse_row(raw) for raw in csv.DictReader(f)]

    def keep_steps(self, keep: Callable[[dict], bool]) -> int:
        """Drop the ``steps.csv`` rows ``keep(row)`` refuses, atomically; returns how many."""
        with self._lock:
            return filter_csv_rows(self.steps_path, lambda raw: keep(_parse_row(raw)))

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


def _parse_row(raw: Mapping[str | None, str | None]) -> dict:
    return {k: _parse_cell(v) for k, v in raw.items() if k is not None}


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


# =====================================================================================
# RunManager: the process-wide owner of training threads (the dashboard's engine).
# =====================================================================================

import collections
import importlib
import inspect
import shutil
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from pedsense.errors import ConfigError

LIVE_STATUSES = ("queued", "running")

# model_type -> "module:function" of its trainer; imported on first use so that importing
# pedsense.runs stays cheap (no torch, no ultralytics).
TRAINER_PATHS = {
    "yolo": "pedsense.train.yolo_trainer:train_yolo",
    "resnet-lstm": "pedsense.train.resnet_trainer:train_resnet_lstm",
    "hybrid": "pedsense.train.hybrid_trainer:train_hybrid",
}
DEFAULT_PREFIXES = {"yolo": "yolo", "resnet-lstm": "resnet-lstm", "hybrid": "hybrid"}

# Keyword arguments the manager (or pedsense.train.resume) passes; a form never sets them.
HOOK_PARAMS = ("on_event", "should_stop", "run_dir", "home", "progress", "resume", "init_weights")

# Run folders owned by a live RunManager thread anywhere in this process (queued or running).
# Process-wide, so a second manager (a second data home, a test) never marks them interrupted.
_OWNED_RUNS: set[str] = set()
_OWNED_LOCK = threading.Lock()


class FormError(ConfigError):
    """Invalid training parameters; ``field_errors`` maps each bad field to its message."""

    def __init__(self, field_errors: Mapping[str, str]):
        self.field_errors = dict(field_errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.field_errors.items()))


def load_trainer(model_type: str) -> Callable[..., Any]:
    """The seed trainer function of ``model_type`` (imported lazily)."""
    if model_type not in TRAINER_PATHS:
        raise ConfigError(f"Unknown model type {model_type!r}; pick one of {', '.join(MODEL_TYPES)}.")
    module_name, func_name = TRAINER_PATHS[model_type].split(":")
    return getattr(importlib.import_module(module_name), func_name)


def trainer_parameters(trainer: Callable[..., Any]) -> dict[str, Any]:
    """The user-facing parameters of ``trainer`` and their defaults (hooks left out).

    Parameters without a default map to ``inspect.Parameter.empty``.
    """
    params = {}
    for p in inspect.signature(trainer).parameters.values():
        if p.name in HOOK_PARAMS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        params[p.name] = p.default
    return params


def validate_training_params(model_type: str, params: Mapping[str, Any],
                             home: str | os.PathLike | None = None) -> dict[str, str]:
    """Check form values; returns ``{field: message}`` (empty when everything is valid).

    The rules of the dashboard's forms: epochs ≥ 1, batch sizes ≥ 1, learning rates > 0,
    image sizes multiples of 32, an existing YOLO model file for the hybrid, a known device.
    """
    errors: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if key == "warmup_epochs":  # Ultralytics takes fractional warm-up epochs, 0 = none
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                errors[key] = f"must be a number ≥ 0 (got {value!r})."
        elif (key == "epochs" or key.endswith("_epochs")) and not _is_int_at_least(value, 1):
            errors[key] = f"must be a whole number ≥ 1 (got {value!r})."
        elif (key == "batch_size" or key.endswith("batch_size")) and not _is_int_at_least(value, 1):
            errors[key] = f"must be a whole number ≥ 1 (got {value!r})."
        elif key in ("learning_rate", "lr", "lr0") or key.endswith("learning_rate"):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                errors[key] = f"must be a number > 0, e.g. 1e-4 (got {value!r})."
        elif key in ("imgsz", "image_size") and (not _is_int_at_least(value, 32) or value % 32):
            errors[key] = f"must be a multiple of 32 (e.g. 320 or 640); got {value!r}."
        elif key in ("hidden_size", "num_layers", "patience") and not _is_int_at_least(value, 1):
            errors[key] = f"must be a whole number ≥ 1 (got {value!r})."
        elif key in ("workers", "num_workers", "frozen_children", "seed") and not _is_int_at_least(value, 0):
            errors[key] = f"must be a whole number ≥ 0 (got {value!r})."
        elif key == "dropout" and not (isinstance(value, (int, float)) and 0 <= value < 1):
            errors[key] = f"must be between 0 and 0.99 (got {value!r})."
        elif key == "weight_decay" and not (isinstance(value, (int, float)) and value >= 0):
            errors[key] = f"must be a number ≥ 0 (got {value!r})."
    if params.get("device") not in (None, "", "auto"):
        from pedsense.device import resolve_device

        try:
            resolve_device(params["device"])
        except PedsenseError as exc:
            errors["device"] = str(exc)
    yolo_model = params.get("yolo_model")
    if model_type == "hybrid" and yolo_model not in (None, ""):
        path = Path(str(yolo_model)).expanduser()
        if not path.is_absolute() and not path.exists():
            path = paths(home).home / path
        if not path.is_file():
            errors["yolo_model"] = (f"no YOLO weights at {str(yolo_model)!r}. Pick a completed YOLO "
                                    "run or give the path of a .pt file (leave empty to train stage 1).")
        elif path.suffix != ".pt":
            errors["yolo_model"] = f"{path.name} is not a .pt weights file."
    return errors


def _is_int_at_least(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def process_start_token(pid: int) -> str | None:
    """When process ``pid`` started (Linux ``/proc``), so a reused pid is not mistaken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) counted after the ")" that closes the command name.
    return stat.rsplit(")", 1)[1].split()[19]


def process_alive(pid: Any, start_token: str | None = None) -> bool:
    """True when process ``pid`` exists (and, when known, is the same process that started)."""
    try:
        pid = int(pid)
        os.kill(pid, 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return start_token is None or process_start_token(pid) in (None, start_token)


@dataclass
class LiveRun:
    """What the manager knows about a run it owns; guarded by the manager's lock."""

    folder: RunFolder
    model_type: str
    params: dict
    status: str = "queued"
    error: str | None = None
    stage: str | None = None
    stage_epochs: int = 0
    epoch: int = 0
    epochs_done: int = 0
    epochs_total: int = 0
    batch: int = 0
    total_batches: int = 0
    metrics: list = field(default_factory=list)
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    epoch_started_at: float | None = None
    epoch_seconds: list = field(default_factory=list)
    best_metric: Any = None
    stop_event: threading.Event = field(default_factory=threading.Event)


class RunManager:
    """Starts training runs on one background worker thread, one at a time, in FIFO order.

    ``submit`` creates the run folder at once (status ``queued``), so the queue survives in the
    UI; the worker calls the trainer with ``on_event``/``should_stop``/``run_dir`` hooks and keeps
    each run's progress in memory behind a lock. ``snapshot``/``runs`` return plain copies, safe
    to read from any thread. The trainers persist metrics and status through the run folder;
    the manager only fills the gaps (queued, failed before start, cancelled).

    Args:
        home: the data home (default: ``$PEDSENSE_HOME`` or the repository root).
        trainers: ``{model_type: callable}`` overriding the seed trainers (for other trainers
            that follow the same hook contract).
    """

    def __init__(self, home: str | os.PathLike | None = None,
                 trainers: Mapping[str, Callable[..., Any]] | None = None):
        self.home = paths(home).home
        self._trainers = dict(trainers or {})
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._live: dict[str, LiveRun] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.interrupted = self.mark_interrupted()

    # -- public API -----------------------------------------------------------------------
    def trainer(self, model_type: str) -> Callable[..., Any]:
        return self._trainers.get(model_type) or load_trainer(model_type)

    def submit(self, model_type: str, params: Mapping[str, Any]) -> str:
        """Queue a training run; returns its run id (``<model_type>/<folder>``).

        Raises:
            FormError: invalid or unknown parameters (nothing is created).
        """
        trainer = self.trainer(model_type)
        params = self._checked_params(model_type, trainer, params)
        folder = RunFolder.create(model_type, params.get("name"),
                                  default_prefix=DEFAULT_PREFIXES.get(model_type), home=self.home)
        folder.write_config({"model_type": model_type, **params, "run_dir": str(folder.path)})
        folder.set_status("queued", owner_pid=os.getpid(), owner_start=process_start_token(os.getpid()))
        folder.log(f"queued {model_type} run with {params}")
        live = LiveRun(folder=folder, model_type=model_type, params=params,
                       epochs_total=_planned_epochs(model_type, params))
        with self._wakeup:
            self._live[folder.run_id] = live
            self._queue.append(folder.run_id)
            with _OWNED_LOCK:
                _OWNED_RUNS.add(str(folder.path))
            self._ensure_worker()
            self._wakeup.notify_all()
        return folder.run_id

    def stop(self, run_id: str) -> str:
        """Stop a run: a running one finishes its batch and ends ``stopped``; a queued one is
        cancelled (``stopped``) without starting. Returns the run's status after the request."""
        with self._lock:
            live = self._live.get(run_id)
            if live is None or live.status not in LIVE_STATUSES:
                return self.snapshot(run_id)["status"]
            if live.status == "running":
                live.stop_event.set()
                live.folder.log("stop requested")
                return "running"
            self._queue.remove(run_id)
            live.status, live.finished_at = "stopped", time.time()
            live.error = "cancelled before it started"
        live.folder.set_status("stopped", error="cancelled before it started", cancelled=True)
        live.folder.log("cancelled while queued")
        self._release(live)
        return "stopped"

    def delete(self, run_id: str) -> None:
        """Delete a finished run's folder (a queued or running run must be stopped first)."""
        folder = find_run(run_id, self.home)
        models = paths(self.home).models.resolve()
        if models not in folder.path.resolve().parents:
            raise RunNotFound(f"{run_id!r} is not a run folder under {models}.")
        status = self.snapshot(run_id)["status"]
        if status in LIVE_STATUSES:
            raise ConfigError(f"Run {run_id} is {status}: stop it before deleting it.")
        with self._lock:
            self._live.pop(run_id, None)
        shutil.rmtree(folder.path)

    def snapshot(self, run_id: str) -> dict:
        """Plain copy of a run's state: status, progress, metrics rows, error, ETA, config."""
        with self._lock:
            live = self._live.get(run_id)
            if live is not None:
                snap = self._live_snapshot(live)
                snap["queue_position"] = (list(self._queue).index(run_id) + 1
                                          if run_id in self._queue else None)
                return snap
        return disk_snapshot(find_run(run_id, self.home))

    def runs(self) -> list[dict]:
        """Every run of the data home (newest first) as summary dicts, live state merged in."""
        summaries = []
        with self._lock:
            live_ids = set(self._live)
        for folder in list_runs(self.home):
            if folder.run_id in live_ids:
                snap = self.snapshot(folder.run_id)
            else:
                snap = disk_snapshot(folder)
            snap.pop("config", None)
            summaries.append(snap)
        return summaries

    def active(self) -> list[dict]:
        """The running run (if any) then the queued ones, in the order they will run."""
        with self._lock:
            order = [rid for rid, live in self._live.items() if live.status == "running"]
            order += list(self._queue)
        return [self.snapshot(rid) for rid in order]

    def wait(self, run_id: str, timeout: float = 60.0) -> dict:
        """Block until ``run_id`` leaves queued/running (for tests and scripts); returns its snapshot."""
        deadline = time.monotonic() + timeout
        with self._wakeup:
            while True:
                live = self._live.get(run_id)
                if live is None or live.status not in LIVE_STATUSES:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"run {run_id} still {live.status} after {timeout:.0f} s")
                self._wakeup.wait(min(remaining, 0.5))
        return self.snapshot(run_id)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until nothing is queued or running."""
        deadline = time.monotonic() + timeout
        with self._wakeup:
            while self._queue or any(l.status == "running" for l in self._live.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"runs still active after {timeout:.0f} s")
                self._wakeup.wait(min(remaining, 0.5))

    def shutdown(self, stop_running: bool = True, timeout: float = 30.0) -> None:
        """Cancel queued runs, ask the running one to stop and wait for the worker."""
        with self._lock:
            queued = list(self._queue)
        for run_id in queued:
            self.stop(run_id)
        with self._wakeup:
            self._closed = True
            if stop_running:
                for live in self._live.values():
                    live.stop_event.set()
            self._wakeup.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def mark_interrupted(self) -> list[str]:
        """Mark runs that say ``running``/``queued`` but that no live process owns as ``interrupted``.

        Their metrics and weights stay. Returns the run ids marked.
        """
        marked = []
        for folder in list_runs(self.home):
            status = folder.read_status()
            if status.get("status") not in LIVE_STATUSES or self._owned_elsewhere(folder, status):
                continue
            folder.set_status("interrupted", error=(
                f"the process that ran it is gone (it was {status.get('status')}); "
                "its metrics and weights up to then are kept. Resume it "
                "(pedsense.train.resume.resume_run) or launch it again."))
            folder.log("marked interrupted: its process is gone")
            marked.append(folder.run_id)
        return marked

    # -- worker ---------------------------------------------------------------------------
    @staticmethod
    def _owned_elsewhere(folder: RunFolder, status: Mapping[str, Any]) -> bool:
        with _OWNED_LOCK:
            if str(folder.path) in _OWNED_RUNS:
                return True
        pid = status.get("pid", status.get("owner_pid"))
        if pid is None or int(pid) == os.getpid():
            # This process owns no thread for it (checked above): nobody is running it.
            return False
        start = status.get("owner_start") if status.get("owner_pid") == pid else None
        return process_alive(pid, start)

    def _checked_params(self, model_type: str, trainer: Callable[..., Any],
                        params: Mapping[str, Any]) -> dict:
        accepted = trainer_parameters(trainer)
        unknown = [k for k in params if k not in accepted]
        errors = {k: f"{model_type} trainer has no parameter {k!r}." for k in unknown}
        errors.update(validate_training_params(model_type, params, self.home))
        if errors:
            raise FormError(errors)
        clean = dict(params)
        if "name" in accepted:
            clean["name"] = sanitize_name(clean.get("name"), DEFAULT_PREFIXES.get(model_type, model_type))
        return clean

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._closed = False
            self._worker = threading.Thread(target=self._work, name="pedsense-run-worker", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._wakeup:
                while not self._queue and not self._closed:
                    self._wakeup.wait(1.0)
                if not self._queue:
                    return
                live = self._live[self._queue.popleft()]
                live.status, live.started_at = "running", time.time()
                self._wakeup.notify_all()
            self._execute(live)

    def _execute(self, live: LiveRun) -> None:
        folder = live.folder
        outcome, error = "completed", None
        try:
            folder.set_status("running")
            folder.log("training started")
            trainer = self.trainer(live.model_type)
            hooks = {"on_event": self._listener(live), "should_stop": live.stop_event.is_set,
                     "run_dir": folder.path, "home": self.home}
            accepted = inspect.signature(trainer).parameters
            trainer(**live.params, **{k: v for k, v in hooks.items() if k in accepted})
            if live.stop_event.is_set():
                outcome = "stopped"
        except PedsenseError as exc:
            outcome, error = "failed", str(exc)
        except Exception as exc:  # a trainer bug must not kill the worker or the app
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"
            folder.log(traceback.format_exc())
        self._finish(live, outcome, error)

    def _finish(self, live: LiveRun, outcome: str, error: str | None) -> None:
        """Record how the run ended, unless the trainer already did (its words win)."""
        folder = live.folder
        recorded = folder.read_status()
        on_disk = recorded.get("status", "unknown")
        trainer_recorded_failure = on_disk == "failed" and recorded.get("error")
        if outcome == "failed" and trainer_recorded_failure:
            error = recorded["error"]
        elif outcome == "failed" or on_disk not in FINISHED_STATUSES:
            # It raised, or returned without saying how it ended: never leave the run
            # looking complete (or still running) when it is not.
            folder.set_status(outcome, error=error)
        else:
            outcome, error = on_disk, recorded.get("error")
        folder.log(f"run ended: {outcome}" + (f" ({error})" if error else ""))
        with self._wakeup:
            live.status, live.error, live.finished_at = outcome, error, time.time()
            live.batch = 0
            self._wakeup.notify_all()
        self._release(live)

    @staticmethod
    def _release(live: LiveRun) -> None:
        with _OWNED_LOCK:
            _OWNED_RUNS.discard(str(live.folder.path))

    def _listener(self, live: LiveRun) -> Callable[[Any], None]:
        """The ``on_event`` hook for one run: folds each event into ``live`` under the lock."""
        from pedsense.train import events as ev

        def on_event(event: Any) -> None:
            try:
                with self._lock:
                    _apply_event(live, event, ev)
            except Exception:  # a bad event must never break the training loop
                live.folder.log("ignored malformed event: " + traceback.format_exc(limit=2))

        return on_event

    def _live_snapshot(self, live: LiveRun) -> dict:
        now = time.time()
        started = live.started_at
        end = live.finished_at or now
        config = live.folder.read_config() if live.status not in LIVE_STATUSES else dict(
            {"model_type": live.model_type}, **live.params)
        rows = [dict(r) for r in live.metrics] or (live.folder.read_metrics()
                                                    if live.status not in LIVE_STATUSES else [])
        return {
            "run_id": live.folder.run_id, "model_type": live.model_type, "name": live.folder.name,
            "path": str(live.folder.path), "status": live.status, "error": live.error,
            "stage": live.stage, "epoch": live.epoch, "epochs_done": live.epochs_done,
            "epochs_total": max(live.epochs_total, live.epochs_done), "stage_epochs": live.stage_epochs,
            "batch": live.batch, "total_batches": live.total_batches, "metrics": rows,
            "eta_s": _eta(live, now), "live": True,
            "started_at": _iso(started), "finished_at": _iso(live.finished_at),
            "duration_s": (end - started) if started else None,
            "best_metric": best_metric(live.model_type, rows,
                                       {"best_metric": live.best_metric} if live.best_metric else config),
            "config": config, "queue_position": None,
        }


def _apply_event(live: LiveRun, event: Any, ev: Any) -> None:
    now = time.time()
    if isinstance(event, ev.StageStarted):
        live.stage, live.stage_epochs, live.epoch_started_at = event.stage, event.total_epochs, now
    elif isinstance(event, ev.BatchEnd):
        live.epoch, live.batch, live.total_batches = event.epoch, event.batch, event.total_batches
        live.epoch_started_at = live.epoch_started_at or now
    elif isinstance(event, ev.EpochEnd):
        row = {"epoch": event.epoch, **dict(event.metrics)}
        if event.stage and event.stage != "train":
            row.setdefault("stage", event.stage)
        live.metrics.append(row)
        live.epochs_done += 1
        live.epoch = event.epoch
        live.stage_epochs = event.total_epochs or live.stage_epochs
        if live.epoch_started_at is not None:
            live.epoch_seconds.append(now - live.epoch_started_at)
        live.epoch_started_at, live.batch = now, 0
    elif isinstance(event, ev.RunFinished):
        live.best_metric = dict(event.best_metric) if event.best_metric else None
        if event.error:
            live.error = event.error
    elif isinstance(event, ev.RunStarted):
        live.epoch_started_at = now


def _eta(live: LiveRun, now: float) -> float | None:
    """Seconds left: mean epoch time × epochs left, less the part of this epoch already done."""
    if live.status != "running" or not live.epoch_seconds or not live.epochs_total:
        return None
    per_epoch = sum(live.epoch_seconds) / len(live.epoch_seconds)
    left = max(live.epochs_total - live.epochs_done, 0) * per_epoch
    if live.total_batches:
        left -= per_epoch * live.batch / live.total_batches
    elif live.epoch_started_at:
        left -= min(now - live.epoch_started_at, per_epoch)
    return max(left, 0.0)


def _planned_epochs(model_type: str, params: Mapping[str, Any]) -> int:
    """Epochs the run will train in all its stages (the hybrid adds YOLO's unless reused)."""
    epochs = _as_int(params.get("epochs"))
    if model_type == "hybrid" and not params.get("yolo_model"):
        epochs += _as_int(params.get("yolo_epochs"))
    return epochs


def _as_int(value: Any) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, timezone.utc).astimezone().isoformat(timespec="seconds")


# Which metric "best" means, in order of preference: (column, higher is better).
BEST_METRIC_COLUMNS = (
    ("val_accuracy", True), ("val_acc", True), ("metrics/mAP50-95(B)", True), ("mAP50-95", True),
    ("map50_95", True), ("metrics/mAP50(B)", True), ("mAP50", True), ("map50", True),
    ("accuracy", True), ("val_loss", False), ("train_loss", False), ("loss", False),
)


def best_metric(model_type: str, rows: list[Mapping[str, Any]],
                config: Mapping[str, Any] | None = None) -> dict | None:
    """``{"name", "value", "epoch"}`` of the run's best epoch (from config when it says)."""
    recorded = (config or {}).get("best_metric")
    if isinstance(recorded, Mapping) and recorded.get("value") is not None:
        return dict(recorded)
    if isinstance(recorded, Mapping):  # a trainer's {"val_acc": 0.81, "epoch": 3} form
        preferred = [c for c, _ in BEST_METRIC_COLUMNS if isinstance(recorded.get(c), (int, float))]
        others = [k for k, v in recorded.items()
                  if k not in ("epoch", "stage") and isinstance(v, (int, float))]
        for key in preferred + others:
            return {"name": key, "value": recorded[key], "epoch": recorded.get("epoch")}
    for column, higher in BEST_METRIC_COLUMNS:
        scored = [r for r in rows if isinstance(r.get(column), (int, float))]
        if scored:
            pick = (max if higher else min)(scored, key=lambda r: r[column])
            return {"name": column, "value": pick[column], "epoch": pick.get("epoch")}
    return None


def disk_snapshot(folder: RunFolder) -> dict:
    """The same dict as ``RunManager.snapshot`` for a run no thread of this process owns."""
    status = folder.read_status()
    config = folder.read_config()
    rows = folder.read_metrics()
    model_type = config.get("model_type", folder.model_type)
    # Trainers record their arguments under "parameters"; the manager's queued config is flat.
    params = config.get("parameters") if isinstance(config.get("parameters"), Mapping) else config
    started, finished = _parse_iso(status.get("started_at")), _parse_iso(status.get("finished_at"))
    end = finished or (time.time() if status.get("status") == "running" else None)
    epochs = [r.get("epoch") for r in rows if isinstance(r.get("epoch"), (int, float))]
    return {
        "run_id": folder.run_id, "model_type": model_type, "name": folder.name,
        "path": str(folder.path), "status": status.get("status", "unknown"),
        "error": status.get("error"), "stage": None, "epoch": int(max(epochs)) if epochs else 0,
        "epochs_done": len(rows), "epochs_total": max(_planned_epochs(model_type, params), len(rows)),
        "stage_epochs": 0, "batch": 0, "total_batches": 0, "metrics": rows, "eta_s": None,
        "live": False, "started_at": status.get("started_at"), "finished_at": status.get("finished_at"),
        "duration_s": (end - started) if (started and end) else None,
        "best_metric": best_metric(model_type, rows, config), "config": config, "queue_position": None,
    }


def _parse_iso(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp() if text else None
    except ValueError:
        return None
