"""The Errors page's window player and its two-run comparison.

A window plays as the strip of crops the model read, then a short WebM of the observed frames
and the frames up to the event (``pedsense.errors_browser.playback``), beside the pedestrian's
P(crossing) over its track: from the table at once, or predicted frame by frame on request
(the Viewer's ``predict_track_series``, on the Viewer's cached predictor).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import streamlit as st

from pedsense.config import CLASS_NAMES, data_home, paths
from pedsense.errors_browser import (CELL_NAMES, RunTable, disagreeing, disagreement_counts, join_runs,
                                     predictions_path, shared_metrics)
from pedsense.errors_browser.playback import clip_path, frames_exist, table_series, window_frames, write_clip
from pedsense.infer.intent_series import clip_annotation, predict_track_series
from pedsense.runsummary import readable_runs
from ui.errors_view import LISTED_COLUMNS, cached_table, table_stamp
from ui.feedback import error_box
from ui.viewer_panels import cached_predictor, export_stamp, intent_figure
from ui.downloads import chart_ui

CLIP_FPS = 8.0


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_video_annotation(video_id: str, home: str, mtime: float):
    """The video's annotation with attributes (None when unannotated); ``mtime`` keys a re-read."""
    return clip_annotation(paths(home).clip(video_id), home)


def video_annotation(video_id: str):
    xml = paths().annotation(video_id)
    return cached_video_annotation(video_id, str(data_home()), xml.stat().st_mtime if xml.is_file() else 0.0)


@st.cache_data(max_entries=64, show_spinner="Reading the observed frames…")
def cached_strip(run_path: str, split: str, sample_id: str, threshold: float, stamp: tuple, _row: dict,
                 obs_length: int) -> np.ndarray:
    """The observed crops side by side, RGB (``_row`` is not hashed: the sample id and stamp key it)."""
    frames = window_frames(_row, threshold=threshold, obs_length=obs_length, max_horizon=0,
                           annotation=video_annotation(_row["video_id"]))
    return cv2.cvtColor(frames.strip, cv2.COLOR_BGR2RGB)


def describe_row(row: dict, threshold: float) -> str:
    guess = CLASS_NAMES[int(row["p_crossing"] >= threshold)]
    tte = row.get("tte")
    tte_text = "no event" if tte is None or pd.isna(tte) else f"TTE {int(tte)} frames ({row.get('tte_bin')})"
    return (f"`{row['video_id']}` pedestrian `{row['track_id']}` · frames {row['start_frame']}-{row['end_frame']} · "
            f"label **{CLASS_NAMES[int(row['label'])]}** · predicted **{guess}** "
            f"(P(crossing) {row['p_crossing']:.3f}) · {tte_text} · occlusion {row.get('occlusion')} · "
            f"{row.get('time_of_day')}, {row.get('weather')} · age {row.get('age')}, gender {row.get('gender')}")


def _protocol(loaded: RunTable) -> dict:
    """The intent protocol of the evaluated dataset ({} for ``action`` builds)."""
    return (loaded.evaluation.get("benchmark") or {}).get("intent_options") or {}


def _obs_length(loaded: RunTable) -> int:
    return int(_protocol(loaded).get("obs_length") or 16)


def _tte(loaded: RunTable) -> tuple[int, int]:
    tte = _protocol(loaded).get("tte") or (30, 60)
    return int(tte[0]), int(tte[-1])


def play_ui(loaded: RunTable, row: dict, threshold: float, *, key: str = "errors_play") -> None:
    """The strip, the clip (rendered on request, kept in the run folder) and the pedestrian's curve."""
    st.markdown(describe_row(row, threshold))
    stamp = table_stamp(loaded.run_dir, loaded.split)
    with error_box("reading the window's frames"):
        strip = cached_strip(str(loaded.run_dir), loaded.split, row["sample_id"], threshold, stamp, row,
                             _obs_length(loaded))
        if not frames_exist(str(row["video_id"])):
            st.image(strip, caption="No frames of this video exist: the window drawn from its annotations "
                                    "(box trajectory, ego action and scene per frame), every 4th frame")
        else:
            st.image(strip, caption="What the model read: the observed crops, oldest first (frame numbers in "
                                    "the corner)" + ("" if row.get("kind") == "window" else
                                                     "; a single-crop model scored the last one only"))
    left, right = st.columns([3, 2])
    output = clip_path(loaded.run_dir, loaded.split, row, threshold)
    with left:
        if st.button("Play window", key=key, type="primary", icon=":material/play_arrow:",
                       help="The observed frames, then every frame up to the event, with the box, the label, "
                            "the prediction and the crossing point marked (a short WebM)."):
            with error_box("rendering the window"), st.spinner("Rendering the window…"):
                _render(row, threshold, output, _obs_length(loaded))
        if output.is_file() and output.stat().st_mtime_ns >= max(stamp):
            st.video(str(output), format="video/webm", loop=True, autoplay=True, muted=True)
            st.session_state[f"{key}_clip"] = str(output)
            st.caption(f"{CLIP_FPS:g} frames per second · saved as `{output.relative_to(loaded.run_dir)}`")
    with right, error_box("charting the pedestrian"):
        track_curve_ui(loaded, row, key=key)


def _render(row: dict, threshold: float, output: Path, obs_length: int) -> None:
    frames = window_frames(row, threshold=threshold, obs_length=obs_length,
                           annotation=video_annotation(row["video_id"]))
    write_clip(frames, output, fps=CLIP_FPS)
    for note in frames.notes:
        st.caption(note)


def track_curve_ui(loaded: RunTable, row: dict, *, key: str) -> None:
    """P(crossing) over the pedestrian's track: the table's samples, or every frame on request."""
    annotation = video_annotation(row["video_id"])
    tte = _tte(loaded)
    series = table_series(loaded.table, row, annotation, tte=tte)
    cache = st.session_state.setdefault("errors_track_series", {})
    full_key = (str(loaded.run_dir), row["video_id"], row["track_id"])
    clip = paths().clip(row["video_id"])
    if st.button("Predict every frame of the track", key=f"{key}_track",
                 disabled=not clip.is_file() or annotation is None or loaded.run_dir.parent.name == "context",
                 help="Runs the model over the pedestrian's whole track, as the Viewer does (needs the clip)."):
        predictor = cached_predictor(str(loaded.run_dir), None, None, export_stamp(loaded.run_dir))
        cache[full_key] = predict_track_series(predictor, clip, annotation, row["track_id"], tte=tte)
    full = cache.get(full_key)
    figure = intent_figure(full if full is not None else series)
    if full is not None:
        points = [(f, p) for f, p in zip(series.frames, series.p_crossing) if p is not None]
        figure.add_scatter(x=[f for f, _ in points], y=[p for _, p in points], mode="markers",
                           marker=dict(size=7, symbol="diamond", color="#9467bd"), name="evaluated samples")
    figure.add_vrect(x0=row["start_frame"], x1=row["end_frame"], fillcolor="#2ca02c", opacity=0.2, line_width=0,
                     annotation_text="this window", annotation_position="bottom left")
    chart_ui(figure, key=f"{key}_curve")
    st.caption("P(crossing) per frame the model was run on" if full is not None else
               f"P(crossing) of each evaluated sample of this pedestrian, at its last frame "
               f"({series.predicted_frames} samples)")


# -- two runs ----------------------------------------------------------------------------------------
def compare_ui(loaded: RunTable, threshold: float) -> None:
    """Another run on the same split: where the two disagree, counted per cell, each window playable."""
    others = {r.run_id: r.path for r in readable_runs(status="completed") if r.path != loaded.run_dir
              and predictions_path(r.path, loaded.split).is_file()}
    if not others:
        st.caption(f"Evaluate another run on `{loaded.split}` to compare it with this one here.")
        return
    other_id = st.selectbox("Compare with", list(others), key="errors_other")
    other = cached_table(str(others[other_id]), loaded.split, table_stamp(others[other_id], loaded.split))
    joined = join_runs(loaded.table, other.table, threshold, threshold)
    st.caption(f"{len(joined)} samples both runs scored (matched by pedestrian and last frame), both at "
               f"threshold {threshold:.2f}. A = {loaded.run_id}, B = {other_id}.")
    if (joined["label"] != joined["label_b"]).any():
        st.warning("Some shared samples carry different labels in the two evaluations: they were made on "
                   "different dataset builds. Evaluate both again on the current build.")
    st.dataframe(shared_metrics(joined), hide_index=True, width="stretch")
    counts = disagreement_counts(joined)
    if counts.empty:
        st.success("The two runs agree on every shared sample at this threshold.")
        return
    st.dataframe(counts[["truth", "cell_a", "cell_b", "windows", "right"]], hide_index=True, width="stretch")
    cells = {i: tuple(int(v) for v in r) for i, r in enumerate(counts[["label", "predicted_a", "predicted_b"]].values)}
    chosen = st.selectbox("Disagreement", list(cells), key="errors_cmp_cell",
                          format_func=lambda i: f"A: {CELL_NAMES[cells[i][:2]]}, B: "
                                                f"{CELL_NAMES[(cells[i][0], cells[i][2])]} ({counts['windows'][i]})")
    rows = disagreeing(joined, cells[chosen])
    shown = [c for c in ("sample_id", "label", "p_a", "p_b", "gap", *LISTED_COLUMNS[5:]) if c in rows.columns]
    st.dataframe(rows[shown], hide_index=True, width="stretch", height=220)
    by_id = {r["sample_id"]: r for r in rows.head(50).to_dict("records")}
    if st.session_state.get("errors_cmp_window") not in by_id:
        st.session_state["errors_cmp_window"] = next(iter(by_id))
    sample = st.selectbox("Window to play", list(by_id), key="errors_cmp_window",
                          format_func=lambda s: f"{s} · A {by_id[s]['p_a']:.2f} · B {by_id[s]['p_b']:.2f}")
    play_ui(loaded, by_id[sample], threshold, key="errors_cmp_play")
