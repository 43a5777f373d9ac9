"""Overlays change the pixels on the boxes' outlines (and their tags), and nothing far away."""

import numpy as np
import pytest

from pedsense.infer.draw import (GROUND_TRUTH_COLOR, INTENT_COLORS, Style, draw_ground_truth, draw_legend,
                                 draw_overlay, draw_predictions)
from pedsense.infer.predictions import GroundTruth, Predictions

SIZES = [(360, 640), (1080, 1920)]
# Boxes as fractions of the image, so every case holds at both sizes.
BOX_SETS = {
    "empty": np.empty((0, 4)),
    "one": np.array([[0.40, 0.40, 0.55, 0.85]]),
    "two": np.array([[0.10, 0.30, 0.20, 0.70], [0.60, 0.35, 0.70, 0.80]]),
    "at the edge": np.array([[0.0, 0.0, 0.12, 0.5]]),
}


def _grey(height, width):
    return np.full((height, width, 3), 128, np.uint8)


def _predictions(fractions, height, width):
    xyxy = fractions * np.array([width, height, width, height], np.float32)
    labels = ["crossing", "not-crossing", "buffering"] * 2
    return Predictions.build(3, xyxy, labels[:len(xyxy)], probabilities=np.full(len(xyxy), 0.9),
                             confidences=np.full(len(xyxy), 0.8), track_ids=np.arange(len(xyxy)))


def _changed(before, after):
    return np.any(before != after, axis=2)


def _outline_mask(xyxy, shape, reach):
    """Pixels within ``reach`` of any box's outline."""
    mask = np.zeros(shape[:2], bool)
    for x1, y1, x2, y2 in np.round(xyxy).astype(int):
        outer = np.zeros_like(mask)
        outer[max(y1 - reach, 0):y2 + reach + 1, max(x1 - reach, 0):x2 + reach + 1] = True
        inner = np.zeros_like(mask)
        inner[y1 + reach + 1:max(y2 - reach, y1 + reach + 1), x1 + reach + 1:max(x2 - reach, x1 + reach + 1)] = True
        mask |= outer & ~inner
    return mask


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("case", list(BOX_SETS))
def test_boxes_change_only_their_outlines(case, height, width):
    image = _grey(height, width)
    predictions = _predictions(BOX_SETS[case], height, width)
    out = draw_predictions(image, predictions, labels=False)
    changed = _changed(image, out)
    assert np.all(image == 128), "the input image must not be modified"
    if case == "empty":
        assert not changed.any()
        return
    reach = Style.for_image(image).line + 1
    assert not (changed & ~_outline_mask(predictions.xyxy, image.shape, reach)).any()
    for x1, y1, x2, y2 in np.round(predictions.xyxy).astype(int):
        x1, y1 = min(x1, width - 1), min(y1, height - 1)
        assert changed[(y1 + y2) // 2, x1], "the left edge of each box is drawn"
        assert changed[y1, (x1 + x2) // 2], "the top edge of each box is drawn"


@pytest.mark.parametrize("height,width", SIZES)
def test_box_colour_follows_intent(height, width):
    image = _grey(height, width)
    predictions = _predictions(BOX_SETS["two"], height, width)  # crossing, then not-crossing
    out = draw_predictions(image, predictions, labels=False)
    for i, label in enumerate(("crossing", "not-crossing")):
        x1, y1, x2, y2 = np.round(predictions.xyxy[i]).astype(int)
        assert tuple(out[(y1 + y2) // 2, x1]) == INTENT_COLORS[label]


@pytest.mark.parametrize("height,width", SIZES)
def test_labels_stay_near_their_box(height, width):
    image = _grey(height, width)
    fractions = np.array([[0.40, 0.50, 0.50, 0.90]])
    predictions = _predictions(fractions, height, width)
    changed = _changed(image, draw_predictions(image, predictions))
    x1, y1, x2, y2 = np.round(predictions.xyxy[0]).astype(int)
    tag_band = changed[max(0, y1 - height // 8):y1, x1:]
    assert tag_band.any(), "a label tag sits just above the box"
    assert not changed[: y1 - height // 8].any(), "nothing is drawn far above the box"
    assert not changed[:, : x1 - 5].any(), "nothing is drawn left of the box"


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("case", ["empty", "one", "two"])
def test_ground_truth_is_dashed_and_stays_on_the_outline(case, height, width):
    image = _grey(height, width)
    xyxy = BOX_SETS[case] * np.array([width, height, width, height])
    truth = GroundTruth.build(0, xyxy, [f"0_1_{i}b" for i in range(len(xyxy))], ["crossing"] * len(xyxy))
    changed = _changed(image, draw_ground_truth(image, truth, labels=False))
    if case == "empty":
        assert not changed.any()
        return
    reach = Style.for_image(image).thin + 1
    assert not (changed & ~_outline_mask(xyxy, image.shape, reach)).any()
    solid = _changed(image, draw_predictions(image, _predictions(BOX_SETS[case], height, width), labels=False))
    assert 0 < changed.sum() < solid.sum(), "thinner and dashed: fewer pixels than a predicted box"
    out = draw_ground_truth(image, truth, labels=False)
    assert (out[changed] == GROUND_TRUTH_COLOR).all(axis=1).any()


@pytest.mark.parametrize("height,width", SIZES)
def test_legend_stays_in_the_top_left_corner(height, width):
    image = _grey(height, width)
    changed = _changed(image, draw_legend(image, ground_truth=True))
    assert changed.any()
    assert not changed[height // 2:].any() and not changed[:, width // 2:].any()


def test_overlay_without_anything_to_draw_is_a_copy():
    image = _grey(90, 160)
    out = draw_overlay(image, Predictions.empty(), None, legend=False)
    assert out is not image and np.array_equal(out, image)
