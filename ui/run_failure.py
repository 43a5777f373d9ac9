"""A failed run's view starts with why: the error, the log lines before it, and the traceback
folded under them (``pedsense.runreport.failure_of``)."""

from __future__ import annotations

import streamlit as st

from pedsense.runfolder import RunFolder
from pedsense.runreport import failure_of
from pedsense.runsummary import RunSummary
from ui.feedback import hide_paths


def failure_ui(summary: RunSummary) -> None:
    failure = failure_of(RunFolder(summary.path), summary.error)
    st.error(f"The run failed: {hide_paths(failure.error)}", icon=":material/error:")
    if failure.last_lines:
        st.caption("The last lines of its log")
        st.code(hide_paths("\n".join(failure.last_lines)), language=None)
    if failure.traceback:
        with st.expander("Traceback"):
            st.code(hide_paths(failure.traceback), language="python")
