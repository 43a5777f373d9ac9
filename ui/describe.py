"""Words for what a form's values will train (titles and descriptions follow the preset)."""

from __future__ import annotations

from typing import Any


def _crop(values: dict[str, Any]) -> str:
    size = values.get("crop_size")
    return "crops as built (224×224 by default)" if not size else f"{int(size)}×{int(size)} crops"


def describe_model(model_type: str, values: dict[str, Any]) -> tuple[str, str]:
    """``(title, description)`` of the Train page for the form's current values."""
    backbone = str(values.get("backbone") or "resnet50").replace("resnet", "ResNet-")
    if model_type == "yolo":
        variant = values.get("model_variant") or "yolo26n"
        return ("Train YOLO26",
                f"Fine-tunes {variant} at {values.get('imgsz')} px as a detector with two classes, "
                "not-crossing (0) and crossing (1), on `data/processed/yolo`. Submitting queues the "
                "run and opens its live view.")
    if model_type == "resnet-lstm":
        return (f"Train {backbone} + LSTM",
                f"Classifies 16-frame pedestrian crop sequences ({_crop(values)}) as crossing or "
                f"not-crossing: a {backbone} backbone per frame, an LSTM of {values.get('hidden_size')} "
                "units over time. Submitting queues the run and opens its live view.")
    if model_type == "context":
        network = ("a transformer, one token stream per feature group fused by attention"
                   if values.get("model") == "transformer" else "a GRU")
        groups = values.get("features") or "every feature group the build allows"
        return ("Train Context",
                f"Learns crossing intent from JAAD's annotations alone, no clips: {network} of "
                f"{values.get('hidden_size')} units over the benchmark's windows ({groups}), built by "
                "`pedsense preprocess context`. The best epoch is chosen by balanced accuracy on val "
                "(the benchmark's AUC). Submitting queues the run and opens its live view.")
    detector = ("reuses the detector you picked" if values.get("yolo_model") else
                f"trains a 1-class {values.get('model_variant') or 'yolo26n'} pedestrian detector at "
                f"{values.get('imgsz')} px")
    return ("Train the hybrid",
            f"Stage 1 {detector}; stage 2 trains a {backbone} classifier on ground-truth pedestrian "
            f"{_crop(values)}. Submitting queues the run and opens its live view.")
