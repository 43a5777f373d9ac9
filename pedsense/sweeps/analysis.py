"""A sweep's results as tables: every trial, each configuration's mean ± std over its seeds
(the best highlighted), and Optuna's parameter importances."""

from __future__ import annotations

import pandas as pd
import optuna
from optuna.trial import TrialState

from pedsense.sweeps.study import Sweep

STATE_WORDS = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
               TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}


def trials_frame(sweep: Sweep) -> pd.DataFrame:
    """One row per trial: ``trial, state, <varied parameters>, seed, value, run_id, duration_s,
    error``. A trial queued again (stopped with the sweep, or its worker gone) reads
    ``requeued``; the trial that replaced it runs its values and seed."""
    trials = sweep.study.get_trials(deepcopy=False)
    replaced = {t.user_attrs.get("requeued_from") for t in trials} - {None}
    names = list(sweep.spec.varied)
    rows = []
    for trial in trials:
        state = "requeued" if trial.number in replaced else STATE_WORDS.get(trial.state, trial.state.name.lower())
        row = {"trial": trial.number, "state": state}
        row.update({name: trial.params.get(name) for name in names})
        row.update({"seed": trial.user_attrs.get("seed"), "value": trial.value,
                    "run_id": trial.user_attrs.get("run_id"),
                    "duration_s": trial.duration.total_seconds() if trial.duration else None,
                    "error": trial.user_attrs.get("error")})
        rows.append(row)
    return pd.DataFrame(rows, columns=["trial", "state", *names, "seed", "value", "run_id", "duration_s", "error"])


def configurations(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Each configuration's completed trials: ``<parameters>, n, mean, std, min, max, seeds,
    pruned, failed, best`` (std over seeds, ``ddof=1``: empty for one seed), best mean first;
    ``best`` marks the highest mean (ties: all of them)."""
    columns = [*names, "n", "mean", "std", "min", "max", "seeds", "pruned", "failed", "best"]
    counted = frame[frame["state"].isin(("complete", "pruned", "failed"))]
    if counted.empty or not names:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in counted.groupby(names, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        done = group[group["state"] == "complete"]
        values = done["value"].astype(float)
        rows.append({**dict(zip(names, key)), "n": len(done),
                     "mean": values.mean() if len(done) else None,
                     "std": values.std(ddof=1) if len(done) > 1 else None,
                     "min": values.min() if len(done) else None, "max": values.max() if len(done) else None,
                     "seeds": ", ".join(str(s) for s in sorted(done["seed"].dropna().astype(int))),
                     "pruned": int((group["state"] == "pruned").sum()),
                     "failed": int((group["state"] == "failed").sum())})
    table = pd.DataFrame(rows, columns=columns[:-1])
    means = pd.to_numeric(table["mean"], errors="coerce")
    table["best"] = means.notna() & (means == means.max())
    table = table.assign(_order=means.fillna(-float("inf"))).sort_values("_order", ascending=False, kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)


def importances(sweep: Sweep) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances (fANOVA) over the completed trials, or None and why not."""
    complete = sweep.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varying = [n for n in sweep.spec.varied if len({repr(t.params.get(n)) for t in complete}) > 1]
    if len(complete) < 2 or not varying:
        return None, ("Parameter importance needs at least two completed trials that differ in a varied "
                      f"parameter ({len(complete)} completed so far).")
    try:
        return dict(optuna.importance.get_param_importances(sweep.study, params=varying)), ""
    except (ValueError, RuntimeError) as exc:
        return None, f"Optuna could not compute the importances: {exc}"
