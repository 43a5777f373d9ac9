"""Background data jobs (demo set, frame extraction, dataset builds) with progress.

The Data page starts them and reads :class:`JobSummary` copies; they run one at a time in the
order they were started (each build reads what the one before it wrote) on the same
:class:`pedsense.workqueue.WorkQueue` as training runs, with the same status words. Like the
``RunManager``, a ``JobManager`` never touches Streamlit.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from pedsense.catalogue import sweep_dataset_temp
from pedsense.config import paths
from pedsense.data.intent import IntentOptions
from pedsense.errors import ConfigError
from pedsense.runfolder import LIVE_STATUSES
from pedsense.workqueue import WorkItem, WorkQueue

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
    "annotations": ("pedsense.data.download:download_annotations",
                    "Download JAAD's annotations (no clips)"),
    "context": ("pedsense.data.context_format:build_context_dataset",
                "Build the context dataset (annotations only)"),
}
# What "prepare everything" runs, in order.
PIPELINE = ("frames", "yolo", "detector", "resnet", "crops")


# Dataset builds that take the labels' task (``action``/``intent``) and the intent protocol.
TASK_JOBS = ("yolo", "detector", "resnet", "crops")


def task_job_kwargs(kind: str, task: str = "action", split: str = "default",
                    intent: IntentOptions | None = None) -> dict[str, Any]:
    """The keyword arguments data job ``kind`` takes for ``task``, ``split`` and, under
    ``intent``, the protocol (one ``IntentOptions``); {} for other jobs.

    The ResNet sequences take the observation length as ``sequence_length``. Under ``action``
    the protocol is left out, so an action build keeps its own defaults.
    """
    if kind not in TASK_JOBS:
        return {}
    kwargs: dict[str, Any] = {"task": task, "split": split}
    if task == "intent":
        options = intent or IntentOptions()
        kwargs["intent"] = options
        if kind == "resnet":
            kwargs["sequence_length"] = options.obs_length
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
class Job(WorkItem):
    """One data job: the function's keyword arguments, its progress and its result."""

    kwargs: dict = field(default_factory=dict)
    done: int = 0
    total: int = 0
    message: str = ""
    result: Any = None


@dataclass(frozen=True)
class JobSummary:
    """A plain copy of a job's state (safe to read from any thread)."""

    job_id: str
    kind: str
    label: str
    status: str
    done: int
    total: int
    message: str
    fraction: float
    result: Any
    error: str | None
    duration_s: float | None
    version: int

    @property
    def active(self) -> bool:
        return self.status in LIVE_STATUSES


class JobManager:
    """Runs data jobs one at a time on a background thread; ``snapshot`` returns plain copies."""

    def __init__(self, home: str | os.PathLike | None = None,
                 functions: Mapping[str, Callable[..., Any]] | None = None):
        self.home = paths(home).home
        self._functions = dict(functions or {})
        self._counter = itertools.count(1)
        self._queue = WorkQueue("data-jobs", self._run)
        sweep_dataset_temp(self.home)  # what builds killed mid-write left behind

    def function(self, kind: str) -> Callable[..., Any]:
        return self._functions.get(kind) or load_job_function(kind)

    def start(self, kind: str, **kwargs: Any) -> str:
        """Queue data job ``kind`` with keyword arguments for its function; returns the job id."""
        accepted = inspect.signature(self.function(kind)).parameters
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            raise ConfigError(f"{DATA_JOBS.get(kind, (kind, kind))[1]} takes no option(s) "
                              + ", ".join(unknown) + ".")
        job = Job(item_id=f"{kind}-{next(self._counter)}", kind=kind, kwargs=dict(kwargs))
        return self._queue.submit(job)

    def snapshot(self, job_id: str) -> JobSummary:
        with self._queue.lock:
            return _summary(self._queue.get(job_id))

    def latest(self, kind: str) -> JobSummary | None:
        """The most recent job of ``kind`` (running, queued or finished), or None."""
        with self._queue.lock:
            found = [j for j in self._queue.items() if j.kind == kind]
            return _summary(found[-1]) if found else None

    def active(self) -> list[JobSummary]:
        with self._queue.lock:
            return [_summary(j) for j in self._queue.active()]

    def busy(self) -> bool:
        return self._queue.busy()

    def version(self) -> int:
        """Moves whenever any job changes (progress included): a cheap "anything new?"."""
        with self._queue.lock:
            return max((j.version for j in self._queue.items()), default=0)

    def status_version(self) -> tuple:
        """Moves when a job is added or its status changes (not on progress)."""
        with self._queue.lock:
            return tuple((j.item_id, j.status) for j in self._queue.items())

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Block until every job has finished (for tests and scripts)."""
        self._queue.wait_idle(timeout)

    # -- running one job -------------------------------------------------------------------
    def _run(self, job: Job) -> tuple[str, str | None]:
        function = self.function(job.kind)
        result = function(**self._call_kwargs(function, job))
        with self._queue.lock:
            job.result = result
        failed = _all_failed(result)
        return ("failed", failed) if failed else ("completed", None)

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
            with self._queue.lock:
                job.done, job.total, job.message = int(done), int(total), str(message)
                job.touch()
        return progress


def _all_failed(result: Any) -> str | None:
    """Why a job that returned is still a failure: every item it had to do failed."""
    if isinstance(result, Mapping) and result.get("failed") and not result.get("extracted") \
            and not result.get("skipped"):
        failed = result["failed"]
        return (f"all {len(failed)} videos failed, e.g. {next(iter(failed))}: "
                f"{next(iter(failed.values()))}" if isinstance(failed, Mapping) and failed
                else "every item failed")
    return None


def _summary(job: Job | None) -> JobSummary | None:
    if job is None:
        return None
    result = job.result
    if isinstance(result, Mapping):
        result = {k: (str(v) if isinstance(v, Path) else v) for k, v in result.items()}
    elif isinstance(result, Path):
        result = {"path": str(result)}
    fraction = min(job.done / job.total, 1.0) if job.total else (1.0 if job.status == "completed" else 0.0)
    return JobSummary(
        job_id=job.item_id, kind=job.kind, label=DATA_JOBS.get(job.kind, (None, job.kind))[1],
        status=job.status, done=job.done, total=job.total, message=job.message, fraction=fraction,
        result=result, error=job.error, version=job.version,
        duration_s=((job.finished_at or time.time()) - job.started_at) if job.started_at else None)
