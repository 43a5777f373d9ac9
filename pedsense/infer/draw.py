"""Overlays: pure functions, image in, image out (the input is never modified).

Predicted boxes are solid and coloured by intent (crossing red, not-crossing green, buffering
amber); ground-truth boxes are thin, dashed and sky-blue with their JAAD ``cross`` label. Line
widths and fonts scale with the image so the overlay reads the same at 1920×1080 and 640×360.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pedsense.infer.predictions import BUFFERING, CROSSING, NOT_CROSSING, GroundTruth, Predictions

# BGR, the channel order OpenCV and every frame in pedsense use.
INTENT_COLORS = {
    CROSSING: (40, 40, 230),       # red
    NOT_CROSSING: (60, 190, 40),   # green
    BUFFERING: (0, 190, 255),      # amber
}
GROUND_TRUTH_COLOR = (255, 200, 40)  # sky blue: apart from all three intent colours
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Style:
    """Sizes for one image size: ``scale`` is 1.0 at 720 pixels on the short side."""

    line: int
    thin: int
    font_scale: float
    text: int
    pad: int
    dash: int

    @classmethod
    def for_image(cls, image: np.ndarray) -> "Style":
        scale = min(image.shape[:2]) / 720.0
        return cls(
            line=max(1, round(2.5 * scale)),
            thin=max(1, round(1.2 * scale)),
            # Hershey glyphs below ~0.4 blur into each other at 360p, so never go smaller.
            font_scale=max(0.4, 0.65 * scale),
            text=max(1, round(1.5 * scale)),
            pad=max(2, round(4 * scale)),
            dash=max(4, round(12 * scale)),
        )


def draw_predictions(image: np.ndarray, predictions: Predictions, *, style: Style | None = None,
                     labels: bool = True) -> np.ndarray:
    """Draw predicted boxes coloured by intent, each with a label such as ``crossing 0.87``.

    Args:
        image: (H, W, 3) uint8 BGR frame.
        predictions: boxes (N, 4) xyxy with intent labels; N may be 0.

    Returns:
        A new (H, W, 3) uint8 image.
    """
    canvas = image.copy()
    style = style or Style.for_image(canvas)
    for i in range(len(predictions)):
        color = INTENT_COLORS.get(predictions.labels[i], INTENT_COLORS[BUFFERING])
        x1, y1, x2, y2 = _int_box(predictions.xyxy[i], canvas.shape)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, style.line)
        if labels:
            _draw_tag(canvas, prediction_text(predictions, i), (x1, y1), color, style, above=True)
    return canvas


def draw_ground_truth(image: np.ndarray, ground_truth: GroundTruth, *, style: Style | None = None,
                      labels: bool = True) -> np.ndarray:
    """Draw annotated boxes thin and dashed, tagged ``GT <cross label>`` under the box."""
    canvas = image.copy()
    style = style or Style.for_image(canvas)
    for i in range(len(ground_truth)):
        x1, y1, x2, y2 = _int_box(ground_truth.xyxy[i], canvas.shape)
        _dashed_rectangle(canvas, (x1, y1), (x2, y2), GROUND_TRUTH_COLOR, style.thin, style.dash)
        if labels:
            text = f"GT {ground_truth.labels[i] or 'no label'}"
            # smaller than prediction tags: ground truth is the reference, not the headline
            _draw_tag(canvas, text, (x1, y2), GROUND_TRUTH_COLOR, style, above=False, shrink=0.75)
    return canvas


def draw_legend(image: np.ndarray, *, ground_truth: bool = False,
                style: Style | None = None) -> np.ndarray:
    """A small key in the top-left corner: one swatch per intent (and ground truth when shown)."""
    canvas = image.copy()
    style = style or Style.for_image(canvas)
    entries = [(CROSSING, INTENT_COLORS[CROSSING]), (NOT_CROSSING, INTENT_COLORS[NOT_CROSSING]),
               (BUFFERING, INTENT_COLORS[BUFFERING])]
    if ground_truth:
        entries.append(("ground truth", GROUND_TRUTH_COLOR))
    (_, text_h), baseline = cv2.getTextSize("Xg", _FONT, style.font_scale, style.text)
    row = text_h + baseline + style.pad
    width = max(cv2.getTextSize(name, _FONT, style.font_scale, style.text)[0][0] for name, _ in entries)
    swatch = text_h
    box_w = 3 * style.pad + swatch + width
    box_h = style.pad + row * len(entries)
    margin = style.pad * 2
    _blend_rect(canvas, (margin, margin), (margin + box_w, margin + box_h), (30, 30, 30), 0.6)
    for k, (name, color) in enumerate(entries):
        top = margin + style.pad + k * row
        cv2.rectangle(canvas, (margin + style.pad, top), (margin + style.pad + swatch, top + swatch),
                      color, -1)
        cv2.putText(canvas, name, (margin + 2 * style.pad + swatch, top + text_h), _FONT,
                    style.font_scale, (255, 255, 255), style.text, cv2.LINE_AA)
    return canvas


def draw_caption(image: np.ndarray, lines: list[str] | tuple[str, ...], *, color: tuple | None = None,
                 style: Style | None = None) -> np.ndarray:
    """Lines of text on a dark band along the top edge (``color``: a swatch at the band's left,
    e.g. the intent colour of what the lines say).

    Args:
        image: (H, W, 3) uint8 BGR frame.
        lines: the text, one entry per line (Hershey fonts: ASCII only).

    Returns:
        A new (H, W, 3) uint8 image.
    """
    canvas = image.copy()
    style = style or Style.for_image(canvas)
    (_, text_h), baseline = cv2.getTextSize("Xg", _FONT, style.font_scale, style.text)
    row = text_h + baseline + style.pad
    height = style.pad + row * len(lines)
    _blend_rect(canvas, (0, 0), (canvas.shape[1], height), (20, 20, 20), 0.7)
    left = style.pad
    if color is not None:
        cv2.rectangle(canvas, (0, 0), (style.pad * 2, height), color, -1)
        left = style.pad * 3
    for k, line in enumerate(lines):
        cv2.putText(canvas, line, (left, style.pad + k * row + text_h), _FONT, style.font_scale,
                    (255, 255, 255), style.text, cv2.LINE_AA)
    return canvas


def draw_overlay(image: np.ndarray, predictions: Predictions, ground_truth: GroundTruth | None = None,
                 *, legend: bool = True) -> np.ndarray:
    """Ground truth (if given) under the predictions, then the legend: the viewer's frame."""
    style = Style.for_image(image)
    canvas = image
    if ground_truth is not None:
        canvas = draw_ground_truth(canvas, ground_truth, style=style)
    canvas = draw_predictions(canvas, predictions, style=style)
    if legend:
        canvas = draw_legend(canvas, ground_truth=ground_truth is not None, style=style)
    return canvas if canvas is not image else image.copy()


def prediction_text(predictions: Predictions, i: int) -> str:
    """``#3 crossing 0.87``, or ``#3 buffering 5/16`` for a track still filling its buffer."""
    prefix = f"#{predictions.track_ids[i]} " if predictions.track_ids[i] >= 0 else ""
    label = predictions.labels[i]
    if label == BUFFERING:
        fill = predictions.buffer_fill[i] if len(predictions.buffer_fill) > i else 0
        return f"{prefix}buffering {fill}" if fill else f"{prefix}buffering"
    probability = predictions.probabilities[i]
    return f"{prefix}{label}" if np.isnan(probability) else f"{prefix}{label} {probability:.2f}"


def _int_box(xyxy: np.ndarray, shape: tuple) -> tuple[int, int, int, int]:
    height, width = shape[:2]
    x1, y1, x2, y2 = (int(round(float(v))) for v in xyxy)
    return (min(max(x1, 0), width - 1), min(max(y1, 0), height - 1),
            min(max(x2, 0), width - 1), min(max(y2, 0), height - 1))


def _draw_tag(canvas: np.ndarray, text: str, anchor: tuple[int, int], color: tuple, style: Style,
              *, above: bool, shrink: float = 1.0) -> None:
    """A filled label box touching the box's corner: above it when there is room, else inside."""
    font_scale = max(0.35, style.font_scale * shrink)
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, font_scale, style.text)
    tag_h = text_h + baseline + style.pad
    x, y = anchor
    top = y - tag_h if above else y
    if top < 0 or top + tag_h > canvas.shape[0]:
        top = y if above else y - tag_h
    top = min(max(top, 0), max(canvas.shape[0] - tag_h, 0))
    x = min(max(x, 0), max(canvas.shape[1] - text_w - style.pad, 0))
    cv2.rectangle(canvas, (x, top), (x + text_w + style.pad, top + tag_h), color, -1)
    ink = (0, 0, 0) if sum(color) > 450 else (255, 255, 255)
    cv2.putText(canvas, text, (x + style.pad // 2, top + text_h + style.pad // 2), _FONT,
                font_scale, ink, style.text, cv2.LINE_AA)


def _dashed_rectangle(canvas: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], color: tuple,
                      thickness: int, dash: int) -> None:
    (x1, y1), (x2, y2) = p1, p2
    corners = [((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))]
    for (ax, ay), (bx, by) in corners:
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, max(length, 1), 2 * dash):
            end = min(start + dash, length)
            t0, t1 = start / max(length, 1), end / max(length, 1)
            cv2.line(canvas, (round(ax + (bx - ax) * t0), round(ay + (by - ay) * t0)),
                     (round(ax + (bx - ax) * t1), round(ay + (by - ay) * t1)), color, thickness)


def _blend_rect(canvas: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], color: tuple,
                alpha: float) -> None:
    """Darken a rectangle in place so white legend text reads on any background."""
    x1, y1 = max(p1[0], 0), max(p1[1], 0)
    x2, y2 = min(p2[0], canvas.shape[1]), min(p2[1], canvas.shape[0])
    if x2 <= x1 or y2 <= y1:
        return
    region = canvas[y1:y2, x1:x2].astype(np.float32)
    canvas[y1:y2, x1:x2] = (region * (1 - alpha) + np.array(color, np.float32) * alpha).astype(np.uint8)
