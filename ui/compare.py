"""Compare runs as a researcher would: overlaid curves, a config table ("differences only"),
and for a sweep its parallel coordinates, Optuna's parameter importance and each
configuration's mean ± std over seeds, the best highlighted (the Runs and Sweep pages)."""

from __future__ import annotations

import json
from typing import Any, Iterable

import pandas as pd
import streamlit as st

import pedsense.sweeps as sweeps
from pedsense.runfolder import describe_best
from pedsense.runsummary import RunSummary
from ui.charts import compare_figure, importance_figure, metric_columns, parallel_figure, run_colour
from ui.state import home
from ui.downloads import chart_ui

COMPARE_RUNS = "compare.runs"
# What of a run's config.json the config table shows besides its parameters.
CONFIG_FACTS = ("task", "device", "weights_source", "dataset_fingerprint", "epochs_done", "final_status")
BEST_STYLE = "background-color: rgba(46, 160, 67, 0.25); font-weight: bold"


def compare_ui(runs: list[RunSummary]) -> None:
    """Overlay one metric across the runs the user picks (only runs with metrics are offered),
    their configs side by side, then a sweep's results."""
    with_data = [s for s in runs if s.metrics]
    ids = [s.run_id for s in with_data]
    if len(ids) < 1:
        st.caption("Compare opens once a run has finished at least one epoch.")
    else:
        # the pick survives page switches (and a button below sets it), so it lives in session state
        st.session_state[COMPARE_RUNS] = [r for r in st.session_state.get(COMPARE_RUNS) or [] if r in ids] \
            if COMPARE_RUNS in st.session_state else ids[:2]
        picked = st.multiselect("Runs to compare", ids, key=COMPARE_RUNS,
                                help="Runs that recorded at least one epoch; each keeps its colour.")
        summaries = [s for s in with_data if s.run_id in picked]
        columns = list(dict.fromkeys(c for s in summaries for c in metric_columns(s.metrics)))
        if not columns:
            st.caption("Pick runs to overlay their curves.")
        else:
            metric = st.selectbox("Metric", columns, index=columns.index("val_loss") if "val_loss" in columns else 0)
            figure = compare_figure([(s.run_id, s.metrics) for s in summaries], metric)
            chart_ui(figure, key="compare.chart")
            st.caption(" ".join(f"<span style='color:{run_colour(s.run_id)}'>■</span> `{s.run_id}`"
                                for s in summaries), unsafe_allow_html=True)
            config_table_ui(summaries)
    st.subheader("Sweeps")
    sweep_compare_ui([s.run_id for s in with_data])


# -- the config table ------------------------------------------------------------------------------
def config_frame(summaries: Iterable[RunSummary], differences_only: bool = True) -> pd.DataFrame:
    """One row per setting (``parameters.<name>``, the sweep tag, task, device, weights, dataset,
    best metric), one column per run; ``differences_only`` keeps the rows whose values differ."""
    columns: dict[str, dict[str, str]] = {}
    for summary in summaries:
        config = summary.config or {}
        cells = {f"parameters.{k}": _text(v) for k, v in (config.get("parameters") or {}).items()}
        for key, value in (config.get("sweep") or {}).items():
            if key in ("name", "trial", "seed", "state", "value"):
                cells[f"sweep.{key}"] = _text(value)
        cells.update({k: _text(config.get(k)) for k in CONFIG_FACTS if k in config})
        cells["best metric"] = describe_best(summary.best_metric)
        columns[summary.run_id] = cells
    names = list(dict.fromkeys(k for cells in columns.values() for k in cells))
    frame = pd.DataFrame({run: [cells.get(k, "—") for k in names] for run, cells in columns.items()}, index=names)
    frame.index.name = "setting"
    if differences_only and len(columns) > 1:
        frame = frame[frame.nunique(axis=1) > 1]
    return frame.reset_index()


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def config_table_ui(summaries: list[RunSummary]) -> None:
    only = st.toggle("Differences only", value=True, key="compare.differences",
                     help="Show only the settings whose values differ between the runs picked.")
    frame = config_frame(summaries, differences_only=only)
    if only and len(summaries) > 1 and frame.empty:
        st.caption("These runs have the same settings.")
    else:
        st.dataframe(frame, hide_index=True, width="stretch", key="compare.config")


# -- a sweep -------------------------------------------------------------------------------------------
def sweep_compare_ui(run_ids: list[str]) -> None:
    """Pick a sweep of this data home's storage and show its results."""
    found = sweeps.list_sweeps(home=home())
    if not found:
        st.caption("No sweep yet: start one on the Sweep page (or `pedsense sweep`).")
        return
    names = [s["name"] for s in found]
    name = st.selectbox("Sweep", names, key="compare.sweep",
                        format_func=lambda n: f"{n} ({next(s for s in found if s['name'] == n)['trainer']})")
    sweep = sweeps.open_sweep(name, home=home(), join=False)
    frame = sweep_results_ui(sweep)
    tagged = [r for r in frame["run_id"].dropna() if r in run_ids]
    if tagged:
        st.button("Overlay this sweep's runs above", key="compare.sweep_runs", on_click=_overlay, args=(tagged,))


def _overlay(run_ids: list[str]) -> None:
    st.session_state[COMPARE_RUNS] = run_ids  # a callback: it runs before the picker is drawn


def configurations_view(table: pd.DataFrame, names: list[str], metric: str):
    """The configurations table as shown: ``mean ± std`` text, the best row highlighted."""
    shown = table[names].copy()
    shown[f"{metric} (mean ± std)"] = [
        "—" if pd.isna(m) else (f"{m:.4f}" + ("" if pd.isna(s) else f" ± {s:.4f}"))
        for m, s in zip(table["mean"], table["std"])]
    shown["n"] = table["n"]
    shown["seeds"] = table["seeds"]
    shown["pruned"] = table["pruned"]
    shown["failed"] = table["failed"]
    shown["best"] = table["best"].map({True: "★ best", False: ""})
    return shown.style.apply(lambda row: [BEST_STYLE if row["best"] else "" for _ in row], axis=1)


def sweep_results_ui(sweep) -> pd.DataFrame:
    """Mean ± std per configuration (best highlighted), parallel coordinates, importance;
    returns the trials table."""
    names = list(sweep.spec.varied)
    frame = sweeps.trials_frame(sweep)
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    st.caption(f"`{sweep.name}` · {sweep.spec.model_type} · {sweep.spec.sampler} · {sweep.spec.n_trials} trials "
               f"planned · " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f" · value: best {sweep.metric}")
    table = sweeps.configurations(frame, names)
    if table.empty:
        st.caption("No trial has finished yet: results appear as trials end.")
    else:
        st.markdown(f"**Each configuration: {sweep.metric} over its seeds** (sample std; best highlighted)")
        st.dataframe(configurations_view(table, names, sweep.metric), hide_index=True, width="stretch",
                     key=f"sweep.configurations.{sweep.name}")
    if (frame["state"] == "complete").any():
        left, right = st.columns(2)
        chart_ui(parallel_figure(sweep.study, names, sweep.metric), key=f"sweep.parallel.{sweep.name}",
                 container=left)
        values, why = _importances(sweep.name, sweep.storage, str(sweep.home),
                                   int((frame["state"] == "complete").sum()))
        if values:
            chart_ui(importance_figure(values), key=f"sweep.importance.{sweep.name}", container=right)
        else:
            right.caption(why)
    with st.expander(f"All {len(frame)} trials"):
        st.dataframe(frame, hide_index=True, width="stretch", key=f"sweep.trials.{sweep.name}")
    return frame


@st.cache_data(show_spinner=False, max_entries=32)
def _importances(name: str, storage: str, home_dir: str, completed: int) -> tuple[dict | None, str]:
    """fANOVA fits a forest: computed again only when another trial completed."""
    return sweeps.importances(sweeps.open_sweep(name, storage=storage, home=home_dir, join=False))

