"""Runs: every run of the data home, the live view of one, and a compare view.

Run data comes from the process-wide run manager (in memory while a run trains, the run folder
after), so every browser tab sees the same runs; only the selection lives in session state.
"""

import streamlit as st

from pedsense.runfolder import LIVE_STATUSES, UNREADABLE, RunFolder
from ui.compare import compare_ui
from ui.feedback import error_box, hide_paths
from ui.downloads import run_zip_ui
from ui.notify import follow_link
from ui.run_labels import labels_ui
from ui.run_records_view import tracking_settings_ui
from ui.runs_table import pickable_runs, run_filter_ui, runs_table_ui
from ui.runs_view import delete_ui, details_ui, live_view_ui, pick_run_ui, queue_settings_ui
from ui.state import (PAGE_TRAIN_HYBRID, PAGE_TRAIN_RESNET, PAGE_TRAIN_YOLO, SELECTED_RUN, enter_page,
                      run_manager)

enter_page()  # before anything is drawn: the sign-in (ui.auth)

st.title("Runs")
st.caption("Every training run of this data home, live and past, however it was launched (this "
           "dashboard, another one, the `pedsense` command). Each trains in a worker process: leave "
           "this page, reload the browser or restart the dashboard, it carries on.")
with error_box("reading the queue settings"):
    queue_settings_ui()
    tracking_settings_ui()
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
    linked = follow_link([s.run_id for s in all_runs])  # a toast's "Open its view" link
    if linked:
        st.session_state[SELECTED_RUN] = linked
    wanted = run_filter_ui(all_runs)
    runs_table_ui(wanted, live=any(s.status in LIVE_STATUSES for s in all_runs))
    selected = pick_run_ui(pickable_runs(all_runs, wanted))
    unreadable = {s.run_id: s.error for s in all_runs if s.status == UNREADABLE}
    if selected in unreadable:
        st.error(f"This run's files cannot be read: {hide_paths(unreadable[selected])}",
                 icon=":material/broken_image:")
    with error_box("reading the run"):
        live_view_ui(selected)
    with error_box("reading the run's tags and note"):
        labels_ui(selected)
        run_zip_ui(RunFolder(run_manager().snapshot(selected).path))
    with error_box("reading the run's files"):
        details_ui(selected)
    st.divider()
    st.subheader("Compare runs")
    with error_box("comparing runs"):
        compare_ui(all_runs)
    st.divider()
    with error_box("reading the run"):
        delete_ui(selected, run_manager().snapshot(selected).status)
