"""Background data jobs (demo set, frame extraction, dataset builds) with progress.

The Data page starts them and polls ``snapshot``; they run one at a time on a worker thread in
the order they were started, because each build reads what the one before it wrote. Like the
``RunManager``, a ``JobManager`` never touches Streamlit: pages read plain dicts.
"""

from __future__ import annotations

import collections
import importlib
import inspect
import itertools
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from pedsense.config import paths
from pedsense.errors import ConfigError, PedsenseError

# kind -> ("module:function", label shown on the Data page). Each function takes ``home`` (or
# ``root`` for the demo set) and ``progress(done, total, message)``, and returns a summary dict.
DATA_JOBS: dict[str, tuple[str, str]] = {
    "demo": ("pedsense.data.synthetic:make_demo_dataset", "Make the synthetic demo set"),
    "frames": ("pedsense.data.frames:extract_frames", "Extract frames"),
    "yolo": ("pedsense.data.yolo_format:build_yolo_dataset", "Build the YOLO dataset (2 classes)"),
    "detector": ("pedsense.data.yolo_format:build_detector_dataset",
                 "Build the detector dataset (1 class, hybrid stage 1)"),
    "resnet": ("pedsense.data.resnet_format:build_resnet_sequences", "Build the ResNet-LSTM sequences"),
    "crops": ("pedsense.data.resnet_format:build_resnet_crops", "Build the hybrid's intent crops"),
}
# What "prepare everything" runs, in order.
PIPELINE = ("frames", "yolo", "detector", "resnet", "crops")
JOB_ACTIVE = ("queued", "running")


# Dataset builds that take the labels' task (``action``/``intent``) and the intent protocol.
TASK_JOBS = ("yolo", "detector", "resnet", "crops")
INTENT_OPTION_NAMES = ("obs_length", "tte", "overlap", "sample_type", "irrelevant")


def task_job_kwargs(kind: str, task: str = "action", split: str = "default",
                    **intent: Any) -> dict[str, Any]:
    """The keyword arguments data job ``kind`` takes for ``task`` (and, under ``intent``, the
    protocol ``obs_length, tte, overlap, sample_type, irrelevant``); {} for other jobs.

    The ResNet sequences take the observation length as ``sequence_length``. Under ``action``
    the protocol is left out, so an action build keeps its own defaults.
    """
    if kind not in TASK_JOBS:
        return {}
    unknown = sorted(set(intent) - set(INTENT_OPTION_NAMES))
    if unknown:
        raise ConfigError(f"Unknown intent option(s) {', '.join(unknown)}; "
                          f"use {', '.join(INTENT_OPTION_NAMES)}.")
    kwargs: dict[str, Any] = {"task": task, "split": split}
    if task == "intent":
        kwargs.update(intent)
        if kind == "resnet" and "obs_length" in kwargs:
            kwargs["sequence_length"] = kwargs.pop("obs_length")
    return kwargs


def load_job_function(kind: str) -> Callable[..., Any]:
    """The library function behind data job ``kind`` (imported lazily)."""
    if kind not in DATA_JOBS:
        raise ConfigError(f"Unknown data job {kind!r}; pick one of {', '.join(DATA_JOBS)}.")
    module_name, func_name = DATA_JOBS[kind][0].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{DATA_JOBS[kind][1]} is not available in this install ({exc}).") from exc
    return getattr(module, func_name)


@dataclass
class Job:
    """One data job's state; guarded by the manager's lock."""

    job_id: str
    kind: str
    kwargs: dict
    status: str = "queued"
    done: int = 0
    total: int = 0
    message: str = ""
    result: Any = None
    error: str | None = None
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None


class JobManager:
    """Runs data jobs one at a time on a background thread; ``snapshot`` returns plain copies."""

    def __init__(self, home: str | os.PathLike | None = None,
                 functions: Mapping[str, Callable[..., Any]] | None = None):
        self.home = paths(home).home
        self._functions = dict(functions or {})
        self._lock = threading.Condition()
        self._jobs: dict[str, Job] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._counter = itertools.count(1)
        self._worker: threading.Thread | None = None

    def start(self, kind: str, **kwargs: Any) -> str:
        """Queue data job ``kind`` with keyword arguments for its function; returns the job id."""
        function = self._functions.get(kind) or load_job_function(kind)
        accepted = inspect.signature(function).parameters
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            raise ConfigError(f"{DATA_JOBS.get(kind, (kind, kind))[1]} takes no option(s) "
                              + ", ".join(unknown) + ".")
        with self._lock:
            job = Job(job_id=f"{kind}-{next(self._counter)}", kind=kind, kwargs=dict(kwargs))
            self._jobs[job.job_id] = job
            self._queue.append(job.job_id)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="pedsense-data-jobs",
                                                daemon=True)
                self._worker.start()
            self._lock.notify_all()
        return job.job_id

    def snapshot(self, job_id: str) -> dict:
        with self._lock:
            return _job_dict(self._jobs[job_id])

    def latest(self, kind: str) -> dict | None:
        """The most recent job of ``kind`` (running, queued or finished), or None."""
        with self._lock:
            found = [j for j in self._jobs.values() if j.kind == kind]
            return _job_dict(found[-1]) if found else None

    def active(self) -> list[dict]:
        with self._lock:
            return [_job_dict(j) for j in self._jobs.values() if j.status in JOB_ACTIVE]

    def busy(self) -> bool:
        with self._lock:
            return any(j.status in JOB_ACTIVE for j in self._jobs.values())

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Block until every job has finished (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(j.status in JOB_ACTIVE for j in self._jobs.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"data jobs still running after {timeout:.0f} s")
                self._lock.wait(min(remaining, 0.5))

    # -- worker ---------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._worker = None
                    return
                job = self._jobs[self._queue.popleft()]
                job.status, job.started_at = "running", time.time()
            self._run(job)

    def _run(self, job: Job) -> None:
        status, result, error = "done", None, None
        try:
            function = self._functions.get(job.kind) or load_job_function(job.kind)
            result = function(**self._call_kwargs(function, job))
        except PedsenseError as exc:
            status, error = "failed", str(exc)
        except Exception as exc:  # keep the app serving; the page shows the message
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        with self._lock:
            job.status, job.result, job.error, job.finished_at = status, result, error, time.time()
            self._lock.notify_all()

    def _call_kwargs(self, function: Callable[..., Any], job: Job) -> dict:
        accepted = inspect.signature(function).parameters
        kwargs = dict(job.kwargs)
        if "home" in accepted:
            kwargs.setdefault("home", self.home)
        elif "root" in accepted:
            kwargs.setdefault("root", self.home)
        if "progress" in accepted:
            kwargs["progress"] = self._progress_hook(job)
        return kwargs

    def _progress_hook(self, job: Job) -> Callable[[int, int, str], None]:
        def progress(done: int, total: int, message: str = "") -> None:
            with self._lock:
                job.done, job.total, job.message = int(done), int(total), str(message)
        return progress


def _job_dict(job: Job) -> dict:
    result = job.result
    if isinstance(result, Mapping):
        result = {k: (str(v) if isinstance(v, Path) else v) for k, v in result.items()}
    elif isinstance(result, Path):
        result = {"path": str(result)}
    return {
        "job_id": job.job_id, "kind": job.kind, "label": DATA_JOBS.get(job.kind, (None, job.kind))[1],
        "status": job.status, "done": job.done, "total": job.total, "message": job.message,
        "fraction": (min(job.done / job.total, 1.0) if job.total else (1.0 if job.status == "done" else 0.0)),
        "result": result, "error": job.error,
        "duration_s": ((job.finished_at or time.time()) - job.started_at) if job.started_at else None,
    }
