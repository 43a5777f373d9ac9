"""Runs: every run of the data home, the live view of one, and a compare view.

Run data comes from the process-wide run manager (in memory while a run trains, the run folder
after), so every browser tab sees the same runs; only the selection lives in session state.
"""

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from pages.common import (MODEL_LABELS, PAGE_TRAIN_HYBRID, PAGE_TRAIN_RESNET, PAGE_TRAIN_YOLO,
                          SELECTED_RUN, describe_dataset_task, error_box, fmt_best, fmt_duration,
                          fmt_status, progress_of, run_manager, show_error)
from pages.evaluation_panel import evaluation_panel  # a finished run's evaluation (details_ui)
from pedsense.runs import FINISHED_STATUSES, RunFolder

# Columns that are bookkeeping, not metrics to chart.
NOT_METRICS = ("epoch", "stage", "seconds", "time", "lr")
CHART_GROUPS = (
    ("Loss", lambda c: "loss" in c),
    ("Accuracy", lambda c: "acc" in c or c.endswith("f1")),
    ("Detection (precision / recall / mAP)", lambda c: any(t in c for t in ("precision", "recall", "map"))),
)

# -- charts ----------------------------------------------------------------------------------
def metric_columns(rows: list[dict]) -> list[str]:
    """Numeric metric columns of ``rows``, in first-seen order."""
    columns: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if key not in NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
                columns.setdefault(key, None)
    return list(columns)


def chart_groups(rows: list[dict]) -> list[tuple[str, list[str]]]:
    """``[(title, columns)]``: loss, accuracy and detection metrics, each only when present."""
    columns = metric_columns(rows)
    groups = []
    for title, belongs in CHART_GROUPS:
        picked = [c for c in columns if belongs(c.lower())]
        if picked:
            groups.append((title, picked))
    return groups


def metrics_figure(rows: list[dict], columns: list[str], title: str) -> go.Figure:
    """One line per column (and per stage, for the hybrid) against the epoch."""
    figure = go.Figure()
    stages = list(dict.fromkeys(row.get("stage") for row in rows))
    for stage in stages:
        stage_rows = [row for row in rows if row.get("stage") == stage]
        for column in columns:
            points = [(row.get("epoch"), row.get(column)) for row in stage_rows
                      if isinstance(row.get(column), (int, float))]
            if not points:
                continue
            name = f"{column} ({stage})" if len(stages) > 1 and stage else column
            figure.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points],
                                        mode="lines+markers", name=name))
    figure.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10),
                         xaxis_title="epoch", xaxis_tickformat="d", legend=dict(orientation="h", y=-0.25),
                         hovermode="x unified")
    return figure


def draw_charts(rows: list[dict], key: str) -> None:
    groups = chart_groups(rows)
    if not groups:
        st.caption("Charts appear when the first epoch ends.")
        return
    columns = st.columns(min(len(groups), 3))
    for index, (title, cols) in enumerate(groups):
        with columns[index % len(columns)]:
            st.plotly_chart(metrics_figure(rows, cols, title), width="stretch",
                            key=f"{key}.{title}")


# -- the table -------------------------------------------------------------------------------
def table_rows(runs: list[dict]) -> list[dict]:
    return [{
        "type": MODEL_LABELS.get(snap["model_type"], snap["model_type"]),
        "name": snap["name"], "status": snap["status"],
        "epochs": f"{snap['epochs_done']}/{snap['epochs_total'] or '?'}",
        "best metric": fmt_best(snap["best_metric"]),
        "started": (snap["started_at"] or "")[:19].replace("T", " "),
        "duration": fmt_duration(snap["duration_s"]),
    } for snap in runs]


@st.fragment(run_every=2.0)
def runs_table_ui() -> None:
    """All runs, refreshed every 2 s (another tab's launches show up by themselves)."""
    st.dataframe(table_rows(run_manager().runs()), hide_index=True, width="stretch")


def pick_run_ui(runs: list[dict]) -> str:
    """The run to show: the one a Train page just launched, else the user's last pick."""
    ids = [snap["run_id"] for snap in runs]
    labels = {snap["run_id"]: f"{snap['run_id']}  ({snap['status']})" for snap in runs}
    current = st.session_state.get(SELECTED_RUN)
    index = ids.index(current) if current in ids else 0
    chosen = st.selectbox("Run", ids, index=index, format_func=labels.get)
    st.session_state[SELECTED_RUN] = chosen
    return chosen


# -- the live view ---------------------------------------------------------------------------
@st.fragment(run_every=1.0)
def live_view_ui(run_id: str) -> None:
    """Status, progress with ETA, Stop and the charts: refreshed every second, alone."""
    try:
        snap = run_manager().snapshot(run_id)
    except Exception as exc:  # noqa: BLE001 - e.g. deleted from another tab
        show_error(exc, f"reading run {run_id}")
        return
    head, stop = st.columns([5, 1], vertical_alignment="center")
    head.markdown(f"### {snap['name']}  \n{fmt_status(snap['status'])} "
                  f"&nbsp; {MODEL_LABELS.get(snap['model_type'], snap['model_type'])} · "
                  f"best {fmt_best(snap['best_metric'])} · {fmt_duration(snap['duration_s'])}")
    if snap["status"] in ("queued", "running"):
        label = "Cancel" if snap["status"] == "queued" else "Stop"
        if stop.button(f":material/stop_circle: {label}", key=f"stop.{run_id}", width="stretch",
                       help="Running: finishes the current batch, saves the weights, ends `stopped`. "
                            "Queued: removes it from the queue."):
            with error_box("stopping the run"):
                run_manager().stop(run_id)
                st.toast(f"Stop requested for {run_id}", icon=":material/stop_circle:")
    if snap["status"] in ("queued", "running"):
        fraction, text = progress_of(snap)
        st.progress(fraction, text=text)
    if snap["status"] == "failed":
        st.error(f"The run failed: {snap['error']}", icon=":material/error:")
    elif snap["status"] == "interrupted":
        st.warning(f"Interrupted: {snap['error'] or 'its process ended mid-run'}", icon=":material/warning:")
    elif snap["status"] == "stopped":
        st.info("Stopped on request; the weights saved up to then are kept.", icon=":material/stop_circle:")
    draw_charts(snap["metrics"], key=f"live.{run_id}")


# -- details, compare, delete ----------------------------------------------------------------
def details_ui(run_id: str) -> None:
    snap = run_manager().snapshot(run_id)
    folder = RunFolder(snap["path"])
    config = snap["config"] or folder.read_config()
    if config.get("task") or (config.get("dataset") or {}).get("manifest", {}).get("task"):
        task_record = config if config.get("task") else config["dataset"]["manifest"]
        st.caption(f"Trained on task {describe_dataset_task(task_record)}. Evaluate it on `test` for "
                   "the benchmark's metrics, breakdown and published reference.")
    config_tab, log_tab, metrics_tab, eval_tab = st.tabs(["Config", "Log", "Metrics table", "Evaluation"])
    with config_tab:
        st.caption(f"`{folder.path}`")
        st.json(config, expanded=1)
        download_weights_ui(folder)
    with log_tab:
        st.code(folder.read_log(max_chars=20_000) or "(empty)", language=None, height=320)
    with metrics_tab:
        st.dataframe(snap["metrics"], width="stretch", hide_index=True)
    with eval_tab:
        if snap["status"] != "completed":
            st.caption("The evaluation is available once the run has completed.")
        else:
            with error_box("evaluating the run"):
                evaluation_panel(folder.path)


def download_weights_ui(folder: RunFolder) -> None:
    """A download button for the best weights (read from disk only when clicked)."""
    for name in ("best.pt", "weights/best.pt", "resnet_classifier.pt"):
        weights = folder.path / name
        if weights.is_file():
            st.download_button(f":material/download: Download {name} ({weights.stat().st_size / 1e6:.1f} MB)",
                               data=lambda path=weights: path.read_bytes(),
                               file_name=f"{folder.name}_{Path(name).name}",
                               mime="application/octet-stream", key=f"download.{folder.run_id}")
            return
    st.caption("No weights yet (`best.pt` appears after the first epoch).")


def compare_ui(runs: list[dict]) -> None:
    """Overlay one metric across the runs the user picks."""
    ids = [snap["run_id"] for snap in runs]
    default = [r for r in st.session_state.get("compare_runs", []) if r in ids] or ids[:2]
    picked = st.multiselect("Runs to compare", ids, default=default)
    st.session_state["compare_runs"] = picked
    snaps = [run_manager().snapshot(run_id) for run_id in picked]
    columns = list(dict.fromkeys(c for snap in snaps for c in metric_columns(snap["metrics"])))
    if not columns:
        st.caption("Pick runs that have finished at least one epoch.")
        return
    metric = st.selectbox("Metric", columns,
                          index=columns.index("val_loss") if "val_loss" in columns else 0)
    figure = go.Figure()
    for snap in snaps:
        points = [(r.get("epoch"), r.get(metric)) for r in snap["metrics"]
                  if isinstance(r.get(metric), (int, float))]
        if points:
            figure.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points],
                                        mode="lines+markers", name=snap["run_id"]))
    figure.update_layout(title=metric, height=360, xaxis_title="epoch", xaxis_tickformat="d",
                         hovermode="x unified",
                         margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2))
    st.plotly_chart(figure, width="stretch", key="compare.chart")


def delete_ui(run_id: str, status: str) -> None:
    """Delete a finished run, after a confirmation."""
    if status not in FINISHED_STATUSES:
        st.caption("Stop the run before deleting it.")
        return
    if st.session_state.get("confirm_delete") != run_id:
        if st.button(":material/delete: Delete this run…", key=f"delete.{run_id}"):
            st.session_state["confirm_delete"] = run_id
            st.rerun()
        return
    st.warning(f"Delete `{run_id}` and all its files (weights, metrics, log)? This cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete it", type="primary", key=f"delete.yes.{run_id}"):
        st.session_state.pop("confirm_delete", None)
        with error_box("deleting the run"):
            run_manager().delete(run_id)
            st.session_state.pop(SELECTED_RUN, None)
            st.toast(f"Deleted {run_id}", icon=":material/delete:")
            st.rerun()
    if no.button("Cancel", key=f"delete.no.{run_id}"):
        st.session_state.pop("confirm_delete", None)
        st.rerun()


# -- the page --------------------------------------------------------------------------------
st.title("Runs")
st.caption("Every training run of this data home, live and past. Runs train one at a time in a "
           "background thread: leave this page or reload the browser, they carry on.")
all_runs = []
with error_box("listing the runs"):
    all_runs = run_manager().runs()
if not all_runs:
    st.info("No runs yet. Launch one from a Train page.", icon=":material/inbox:")
    cols = st.columns(3)
    cols[0].page_link(PAGE_TRAIN_YOLO, label="Train YOLO", icon=":material/center_focus_strong:")
    cols[1].page_link(PAGE_TRAIN_RESNET, label="Train ResNet-LSTM", icon=":material/movie:")
    cols[2].page_link(PAGE_TRAIN_HYBRID, label="Train Hybrid", icon=":material/join_inner:")
else:
    runs_table_ui()
    selected = pick_run_ui(all_runs)
    live_view_ui(selected)
    with error_box("reading the run's files"):
        details_ui(selected)
    st.divider()
    st.subheader("Compare runs")
    with error_box("comparing runs"):
        compare_ui(all_runs)
    st.divider()
    with error_box("reading the run"):
        delete_ui(selected, run_manager().snapshot(selected)["status"])
