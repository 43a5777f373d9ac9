"""Predictions beside ground truth for one frame: the viewer's per-frame table."""

from __future__ import annotations

from pedsense.geometry import IOU_THRESHOLD, box_iou, match_boxes
from pedsense.infer.predictions import BUFFERING, GroundTruth, Predictions


def compare_frame(predictions: Predictions, ground_truth: GroundTruth | None,
                  threshold: float = IOU_THRESHOLD) -> list[dict]:
    """One row per predicted box (matched to a ground-truth box at IoU ≥ ``threshold`` when
    possible), then one row per ground-truth box nothing matched.

    Columns: ``track, predicted, probability, detector_conf, gt_id, gt_label, iou, agrees``
    (``agrees`` is None where there is nothing to compare: no match, buffering, or a ground-truth
    label that is not a crossing intent).
    """
    rows = predictions.rows()
    for row in rows:
        row["predicted"] = row.pop("intent")
        row.update(gt_id=None, gt_label=None, iou=None, agrees=None)
    if ground_truth is None:
        return [_ordered(row) for row in rows]
    iou = box_iou(predictions.xyxy, ground_truth.xyxy)
    matched_truth = set()
    for i, j in match_boxes(predictions.xyxy, ground_truth.xyxy, threshold):
        matched_truth.add(j)
        label = ground_truth.labels[j]
        rows[i].update(gt_id=ground_truth.track_ids[j], gt_label=label or None, iou=round(float(iou[i, j]), 3))
        if label in ("crossing", "not-crossing") and predictions.labels[i] != BUFFERING:
            rows[i]["agrees"] = predictions.labels[i] == label
    for j in range(len(ground_truth)):
        if j not in matched_truth:
            rows.append({"track": None, "predicted": "(missed)", "probability": None, "detector_conf": None,
                         "gt_id": ground_truth.track_ids[j], "gt_label": ground_truth.labels[j] or None,
                         "iou": None, "agrees": None})
    return [_ordered(row) for row in rows]


_COLUMNS = ("track", "predicted", "probability", "detector_conf", "gt_id", "gt_label", "iou", "agrees")


def _ordered(row: dict) -> dict:
    return {key: row.get(key) for key in _COLUMNS}
