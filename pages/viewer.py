"""Viewer: a completed run's boxes and crossing intent on a clip, beside the ground truth.

Pick a run and a clip (or upload one), step or play through frames, compare with the
annotations, and render the whole clip with overlays to a WebM that plays in the browser.
The run's weights are loaded once per process and shared by every browser session (ONNX
Runtime when the run has an ONNX export, else PyTorch); each session keeps its own clip state
(tracks, crop buffers) in ``st.session_state``, so two tabs never reset each other, and no
lock is held across a render.
Under the frame, "Intent over time" charts one annotated pedestrian's P(crossing) with its
event (``crossing_point``) and the benchmark's TTE window marked
(``pedsense.infer.intent_series`` computes the series).
"""

from __future__ import annotations

import streamlit as st

from pedsense.config import data_home
from ui.feedback import error_box
from ui.state import enter_page
from ui.uploads import clip_ui, uploads_ui
from ui.viewer_panels import (PLAY_INTERVAL_S, backend_ui, cached_annotation, cached_ground_truth,
                              cached_predictor, clip_info, clip_state, export_stamp,
                              frame_view, intent_chart_ui, options_ui, render_ui, run_ui,
                              synthetic_home, tracker_ui)

enter_page()  # before anything is drawn: the sign-in (ui.auth)


def main() -> None:
    st.title("Viewer")
    st.caption("A run's predicted boxes on a clip, coloured by crossing intent — **crossing** red, "
               "**not-crossing** green, **buffering** amber (a ResNet-LSTM track still collecting "
               "its crop sequence) — beside the ground truth (thin dashed boxes).")
    run_path = run_ui()
    clip = clip_ui()
    uploads_ui()
    if run_path is None or clip is None:
        return
    info = clip_info(str(clip), clip.stat().st_mtime)
    ground_truth, why = cached_ground_truth(str(clip), str(data_home()), clip.stat().st_mtime)
    if why:
        st.info(why)
    if synthetic_home():
        st.caption("These clips are the **synthetic** JAAD-format demo set, not real JAAD footage.")
    tracker = tracker_ui(run_path, ground_truth is not None)
    options = options_ui(ground_truth is not None)
    predictor = cached_predictor(str(run_path), str(tracker) if tracker else None, None,
                                 export_stamp(run_path, tracker))
    state = clip_state(run_path, tracker, predictor)
    st.caption(f"{info['frames']} frames · {info['width']}×{info['height']} · {info['fps']:g} fps")
    backend_ui(predictor, run_path)
    playing = st.session_state.get("viewer_playing", False)
    st.fragment(frame_view, run_every=PLAY_INTERVAL_S if playing else None)(
        predictor, state, clip, max(info["frames"], 1), ground_truth, options)
    if ground_truth is not None:
        with error_box("charting intent over time"):
            intent_chart_ui(predictor, run_path, clip,
                            cached_annotation(str(clip), str(data_home()), clip.stat().st_mtime))
    st.divider()
    render_ui(predictor, clip, ground_truth, options)


with error_box("showing the viewer"):
    main()
