"""Pedestrian crops: the one cropping rule shared by dataset builds, trainers and predictors."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

# A pedestrian box is tall and thin; we crop a square around it (side = box height plus this
# margin) so resizing to a square input keeps the body's proportions, as JAAD benchmarks do.
CONTEXT = 0.1


def square_box(xyxy: Sequence[float], context: float = CONTEXT) -> tuple[int, int, int, int]:
    """The square (x1, y1, x2, y2) centred on ``xyxy`` with side ``max(w, h) * (1 + context)``."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + context)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    half = side / 2.0
    return (int(round(cx - half)), int(round(cy - half)),
            int(round(cx + half)), int(round(cy + half)))


def crop_pedestrian(image: np.ndarray, xyxy: Sequence[float],
                    crop_size: Sequence[int] = (224, 224), context: float = CONTEXT) -> np.ndarray:
    """Cut a square crop around one box and resize it.

    Args:
        image: (H, W, 3) uint8 frame (any channel order; it is kept).
        xyxy: box corners in pixels; parts outside the frame are padded with black.
        crop_size: output (width, height).

    Returns:
        (crop_size[1], crop_size[0], 3) uint8 array.
    """
    height, width = image.shape[:2]
    x1, y1, x2, y2 = square_box(xyxy, context)
    pad_left, pad_top = max(0, -x1), max(0, -y1)
    pad_right, pad_bottom = max(0, x2 - width), max(0, y2 - height)
    patch = image[max(0, y1):min(height, y2), max(0, x1):min(width, x2)]
    if patch.size == 0:
        patch = np.zeros((max(1, y2 - y1), max(1, x2 - x1), 3), dtype=image.dtype)
    elif pad_left or pad_top or pad_right or pad_bottom:
        patch = cv2.copyMakeBorder(patch, pad_top, pad_bottom, pad_left, pad_right,
                                   cv2.BORDER_CONSTANT, value=(0, 0, 0))
    out_w, out_h = int(crop_size[0]), int(crop_size[1])
    interpolation = cv2.INTER_AREA if patch.shape[0] > out_h else cv2.INTER_LINEAR
    return cv2.resize(patch, (out_w, out_h), interpolation=interpolation)
