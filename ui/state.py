"""Process-wide state of the dashboard: page paths, the managers, per-session keys.

The managers are created once per process (``st.cache_resource``) and keyed by the data home,
so every browser tab sees the same runs and jobs; per-user choices live in ``st.session_state``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pedsense.config import data_home
from pedsense.device import available_devices, describe_device
from pedsense.jobs import JobManager
from pedsense.runs import RunManager
from ui.auth import require_login_ui
from ui.notify import notify_ends_ui

# Streamlit page files, shared by app.py's navigation and st.switch_page / st.page_link.
PAGE_OVERVIEW = "pages/overview.py"
PAGE_DATA = "pages/data.py"
PAGE_TRAIN_YOLO = "pages/train_yolo.py"
PAGE_TRAIN_RESNET = "pages/train_resnet_lstm.py"
PAGE_TRAIN_HYBRID = "pages/train_hybrid.py"
PAGE_TRAIN_CONTEXT = "pages/train_context.py"
PAGE_RUNS = "pages/runs.py"
PAGE_VIEWER = "pages/viewer.py"
PAGE_SWEEP = "pages/sweep.py"
PAGE_LEADERBOARD = "pages/leaderboard.py"
PAGE_ERRORS = "pages/errors.py"
TRAIN_PAGES = {"yolo": PAGE_TRAIN_YOLO, "resnet-lstm": PAGE_TRAIN_RESNET, "hybrid": PAGE_TRAIN_HYBRID,
               "context": PAGE_TRAIN_CONTEXT}
MODEL_LABELS = {"yolo": "YOLO26", "resnet-lstm": "ResNet-LSTM", "hybrid": "Hybrid", "context": "Context"}

# Session-state key holding the run the Runs page shows (set by the train pages on launch).
SELECTED_RUN = "selected_run"


def use_app_navigation() -> None:
    """Make a deep link such as ``/runs`` open through app.py's navigation and sidebar.

    Because a ``pages/`` folder sits beside app.py, Streamlit starts a fresh server in its old
    multipage mode: if the first visitor opens a deep link, it runs that page file on its own
    (no sidebar of ours, every file of ``pages/`` listed) and keeps doing so until some run
    calls ``st.navigation``, which a deep link never reaches. Clearing that process-wide flag
    and rerunning sends the run through app.py, which shows the same page properly.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# Every page imports this module and the flag is process-wide, so checking on first import is
# enough: after one rerun through app.py the server stays in st.navigation mode.
use_app_navigation()


def enter_page() -> None:
    """Every page calls this before drawing anything. Run through app.py's navigation it does
    nothing (app.py has signed the session in); run on its own (Streamlit's pages-directory
    mode: AppTest's page runs, or a deep link before the reroute above), it asks for the
    password itself (``ui.auth``), so no page ever draws for a session that has not signed in,
    and raises the toasts of runs that ended (``ui.notify``) as app.py's sidebar would."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        require_login_ui()
        notify_ends_ui(run_manager())  # app.py's sidebar tells the runs that ended; without it, the page does


@st.cache_resource(show_spinner=False)
def _run_manager(home: str) -> RunManager:
    return RunManager(home)


@st.cache_resource(show_spinner=False)
def _job_manager(home: str) -> JobManager:
    return JobManager(home)


def home() -> Path:
    """The data home this process serves (``$PEDSENSE_HOME`` or the repository root)."""
    return data_home()


def run_manager() -> RunManager:
    """The one RunManager of this process for the current data home."""
    return _run_manager(str(home()))


def job_manager() -> JobManager:
    """The one JobManager (background data jobs) of this process for the current data home."""
    return _job_manager(str(home()))


@st.cache_resource(show_spinner=False)
def device_description() -> str:
    return describe_device()


@st.cache_resource(show_spinner=False)
def device_choices() -> list[str]:
    """``auto`` then every device torch sees (``cpu``, ``cuda:N``, ``mps``)."""
    return ["auto", *available_devices()]
