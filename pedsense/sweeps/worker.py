"""A sweep's worker: it takes the study's next trial, runs it as an ordinary run, reports back.

Each trial is ``RunManager.submit`` with the base config, the trial's values and its seed; the
run is named ``<sweep>-t<NNN>`` and its ``config.json`` carries the tag ``{"sweep": {"name",
"study", "trial", "seed", "storage", "params", "state", "value", "error"}}``, written through
``RunFolder.update_config`` once the trainer has written its own config and again (with the
outcome) when the run has ended, so never while the trainer rewrites the file. While the run
trains, every epoch's validation metric goes to Optuna (``trial.report``); when the pruner says
so the worker asks the run to stop (``RunManager.stop``) and the trial ends ``pruned``. The
trial's value is the run's best validation metric. Any number of workers (processes, machines)
can run one study at once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from pedsense.config import paths
from pedsense.procs import process_alive, process_start_token
from pedsense.runfolder import LIVE_STATUSES, best_of, find_run
from pedsense.runsummary import RunSummary
from pedsense.runs import RunManager
from pedsense.sweeps.spec import SweepError
from pedsense.sweeps.study import (Sweep, clear_stop, dataset_record, decode, default_storage,
                                   distributions, make_sampler, open_sweep, stop_requested, study_lock)
from pedsense.train.params import FormError, spec_for

POLL_S = 0.5           # how often a worker looks at its run
STOP_CHECK_S = 2.0     # how often it reads the study's stop request while a run trains
STORAGE_ENV = "PEDSENSE_SWEEP_STORAGE"  # the storage URL a launched worker reads (never on argv)


@dataclass(frozen=True)
class TrialOutcome:
    """How one trial ended: ``complete`` (with its value), ``pruned``, ``failed`` or ``requeued``
    (stopped with the sweep; it runs again when a worker resumes the sweep)."""

    number: int
    run_id: str | None
    state: str
    value: float | None
    seed: int | None
    params: dict = field(default_factory=dict)
    error: str | None = None


@dataclass
class WorkerReport:
    """What one worker did and why it ended."""

    sweep: str
    outcomes: list[TrialOutcome]
    reason: str


def worker_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": process_start_token(pid)}


# -- the next trial ------------------------------------------------------------------------------
def used_trials(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Trials that count against the budget: all but those waiting, those lost and queued
    again (``requeued_from``), and a grid's extra asked after it ran out."""
    replaced = {t.user_attrs.get("requeued_from") for t in trials} - {None}
    return sum(1 for t in trials if t.state != TrialState.WAITING and t.number not in replaced
               and not t.user_attrs.get("extra"))


def next_trial(sweep: Sweep) -> optuna.Trial | None:
    """The next trial to run (a waiting one first), or None when the sweep has run its budget.

    A sampled configuration's first trial runs with the first seed and enqueues one trial per
    other seed with the same values, so every configuration runs with every seed."""
    spec, study = sweep.spec, sweep.study
    with study_lock(sweep.storage):
        trials = study.get_trials(deepcopy=False)
        if not any(t.state == TrialState.WAITING for t in trials):
            if spec.sampler == "grid" or used_trials(trials) + len(spec.seeds) > spec.n_trials:
                return None
        # A sampler seeded by the trials so far: the same history samples the same values (one
        # worker is reproducible), and no two workers ever ask with the same seed (under the lock).
        study.sampler = make_sampler(spec, (spec.sampler_seed * 100_003 + len(trials)) % 2**32)
        trial = study.ask(distributions(spec))
        if "seed" not in trial.user_attrs:
            if spec.sampler == "grid":  # another worker took the last one (a server database)
                trial.set_user_attr("extra", "asked after another worker took the grid's last trial")
                study.tell(trial, state=TrialState.FAIL)
                return None
            trial.set_user_attr("seed", spec.seeds[0])
            for seed in spec.seeds[1:]:
                study.enqueue_trial(trial.params, user_attrs={"seed": seed, "replica_of": trial.number})
        trial.set_user_attr("worker", worker_identity())
        return trial


def requeue_lost_trials(sweep: Sweep) -> list[int]:
    """Trials left ``RUNNING`` by a worker of this machine that is gone: failed, and queued again
    with the same values and seed. Returns their numbers."""
    host, lost = socket.gethostname(), []
    with study_lock(sweep.storage):
        for trial in sweep.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = trial.user_attrs.get("worker") or {}
            if worker.get("host") != host or process_alive(worker.get("pid"), worker.get("start")):
                continue
            sweep.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            _enqueue_again(sweep, trial.params, trial.user_attrs, trial.number)
            lost.append(trial.number)
    return lost


def _enqueue_again(sweep: Sweep, params: dict, attrs: dict, number: int) -> None:
    sweep.study.enqueue_trial(params, user_attrs={"seed": attrs.get("seed"), "requeued_from": number})


# -- running one trial ---------------------------------------------------------------------------
def run_trial(sweep: Sweep, trial: optuna.Trial, manager, *, should_stop: Callable[[], bool] = lambda: False,
              poll_s: float = POLL_S) -> TrialOutcome:
    """Run ``trial`` as a run of ``manager`` (a ``pedsense.runs.RunManager``) and tell Optuna."""
    spec = sweep.spec
    trainer = spec_for(spec.model_type)
    seed = trial.user_attrs.get("seed")
    varied = {k: decode(trainer[k], v) for k, v in trial.params.items()}
    params = {**spec.base, **varied, "name": f"{spec.base.get('name') or spec.name}-t{trial.number:03d}"}
    if "seed" in trainer:
        params["seed"] = seed
    tag = {"name": spec.name, "study": sweep.name, "trial": trial.number, "seed": seed,
           "storage": sweep.shown_storage, "params": {k: trainer[k].record(v) for k, v in varied.items()},
           "state": "running", "value": None}
    try:
        run_id = manager.submit(spec.model_type, params)
    except FormError as exc:
        return _tell(sweep, trial, None, tag, "failed", None, f"the trainer refused the trial: {exc}")
    trial.set_user_attr("run_id", run_id)
    summary, pruned, stopped = _follow(sweep, trial, manager, run_id, tag, should_stop, poll_s)
    state, value, error = _judge(sweep, summary, pruned, stopped)
    return _tell(sweep, trial, run_id, tag, state, value, error, home=manager.home)


def _follow(sweep: Sweep, trial: optuna.Trial, manager, run_id: str, tag: dict,
            should_stop: Callable[[], bool], poll_s: float) -> tuple[RunSummary, bool, bool]:
    """Follow the run to its end, reporting each new epoch's metric; (summary, pruned, stopped).

    The run's config.json gets its tag once the trainer has written its own config (status.json
    leaves ``queued`` only after that), so the two never write the file at the same moment."""
    folder = find_run(run_id, manager.home)
    reported, pruned, stopped, tagged, checked_at = 0, False, False, False, time.monotonic()
    while True:
        began = time.monotonic()
        try:
            summary = manager.wait(run_id, timeout=poll_s)
        except TimeoutError:
            summary = manager.snapshot(run_id)
        done = summary.status not in LIVE_STATUSES
        if not tagged and folder.status != "queued":
            folder.update_config(sweep=tag)
            tagged = True
        values = epoch_values(summary.metrics, sweep.metric)
        for step, value in enumerate(values[reported:], start=reported + 1):
            trial.report(value, step)
        if len(values) > reported:
            reported = len(values)
            if sweep.spec.pruner != "none" and not (done or pruned or stopped) and trial.should_prune():
                manager.stop(run_id)
                pruned = True
        if done:
            return summary, pruned, stopped
        if not stopped and (should_stop() or _stop_due(sweep, checked_at)):
            manager.stop(run_id)
            stopped = True
        if time.monotonic() - checked_at >= STOP_CHECK_S:
            checked_at = time.monotonic()
        # wait() returns at once for a run the manager does not hold in memory: never spin
        time.sleep(max(0.0, poll_s - (time.monotonic() - began)))


def _stop_due(sweep: Sweep, checked_at: float) -> bool:
    return time.monotonic() - checked_at >= STOP_CHECK_S and stop_requested(sweep)


def epoch_values(rows, metric: str) -> list[float]:
    """The metric of every epoch row that has it (a hybrid's detector epochs have none)."""
    return [float(r[metric]) for r in rows
            if isinstance(r.get(metric), (int, float)) and not isinstance(r.get(metric), bool)]


def _judge(sweep: Sweep, summary: RunSummary, pruned: bool, stopped: bool) -> tuple[str, float | None, str | None]:
    """The trial's state, value and error from how its run ended."""
    metric = sweep.metric
    best = summary.best_metric if (summary.best_metric or {}).get("name") == metric else \
        best_of(summary.model_type, summary.metrics)
    value = (best or {}).get("value")
    if summary.status == "completed":
        if value is None:
            return "failed", None, f"the run completed without recording {metric}"
        return "complete", float(value), None
    if summary.status == "stopped" and pruned:
        return "pruned", None, None
    if summary.status == "stopped" and (stopped or stop_requested(sweep)):
        return "requeued", None, "stopped with the sweep; it runs again when the sweep resumes"
    if summary.status == "stopped":
        return "failed", None, "the run was stopped before it finished, so its metric is not comparable"
    return "failed", None, f"the run ended {summary.status}: {summary.error or 'no error text'}"


def _tell(sweep: Sweep, trial: optuna.Trial, run_id: str | None, tag: dict, state: str,
          value: float | None, error: str | None, home=None) -> TrialOutcome:
    if error:
        trial.set_user_attr("error", error)
    if state == "complete":
        sweep.study.tell(trial, value)
    elif state == "pruned":
        sweep.study.tell(trial, state=TrialState.PRUNED)
    else:
        sweep.study.tell(trial, state=TrialState.FAIL)
        if state == "requeued":
            _enqueue_again(sweep, trial.params, trial.user_attrs, trial.number)
    if run_id is not None:  # the run has ended: nobody else writes its config now
        find_run(run_id, home).update_config(sweep={**tag, "state": state, "value": value, "error": error})
    return TrialOutcome(trial.number, run_id, state, value, tag.get("seed"), dict(tag["params"]), error)


# -- the worker loop -----------------------------------------------------------------------------
def run_worker(name: str, *, storage: str | None = None, home: str | os.PathLike | None = None,
               manager=None, max_trials: int | None = None, should_stop: Callable[[], bool] = lambda: False,
               on_trial: Callable[[TrialOutcome], None] | None = None, poll_s: float = POLL_S) -> WorkerReport:
    """Join sweep ``name`` and run its trials until its budget is spent, it is stopped, or
    ``max_trials`` trials ran here.

    Args:
        manager: the ``RunManager`` the trials go to (default: a new one for ``home``, shut down
            at the end). The dashboard's workers and ``pedsense sweep-worker`` use their own.
        should_stop: polled while a run trains (Ctrl-C): the run stops and its trial is queued
            again for when the sweep resumes.

    Raises:
        SweepError: no such sweep, or its trainer or dataset changed since it was created (also
            checked before every trial: a dataset rebuilt mid-sweep stops the worker).
    """
    sweep = open_sweep(name, storage=storage, home=home)
    clear_stop(sweep)
    owned = manager is None
    manager = manager or RunManager(sweep.home)
    outcomes: list[TrialOutcome] = []
    try:
        requeue_lost_trials(sweep)
        while True:
            if should_stop() or stop_requested(sweep):
                return WorkerReport(name, outcomes, "stopped on request")
            if max_trials is not None and len(outcomes) >= max_trials:
                return WorkerReport(name, outcomes, f"ran the {max_trials} trials it was asked for")
            _check_dataset(sweep)
            trial = next_trial(sweep)
            if trial is None:
                return WorkerReport(name, outcomes, "the sweep has run its budget")
            outcome = run_trial(sweep, trial, manager, should_stop=should_stop, poll_s=poll_s)
            outcomes.append(outcome)
            if on_trial is not None:
                on_trial(outcome)
    finally:
        if owned:
            manager.shutdown(stop_running=True)


def _check_dataset(sweep: Sweep) -> None:
    recorded = (sweep.record.get("dataset") or {}).get("fingerprint")
    current = dataset_record(sweep.spec.model_type, sweep.home)["fingerprint"]
    if recorded and recorded != current:
        raise SweepError({"name": f"the dataset of sweep {sweep.name!r} changed while it ran (it was "
                                  f"{recorded}, it is {current}): this worker stopped so that no trial "
                                  "trains on other data than the earlier ones."})


# -- workers in their own process -----------------------------------------------------------------
_LAUNCHED: list[subprocess.Popen] = []
REPO_ROOT = Path(__file__).resolve().parents[2]


def launch_worker(name: str, *, storage: str | None = None, home: str | os.PathLike | None = None) -> dict:
    """Start ``pedsense sweep-worker NAME`` as a detached process (it outlives the dashboard).

    Its output goes to ``models/sweeps/<name>/worker_<stamp>.log``; the storage URL is passed in
    the environment (``PEDSENSE_SWEEP_STORAGE``), never on the command line where ``ps`` shows
    passwords. Returns ``{"pid", "log"}``.
    """
    home = paths(home).home
    open_sweep(name, storage=storage, home=home)  # refused here, in the caller's words
    logs = paths(home).models / "sweeps" / name
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"worker_{datetime.now():%Y%m%d_%H%M%S}_{os.getpid()}_{len(_LAUNCHED)}.log"
    env = {**os.environ, STORAGE_ENV: storage or default_storage(home),
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    for proc in list(_LAUNCHED):  # reap finished ones (a zombie would look alive)
        if proc.poll() is not None:
            _LAUNCHED.remove(proc)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pedsense", "--home", str(home), "sweep-worker", name],
                                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    _LAUNCHED.append(proc)
    return {"pid": proc.pid, "log": str(log)}


def running_workers(sweep: Sweep) -> list[dict]:
    """The workers running a trial of ``sweep`` now: ``{"host", "pid", "trial", "run_id", "alive"}``
    (``alive`` is known on this machine only)."""
    for proc in list(_LAUNCHED):
        if proc.poll() is not None:
            _LAUNCHED.remove(proc)
    host, found = socket.gethostname(), []
    for trial in sweep.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker") or {}
        alive = process_alive(worker.get("pid"), worker.get("start")) if worker.get("host") == host else None
        found.append({"host": worker.get("host"), "pid": worker.get("pid"), "trial": trial.number,
                      "run_id": trial.user_attrs.get("run_id"), "alive": alive})
    return found
