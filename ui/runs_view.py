"""The Runs page's parts: the table, the live view of one run (stop, resume, extend), its
details, delete, and the queue settings.

Redraws cost what changed: the live view's fragments run only while the run is queued or
running (progress every second, charts every two seconds), and rebuild a figure only when a new
chart point arrived (``RunSummary.version``); a finished run's view is drawn once. Status
changes (a run ends, another tab deletes it) rerun the page through the sidebar's watcher.
"""

from __future__ import annotations

import streamlit as st

from pedsense.errors import DatasetChanged
from pedsense.runfolder import FINISHED_STATUSES, LIVE_STATUSES, RESUMABLE_STATUSES, RunFolder
from pedsense.runsummary import RunSummary
from ui.charts import run_figures
from ui.downloads import chart_ui
from ui.evaluation import evaluation_panel
from ui.run_records_view import run_records_ui
from ui.feedback import (error_box, fmt_best, fmt_duration, fmt_status, progress_of, show_error,
                         shown_status, weights_badge, without_paths)
from ui.run_failure import failure_ui
from ui.state import MODEL_LABELS, SELECTED_RUN, run_manager
from pedsense.catalogue import describe_task

CHART_CACHE = "runs.chart_cache"
CONFIRM_RESUME = "runs.confirm_resume"  # (run id, why the dataset changed) awaiting confirmation
RESUME_ERROR = "runs.resume_error"      # (run id, the error a resume was refused with)


# -- the table: ui.runs_table ---------------------------------------------------------------------
def pick_run_ui(runs: list[RunSummary]) -> str:
    """The run to show: the one a Train page just launched, else the user's last pick."""
    ids = [s.run_id for s in runs]
    labels = {s.run_id: f"{s.run_id}  ({shown_status(s)})" for s in runs}
    current = st.session_state.get(SELECTED_RUN)
    index = ids.index(current) if current in ids else 0
    chosen = st.selectbox("Run", ids, index=index, format_func=labels.get)
    st.session_state[SELECTED_RUN] = chosen
    return chosen


# -- the live view ----------------------------------------------------------------------------
def live_view_ui(run_id: str) -> None:
    """Status, progress with ETA, Stop, and the charts of one run."""
    live = run_manager().snapshot(run_id).status in LIVE_STATUSES
    st.fragment(_status_ui, run_every=1.0 if live else None)(run_id)
    st.fragment(_charts_ui, run_every=2.0 if live else None)(run_id)
    run_records_ui(run_id)  # the machine under the loss, then the predictions slider


def _status_ui(run_id: str) -> None:
    try:
        summary = run_manager().snapshot(run_id)
    except Exception as exc:  # noqa: BLE001 - e.g. deleted from another tab
        show_error(exc, f"reading run {run_id}")
        return
    status = shown_status(summary)
    head, stop = st.columns([5, 1], vertical_alignment="center")
    badge = weights_badge(summary.weights_source)
    head.markdown(f"### {summary.name}  \n{fmt_status(status)} {badge}"
                  f"&nbsp; {MODEL_LABELS.get(summary.model_type, summary.model_type)} · "
                  f"best {fmt_best(summary.best_metric)} · {fmt_duration(summary.duration_s)}")
    if summary.status == "queued":
        if stop.button(":material/cancel: Cancel", key=f"stop.{run_id}", width="stretch",
                       help="Removes it from the queue; it never starts."):
            _stop(run_id)
    elif summary.status == "running":
        if summary.stop_requested:
            stop.button(":material/pending: Stopping…", key=f"stop.{run_id}", width="stretch",
                        disabled=True, help="It finishes the current batch, saves its weights and ends; "
                        "a worker that does not within a minute is killed.")
        elif stop.button(":material/stop_circle: Stop", key=f"stop.{run_id}", width="stretch",
                         help="Finishes the current batch, saves the weights, ends `stopped`."):
            _stop(run_id)
    elif summary.status in RESUMABLE_STATUSES:
        if stop.button(":material/play_arrow: Resume", key=f"resume.{run_id}", width="stretch",
                       help="Goes on in this run's folder from its last checkpoint, through the queue."):
            _resume(run_id, confirm=False)
    elif summary.status == "completed":
        with stop.popover(":material/add: Extend", width="stretch"):
            extend_ui(run_id, summary)
    if summary.status in LIVE_STATUSES:
        fraction, text = progress_of(summary)
        st.progress(fraction, text=text)
    if summary.status == "failed":
        failure_ui(summary)  # the error, the last log lines, the traceback folded
    elif summary.status == "interrupted":
        st.warning(f"Interrupted: {summary.error or 'its process ended mid-run'}", icon=":material/warning:")
    elif summary.status == "stopped":
        st.info(f"Stopped: {summary.error}" if summary.error else
                "Stopped on request; the weights saved up to then are kept.", icon=":material/stop_circle:")
    if summary.status in RESUMABLE_STATUSES:
        _resume_notes(run_id, summary)


def _stop(run_id: str) -> None:
    with error_box("stopping the run"):
        if run_manager().stop(run_id) == "running":
            st.toast(f"Stopping {run_id} after its current batch…", icon=":material/pending:")
        st.rerun()


def _resume(run_id: str, confirm: bool) -> None:
    try:
        run_manager().resume(run_id, confirm_dataset_change=confirm)
    except DatasetChanged as exc:
        st.session_state[CONFIRM_RESUME] = (run_id, str(exc))
        st.rerun()
    except Exception as exc:  # noqa: BLE001 - e.g. no last.pt: said in the page
        st.session_state[CONFIRM_RESUME] = (run_id, None)
        st.session_state[RESUME_ERROR] = (run_id, exc)
        st.rerun()
    st.session_state.pop(CONFIRM_RESUME, None)
    st.toast(f"Queued {run_id} to resume", icon=":material/play_arrow:")
    st.rerun(scope="app")


def _resume_notes(run_id: str, summary: RunSummary) -> None:
    """Why a resume was refused (here or by its worker), and the confirmation a changed dataset needs."""
    failed = st.session_state.pop(RESUME_ERROR, None)  # shown once
    if failed and failed[0] == run_id:
        show_error(failed[1], "resuming the run")
    refused = RunFolder(summary.path).read_status().get("resume_error")
    if refused:
        st.error(f"The last resume was refused: {refused}", icon=":material/block:")
    pending = st.session_state.get(CONFIRM_RESUME)
    if pending and pending[0] == run_id and pending[1]:
        st.warning(pending[1], icon=":material/warning:")
        if st.button("Resume on the changed data", key=f"resume.confirm.{run_id}", type="primary",
                     help="Recorded in the run's config.json."):
            _resume(run_id, confirm=True)


def extend_ui(run_id: str, summary: RunSummary) -> None:
    """How many more epochs, and the button that queues the extension (a new linked run)."""
    st.caption("Trains this model further as a new run linked to this one, from its last "
               "weights; the optimizer and learning-rate schedule start again.")
    epochs = st.number_input("More epochs", min_value=1, max_value=10_000,
                             value=max(int(summary.parameters.get("epochs") or 1) // 2, 1),
                             key=f"extend.epochs.{run_id}")
    if st.button("Extend", key=f"extend.{run_id}", type="primary"):
        with error_box("extending the run"):
            new_id = run_manager().extend(run_id, int(epochs))
            st.session_state[SELECTED_RUN] = new_id
            st.toast(f"Queued {new_id}", icon=":material/add:")
            st.rerun(scope="app")


def _charts_ui(run_id: str) -> None:
    try:
        summary = run_manager().snapshot(run_id)
    except Exception:  # noqa: BLE001 - the status fragment says why
        return
    cache = st.session_state.setdefault(CHART_CACHE, {})
    cached = cache.get(run_id)
    if cached is None or cached[0] != summary.data_version:  # a new point: rebuild, else reuse
        cache.clear()  # one run's figures at a time per session
        cache[run_id] = cached = (summary.data_version, run_figures(summary.metrics, summary.steps))
    figures = cached[1]
    if not figures:
        st.caption(_no_chart_text(summary))
        return
    steps = [f for title, f in figures if title == "steps"]
    epochs = [(title, f) for title, f in figures if title != "steps"]
    if steps:
        chart_ui(steps[0], key=f"chart.{run_id}.steps")
    if not epochs:
        st.caption("Epoch charts (validation loss and accuracy) appear when the first epoch ends.")
        return
    columns = st.columns(min(len(epochs), 3))
    for index, (title, figure) in enumerate(epochs):
        with columns[index % len(columns)]:
            chart_ui(figure, key=f"chart.{run_id}.{title}")


def _no_chart_text(summary: RunSummary) -> str:
    if summary.status in LIVE_STATUSES:
        return "Charts appear with the first training steps."
    if summary.status == "completed":
        return "This run recorded no metrics."
    return f"This run {summary.status} before recording any metrics, so there is nothing to chart."


# -- details, delete -------------------------------------------------------------------------
def details_ui(run_id: str) -> None:
    summary = run_manager().snapshot(run_id)
    folder = RunFolder(summary.path)
    config = folder.read_config() or summary.config
    task_record = config if config.get("task") else (config.get("dataset") or {}).get("manifest") or {}
    if task_record.get("task"):
        st.caption(f"Trained on task {describe_task(task_record)}. Evaluate it on `test` for the "
                   "benchmark's metrics, breakdown and published reference.")
    config_tab, log_tab, metrics_tab, eval_tab = st.tabs(["Config", "Log", "Metrics table", "Evaluation"])
    with config_tab:
        st.caption(f"`{summary.run_id}`")
        st.json(without_paths(config), expanded=1)  # run_dir, data_yaml: relative to the data home
        download_weights_ui(folder, summary)
    with log_tab:
        st.code(folder.read_log(max_chars=20_000) or "(empty)", language=None, height=320)
    with metrics_tab:
        st.dataframe(list(summary.metrics), width="stretch", hide_index=True)
    with eval_tab:
        if summary.status != "completed":
            st.caption("The evaluation is available once the run has completed.")
        else:
            with error_box("evaluating the run"):
                evaluation_panel(folder.path)


def download_weights_ui(folder: RunFolder, summary: RunSummary) -> None:
    """A download button for the best weights (read from disk only when clicked)."""
    weights = folder.weights("best", summary.model_type)
    if weights is not None:
        st.download_button(f":material/download: Download {weights.name} ({weights.stat().st_size / 1e6:.1f} MB)",
                           data=lambda path=weights: path.read_bytes(),
                           file_name=f"{folder.name}_{weights.name}",
                           mime="application/octet-stream", key=f"download.{folder.run_id}")
    elif summary.status in LIVE_STATUSES:
        st.caption("No weights yet: `best.pt` appears when the first epoch ends.")
    else:
        st.caption(f"This run {summary.status} without saving weights.")


def delete_ui(run_id: str, status: str) -> None:
    """Delete a finished run, after a confirmation."""
    if status not in FINISHED_STATUSES:
        st.caption("A queued or running run can be deleted once it is stopped.")
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



def queue_settings_ui() -> None:
    """How many runs may train at once on this data home, and the device pool."""
    settings = run_manager().queue_settings()
    if settings.problem:
        st.warning(settings.problem, icon=":material/settings_alert:")
    with st.expander(f"Queue: at most {settings.max_parallel} run(s) at once"
                     + (f" on {', '.join(settings.devices)}" if settings.devices else "")):
        st.caption("Shared by every dashboard and `pedsense` command on this data home. Runs wait "
                   "in the queue for a free slot; running ones keep training if this server stops.")
        with st.form("queue.settings", border=False):
            limit = st.number_input("Runs at a time", min_value=1, max_value=64, value=settings.max_parallel)
            devices = st.text_input("Devices for runs set to auto", value=", ".join(settings.devices),
                                    placeholder="e.g. cuda:0, cuda:1 (empty: each run's own device)",
                                    help="Each run whose device is auto gets the least used one.")
            if st.form_submit_button("Save"):
                with error_box("saving the queue settings"):
                    run_manager().set_queue_settings(max_parallel=int(limit), devices=devices)
                    st.toast("Queue settings saved", icon=":material/check:")
