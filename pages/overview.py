"""Overview: what data is here, what has been built and trained, and what to do next."""

import streamlit as st

from pedsense.catalogue import datasets_status
from ui.data_panels import families_ui, source_facts
from ui.feedback import error_box
from ui.overview_panels import built_ui, dataset_ui, latest_runs_ui, next_step_ui
from ui.state import home, run_manager, enter_page

enter_page()  # before anything is drawn: the sign-in (ui.auth)

st.title("pedsense")
st.caption("Pedestrian crossing intent on JAAD: a YOLO26 detector, a ResNet-50 + LSTM and a "
           "YOLO + ResNet hybrid, trained and inspected from this dashboard.")

facts, status, runs = {"kind": "none", "annotations": 0}, [], []
with error_box("reading the data home"):
    facts, status = source_facts(), datasets_status(home())
    runs = run_manager().runs()
left, right = st.columns([3, 2], gap="large")
with left:
    with error_box("summarising the dataset"):
        dataset_ui(facts)
        families_ui()
        built_ui(status)
    with error_box("listing the runs"):
        latest_runs_ui(runs)
with right:
    with error_box("choosing the next step"):
        next_step_ui(facts, status, runs)
