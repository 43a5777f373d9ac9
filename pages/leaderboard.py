"""Leaderboard: every evaluated run as mean ± std over seeds, beside the published JAAD results.

Runs are grouped by model family, task, protocol, inputs, evaluated split and configuration
(all but the seed); each published row is marked comparable or not, and why
(``pedsense.leaderboard``, rules from ``pedsense.benchmarks``). Export as CSV, Markdown or LaTeX.
"""

import streamlit as st

from ui.feedback import error_box
from ui.leaderboard_view import leaderboard_ui
from ui.state import enter_page

enter_page()  # before anything is drawn: the sign-in (ui.auth)

st.title("Leaderboard")
st.caption("One table of evaluated runs: model family, task, protocol, inputs, seeds (n) and the "
           "benchmark's metrics as mean ± std, with the published JAAD results beside them.")
with error_box("building the leaderboard"):
    leaderboard_ui()
