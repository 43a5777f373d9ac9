"""Box geometry in one place: IoU, greedy one-to-one matching, clipping and YOLO label coordinates.

Pure numpy. Boxes are ``xyxy`` pixel corners, (N, 4); YOLO boxes are ``cxcywh`` normalised to
the image, (N, 4); image sizes are ``resolution_wh`` = (width, height). Every function takes
any array-like (a list, one box of 4 values) and returns float64 arrays, so the empty case
(``np.empty((0, 4))``) goes through unchanged.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

IOU_THRESHOLD = 0.5


def as_boxes(boxes) -> np.ndarray:
    """Any array-like of boxes (one box of 4 values, N boxes, nothing) as an (N, 4) float64 array."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.empty((0, 4), np.float64)
    if array.shape[-1] != 4:
        raise ValueError(f"boxes must have 4 coordinates, got shape {array.shape}")
    return array.reshape(-1, 4)


def box_iou(a_xyxy, b_xyxy) -> np.ndarray:
    """(N, M) IoU between (N, 4) and (M, 4) boxes; 0 where a union is empty."""
    a, b = as_boxes(a_xyxy), as_boxes(b_xyxy)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_boxes(pred_xyxy, true_xyxy, threshold: float = IOU_THRESHOLD) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, highest IoU first.

    Returns:
        (pred index, true index) pairs with IoU >= ``threshold``; each index at most once.
    """
    iou = box_iou(pred_xyxy, true_xyxy)
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    used_pred, used_true = set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, j = (int(v) for v in np.unravel_index(flat, iou.shape))
        if iou[i, j] < threshold:
            break
        if i in used_pred or j in used_true:
            continue
        used_pred.add(i)
        used_true.add(j)
        pairs.append((i, j))
    return pairs


def clip_boxes(xyxy, resolution_wh: Sequence[float]) -> np.ndarray:
    """(N, 4) boxes clipped to the image ``[0, width] x [0, height]``."""
    boxes = as_boxes(xyxy).copy()
    width, height = float(resolution_wh[0]), float(resolution_wh[1])
    boxes[:, [0, 2]] = np.minimum(np.maximum(boxes[:, [0, 2]], 0.0), width)
    boxes[:, [1, 3]] = np.minimum(np.maximum(boxes[:, [1, 3]], 0.0), height)
    return boxes


def xyxy_to_yolo(xyxy, resolution_wh: Sequence[float]) -> np.ndarray:
    """(N, 4) pixel corners -> (N, 4) YOLO ``cx, cy, w, h`` normalised by the image size (not clipped)."""
    boxes = as_boxes(xyxy)
    width, height = float(resolution_wh[0]), float(resolution_wh[1])
    x1, y1, x2, y2 = boxes.T
    return np.stack([(x1 + x2) / 2.0 / width, (y1 + y2) / 2.0 / height,
                     (x2 - x1) / width, (y2 - y1) / height], axis=1)


def yolo_to_xyxy(cxcywh, resolution_wh: Sequence[float]) -> np.ndarray:
    """(N, 4) normalised YOLO ``cx, cy, w, h`` -> (N, 4) pixel corners."""
    boxes = as_boxes(cxcywh)
    width, height = float(resolution_wh[0]), float(resolution_wh[1])
    cx, cy, w, h = boxes[:, 0] * width, boxes[:, 1] * height, boxes[:, 2] * width, boxes[:, 3] * height
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


__all__ = ["IOU_THRESHOLD", "as_boxes", "box_iou", "clip_boxes", "match_boxes", "xyxy_to_yolo",
           "yolo_to_xyxy"]
