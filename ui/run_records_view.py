"""What a run keeps beside its metrics, in the dashboard: the machine while it trained (under
the loss), its predictions epoch by epoch (a slider), the machine's load now (the sidebar), and
the TensorBoard / MLflow settings (the Runs page).

Like the run view's charts, the fragments here rerun only while the run is live.
"""

from __future__ import annotations

import importlib.util

import streamlit as st

from pedsense.epoch_predictions import picture_path, read_epochs
from pedsense.mlflow_export import read_setting, write_setting
from pedsense.runfolder import LIVE_STATUSES
from pedsense.sysmon import gpu_columns, machine_load, read_system
from ui.charts import system_figure
from ui.downloads import chart_ui
from ui.feedback import error_box
from ui.state import run_manager

CLASS_WORDS = {0: "not-crossing", 1: "crossing"}


def run_records_ui(run_id: str) -> None:
    """The system chart and the predictions slider of one run (refreshed while it is live)."""
    live = run_manager().snapshot(run_id).status in LIVE_STATUSES
    st.fragment(_system_ui, run_every=5.0 if live else None)(run_id)
    st.fragment(_predictions_ui, run_every=5.0 if live else None)(run_id)


def _system_ui(run_id: str) -> None:
    summary = run_manager().snapshot(run_id)
    with error_box("reading the run's system.csv"):
        rows = read_system(summary.path)
        figure = system_figure(rows, gpu_columns(rows))
        if figure is None:
            if summary.status in LIVE_STATUSES:
                st.caption("The machine's load (CPU, memory, GPUs) is charted from the run's first seconds.")
            return
        chart_ui(figure, key=f"chart.{run_id}.system")  # with its data as CSV


def _predictions_ui(run_id: str) -> None:
    summary = run_manager().snapshot(run_id)
    epochs = read_epochs(summary.path)
    if not epochs:
        if summary.status in LIVE_STATUSES and (summary.parameters.get("prediction_samples") or 0) > 0:
            st.caption("Predictions on a few validation samples appear here as each epoch ends.")
        return
    st.markdown("**Predictions as training went** (the same validation samples every epoch)")
    stages = {e.get("stage") or "train" for e in epochs}
    labels = [(f"{e.get('stage')} · " if len(stages) > 1 else "") + f"epoch {e['epoch']}" for e in epochs]
    chosen = labels[-1] if len(labels) == 1 else st.select_slider(
        "Epoch", options=labels, value=labels[-1], key=f"predictions.epoch.{run_id}")
    record = epochs[labels.index(chosen)]
    for problem in record.get("problems") or ():
        st.warning(problem, icon=":material/broken_image:")
    sheet = picture_path(summary.path, record)
    if sheet is not None:
        st.image(str(sheet), caption=f"{chosen}: label and P(crossing) per sample (green: right at 0.5, red: "
                 "wrong)" + ("; boxes: predicted (coloured by class), ground truth (white)"
                             if any("boxes" in s for s in record["samples"]) else ""))
    st.dataframe(prediction_rows(record), hide_index=True, width="stretch")


def prediction_rows(record: dict) -> list[dict]:
    """The table under the sheet (the only view of a family without pictures)."""
    rows = []
    for sample in record.get("samples") or ():
        p, label = sample.get("p_crossing"), sample.get("label")
        row = {"sample": sample.get("id"), "label": CLASS_WORDS.get(label, label), "P(crossing)": p,
               "right": None if p is None or label is None else (p >= 0.5) == (label == 1)}
        if "boxes" in sample:
            row["boxes"] = len(sample["boxes"])
        rows.append(row)
    return rows


@st.fragment(run_every=5.0)
def machine_load_ui() -> None:
    """The machine's load now (the sidebar): CPU, memory and each GPU."""
    load = machine_load()
    if load is None:
        st.caption("Install psutil (`pip install psutil`) to see the machine's load here.")
        return
    st.markdown("**Machine**")
    st.progress(min(load["cpu_percent"] / 100, 1.0),
                text=f"CPU {load['cpu_percent']:.0f} % of {load['cores']} cores")
    st.progress(min(load["mem_percent"] / 100, 1.0),
                text=f"Memory {load['mem_used_gb']:.1f} / {load['mem_total_gb']:.0f} GB")
    for gpu in load["gpus"]:
        st.progress(min(gpu["util"] / 100, 1.0), text=f"GPU {gpu['index']} {gpu['util']:.0f} % · "
                    f"{gpu['mem_mb'] / 1024:.1f} / {gpu['mem_total_mb'] / 1024:.0f} GB")


def tracking_settings_ui() -> None:
    """TensorBoard (nothing to set: where it is) and MLflow (export each run as it ends)."""
    setting = read_setting()
    title = "TensorBoard and MLflow" + (": runs exported as they end" if setting.export_on_end else "")
    with st.expander(title):
        if importlib.util.find_spec("tensorboard") is None:
            st.warning("TensorBoard event files need the tensorboard package: `pip install tensorboard`.")
        else:
            st.caption("Every run writes TensorBoard event files in its folder: `tensorboard --logdir models/` "
                       "shows every run. `pedsense mlflow-export` logs runs into MLflow by hand.")
        if importlib.util.find_spec("mlflow") is None:
            st.warning("Exporting to MLflow needs the mlflow package: `pip install mlflow`.")
        with st.form("tracking.settings", border=False):
            on = st.toggle("Export each run to MLflow as it ends", value=setting.export_on_end)
            uri = st.text_input("MLflow tracking URI", value=setting.uri or "",
                                placeholder="sqlite:///<data home>/mlflow.db (the default)")
            if st.form_submit_button("Save"):
                with error_box("saving the MLflow setting"):
                    write_setting(export_on_end=on, uri=uri)
                    st.toast("MLflow setting saved", icon=":material/check:")
