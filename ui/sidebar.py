"""The sidebar every page shares, and the one watcher that keeps a page's labels true.

``watch_ui`` (a fragment rerun every second) draws the active runs and data jobs, and compares
the status version stamps of the runs and the data jobs (``status_version``)
with what this page was drawn from: when anything moved (a run started, ended or was stopped,
a job finished, another tab deleted a run) it reruns the page once, so every status word,
button and notice follows state within a second. When nothing moved it reads a few file stamps
and draws a handful of small elements: nothing else.
"""

from __future__ import annotations

import streamlit as st

from ui.feedback import STATUS_ICONS, error_box, progress_of, shown_status, show_error
from ui.notify import notify_ends_ui
from ui.run_records_view import machine_load_ui
from ui.state import device_description, home, job_manager, run_manager

DRAWN_VERSION = "watch.drawn_version"


def page_versions() -> tuple:
    """What the page's labels depend on: which runs exist and their status, and the jobs'."""
    return run_manager().status_version(), job_manager().status_version()


def mark_drawn() -> None:
    """Record the versions a full page run drew from (call at the top of every page run)."""
    st.session_state[DRAWN_VERSION] = page_versions()


def sidebar() -> None:
    """Data home, device and active/queued runs: drawn by app.py on every page."""
    mark_drawn()
    with error_box("telling which runs ended"):
        notify_ends_ui(run_manager(), st.session_state[DRAWN_VERSION][0])  # a toast per run that ended, any tab's
    with st.sidebar:
        # the folder's name only: the server's absolute paths stay private
        st.markdown(f"**Data home**  \n`{home().name}`")
        with error_box("detecting the device"):
            st.markdown(f"**Device**  \n{device_description()}")
        watch_ui()
        machine_load_ui()


@st.fragment(run_every=1.0)
def watch_ui() -> None:
    """The running run, the queue and the data jobs; reruns the page when their state moved."""
    st.markdown("**Training**")
    try:
        versions = page_versions()
        active, jobs = run_manager().active(), job_manager().active()
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "reading the runs")
        return
    if not active:
        st.caption("No run is training. Launch one from a Train page.")
    for summary in active:
        fraction, text = progress_of(summary)
        st.caption(f"{STATUS_ICONS.get(shown_status(summary), '')} `{summary.run_id}`")
        st.progress(fraction, text=text)
    for job in jobs:
        st.caption(f":material/build: {job.label}")
        st.progress(job.fraction, text=job.message or job.status)
    if st.session_state.get(DRAWN_VERSION) != versions:
        st.session_state[DRAWN_VERSION] = versions
        st.rerun(scope="app")
