"""The Leaderboard page's parts: the table (ours beside the published rows) and its exports."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pedsense.leaderboard import leaderboard, shown_table, to_csv, to_latex, to_markdown
from ui.state import home

OURS_STYLE = "font-weight: bold"
PUBLISHED_STYLE = "color: gray; font-style: italic"
COMPARABLE_STYLE = "background-color: rgba(46, 160, 67, 0.25)"
EXPORTS = (("CSV", "csv", "text/csv", to_csv), ("Markdown", "md", "text/markdown", to_markdown),
           ("LaTeX", "tex", "application/x-tex", to_latex))


def leaderboard_ui() -> None:
    """Toggles, the table and the three export buttons."""
    left, right = st.columns(2)
    include_val = left.toggle("Include runs evaluated on val", key="leaderboard.val",
                              help="Shown with split val: published numbers are test-split numbers, so "
                                   "no val row is comparable with them.")
    published = right.toggle("Published rows beside each result", value=True, key="leaderboard.published")
    table = leaderboard(home(), include_val=include_val, published=published)
    if table.empty:
        st.info("No evaluated run yet: evaluate a completed run on `test` (Runs page → Evaluation, or "
                "`pedsense evaluate RUN --split test`) and it appears here.", icon=":material/inbox:")
        return
    st.dataframe(styled(table), hide_index=True, width="stretch", key="leaderboard.table")
    st.caption("Metrics: mean ± sample std over the seeds (n) of one configuration. AUC is the "
               "benchmark's (thresholded predictions), ROC-AUC uses the probabilities. A published row is "
               "comparable only when nothing differs: test split, JAAD (not the synthetic set), the "
               "benchmark's protocol and split, per-window scoring, the same inputs; every difference is "
               "named in its notes.")
    columns = st.columns(len(EXPORTS))
    for column, (title, extension, mime, export) in zip(columns, EXPORTS):
        column.download_button(f":material/download: {title}", data=export(table),
                               file_name=f"pedsense_leaderboard.{extension}", mime=mime,
                               key=f"leaderboard.download.{extension}")


def styled(table: pd.DataFrame):
    """The shown table: our rows bold, published rows grey, a comparable published row green."""
    shown = shown_table(table)
    published = table["model"].str.endswith("(published)").tolist()

    def style(row: pd.Series) -> list[str]:
        if not published[row.name]:
            return [OURS_STYLE] * len(row)
        extra = COMPARABLE_STYLE if row["comparison"] == "comparable" else ""
        return [f"{PUBLISHED_STYLE}; {extra}".rstrip("; ")] * len(row)

    return shown.style.apply(style, axis=1)
