"""Inference: predictors loaded from run folders, overlays, rendered clips. No Streamlit here.

``load_predictor(run_dir)`` → a predictor whose ``predict(frame, index, ground_truth)`` returns
``Predictions``; ``draw_overlay`` draws them; ``render_video`` writes a whole clip as WebM.
"""

from pedsense.infer.draw import draw_ground_truth, draw_legend, draw_overlay, draw_predictions
from pedsense.infer.ground_truth import ClipGroundTruth, load_clip_ground_truth
from pedsense.infer.intent_series import IntentSeries, predict_track_series, track_intent_series
from pedsense.infer.predictions import GroundTruth, Predictions
from pedsense.infer.predictors import (HybridPredictor, Predictor, ResNetLSTMPredictor, RunTypeError,
                                       TracksUnavailable, WeightsMissing, YoloPredictor, load_predictor)
from pedsense.infer.render import RenderSummary, predict_frame, render_video

__all__ = [
    "ClipGroundTruth", "GroundTruth", "HybridPredictor", "IntentSeries", "Predictions", "Predictor", "RenderSummary",
    "ResNetLSTMPredictor", "RunTypeError", "TracksUnavailable", "WeightsMissing", "YoloPredictor",
    "draw_ground_truth", "draw_legend", "draw_overlay", "draw_predictions", "load_clip_ground_truth",
    "load_predictor", "predict_frame", "predict_track_series", "render_video", "track_intent_series",
]
