"""A run's state read from its folder: :class:`RunSummary`, cached by file stamp.

The summary is a plain frozen copy, safe to pass between threads; the run manager overlays a
live run's progress on it (``RunSummary.with_changes``). Nothing is re-read until one of the
files it comes from changes size or modification time (:func:`file_stamps`).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

from pedsense.catalogue import describe_task
from pedsense.config import MODEL_TYPES
from pedsense.errors import FileFormatError, PedsenseError
from pedsense.io import read_object
from pedsense.runfolder import (FINISHED_STATUSES, UNREADABLE, RunFolder, best_of, list_runs, parse_iso,
                                unreadable_message)
from pedsense.runlabels import RunLabels, labels_path, read_labels


@dataclass(frozen=True)
class RunSummary:
    """A plain copy of a run's state, safe to read from any thread (from disk or a live run)."""

    run_id: str
    model_type: str
    name: str
    path: str
    status: str
    error: str | None = None
    stage: str | None = None
    epoch: int = 0
    epochs_done: int = 0
    epochs_total: int = 0
    stage_epochs: int = 0
    batch: int = 0
    total_batches: int = 0
    metrics: tuple = ()
    steps: tuple = ()
    eta_s: float | None = None
    live: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    best_metric: dict | None = None
    config: dict = field(default_factory=dict)
    queue_position: int | None = None
    stop_requested: bool = False
    version: tuple = ()        # moves when anything changes (progress included)
    data_version: tuple = ()   # moves only when a chart point (epoch row or step) arrives
    labels: RunLabels = RunLabels()  # tags, note, archived (``pedsense.runlabels``)

    @property
    def parameters(self) -> dict:
        """The trainer parameters the run was launched with."""
        params = self.config.get("parameters")
        return dict(params) if isinstance(params, Mapping) else {}

    @property
    def weights_source(self) -> Any:
        return self.config.get("weights_source")

    @property
    def dataset(self) -> str:
        """``"synthetic · action"``, ``"JAAD · intent (obs 16, …)"``: what the run trained on."""
        return dataset_label(self.config)

    @property
    def sweep(self) -> str | None:
        """The name of the sweep the run is a trial of, if any."""
        sweep = self.config.get("sweep")
        return str(sweep.get("name")) if isinstance(sweep, Mapping) and sweep.get("name") else None

    def with_changes(self, **changes: Any) -> "RunSummary":
        return replace(self, **changes)


def dataset_label(config: Mapping[str, Any]) -> str:
    """The data a run's ``config.json`` says it trained on: source and task ("" when unknown)."""
    dataset = config.get("dataset") if isinstance(config.get("dataset"), Mapping) else {}
    manifest = dataset.get("manifest") if isinstance(dataset.get("manifest"), Mapping) else {}
    if not manifest:
        return ""
    source = "synthetic" if manifest.get("synthetic") else "JAAD"
    task = describe_task(dict(manifest))
    return f"{source} · {task}" if task else source


_CACHE: dict[str, tuple[tuple, RunSummary]] = {}
_CACHE_LOCK = threading.Lock()


_CONFIGS: dict[str, tuple[tuple, dict]] = {}


def cached_config(folder: RunFolder) -> dict:
    """``config.json`` (``{}`` when missing or unreadable), read again only when its size or
    mtime moved: a live run's summary is asked for every second."""
    try:
        stat = folder.config_path.stat()
    except OSError:
        return {}
    stamp, key = (stat.st_size, stat.st_mtime_ns), str(folder.config_path)
    with _CACHE_LOCK:
        cached = _CONFIGS.get(key)
    if cached is None or cached[0] != stamp:
        cached = (stamp, folder.read_config())
        with _CACHE_LOCK:
            _CONFIGS[key] = cached
    return dict(cached[1])


def file_stamps(folder: RunFolder) -> tuple:
    """``(size, mtime_ns)`` of the files a summary is read from: equal stamps, equal summary."""
    stamps = []
    for path in (folder.status_path, folder.config_path, folder.metrics_path, folder.steps_path,
                 labels_path(folder)):
        try:
            stat = path.stat()
            stamps.append((stat.st_size, stat.st_mtime_ns))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def read_summary(folder: RunFolder,
                 planned_epochs: Callable[[str, Mapping[str, Any]], int] | None = None) -> RunSummary:
    """The :class:`RunSummary` of a run no live manager owns, read from its files.

    Re-reads nothing that has not changed since the last call (file sizes and mtimes).
    ``planned_epochs(model_type, parameters)`` gives a run's total epochs across stages when
    its config does not record them.
    """
    stamps = file_stamps(folder)
    key = str(folder.path)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamps:
        summary = cached[1]
    else:
        summary = _read_summary(folder, planned_epochs, stamps)
        with _CACHE_LOCK:
            _CACHE[key] = (stamps, summary)
    changes: dict[str, Any] = {"metrics": tuple(dict(r) for r in summary.metrics),  # copies
                                "steps": tuple(dict(r) for r in summary.steps),
                                "config": dict(summary.config)}
    if summary.status == "running" and summary.started_at:
        started = parse_iso(summary.started_at)
        changes["duration_s"] = time.time() - started if started else None
    return summary.with_changes(**changes)


def _read_summary(folder: RunFolder, planned_epochs: Callable | None, stamps: tuple) -> RunSummary:
    problems: list[str] = []
    status = folder.read_status()
    if status["status"] == UNREADABLE:
        problems.append(status["error"])
    config, problem = read_object(folder.config_path)
    if problem:
        problems.append(f"config.json {problem}")
    config = config or {}
    rows, steps = (), ()
    try:
        rows = tuple(folder.read_metrics())
        steps = tuple(folder.read_steps())
    except FileFormatError as exc:
        problems.append(str(exc))
    recorded_type = config.get("model_type")
    model_type = recorded_type if recorded_type in MODEL_TYPES else folder.model_type
    started, finished = parse_iso(status.get("started_at")), parse_iso(status.get("finished_at"))
    epochs = [r.get("epoch") for r in rows if isinstance(r.get("epoch"), (int, float))]
    recorded = config.get("best_metric")
    best = dict(recorded) if isinstance(recorded, Mapping) and recorded.get("name") else best_of(model_type, rows)
    params = config.get("parameters") if isinstance(config.get("parameters"), Mapping) else {}
    total = config.get("epochs_total")
    if not isinstance(total, int):
        try:
            total = planned_epochs(model_type, params) if planned_epochs else 0
        except (PedsenseError, TypeError, ValueError):  # parameters edited by hand
            total = 0
    return RunSummary(
        run_id=folder.run_id, model_type=model_type, name=folder.name, path=str(folder.path),
        status=UNREADABLE if problems else str(status.get("status", "unknown")),
        error=unreadable_message(folder.run_id, problems) if problems else status.get("error"),
        epoch=int(max(epochs)) if epochs else 0, epochs_done=len(rows),
        epochs_total=max(int(total or 0), len(rows)), metrics=rows, steps=steps,
        started_at=status.get("started_at"), finished_at=status.get("finished_at"),
        duration_s=(finished - started) if (started and finished) else None,
        best_metric=best, config=config, stop_requested=bool(status.get("stop_requested")),
        version=stamps, data_version=stamps[2:4], labels=read_labels(folder))


def ended_since(summaries: Iterable[RunSummary], since: float) -> list[RunSummary]:
    """The runs that ended (completed, failed, stopped, interrupted) at or after ``since``
    (seconds since the epoch; ``finished_at`` holds whole seconds), the earliest end first."""
    floor = int(since)
    ended = [s for s in summaries if s.status in FINISHED_STATUSES
             and (parse_iso(s.finished_at) or -1) >= floor]
    return sorted(ended, key=lambda s: parse_iso(s.finished_at) or 0)


def readable_runs(home: str | os.PathLike | None = None, model_types: Iterable[str] = MODEL_TYPES, *,
                  status: str | None = None) -> list[RunFolder]:
    """The runs (newest first; only those with ``status`` when given) whose files all read.

    A run whose status, config or metrics do not read is ``unreadable``: the Runs page lists it
    with the reason; every other list of runs to pick from or compare leaves it out.
    """
    return [run for run in list_runs(home, model_types)
            if (summary := read_summary(run)).status != UNREADABLE and status in (None, summary.status)]

