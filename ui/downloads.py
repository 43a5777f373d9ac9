"""Taking a run elsewhere: every chart with its data as CSV, a run's files as one zip.

The bytes are made only when the button is pressed (a callable ``data``), and pressing it does
not rerun the page.
"""

from __future__ import annotations

import re

import plotly.graph_objects as go
import streamlit as st

from pedsense.runfolder import RunFolder
from pedsense.runreport import run_zip
from ui.charts import figure_frame


def chart_ui(figure: go.Figure, key: str, container=None) -> None:
    """``figure`` as a plotly chart, and under it its data as a CSV download."""
    where = container if container is not None else st
    where.plotly_chart(figure, width="stretch", key=key)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_") or "chart"
    where.download_button(":material/download: CSV", data=lambda: figure_frame(figure).to_csv(index=False),
                          file_name=f"{name}.csv", mime="text/csv", key=f"{key}.csv", on_click="ignore",
                          type="tertiary", help="This chart's data: one row per point.")


def run_zip_ui(folder: RunFolder) -> None:
    """The run's metrics, steps, config, status, labels and logs as one zip."""
    st.download_button(":material/folder_zip: Download metrics, config and log (.zip)",
                       data=lambda: run_zip(folder), file_name=f"{folder.name}.zip", mime="application/zip",
                       key=f"download.zip.{folder.run_id}", on_click="ignore")
