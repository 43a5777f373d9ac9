"""Plotly figures of runs: epoch metrics, step-level loss and learning rate, run comparison.

Pure functions of a run's rows (no Streamlit): whole-number epoch axes, one panel per stage of
the hybrid, one stable colour per run on every chart and page, hover naming run, epoch and value.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

# Columns that are bookkeeping, not metrics to chart.
NOT_METRICS = ("epoch", "stage", "seconds", "time", "lr", "step")
CHART_GROUPS = (
    ("Loss", lambda c: "loss" in c),
    ("Accuracy", lambda c: "acc" in c or c.endswith("f1")),
    ("Detection (precision / recall / mAP)", lambda c: any(t in c for t in ("precision", "recall", "map"))),
)
STAGE_TITLES = {"detector": "Stage 1: detector", "classifier": "Stage 2: classifier"}
PALETTE = qualitative.D3 + qualitative.Dark2
HEIGHT = 320
MARGIN = dict(l=10, r=10, t=40, b=10)


def run_colour(run_id: str) -> str:
    """One colour per run, the same on every chart and page (and across restarts)."""
    digest = int(hashlib.sha1(run_id.encode("utf-8")).hexdigest(), 16)
    return PALETTE[digest % len(PALETTE)]


def metric_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Numeric metric columns of ``rows``, in first-seen order."""
    columns: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if key not in NOT_METRICS and _number(value):
                columns.setdefault(key, None)
    return list(columns)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def chart_groups(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """``[(title, columns)]``: loss, accuracy and detection metrics, each only when present."""
    columns = metric_columns(rows)
    groups = []
    for title, belongs in CHART_GROUPS:
        picked = [c for c in columns if belongs(c.lower())]
        if picked:
            groups.append((title, picked))
    return groups


def stages(rows: Sequence[Mapping[str, Any]]) -> list[str | None]:
    return list(dict.fromkeys(row.get("stage") for row in rows))


def epoch_axis(last_epoch: int) -> dict:
    """A whole-number epoch axis: ticks every ``dtick`` epochs, never fractional."""
    return dict(title="epoch", tick0=1, dtick=max(1, math.ceil(max(last_epoch, 1) / 10)),
                tickformat="d", rangemode="tozero")


def _legend() -> dict:
    return dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0)


def metrics_figure(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str) -> go.Figure:
    """One line per column against the epoch; the hybrid's stages side by side, one panel each."""
    run_stages = stages(rows)
    panels = [s for s in run_stages if any(_number(r.get(c)) for r in rows if r.get("stage") == s
                                            for c in columns)]
    panels = panels or run_stages
    figure = make_subplots(rows=1, cols=len(panels), horizontal_spacing=0.08,
                           subplot_titles=[STAGE_TITLES.get(s, "") for s in panels] if len(panels) > 1 else None)
    last = 1
    for index, stage in enumerate(panels, start=1):
        stage_rows = [row for row in rows if row.get("stage") == stage]
        for colour, column in zip(PALETTE, columns):
            points = [(row.get("epoch"), row.get(column)) for row in stage_rows if _number(row.get(column))]
            if not points:
                continue
            last = max(last, max(int(p[0] or 0) for p in points))
            figure.add_trace(go.Scatter(
                x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=column,
                legendgroup=column, showlegend=index == 1 or len(panels) == 1,
                line=dict(color=colour), hovertemplate=f"{column}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>"),
                row=1, col=index)
    for index in range(1, len(panels) + 1):
        figure.update_xaxes(**epoch_axis(last), row=1, col=index)
    figure.update_layout(title=title, height=HEIGHT, margin=MARGIN, legend=_legend(), hovermode="closest")
    return figure


def steps_figure(steps: Sequence[Mapping[str, Any]]) -> go.Figure | None:
    """Smoothed training loss and learning rate every N steps (None without steps)."""
    points = [s for s in steps if _number(s.get("loss"))]
    if not points:
        return None
    run_stages = list(dict.fromkeys(s.get("stage") for s in points))
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for colour, stage in zip(PALETTE, run_stages):
        stage_points = [s for s in points if s.get("stage") == stage]
        label = "" if len(run_stages) == 1 else f" ({stage})"
        figure.add_trace(go.Scatter(
            x=[s["step"] for s in stage_points], y=[s["loss"] for s in stage_points], mode="lines",
            name=f"train loss{label}", line=dict(color=colour),
            hovertemplate="step %{x}<br>loss %{y:.4g}<extra></extra>"), secondary_y=False)
        lrs = [s for s in stage_points if _number(s.get("lr"))]
        if lrs:
            figure.add_trace(go.Scatter(
                x=[s["step"] for s in lrs], y=[s["lr"] for s in lrs], mode="lines",
                name=f"learning rate{label}", line=dict(color=colour, dash="dot", width=1),
                hovertemplate="step %{x}<br>lr %{y:.3g}<extra></extra>"), secondary_y=True)
    figure.update_xaxes(title="optimizer step", tickformat="d")
    figure.update_yaxes(title="loss", secondary_y=False)
    figure.update_yaxes(title="learning rate", secondary_y=True, showgrid=False, exponentformat="e",
                        **lr_axis([s["lr"] for s in points if _number(s.get("lr"))]))
    figure.update_layout(title="Training loss (live, smoothed)", height=HEIGHT, margin=MARGIN,
                         legend=_legend(), hovermode="x unified")
    return figure


def lr_axis(values: Sequence[float]) -> dict:
    """A learning-rate axis that never reads negative: log scale when every value is positive
    (a schedule spans decades; a constant rate sits mid-axis, half a decade either side),
    else linear from 0 to 15 % above the largest value (a warm-up from 0)."""
    values = [v for v in values if _number(v)]
    if values and min(values) > 0:
        low, high = math.log10(min(values)), math.log10(max(values))
        pad = max((high - low) * 0.1, 0.5 if high == low else 0.05)
        return dict(type="log", range=[low - pad, high + pad])
    top = max(values, default=0.0)
    return dict(type="linear", range=[0, top * 1.15 if top > 0 else 1.0])


def compare_figure(series: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], metric: str) -> go.Figure:
    """``metric`` of each run (one stable colour per run); the hybrid's stages in their own panels."""
    panel_stages = list(dict.fromkeys(r.get("stage") for _, rows in series for r in rows
                                      if _number(r.get(metric))))
    panel_stages = panel_stages or [None]
    figure = make_subplots(rows=1, cols=len(panel_stages), horizontal_spacing=0.08,
                           subplot_titles=[STAGE_TITLES.get(s, "") for s in panel_stages]
                           if len(panel_stages) > 1 else None)
    last = 1
    for run_id, rows in series:
        for index, stage in enumerate(panel_stages, start=1):
            points = [(r.get("epoch"), r.get(metric)) for r in rows
                      if r.get("stage") == stage and _number(r.get(metric))]
            if not points:
                continue
            last = max(last, max(int(p[0] or 0) for p in points))
            figure.add_trace(go.Scatter(
                x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=run_id,
                legendgroup=run_id, showlegend=index == 1, line=dict(color=run_colour(run_id)),
                hovertemplate=f"{run_id}<br>epoch %{{x}}: {metric} %{{y:.4g}}<extra></extra>"),
                row=1, col=index)
    for index in range(1, len(panel_stages) + 1):
        figure.update_xaxes(**epoch_axis(last), row=1, col=index)
    figure.update_layout(title=metric, height=360, margin=MARGIN, legend=_legend(), hovermode="closest")
    return figure


def run_figures(rows: Sequence[Mapping[str, Any]], steps: Sequence[Mapping[str, Any]]) -> list[tuple[str, go.Figure]]:
    """Every chart of one run: the live step curve, then loss / accuracy / detection by epoch."""
    figures = []
    live = steps_figure(steps)
    if live is not None:
        figures.append(("steps", live))
    figures += [(title, metrics_figure(rows, columns, title)) for title, columns in chart_groups(rows)]
    return figures


# -- a chart's data ---------------------------------------------------------------------------
def figure_frame(figure: go.Figure) -> pd.DataFrame:
    """The data behind any figure of this module, one row per point: ``series`` (the trace's
    name), ``panel`` (a subplot's title, when there are several), ``x``, ``y`` (and ``z`` for a
    heatmap); a parallel-coordinates figure gives one column per dimension instead."""
    rows, frames = [], []
    panels = {}
    for index, annotation in enumerate(figure.layout.annotations or ()):
        panels["x" if index == 0 else f"x{index + 1}"] = annotation.text
    for trace in figure.data:
        if getattr(trace, "dimensions", None):  # parallel coordinates
            frames.append(pd.DataFrame({d.label: list(d.values) for d in trace.dimensions}))
            continue
        name = trace.name or ""
        panel = panels.get(getattr(trace, "xaxis", None) or "x", "")
        z = getattr(trace, "z", None)
        if z is not None:
            xs = list(trace.x) if trace.x is not None else list(range(len(z[0]) if len(z) else 0))
            ys = list(trace.y) if trace.y is not None else list(range(len(z)))
            rows += [{"series": name, "panel": panel, "x": xs[j], "y": ys[i], "z": value}
                     for i, line in enumerate(z) for j, value in enumerate(line)]
            continue
        xs = list(trace.x) if trace.x is not None else []
        ys = list(trace.y) if trace.y is not None else []
        rows += [{"series": name, "panel": panel, "x": x, "y": y} for x, y in zip(xs, ys)]
    if frames:
        return pd.concat(frames, ignore_index=True)
    frame = pd.DataFrame(rows, columns=["series", "panel", "x", "y", *(["z"] if any("z" in r for r in rows) else [])])
    if not frame["panel"].astype(bool).any():
        frame = frame.drop(columns="panel")
    x_title = figure.layout.xaxis.title.text  # "epoch", "optimizer step": the column says which
    return frame.rename(columns={"x": x_title}) if x_title and x_title not in frame else frame


# -- sweeps --------------------------------------------------------------------------------------
def parallel_figure(study, params: Sequence[str], metric: str) -> go.Figure:
    """Optuna's parallel coordinates of a sweep: each completed trial a line from its parameter
    values to its value (``metric``)."""
    from optuna.visualization import plot_parallel_coordinate

    figure = plot_parallel_coordinate(study, params=list(params), target_name=metric)
    figure.update_layout(title=f"Parameters → {metric} (completed trials)", height=HEIGHT + 40, margin=MARGIN)
    return figure


def importance_figure(importances: Mapping[str, float]) -> go.Figure:
    """Optuna's parameter importances (fANOVA; they sum to 1), most important on top."""
    ranked = sorted(importances.items(), key=lambda item: item[1])
    figure = go.Figure(go.Bar(x=[v for _, v in ranked], y=[k for k, _ in ranked], orientation="h",
                              marker_color=PALETTE[0],
                              hovertemplate="%{y}: %{x:.2f}<extra></extra>"))
    figure.update_layout(title="Parameter importance (Optuna, fANOVA)", height=max(200, 60 + 40 * len(ranked)),
                         margin=MARGIN, xaxis=dict(title="importance", range=[0, 1]))
    return figure


# -- the machine while a run trains (pedsense.sysmon's system.csv) ----------------------------------
def system_figure(rows: Sequence[Mapping[str, Any]], gpus: Sequence[int] = ()) -> go.Figure | None:
    """The run's CPU (100 % = one core) and the machine's, resident memory, and per GPU its
    utilisation and memory, against the clock (None without rows)."""
    from datetime import datetime

    points = [r for r in rows if _number(r.get("time"))]
    if not points:
        return None
    when = [datetime.fromtimestamp(r["time"]) for r in points]
    panels = 2 if gpus else 1
    figure = make_subplots(rows=1, cols=panels, horizontal_spacing=0.1,
                           specs=[[{"secondary_y": True}] * panels],
                           subplot_titles=["CPU and memory", "GPU"][:panels] if gpus else None)
    traces = (("cpu_percent", "run CPU %", PALETTE[0], False, "solid"),
              ("machine_cpu_percent", "machine CPU % (all cores)", PALETTE[1], False, "dot"),
              ("rss_mb", "run memory (GB)", PALETTE[2], True, "solid"))
    for column, name, colour, right, dash in traces:
        scale = 1 / 1024 if column == "rss_mb" else 1
        figure.add_trace(go.Scatter(x=when, y=[(r.get(column) or 0) * scale for r in points], mode="lines",
                                    name=name, line=dict(color=colour, dash=dash),
                                    hovertemplate=f"{name}: %{{y:.3g}}<extra></extra>"), row=1, col=1, secondary_y=right)
    for index in gpus:
        colour = PALETTE[(3 + index) % len(PALETTE)]
        figure.add_trace(go.Scatter(x=when, y=[r.get(f"gpu{index}_util") for r in points], mode="lines",
                                    name=f"GPU {index} util %", line=dict(color=colour),
                                    hovertemplate="util %{y:.0f} %<extra></extra>"), row=1, col=2, secondary_y=False)
        figure.add_trace(go.Scatter(x=when, y=[(r.get(f"gpu{index}_mem_mb") or 0) / 1024 for r in points],
                                    mode="lines", name=f"GPU {index} memory (GB)", line=dict(color=colour, dash="dot"),
                                    hovertemplate="memory %{y:.2f} GB<extra></extra>"), row=1, col=2, secondary_y=True)
    for col in range(1, panels + 1):
        figure.update_yaxes(title="%", rangemode="tozero", row=1, col=col, secondary_y=False)
        figure.update_yaxes(title="GB", rangemode="tozero", showgrid=False, row=1, col=col, secondary_y=True)
    figure.update_layout(title="Machine while training (sampled every few seconds)", height=HEIGHT,
                         margin=MARGIN, legend=_legend(), hovermode="x unified")
    return figure
