"""``evaluation_panel(run_dir)``: a run's saved evaluation, its confusion matrix and an Evaluate button.

The Runs page calls it for the selected run. Not a page of its own (the navigation lists pages
explicitly).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pedsense.config import CLASS_NAMES

SECTION_TITLES = {
    "intent": "Crossing intent (ground-truth samples)",
    "matched_intent": "Crossing intent on detections matched at IoU ≥ 0.5",
    "detection": "Detection",
}
METRIC_KEYS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc",
               "mAP50", "mAP50-95", "n", "matched", "match_rate")


def confusion_figure(matrix: list[list[int]], title: str = "") -> go.Figure:
    """A plotly heatmap of a 2×2 confusion matrix (rows true, columns predicted), counts written in."""
    figure = go.Figure(go.Heatmap(
        z=matrix, x=[f"pred {n}" for n in CLASS_NAMES], y=[f"true {n}" for n in CLASS_NAMES],
        colorscale="Blues", showscale=False, text=matrix, texttemplate="%{text}",
        hovertemplate="%{y} / %{x}: %{z}<extra></extra>"))
    figure.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                         yaxis=dict(autorange="reversed"))
    return figure


def metrics_table(evaluation: dict) -> pd.DataFrame:
    """One row per section (intent, matched intent, detection) with its numbers."""
    rows = []
    for section, title in SECTION_TITLES.items():
        values = evaluation.get(section)
        if not values:
            continue
        row = {"section": title}
        if "skipped" in values:
            row["note"] = values["skipped"]
        row.update({k: values[k] for k in METRIC_KEYS if values.get(k) is not None})
        rows.append(row)
    return pd.DataFrame(rows)


def evaluation_panel(run_dir: str | Path, *, key: str = "evaluation") -> None:
    """Draw the evaluation of ``run_dir``: split choice, saved metrics, confusion matrices, button."""
    from pedsense.evaluation import evaluate, load_evaluation

    run_dir = Path(run_dir)
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    split = left.selectbox("Split", ["val", "test"], key=f"{key}_split_{run_dir.name}")
    if right.button(f"Evaluate on {split}", key=f"{key}_button_{run_dir.name}",
                    help="Accuracy, balanced accuracy, precision, recall, F1, ROC AUC and the confusion "
                         "matrix for crossing intent; mAP50/mAP50-95 for detector runs."):
        bar = st.progress(0.0, text="Evaluating…")

        def progress(done: int, total: int, message: str) -> None:
            bar.progress(min(done / max(total, 1), 1.0), text=message)

        try:
            evaluate(run_dir, split, progress=progress)
        except Exception as exc:  # noqa: BLE001 - shown in the page, the app keeps serving
            _show_error(exc)
        finally:
            bar.empty()
    evaluation = load_evaluation(run_dir, split)
    if not evaluation:
        st.caption(f"Not evaluated on {split} yet.")
        return
    st.caption(f"Evaluated {evaluation.get('evaluated_at', '')} on {evaluation.get('device', '?')} "
               f"in {evaluation.get('seconds', '?')} s · saved as `evaluation_{split}.json`.")
    st.dataframe(metrics_table(evaluation), hide_index=True, width="stretch")
    matrices = [(SECTION_TITLES[s], evaluation[s]["confusion_matrix"]) for s in ("intent", "matched_intent")
                if isinstance(evaluation.get(s), dict) and "confusion_matrix" in evaluation[s]]
    for column, (title, matrix) in zip(st.columns(max(len(matrices), 1)), matrices):
        column.plotly_chart(confusion_figure(matrix, title), width="stretch",
                            key=f"{key}_cm_{run_dir.name}_{split}_{title}")


def _show_error(exc: BaseException) -> None:
    try:
        from pages.common import show_error
    except ImportError:
        st.error(f"Evaluation failed: {exc}")
        return
    show_error(exc, "evaluating the run")
