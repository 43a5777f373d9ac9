"""Sweeps on Optuna: many configurations and seeds of one trainer, each trial an ordinary run.

- ``spec``: :class:`SweepSpec` (trainer, base config, varied values or ranges, seeds, sampler
  grid/random/tpe, budget 1..200, pruning) checked against the trainer's parameter spec.
- ``study``: the Optuna study (SQLite in the data home by default, or an RDB URL), what it
  records, and who may join it (a changed trainer or dataset is refused).
- ``worker``: :func:`run_worker` runs the study's trials through ``RunManager.submit``.
- ``analysis``: the trials, each configuration's mean ± std over seeds, parameter importances.

The names below load their module on first use, so ``pedsense.sweeps.spec`` (what the command
line's options need) never imports Optuna, SQLAlchemy or pandas.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "spec": ("MAX_BUDGET", "PRUNERS", "SAMPLERS", "Range", "SweepError", "SweepSpec", "base_config",
             "parse_range", "parse_seeds", "parse_value", "parse_values", "parse_vary", "variable_names"),
    "study": ("Sweep", "create_sweep", "default_storage", "join_problems", "list_sweeps", "open_sweep",
              "request_stop", "shown_url"),
    "worker": ("TrialOutcome", "WorkerReport", "launch_worker", "run_trial", "run_worker", "running_workers"),
    "analysis": ("configurations", "importances", "trials_frame"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'pedsense.sweeps' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pedsense.sweeps.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # found directly from now on (and patchable as usual)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
