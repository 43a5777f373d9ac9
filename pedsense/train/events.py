"""What trainers announce while they run.

Trainers take two keyword-only hooks, ``on_event`` and ``should_stop``. Events are frozen
snapshots because the listener usually lives on another thread (the dashboard's run manager).
``should_stop`` is polled after every batch; when it returns True the trainer finishes the
batch, saves its weights and ends the run with status ``stopped``.

``BatchEnd`` comes after every batch (progress, stop); ``StepEnd`` every few optimizer steps,
so a run draws a few hundred points of its loss curve from its first seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union


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
