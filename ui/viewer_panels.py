"""The Viewer page's parts: run and tracker pickers, the frame view, the intent chart, renders (the clip
picker and the uploads are in ``ui.uploads``).

One predictor per run is cached for the whole process (weights only, thread-safe); each browser
session keeps its own per-clip state (``ClipState``) in ``st.session_state``.
"""


from __future__ import annotations

from pathlib import Path

import cv2
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui.feedback import error_box, hide_paths, shown_path
from ui.downloads import chart_ui
from pedsense.runsummary import readable_runs

PLAY_INTERVAL_S = 0.5
CROP_PREVIEW = (96, 96)


# -- cached loaders (shared across sessions: weights only, thread-safe) --------------------------
@st.cache_resource(max_entries=3, show_spinner="Loading the run's weights…")
def cached_predictor(run_path: str, tracker_path: str | None, device: str | None, exports: tuple):
    """``exports`` (the export records' mtimes) is part of the key: an ONNX export made since
    the last load is picked up on the next rerun."""
    from pedsense.infer import load_predictor

    # a low detector threshold here; the confidence slider filters what is shown
    return load_predictor(run_path, device=device, conf=0.05, tracker_run=tracker_path)


def export_stamp(*runs: Path | None) -> tuple:
    from pedsense.infer.backends import EXPORT_RECORD

    return tuple((run / EXPORT_RECORD).stat().st_mtime_ns if run and (run / EXPORT_RECORD).is_file() else 0
                 for run in runs)


def clip_state(run_path: Path, tracker: Path | None, predictor):
    """This browser session's per-clip state for the run (tracks, buffers, last frame shown)."""
    key = (str(run_path), str(tracker) if tracker else None)
    held = st.session_state.get("viewer_clip_state")
    if held is None or held[0] != key:
        held = (key, predictor.new_state())
        st.session_state["viewer_clip_state"] = held
    return held[1]


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_ground_truth(clip: str, home: str, mtime: float):
    from pedsense.infer import load_clip_ground_truth

    return load_clip_ground_truth(clip, home)


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_annotation(clip: str, home: str, mtime: float):
    """The clip's annotation with attributes (``crossing_point``), or None when unannotated."""
    from pedsense.infer.intent_series import clip_annotation

    return clip_annotation(clip, home)


@st.cache_data(max_entries=32, show_spinner=False)
def clip_info(clip: str, mtime: float) -> dict:
    from pedsense.data.video import video_info

    info = video_info(clip)
    return {"frames": info.frame_count, "fps": info.fps, "width": info.width, "height": info.height}


def synthetic_home() -> bool:
    from pedsense.data.synthetic import is_synthetic

    try:
        return bool(is_synthetic())
    except Exception:  # noqa: BLE001 - a caption is not worth a broken page
        return False


# -- widgets ------------------------------------------------------------------------------------
def run_ui() -> Path | None:
    """Select box of completed runs; returns the chosen run folder."""
    # context runs read annotations, not frames: the Errors page shows their windows instead
    completed = [run for run in readable_runs(status="completed") if run.model_type != "context"]
    if not completed:
        st.info("No completed run yet. Train one on a Train page (the quick presets take minutes), "
                "then come back here.")
        return None
    by_id = {run.run_id: run.path for run in completed}
    chosen = st.selectbox("Run", list(by_id), key="viewer_run",
                          help="Completed runs, newest first (`models/<type>/<name>_<stamp>`).")
    return by_id.get(chosen)


def tracker_ui(run_path: Path, has_truth: bool) -> Path | None:
    """For a ResNet-LSTM run on a clip without annotations: the detector run that tracks."""
    from pedsense.infer.predictors import run_model_type

    if run_model_type(run_path) != "resnet-lstm" or has_truth:
        return None
    detectors = {run.run_id: run.path for run in readable_runs(model_types=("yolo", "hybrid"), status="completed")}
    if not detectors:
        st.warning("This clip has no annotations, so a ResNet-LSTM run needs a detector to track "
                   "pedestrians: train a YOLO or hybrid run first.")
        return None
    chosen = st.selectbox("Tracker (detector run)", list(detectors), key="viewer_tracker",
                          help="No ground-truth tracks for this clip: Ultralytics' ByteTrack on this "
                               "run's detector gives the tracks whose crops the LSTM reads.")
    return detectors[chosen]


def options_ui(has_truth: bool) -> dict:
    """Display options: ground truth, confidence threshold, crops."""
    left, middle, right = st.columns(3)
    show_truth = left.toggle("Ground truth", value=has_truth, key="viewer_gt", disabled=not has_truth,
                             help="Annotated boxes, thin and dashed, with their JAAD `cross` label.")
    threshold = middle.slider("Confidence threshold", 0.05, 0.95, 0.25, 0.05, key="viewer_conf",
                              help="Hide boxes the detector is less sure of.")
    crops = right.toggle("Show crops", value=False, key="viewer_crops",
                         help="The pedestrian crops the intent classifier sees.")
    return {"show_truth": show_truth and has_truth, "threshold": threshold, "crops": crops}


def backend_ui(predictor, run_path: Path) -> None:
    """Which engine runs the model, and an export button where an exported engine could make
    the CPU faster."""
    from pedsense.infer.backends import ENGINE_PACKAGES, FORMAT_ENGINES, engine_version, read_export

    st.caption(f"Inference: {hide_paths(predictor.describe_backend())}")
    formats = [f for f, engine in FORMAT_ENGINES.items() if engine_version(engine) is not None
               and read_export(run_path, predictor.model_type, f)[0] is None]  # installed, not exported
    if predictor.device != "cpu" or not formats:
        return
    if st.button("Export for faster CPU inference", key="viewer_export",
                 help=f"Write the run's models as {' and '.join(formats)} files (`pedsense export RUN "
                      "--format ...`); on first use the Viewer times each engine on this CPU and runs "
                      f"every stage on the fastest ({', '.join(dict.fromkeys(ENGINE_PACKAGES.values()))} or PyTorch)."):
        from pedsense.export import export_run

        exported = False
        with error_box("exporting the run"), st.spinner(f"Exporting to {' and '.join(formats)}…"):
            for format in formats:
                export_run(run_path, format)
            exported = True
        if exported:
            st.rerun()  # the predictor's cache key includes the export: the next run loads it


# -- the frame view -----------------------------------------------------------------------------
def frame_view(predictor, state, clip: Path, frames: int, ground_truth, options: dict) -> None:
    """The fragment: reruns alone while playing, so it catches its own errors."""
    with error_box("showing the frame"):
        frame_view_ui(predictor, state, clip, frames, ground_truth, options)


def frame_view_ui(predictor, state, clip: Path, frames: int, ground_truth, options: dict) -> None:
    """Slider, play button, the overlaid frame, crops and the per-frame table."""
    from pedsense.infer import draw_overlay, predict_frame
    from pedsense.infer.compare import compare_frame

    playing = st.session_state.get("viewer_playing", False)
    if playing:
        # advance before the slider is drawn: a widget's state may only change before it exists
        st.session_state["viewer_frame"] = (st.session_state.get("viewer_frame", 0) + 1) % frames
    st.session_state["viewer_frame"] = min(st.session_state.get("viewer_frame", 0), frames - 1)
    slider, button = st.columns([6, 1], vertical_alignment="bottom")
    index = slider.slider("Frame", 0, max(frames - 1, 0), key="viewer_frame")
    if button.button("⏸ Pause" if playing else "▶ Play", key="viewer_play_button"):
        st.session_state["viewer_playing"] = not playing
        st.rerun()
    frame, predictions = predict_frame(predictor, clip, index, ground_truth=ground_truth, state=state)
    shown = predictions.above(options["threshold"])
    truth = ground_truth.at(index) if ground_truth is not None else None
    image = draw_overlay(frame, shown, truth if options["show_truth"] else None)
    st.image(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), width="stretch")
    st.caption(f"{clip.name} · frame {index}/{frames - 1} · {len(shown)} predicted"
               + (f" · {len(truth)} annotated" if truth is not None else "") + f" · {speed_text(state)}")
    if options["crops"]:
        crops_ui(frame, shown)
    rows = compare_frame(shown, truth)
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.caption("No pedestrian predicted or annotated in this frame.")


def speed_text(state) -> str:
    """``"inference 14.2 FPS (16 frames replayed)"`` from the state's last ``predict_frame``."""
    if not state.timing:
        return "inference speed unknown"
    count, seconds = state.timing
    replayed = f" ({count} frames replayed)" if count > 1 else ""
    return f"inference {count / max(seconds, 1e-9):.1f} FPS{replayed}"


def crops_ui(frame, predictions) -> None:
    from pedsense.data.crops import crop_pedestrian
    from pedsense.infer.draw import prediction_text

    if len(predictions) == 0:
        st.caption("No crops: nothing predicted above the threshold in this frame.")
        return
    columns = st.columns(min(len(predictions), 8))
    for i in range(min(len(predictions), 8)):
        crop = crop_pedestrian(frame, predictions.xyxy[i], CROP_PREVIEW)
        columns[i].image(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), caption=prediction_text(predictions, i))


# -- intent over time ---------------------------------------------------------------------------
EVENT_TEXT = {"crossing_point": "crossing_point", "track_end": "track end (3rd-to-last frame)"}


def intent_figure(series, current_frame: int | None = None) -> go.Figure:
    """P(crossing) of one pedestrian per frame, its event and TTE window marked (plotly)."""
    figure = go.Figure(go.Scatter(x=list(series.frames), y=list(series.p_crossing), mode="lines+markers",
                                  marker=dict(size=4), name="P(crossing)", connectgaps=False,
                                  hovertemplate="frame %{x}: P(crossing) %{y:.3f}<extra></extra>"))
    window = series.tte_window
    if window is not None:
        figure.add_vrect(x0=window[0], x1=window[1], fillcolor="#ff7f0e", opacity=0.15, line_width=0,
                         annotation_text=f"TTE {series.tte[0]}-{series.tte[1]}", annotation_position="top left")
    if series.event_frame is not None:
        figure.add_vline(x=series.event_frame, line_dash="dash", line_color="#d62728",
                         annotation_text=EVENT_TEXT.get(series.event_source, "event"),
                         annotation_position="top right")
    figure.add_hline(y=0.5, line_dash="dot", line_color="#7f7f7f")
    if current_frame is not None and series.frames and series.frames[0] <= current_frame <= series.frames[-1]:
        figure.add_vline(x=current_frame, line_color="#2ca02c", line_width=1)
    figure.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="frame",
                         yaxis_title="P(crossing)", yaxis_range=[-0.02, 1.02], showlegend=False)
    return figure


def _run_tte(run_path: Path) -> tuple[int, int]:
    """The TTE range of the run's intent protocol (the benchmark's 30-60 otherwise)."""
    from pedsense.io import read_json

    options = (read_json(run_path / "config.json", {}) or {}).get("intent_options") or {}
    tte = options.get("tte") or (30, 60)
    return int(tte[0]), int(tte[-1])


def describe_series(series) -> str:
    """A caption: the pedestrian, its label, where its event is and the TTE window."""
    crossing = {1: "crossing", 0: "not crossing", -1: "irrelevant"}.get(series.crossing, "no attributes")
    if series.event_frame is None:
        event = f"no event ({series.skip.replace('_', ' ')})"
    else:
        event = (f"event: {EVENT_TEXT.get(series.event_source, series.event_source)} at frame "
                 f"{series.event_frame}; TTE window frames {series.tte_window[0]}-{series.tte_window[1]}")
    return (f"Pedestrian `{series.track_id}` ({series.track_label}, track label: {crossing}) · {event} · "
            f"predicted in {series.predicted_frames}/{len(series.frames)} visible frames "
            "(gaps: no matching box, or the LSTM still buffering).")


def intent_chart_ui(predictor, run_path: Path, clip: Path, annotation) -> None:
    """Toggle, pedestrian picker and the intent-over-time chart (computed once per pedestrian)."""
    from pedsense.infer.intent_series import pedestrian_tracks, predict_track_series

    tracks = pedestrian_tracks(annotation)
    if not tracks:
        return
    if not st.toggle("Intent over time", key="viewer_intent",
                     help="One pedestrian's P(crossing) in each frame it is visible, with its "
                          "`crossing_point` and the benchmark's TTE window (30-60 frames before it)."):
        return
    by_id = {t.track_id: t for t in tracks}
    if st.session_state.get("viewer_pedestrian") not in by_id:
        st.session_state["viewer_pedestrian"] = next(iter(by_id))
    chosen = st.selectbox("Pedestrian", list(by_id), key="viewer_pedestrian",
                          format_func=lambda tid: f"{tid} ({by_id[tid].label})")
    cache = st.session_state.setdefault("viewer_intent_series", {})
    key = (str(run_path), str(clip), clip.stat().st_mtime, chosen)
    if key not in cache:
        bar = st.progress(0.0, text="Predicting the pedestrian's frames…")

        def progress(done: int, total: int, message: str) -> None:
            if done == total or done % 10 == 0:
                bar.progress(min(done / max(total, 1), 1.0), text=f"Intent over time: {message}")

        cache[key] = predict_track_series(predictor, clip, annotation, chosen,
                                          tte=_run_tte(run_path), progress=progress)
        bar.empty()
    series = cache[key]
    chart_ui(intent_figure(series, st.session_state.get("viewer_frame")), key="viewer_intent_chart")
    st.caption(describe_series(series))


# -- render -------------------------------------------------------------------------------------
def render_ui(predictor, clip: Path, ground_truth, options: dict) -> None:
    """'Render video' → progress bar → the WebM in the page, a download button and a summary."""
    from pedsense.infer import render_video

    if st.button("Render video", key="viewer_render", type="primary",
                 help="Predict every frame and write the clip with overlays (VP9 WebM)."):
        bar = st.progress(0.0, text="Rendering…")

        def progress(done: int, total: int, message: str) -> None:
            if done == total or done % 5 == 0:
                bar.progress(min(done / max(total, 1), 1.0), text=f"Rendering {message}")

        with error_box("rendering the video"):
            summary = render_video(predictor, clip, ground_truth=ground_truth,
                                   show_ground_truth=options["show_truth"],
                                   min_confidence=options["threshold"], progress=progress)
            st.session_state["viewer_rendered"] = summary.as_dict()
        bar.empty()
    summary = st.session_state.get("viewer_rendered")
    if not summary or not Path(summary["output"]).is_file():
        return
    output = Path(summary["output"])
    st.video(str(output), format="video/webm")  # OpenCV writes VP9/VP8 WebM: say so, not mp4
    cols = st.columns(5)
    cols[0].metric("Pedestrians", summary["pedestrians"])
    cols[1].metric("Crossing (box-frames)", summary["crossing"])
    cols[2].metric("Not crossing", summary["not_crossing"])
    cols[3].metric("Buffering", summary["buffering"])
    cols[4].metric("FPS achieved", summary["fps_achieved"],
                   help="Frames per second of the whole render: decode, predict, draw and encode.")
    st.download_button("Download the WebM", output.read_bytes(), file_name=output.name,
                       mime="video/webm", key="viewer_download")
    st.caption(f"{summary['frames']} frames {summary['width']}×{summary['height']} · {summary['codec']} · "
               f"{summary.get('backend', '')} · saved to `{shown_path(output)}`")


# -- the page -----------------------------------------------------------------------------------
