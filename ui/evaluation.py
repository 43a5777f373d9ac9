"""``evaluation_panel(run_dir)``: a run's saved evaluation, its confusion matrix and an Evaluate button.

Below the metrics, the benchmark view (``pedsense.evaluation.benchmark_section``): accuracy,
the benchmark's AUC, ROC-AUC, F1, precision and recall, the breakdown by TTE bin, occlusion, time
of day and weather (``intent`` datasets), and the run beside the published JAAD results, each row
marked comparable or not with the reason. Synthetic-data runs are never charted beside them.

The Runs page calls it for the selected run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pedsense.config import CLASS_NAMES
from pedsense.evaluation import evaluate, load_evaluation
from ui.feedback import show_error
from ui.downloads import chart_ui

SECTION_TITLES = {
    "intent": "Crossing intent (ground-truth samples)",
    "matched_intent": "Crossing intent on detections matched at IoU ≥ 0.5",
    "detection": "Detection",
}
METRIC_KEYS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "auc_binary",
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


def evaluate_with_progress_ui(run_dir: Path, split: str) -> bool:
    """``evaluate(run_dir, split)`` under a progress bar; an error is shown in the page. True when it ran."""
    bar = st.progress(0.0, text="Evaluating…")

    def progress(done: int, total: int, message: str) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=message)

    try:
        evaluate(run_dir, split, progress=progress)
        return True
    except Exception as exc:  # noqa: BLE001 - shown in the page, the app keeps serving
        show_error(exc, "evaluating the run")
        return False
    finally:
        bar.empty()


def evaluation_panel(run_dir: str | Path, *, key: str = "evaluation") -> None:
    """Draw the evaluation of ``run_dir``: split choice, saved metrics, confusion matrices, button."""
    run_dir = Path(run_dir)
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    split = left.selectbox("Split", ["val", "test"], key=f"{key}_split_{run_dir.name}")
    if right.button(f"Evaluate on {split}", key=f"{key}_button_{run_dir.name}",
                    help="Accuracy, balanced accuracy, precision, recall, F1, ROC AUC and the confusion "
                         "matrix for crossing intent; mAP50/mAP50-95 for detector runs."):
        evaluate_with_progress_ui(run_dir, split)
    evaluation = load_evaluation(run_dir, split)
    if not evaluation:
        st.caption(f"Not evaluated on {split} yet.")
        return
    st.caption(f"Evaluated {evaluation.get('evaluated_at', '')} on {evaluation.get('device', '?')} "
               f"in {evaluation.get('seconds', '?')} s · saved as `evaluation_{split}.json`"
               + (f"; every sample's prediction in `{evaluation['predictions']['file']}`: the **Errors** page "
                  "browses them." if evaluation.get("predictions") else "."))
    st.dataframe(metrics_table(evaluation), hide_index=True, width="stretch")
    matrices = [(SECTION_TITLES[s], evaluation[s]["confusion_matrix"]) for s in ("intent", "matched_intent")
                if isinstance(evaluation.get(s), dict) and "confusion_matrix" in evaluation[s]]
    for column, (title, matrix) in zip(st.columns(max(len(matrices), 1)), matrices):
        chart_ui(confusion_figure(matrix, title), key=f"{key}_cm_{run_dir.name}_{split}_{title}",
                 container=column)
    benchmark_ui(evaluation.get("benchmark") or {}, key=f"{key}_{run_dir.name}_{split}")


# -- the benchmark view ---------------------------------------------------------------------------
BENCH_METRICS = ("accuracy", "auc_binary", "roc_auc", "f1", "precision", "recall")
REFERENCE_COLUMNS = ("model", "dataset", "accuracy", "auc_binary", "roc_auc", "f1", "precision",
                     "recall", "inputs", "comparison", "caveats", "source")
COMPARISON_COLOURS = {"this run": "#1f77b4", "comparable": "#2ca02c", "not comparable": "#7f7f7f"}


def describe_protocol(benchmark: dict) -> str:
    """One markdown line: the task and, under ``intent``, the protocol of the evaluated data."""
    task = benchmark.get("task", "action")
    if task != "intent":
        return ("Task **action** (is the pedestrian crossing now): published crossing-*prediction* "
                "results answer another question; they are listed for scale only.")
    options = benchmark.get("intent_options") or {}
    tte = "-".join(str(t) for t in options.get("tte") or ())
    return (f"Task **intent** (JAAD benchmark): {options.get('obs_length')} observed frames ending "
            f"{tte} frames before the event, overlap {options.get('overlap')}, sample type "
            f"`{options.get('sample_type')}`, split `{options.get('split')}`.")


def breakdown_frame(rows: list[dict]) -> pd.DataFrame:
    """The breakdown rows as a table (factor, group, n, positives, metrics)."""
    columns = ["factor", "group", "n", "positives", *BENCH_METRICS]
    return pd.DataFrame(rows, columns=columns)


def breakdown_figure(rows: list[dict], metric: str = "accuracy") -> go.Figure:
    """Bars of ``metric`` per group, one panel-coloured group of bars per factor."""
    table = breakdown_frame([r for r in rows if r.get("factor") != "all"])
    figure = go.Figure()
    for factor, group in table.groupby("factor", sort=False):
        figure.add_bar(x=[f"{factor}: {g}" for g in group["group"]], y=group[metric], name=factor,
                       text=[f"n={n}" for n in group["n"]], textposition="outside")
    overall = next((r.get(metric) for r in rows if r.get("factor") == "all"), None)
    if overall is not None:
        figure.add_hline(y=overall, line_dash="dot", annotation_text=f"all: {overall:.3f}")
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), yaxis_title=metric,
                         yaxis_range=[0, 1.1], legend_title_text="")
    return figure


def reference_frame(rows: list[dict]) -> pd.DataFrame:
    """The run's row and the published rows, with the comparison column spelled out."""
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))


def reference_figure(rows: list[dict]) -> go.Figure:
    """Accuracy, the benchmark's AUC and F1 of the run beside each published model (bars coloured
    by comparison; rows not comparable hatched)."""
    figure = go.Figure()
    shown = ("accuracy", "auc_binary", "f1")
    for row in rows:
        label = f"{row['model']} ({row['comparison']})"
        figure.add_bar(x=["accuracy", "AUC (benchmark)", "F1"], y=[row.get(m) for m in shown],
                       name=label, marker_color=COMPARISON_COLOURS.get(row["comparison"]),
                       marker_pattern_shape="/" if row["comparison"] == "not comparable" else "")
    figure.update_layout(barmode="group", height=300, margin=dict(l=10, r=10, t=30, b=10),
                         yaxis_range=[0, 1], legend_title_text="")
    return figure


def benchmark_ui(benchmark: dict, *, key: str) -> None:
    """Draw the benchmark view of a saved evaluation (nothing for evaluations that predate it)."""
    if not benchmark:
        return
    st.subheader("Benchmark view")
    if benchmark.get("skipped"):
        st.caption(f"Benchmark metrics skipped: {benchmark['skipped']}")
        return
    st.markdown(describe_protocol(benchmark))
    if benchmark.get("synthetic"):
        st.caption("Evaluated on the **synthetic** demo set: these numbers say the pipeline works, "
                   "not how well it predicts real pedestrians.")
    metrics = benchmark.get("metrics") or {}
    cols = st.columns(len(BENCH_METRICS))
    for column, name in zip(cols, BENCH_METRICS):
        value = metrics.get(name)
        column.metric(name.replace("_", " "), "—" if value is None else f"{value:.3f}")
    split = benchmark.get("split", "?")
    st.caption(f"On {metrics.get('n', 0)} {benchmark.get('unit', 'samples')} of the **{split}** split "
               f"({metrics.get('positives', 0)} crossing); threshold {benchmark.get('threshold', 0.5)}. "
               "`auc binary` is the benchmark code's AUC (from thresholded predictions): it is the "
               "one to set beside published AUCs; `roc auc` is from the probabilities.")
    if benchmark.get("baselines"):
        st.markdown("**Trivial baselines** on the same samples: one answer for every sample. A model "
                    "that does not beat them has learned nothing the class balance does not give.")
        st.dataframe(pd.DataFrame(benchmark["baselines"], columns=["model", "n", *BENCH_METRICS]),
                     hide_index=True, width="stretch")
    rows = benchmark.get("breakdown") or []
    if rows:
        st.markdown("**Breakdown** by TTE bin, occlusion, time of day and weather")
        st.dataframe(breakdown_frame(rows), hide_index=True, width="stretch")
        chart_ui(breakdown_figure(rows), key=f"{key}_breakdown")
    elif benchmark.get("breakdown_note"):
        st.caption(benchmark["breakdown_note"])
    reference = benchmark.get("reference") or []
    if reference:
        st.markdown("**Published JAAD results** (Kotseruba et al., WACV 2021; test-split numbers) "
                    "beside this run. A row is *comparable* only when the run was scored on `test` "
                    "under the benchmark's protocol, split and sample type, on JAAD, per window, with "
                    "the same inputs; the caveats name every difference.")
        if split != "test":
            st.warning(f"This evaluation is on `{split}`: published numbers are test-split numbers, "
                       "so no row is comparable. Evaluate on `test` for the benchmark's numbers.",
                       icon=":material/rule:")
        st.dataframe(reference_frame(reference), hide_index=True, width="stretch",
                     column_config={"source": st.column_config.TextColumn("source", width="medium")})
        if benchmark.get("synthetic"):
            st.caption("No chart: this run is on the synthetic demo set, and synthetic numbers are "
                       "never charted beside published JAAD results.")
        else:
            chart_ui(reference_figure(reference), key=f"{key}_reference")

