"""The Errors page's parts: run and split, the predictions table, filters, metrics at a threshold,
the clickable confusion matrix, ROC/PR curves, metrics per attribute and the windows worst first.

Every number comes from ``pedsense.errors_browser.browse`` (one call per redraw); the widgets only
build its ``Filters``. Session keys start with ``errors_``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pedsense.config import CLASS_NAMES
from pedsense.errors import PedsenseError
from pedsense.errors_browser import (ATTRIBUTE_COLUMNS, CATEGORY_COLUMNS, CELL_NAMES, ErrorView, Filters,
                                     NotEvaluated, RunTable, browsable_splits, column_values, load_run_table)
from pedsense.evaluation import evaluation_path
from pedsense.errors_browser.table import predictions_path
from pedsense.runsummary import readable_runs
from ui.evaluation import evaluate_with_progress_ui
from ui.feedback import hide_paths, show_error, without_paths
from ui.state import SELECTED_RUN  # importing ui.state sends a deep link (/errors) through app.py
from ui.downloads import chart_ui

CELL = "errors_cell"
BROWSED_SPLITS = ["val", "test"]
# Widget keys that belong to one table (its values, its windows): dropped when another is opened.
FILTER_KEYS = ("errors_tte", "errors_p_range", "errors_f_", CELL, "errors_window", "errors_cmp_")
METRICS_SHOWN = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "auc_binary")
LISTED_COLUMNS = ("sample_id", "label", "p_crossing", "predicted", "error", "tte", "tte_bin", "occlusion",
                  "time_of_day", "weather", "age", "gender", "group_size", "video_id", "track_id",
                  "start_frame", "end_frame")
FILTER_COLUMNS = tuple(c for c in CATEGORY_COLUMNS if c != "tte_bin")
MAX_CURVE_POINTS = 2000


# -- run, split and table -------------------------------------------------------------------------
def run_split_ui() -> tuple[Path | None, str]:
    """The run (completed runs, those with a predictions table first) and the split to browse."""
    completed = readable_runs(status="completed")
    if not completed:
        st.info("No completed run yet. Train one on a Train page, evaluate it, then come back here.")
        return None, "val"
    by_id = {run.run_id: run.path for run in completed}
    splits = {run_id: browsable_splits(path) for run_id, path in by_id.items()}
    order = sorted(by_id, key=lambda run_id: not splits[run_id])
    if st.session_state.get("errors_run") not in by_id and splits.get(st.session_state.get(SELECTED_RUN)):
        st.session_state["errors_run"] = st.session_state[SELECTED_RUN]  # the run the Runs page shows
    run_id = st.selectbox("Run", order, key="errors_run",
                          format_func=lambda r: f"{r} ({', '.join(splits[r]) or 'not evaluated'})",
                          help="Completed runs; those with per-window predictions (evaluated) first.")
    shown = [split for split in splits[run_id] if split in BROWSED_SPLITS]
    if st.session_state.get("errors_split_run") != run_id:  # a new run: open a split it has a table for
        st.session_state["errors_split_run"] = run_id
        if shown and st.session_state.get("errors_split") not in shown:
            st.session_state["errors_split"] = shown[0]
    split = st.radio("Split", BROWSED_SPLITS, key="errors_split", horizontal=True)
    if st.session_state.get("errors_browsing") != (run_id, split):  # another table: its own filters
        st.session_state["errors_browsing"] = (run_id, split)
        for key in [k for k in st.session_state if k.startswith(FILTER_KEYS)]:
            del st.session_state[key]
        st.session_state[CELL] = None  # no confusion cell picked in the new table
    return by_id[run_id], split


def table_stamp(run_path: Path, split: str) -> tuple:
    files = (evaluation_path(run_path, split), predictions_path(run_path, split))
    return tuple(f.stat().st_mtime_ns if f.is_file() else 0 for f in files)


@st.cache_data(max_entries=6, show_spinner="Reading the predictions…")
def cached_table(run_path: str, split: str, stamp: tuple) -> RunTable:
    """``stamp`` (the evaluation's and the table's mtimes) is in the key: a new evaluation reloads."""
    return load_run_table(run_path, split)


def table_ui(run_path: Path, split: str) -> RunTable | None:
    """The run's table on ``split``; when there is none, why, and an Evaluate button."""
    try:
        loaded = cached_table(str(run_path), split, table_stamp(run_path, split))
    except NotEvaluated as exc:
        st.info(str(exc), icon=":material/table_chart:")
        evaluate_ui(run_path, split, again=exc.evaluated)
        return None
    except PedsenseError as exc:  # nothing scored, or an unreadable table: evaluating again rewrites it
        show_error(exc, "reading the predictions")
        evaluate_ui(run_path, split, again=True)
        return None
    if loaded.drift is not None:
        drift_ui(loaded.drift)
    return loaded


def evaluate_ui(run_path: Path, split: str, *, again: bool) -> None:
    """'Evaluate on <split>': writes the evaluation and its predictions table, then reloads the page."""
    if not st.button(f"{'Re-evaluate' if again else 'Evaluate'} on {split}", key="errors_evaluate", type="primary",
                     help="Score every window of the split and keep each prediction (predictions_<split>.parquet)."):
        return
    if evaluate_with_progress_ui(run_path, split):
        st.rerun()


def drift_ui(drift) -> None:
    """The dataset was rebuilt since the evaluation: say so, and show both manifests' stamps."""
    st.warning(hide_paths(drift.message), icon=":material/sync_problem:")
    with st.expander("Both dataset builds"):
        left, right = st.columns(2)
        left.markdown("**Evaluated on**")
        left.json(without_paths(drift.recorded))
        right.markdown("**On disk now**")
        right.json(without_paths(drift.current))


# -- filters ---------------------------------------------------------------------------------------
def threshold_ui() -> float:
    return st.slider("Threshold: P(crossing) at or above it is a crossing prediction", 0.0, 1.0, 0.5, 0.01,
                     key="errors_threshold", help="Every metric, the matrix and the list follow it.")


def filters_ui(table: pd.DataFrame) -> Filters:
    """TTE bins, a probability range and any attribute's values; the cell comes from the matrix."""
    left, right = st.columns(2)
    bins = left.multiselect("TTE bin (frames to the event)", column_values(table, "tte_bin"), key="errors_tte",
                            help="Empty: every bin. 'after event': windows ending after the crossing point.")
    low, high = right.slider("P(crossing) range", 0.0, 1.0, (0.0, 1.0), 0.01, key="errors_p_range")
    values = {}
    with st.expander("Filter by attribute (JAAD attributes, conditions, video)"):
        shown = [c for c in FILTER_COLUMNS if c in table.columns and len(column_values(table, c)) > 1]
        columns = st.columns(3)
        for k, column in enumerate(shown):
            values[column] = tuple(columns[k % 3].multiselect(column.replace("_", " "), column_values(table, column),
                                                              key=f"errors_f_{column}"))
        if not shown:
            st.caption("Every attribute has a single value in this table.")
    return Filters(tte_bins=tuple(bins), values={c: v for c, v in values.items() if v}, p_range=(low, high),
                   cell=st.session_state.get(CELL))


def breakdown_choice_ui(table: pd.DataFrame) -> tuple[str, str]:
    """The column to break the metrics down by, and the metric charted."""
    left, right = st.columns(2)
    options = [c for c in ("tte_bin", "occlusion", *ATTRIBUTE_COLUMNS, "time_of_day", "weather", "track_label",
                           "video_id") if c in table.columns]
    column = left.selectbox("Metrics per value of", options, key="errors_attribute",
                            format_func=lambda c: c.replace("_", " "))
    metric = right.selectbox("Metric charted", ["accuracy", "f1", "precision", "recall", "roc_auc",
                                                "auc_binary"], key="errors_metric")
    return column, metric


# -- what browse() returns ---------------------------------------------------------------------------
def metrics_ui(view: ErrorView, unit: str) -> None:
    metrics = view.metrics
    for column, name in zip(st.columns(len(METRICS_SHOWN)), METRICS_SHOWN):
        value = metrics.get(name)
        column.metric(name.replace("_", " "), "—" if value is None else f"{value:.3f}")
    st.caption(f"{view.filtered} of {view.total} {unit} after the filters ({metrics['positives']} crossing) · "
               f"threshold {view.threshold:.2f} · {view.filters.describe()}")


def _select_cell(cell: tuple[int, int] | None) -> None:
    st.session_state[CELL] = cell


def confusion_ui(view: ErrorView) -> None:
    """The confusion matrix as a 2×2 grid of buttons: a click lists that cell's windows."""
    st.markdown("**Confusion matrix** (rows: truth; click a cell to list its windows)")
    matrix = view.metrics["confusion_matrix"]
    chosen = st.session_state.get(CELL)
    header = st.columns([1.2, 2, 2])
    for column, name in zip(header[1:], CLASS_NAMES):
        column.caption(f"predicted {name}")
    for truth, name in enumerate(CLASS_NAMES):
        row = st.columns([1.2, 2, 2], vertical_alignment="center")
        row[0].caption(f"true {name}")
        for guess in (0, 1):
            cell = (truth, guess)
            row[guess + 1].button(f"{CELL_NAMES[cell]}: {matrix[truth][guess]}", key=f"errors_cell_{truth}{guess}",
                                  type="primary" if chosen == cell else "secondary", width="stretch",
                                  on_click=_select_cell, args=(cell,))
    st.button("All cells", key="errors_cell_all", disabled=chosen is None, on_click=_select_cell, args=(None,))


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[list, list]:
    if len(x) > MAX_CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, MAX_CURVE_POINTS).round().astype(int))
        x, y = x[keep], y[keep]
    return x.tolist(), y.tolist()


def curves_figure(curves: dict, kind: str) -> go.Figure:
    """ROC (``kind="roc"``) or precision-recall curve with the operating point marked."""
    point = curves["operating"]
    if kind == "roc":
        x, y = _thin(curves["roc"]["fpr"], curves["roc"]["tpr"])
        px, py, titles = point["fpr"], point["tpr"], ("false positive rate", "true positive rate (recall)")
    else:
        x, y = _thin(curves["pr"]["recall"], curves["pr"]["precision"])
        px, py, titles = point["recall"], point["precision"], ("recall", "precision")
    figure = go.Figure(go.Scatter(x=x, y=y, mode="lines", name=kind.upper(), hoverinfo="skip"))
    figure.add_scatter(x=[px], y=[py], mode="markers", marker=dict(size=12, color="#d62728"),
                       name=f"threshold {point['threshold']:.2f}",
                       hovertemplate=f"threshold {point['threshold']:.2f}: (%{{x:.3f}}, %{{y:.3f}})<extra></extra>")
    if kind == "roc":
        figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#7f7f7f"), showlegend=False)
    figure.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), xaxis_title=titles[0],
                         yaxis_title=titles[1], xaxis_range=[-0.02, 1.02], yaxis_range=[-0.02, 1.02],
                         title="ROC" if kind == "roc" else "Precision-recall",
                         legend=dict(orientation="h", x=0, y=-0.3))
    return figure


def curves_ui(view: ErrorView) -> None:
    if view.curves is None:
        st.caption("No ROC or precision-recall curve: the filtered windows hold one class only.")
        return
    left, right = st.columns(2)
    chart_ui(curves_figure(view.curves, "roc"), key="errors_roc", container=left)
    chart_ui(curves_figure(view.curves, "pr"), key="errors_pr", container=right)


def attribute_figure(rows: pd.DataFrame, column: str, metric: str) -> go.Figure:
    """Bars of ``metric`` per value of ``column``, each labelled with its window count."""
    figure = go.Figure(go.Bar(x=rows["group"].astype(str), y=rows[metric],
                              text=[f"n={n} ({p} crossing)" for n, p in zip(rows["n"], rows["positives"])],
                              textposition="outside", marker_color="#1f77b4"))
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), yaxis_range=[0, 1.15],
                         xaxis_title=column.replace("_", " "), yaxis_title=metric, title=f"{metric} per {column}")
    return figure


def attribute_ui(view: ErrorView, column: str, metric: str) -> None:
    rows = view.by_attribute
    if rows is None or not len(rows):
        return
    chart_ui(attribute_figure(rows, column, metric), key="errors_by_attribute")
    with st.expander("Per-value table"):
        st.dataframe(rows.drop(columns=["factor"]), hide_index=True, width="stretch")


def windows_ui(view: ErrorView, *, key: str = "errors_window") -> dict | None:
    """The selected cell's windows, worst first, and the one to play (a row as a dict)."""
    cell = view.filters.cell
    what = f"{CELL_NAMES[tuple(cell)]}s" if cell is not None else "windows"
    if view.windows.empty:
        st.info(view.empty_message(), icon=":material/filter_alt_off:")
        return None
    shown = len(view.windows)
    st.markdown(f"**{view.selected} {what}**, worst first (|label − P(crossing)|)"
                + (f"; the first {shown} listed" if shown < view.selected else ""))
    table = view.windows[[c for c in LISTED_COLUMNS if c in view.windows.columns]]
    st.dataframe(table, hide_index=True, width="stretch", height=260,
                 column_config={"p_crossing": st.column_config.NumberColumn(format="%.3f"),
                                "error": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f")})
    rows = {r["sample_id"]: r for r in view.windows.head(50).to_dict("records")}
    if st.session_state.get(key) not in rows:
        st.session_state[key] = next(iter(rows))
    chosen = st.selectbox("Window to play", list(rows), key=key,
                          format_func=lambda s: f"{s} · label {CLASS_NAMES[rows[s]['label']]} · "
                                                f"P(crossing) {rows[s]['p_crossing']:.2f}")
    return rows[chosen]
