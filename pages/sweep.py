"""Sweep: many configurations and seeds of one trainer on Optuna (grid, random, TPE).

Each trial is an ordinary run on the run queue, tagged with its sweep; the sweep's results
(mean ± std over seeds per configuration, parallel coordinates, parameter importance) show here
and on the Runs page. The form and the sweeps list live in ``ui.sweep_form``.
"""

import streamlit as st

from ui.feedback import error_box
from ui.sweep_form import create_ui, sweep_form_ui, sweeps_ui
from ui.state import enter_page

enter_page()  # before anything is drawn: the sign-in (ui.auth)

st.title("Sweeps")
st.caption("Published JAAD results move by several points from run to run: one run proves little. "
           "A sweep runs every configuration with several seeds and compares them as mean ± std. "
           "Its trials are ordinary runs (the Runs page shows them), trained by a worker process that "
           "goes on when this page or the dashboard closes; `pedsense sweep-worker NAME` adds workers, "
           "on other machines too with a shared database (docs/experiments.md).")

new_tab, sweeps_tab = st.tabs(["New sweep", "Sweeps"])
with new_tab:
    spec = None
    with error_box("reading the form"):
        spec = sweep_form_ui()
    if st.button(":material/play_arrow: Create and start", type="primary", key="sweep.create",
                 disabled=spec is None):
        with error_box("creating the sweep"):
            create_ui(spec)
with sweeps_tab:
    with error_box("listing the sweeps"):
        sweeps_ui()
