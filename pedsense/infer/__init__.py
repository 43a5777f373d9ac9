"""Inference: predictors loaded from run folders, overlays, rendered clips. No Streamlit here.

``load_predictor(run_dir)`` → a shareable predictor (weights only; on a CPU each stage on the
fastest engine measured here of PyTorch and the run's ONNX/OpenVINO exports); ``state = predictor.new_state()`` → one session's per-clip
tracks and buffers; ``predictor.predict(frame, index, ground_truth, state=state)`` returns
``Predictions``; ``draw_overlay`` draws them; ``render_video`` writes a whole clip as WebM.
"""

from pedsense.infer.backends import BackendUnavailable
from pedsense.infer.draw import draw_ground_truth, draw_legend, draw_overlay, draw_predictions
from pedsense.infer.ground_truth import ClipGroundTruth, load_clip_ground_truth
from pedsense.infer.intent_series import IntentSeries, predict_track_series, track_intent_series
from pedsense.infer.predictions import GroundTruth, Predictions
from pedsense.infer.models import CropClassifier, Detector, ExportedCropClassifier, Tracker, WeightsMissing
from pedsense.infer.predictors import (ClipState, HybridPredictor, Predictor, ResNetLSTMPredictor, RunTypeError,
                                       TracksUnavailable, YoloPredictor, classifier_weights, detector_weights,
                                       load_predictor, require_weights, run_imgsz, run_model_type)
from pedsense.infer.render import RenderSummary, predict_frame, render_video

__all__ = [
    "BackendUnavailable", "ClipGroundTruth", "ClipState", "CropClassifier", "Detector", "GroundTruth",
    "HybridPredictor", "IntentSeries", "ExportedCropClassifier", "Predictions", "Predictor", "RenderSummary",
    "ResNetLSTMPredictor", "RunTypeError", "Tracker", "TracksUnavailable", "WeightsMissing", "YoloPredictor",
    "classifier_weights", "detector_weights", "draw_ground_truth", "draw_legend", "draw_overlay",
    "draw_predictions", "load_clip_ground_truth", "load_predictor", "predict_frame", "predict_track_series",
    "render_video", "require_weights", "run_imgsz", "run_model_type", "track_intent_series",
]
