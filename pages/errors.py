"""Errors: where a run is wrong, window by window, after an evaluation.

The evaluation keeps every window's (or crop's) prediction beside its metadata
(``predictions_<split>.parquet``); this page filters that table by TTE bin, any attribute and a
probability range, scores it at a threshold (metrics, a clickable confusion matrix, ROC and
precision-recall curves with the operating point, metrics per attribute value), lists the
chosen cell's windows worst first and plays one: the observed crops, then a short clip up to the
event, beside the pedestrian's P(crossing) curve. A second run shows where the two disagree.
Every number is one ``pedsense.errors_browser.browse`` call.
"""

from __future__ import annotations

import streamlit as st

from pedsense.errors_browser import browse
from ui.errors_play import compare_ui, play_ui
from ui.errors_view import (attribute_ui, breakdown_choice_ui, confusion_ui, curves_ui, filters_ui, metrics_ui,
                            run_split_ui, table_ui, threshold_ui, windows_ui)
from ui.feedback import error_box
from ui.state import enter_page

enter_page()  # before anything is drawn: the sign-in (ui.auth)


def main() -> None:
    st.title("Errors")
    st.caption("Which pedestrians the model gets wrong, at which time-to-event, under which conditions, "
               "and what it saw. Evaluate a run (here or on the Runs page) to browse its predictions.")
    run_path, split = run_split_ui()
    if run_path is None:
        return
    loaded = table_ui(run_path, split)
    if loaded is None:
        return
    if loaded.evaluation.get("benchmark", {}).get("synthetic"):
        st.caption("Evaluated on the **synthetic** demo set: the errors say how the pipeline behaves, "
                   "not how a model does on real pedestrians.")
    threshold = threshold_ui()
    filters = filters_ui(loaded.table)
    column, metric = breakdown_choice_ui(loaded.table)
    view = browse(loaded.table, filters, threshold, attribute=column)
    metrics_ui(view, loaded.unit)
    if view.empty:
        st.info(view.empty_message(), icon=":material/filter_alt_off:")
        return
    left, right = st.columns([2, 3], gap="large")
    with left:
        confusion_ui(view)
    with right:
        curves_ui(view)
    attribute_ui(view, column, metric)
    st.divider()
    row = windows_ui(view)
    if row is not None:
        st.subheader("Play the window")
        play_ui(loaded, row, threshold)
    st.divider()
    st.subheader("Two runs side by side")
    with error_box("comparing the runs"):
        compare_ui(loaded, threshold)


with error_box("showing the errors"):
    main()
