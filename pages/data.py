"""Data: make the demo set, extract frames and build the datasets, in the background."""

import streamlit as st

from ui.data_panels import (JOB_ERROR, actions_ui, context_ui, datasets_ui, families_ui, jobs_ui,
                            source_ui)
from ui.feedback import error_box, show_error
from ui.state import enter_page

enter_page()  # before anything is drawn: the sign-in (ui.auth)

st.title("Data")
st.caption("Everything here runs in the background: leave the page and come back, the progress "
           "bars pick up where they are. Jobs run one at a time, in the order you start them.")

if JOB_ERROR in st.session_state:
    show_error(st.session_state.pop(JOB_ERROR), "starting the job")
with error_box("reading the raw data"):
    source_ui()
    families_ui()
st.subheader("Prepare")
with error_box("drawing the actions"):
    actions_ui()
    context_ui()
jobs_ui()
with error_box("reading the datasets"):
    datasets_ui()
