"""Box geometry: IoU, one-to-one matching, clipping and YOLO coordinates, each table starting empty."""

from __future__ import annotations

import numpy as np
import pytest

from pedsense.geometry import (as_boxes, box_iou, clip_boxes, match_boxes, xyxy_to_yolo,
                               yolo_to_xyxy)

EMPTY = np.empty((0, 4))


@pytest.mark.parametrize("a,b,expected", [
    (EMPTY, EMPTY, np.empty((0, 0))),
    (EMPTY, [[0, 0, 10, 10]], np.empty((0, 1))),
    ([[0, 0, 10, 10]], EMPTY, np.empty((1, 0))),
    ([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], [[1.0, 1 / 3, 0.0]]),
    ([0, 0, 10, 10], [0, 0, 5, 5], [[0.25]]),                  # one box given flat
    ([[0, 0, 0, 0]], [[0, 0, 0, 0]], [[0.0]]),                 # empty union: 0, not NaN
    ([[10, 10, 0, 0]], [[0, 0, 10, 10]], [[0.0]]),             # inverted box has no area
])
def test_box_iou(a, b, expected):
    iou = box_iou(a, b)
    expected = np.asarray(expected, np.float64)
    assert iou.shape == expected.shape
    assert np.allclose(iou, expected)


@pytest.mark.parametrize("pred,true,threshold,expected", [
    (EMPTY, EMPTY, 0.5, []),
    (EMPTY, [[0, 0, 10, 10]], 0.5, []),
    ([[0, 0, 10, 10]], EMPTY, 0.5, []),
    ([[0, 0, 10, 10]], [[0, 0, 10, 10]], 0.5, [(0, 0)]),
    ([[0, 0, 10, 10]], [[5, 0, 15, 10]], 0.5, []),             # IoU 1/3 < 0.5
    ([[0, 0, 10, 10]], [[5, 0, 15, 10]], 0.3, [(0, 0)]),       # ... but >= 0.3
    # both predictions overlap truth 0; the better one wins and the other takes truth 1
    ([[0, 0, 10, 10], [1, 0, 11, 10]], [[1, 0, 11, 10], [2, 0, 12, 10]], 0.5, [(1, 0), (0, 1)]),
    # one truth, two candidates: only the best is matched (one-to-one)
    ([[0, 0, 10, 10], [0, 0, 10, 9]], [[0, 0, 10, 10]], 0.5, [(0, 0)]),
])
def test_match_boxes(pred, true, threshold, expected):
    assert sorted(match_boxes(pred, true, threshold)) == sorted(expected)


@pytest.mark.parametrize("xyxy,size,expected", [
    (EMPTY, (100, 50), EMPTY),
    ([[10, 5, 20, 15]], (100, 50), [[10, 5, 20, 15]]),         # inside: unchanged
    ([[-5, -5, 120, 60]], (100, 50), [[0, 0, 100, 50]]),
    ([[150, 60, 200, 80]], (100, 50), [[100, 50, 100, 50]]),   # wholly outside: collapses to the edge
])
def test_clip_boxes(xyxy, size, expected):
    clipped = clip_boxes(xyxy, size)
    assert clipped.shape == np.asarray(expected).reshape(-1, 4).shape
    assert np.allclose(clipped, np.asarray(expected, np.float64).reshape(-1, 4))


@pytest.mark.parametrize("xyxy,size,cxcywh", [
    (EMPTY, (640, 360), EMPTY),
    ([[0, 0, 640, 360]], (640, 360), [[0.5, 0.5, 1.0, 1.0]]),
    ([[64, 36, 128, 108]], (640, 360), [[0.15, 0.2, 0.1, 0.2]]),
    ([[10, 20, 30, 60], [0, 0, 1, 1]], (100, 100), [[0.2, 0.4, 0.2, 0.4], [0.005, 0.005, 0.01, 0.01]]),
])
def test_yolo_conversion_both_ways(xyxy, size, cxcywh):
    converted = xyxy_to_yolo(xyxy, size)
    assert np.allclose(converted, np.asarray(cxcywh, np.float64).reshape(-1, 4))
    assert np.allclose(yolo_to_xyxy(converted, size), np.asarray(xyxy, np.float64).reshape(-1, 4))


def test_as_boxes_refuses_other_shapes():
    assert as_boxes([]).shape == (0, 4)
    with pytest.raises(ValueError, match="4 coordinates"):
        as_boxes([[1, 2, 3]])
