"""Sweeps on Optuna: many configurations and seeds of one trainer, each trial an ordinary run.

- ``spec``: :class:`SweepSpec` (trainer, base config, varied values or ranges, seeds, sampler
  grid/random/tpe, budget 1..200, pruning) checked against the trainer's parameter spec.
- ``study``: the Optuna study (SQLite in the data home by default, or an RDB URL), what it
  records, and who may join it (a changed trainer or dataset is refused).
- ``worker``: :func:`run_worker` runs the study's trials through ``RunManager.submit``.
- ``analysis``: the trials, each configuration's mean ± std over seeds, parameter importances.
"""

from pedsense.sweeps.spec import (MAX_BUDGET, PRUNERS, SAMPLERS, Range, SweepError, SweepSpec,
                                  base_config, parse_range, parse_seeds, parse_values, parse_vary,
                                  variable_names)
from pedsense.sweeps.study import (Sweep, create_sweep, default_storage, join_problems, list_sweeps,
                                   open_sweep, request_stop, shown_url)
from pedsense.sweeps.worker import (TrialOutcome, WorkerReport, launch_worker, run_trial, run_worker,
                                    running_workers)
from pedsense.sweeps.analysis import configurations, importances, trials_frame

__all__ = ["MAX_BUDGET", "PRUNERS", "SAMPLERS", "Range", "SweepError", "SweepSpec", "base_config",
           "parse_range", "parse_seeds", "parse_values", "parse_vary", "variable_names", "Sweep", "create_sweep",
           "default_storage", "join_problems", "list_sweeps", "open_sweep", "request_stop", "shown_url",
           "TrialOutcome", "WorkerReport", "launch_worker", "run_trial", "run_worker", "running_workers",
           "configurations", "importances", "trials_frame"]
