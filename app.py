"""pedsense dashboard: `streamlit run app.py` (docs/dashboard/index.md).

Navigation over the pages in ``pages/`` and the sidebar every page shares (``ui.sidebar``).
Training runs belong to the process-wide run manager (``ui.state``), so they survive page
switches, browser reloads and a second tab. Beyond localhost (or with a password set) a session
signs in first (``ui.auth``): no page runs before.
"""

from pathlib import Path

import streamlit as st

from ui.auth import may_enter, require_login_ui, sign_out_ui
from ui.sidebar import sidebar
from ui.state import (PAGE_DATA, PAGE_ERRORS, PAGE_LEADERBOARD, PAGE_OVERVIEW, PAGE_RUNS, PAGE_SWEEP,
                      PAGE_TRAIN_CONTEXT, PAGE_TRAIN_HYBRID, PAGE_TRAIN_RESNET, PAGE_TRAIN_YOLO, PAGE_VIEWER)

# A local icon: nothing is fetched from the network (the dashboard works offline).
st.set_page_config(page_title="pedsense", page_icon=str(Path(__file__).parent / "ui" / "icon.png"),
                   layout="wide")
signed_in = may_enter()

navigation = st.navigation({
    "pedsense": [
        st.Page(PAGE_OVERVIEW, title="Overview", icon=":material/home:", default=True),
        st.Page(PAGE_DATA, title="Data", icon=":material/folder_open:"),
    ],
    "Train": [
        st.Page(PAGE_TRAIN_YOLO, title="Train YOLO", icon=":material/center_focus_strong:"),
        st.Page(PAGE_TRAIN_RESNET, title="Train ResNet-LSTM", icon=":material/movie:"),
        st.Page(PAGE_TRAIN_HYBRID, title="Train Hybrid", icon=":material/join_inner:"),
        st.Page(PAGE_TRAIN_CONTEXT, title="Train Context", icon=":material/route:"),
        st.Page(PAGE_SWEEP, title="Sweep", icon=":material/tune:"),
    ],
    "Inspect": [
        st.Page(PAGE_RUNS, title="Runs", icon=":material/monitoring:"),
        st.Page(PAGE_VIEWER, title="Viewer", icon=":material/visibility:"),
        st.Page(PAGE_ERRORS, title="Errors", icon=":material/troubleshoot:"),
        st.Page(PAGE_LEADERBOARD, title="Leaderboard", icon=":material/leaderboard:"),
    ],
}, position="sidebar" if signed_in else "hidden")
require_login_ui()  # the sign-in form (or the refusal to serve): stops here until signed in
sidebar()
with st.sidebar:
    sign_out_ui()
navigation.run()
