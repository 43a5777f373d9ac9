"""What trainers announce while they run.

Trainers take two keyword-only hooks, ``on_event`` and ``should_stop``. Events are frozen
snapshots because the listener usually lives on another thread (the dashboard's run manager).
``should_stop`` is polled after every batch; when it returns True the trainer finishes the
batch, saves its weights and ends the run with status ``stopped``.

``BatchEnd`` comes after every batch (progress, stop); ``StepEnd`` every few optimizer steps,
so a run draws a few hundred points of its loss curve from its first seconds.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union, get_args


@dataclass(frozen=True)
class RunStarted:
    """The run folder exists and ``config.json`` is written; training is about to begin."""

    run_id: str
    run_dir: Path
    model_type: str
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageStarted:
    """A training stage begins (the hybrid has ``detector`` then ``classifier``; others one)."""

    run_id: str
    stage: str
    total_epochs: int


@dataclass(frozen=True)
class BatchEnd:
    """One training batch finished (``batch`` counts from 1 within the epoch)."""

    run_id: str
    epoch: int
    batch: int
    total_batches: int
    stage: str = "train"


@dataclass(frozen=True)
class StepEnd:
    """A point of the training-loss curve (also a row of the run's ``steps.csv``).

    ``step`` is the 1-based optimizer step counted across the stage's epochs, ``loss`` the
    training loss smoothed with an exponential moving average, ``lr`` the learning rate then.
    """

    run_id: str
    epoch: int
    step: int
    loss: float
    lr: float
    stage: str = "train"


@dataclass(frozen=True)
class EpochEnd:
    """One epoch finished; ``metrics`` is the row just appended to ``metrics.csv``."""

    run_id: str
    epoch: int
    total_epochs: int
    metrics: Mapping[str, float]
    stage: str = "train"


@dataclass(frozen=True)
class RunFinished:
    """The run ended: ``status`` is ``completed``, ``stopped`` or ``failed`` (with ``error``)."""

    run_id: str
    run_dir: Path
    status: str
    error: Optional[str] = None
    best_metric: Optional[Mapping[str, Any]] = None


Event = Union[RunStarted, StageStarted, BatchEnd, StepEnd, EpochEnd, RunFinished]
EventHook = Optional[Callable[[Event], None]]
StopHook = Optional[Callable[[], bool]]


def emit(on_event: EventHook, event: Event) -> None:
    """Send ``event`` to the listener, if there is one."""
    if on_event is not None:
        on_event(event)


def stop_requested(should_stop: StopHook) -> bool:
    """True when the caller asked the run to stop."""
    return bool(should_stop is not None and should_stop())


# -- events as JSON lines (``<run>/events.jsonl``): how a run is followed from other processes ----
EVENT_TYPES = {cls.__name__: cls for cls in get_args(Event)}
# BatchEnd is written at most this often (the last batch of an epoch always), so the file stays
# small; every other event is always written.
BATCH_RECORD_EVERY_S = 0.5


def to_record(event: Any) -> dict:
    """``{"type": <class name>, "t": <unix time>, **fields}``: a JSON-ready copy of ``event``."""
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    for key, value in fields.items():
        if isinstance(value, Path):
            fields[key] = str(value)
        elif isinstance(value, Mapping):
            fields[key] = dict(value)
    return {"type": type(event).__name__, "t": time.time(), **fields}


def from_record(record: Mapping[str, Any]) -> Any:
    """The event a record of :func:`to_record` describes; None for an unknown or bad record
    (a newer writer's event type, a line cut short)."""
    cls = EVENT_TYPES.get(record.get("type")) if isinstance(record, Mapping) else None
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        event = cls(**{k: v for k, v in record.items() if k in names})
    except TypeError:
        return None
    return dataclasses.replace(event, run_dir=Path(event.run_dir)) if "run_dir" in names else event


class EventRecorder:
    """An ``on_event`` hook that appends each event to ``events.jsonl`` (flushed), then calls the
    caller's hook. A recording that fails (full disk) never breaks the training loop."""

    def __init__(self, path: str | Path, forward: EventHook = None):
        self.path = Path(path)
        self.forward = forward
        self.last_batch = 0.0
        self.file = None

    def __call__(self, event: Any) -> None:
        self.record(event)
        emit(self.forward, event)

    def record(self, event: Any) -> None:
        if isinstance(event, BatchEnd) and event.batch < event.total_batches:
            now = time.monotonic()
            if now - self.last_batch < BATCH_RECORD_EVERY_S:
                return
            self.last_batch = now
        try:
            if self.file is None:
                self.file = open(self.path, "a", encoding="utf-8")
            self.file.write(json.dumps(to_record(event), default=str) + "\n")
            self.file.flush()
        except (OSError, TypeError, ValueError):
            pass
        if isinstance(event, RunFinished):
            self.close()

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None


def read_records(path: str | Path, offset: int = 0) -> tuple[list[dict], int]:
    """The complete JSON lines of ``path`` from byte ``offset`` on, and the offset after them
    (a line still being written is left for the next call)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    records = []
    for line in data[:end].splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, offset + end
