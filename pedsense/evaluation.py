"""Evaluate a run: crossing-intent metrics (the JAAD pedestrian-action benchmark's set) and mAP.

``evaluate(run_dir, split="val")`` writes ``evaluation_<split>.json`` in the run folder:

- ``intent``: accuracy, balanced accuracy, precision, recall, F1, ROC AUC and the confusion
  matrix on the split's ground-truth samples (ResNet-LSTM: crop sequences; hybrid: single crops).
- ``detection`` (YOLO and hybrid): mAP50 / mAP50-95 from Ultralytics' validator.
- ``matched_intent`` (YOLO and hybrid): intent metrics on detections matched one-to-one to
  ground-truth boxes at IoU ≥ 0.5, on the frames of the split's YOLO dataset.

The metric functions are numpy (tests compare them with scikit-learn).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pedsense.config import CLASS_NAMES, paths
from pedsense.errors import ConfigError, DataError
from pedsense.io import read_json, write_json_atomic

SPLITS = ("train", "val", "test")
IOU_THRESHOLD = 0.5
Progress = Callable[[int, int, str], None]


# -- metrics -------------------------------------------------------------------------------------
def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int = 2) -> np.ndarray:
    """(C, C) int64 counts, rows = true class, columns = predicted (scikit-learn's layout)."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return matrix


def roc_auc(y_true: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve (the Mann-Whitney U statistic, ties counted half).

    Returns None when ``y_true`` holds one class only (the AUC is undefined).
    """
    y_true = np.asarray(y_true, np.int64)
    scores = np.asarray(scores, np.float64)
    positives, negatives = int((y_true == 1).sum()), int((y_true == 0).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    # average ranks over ties, so equal scores count half either way
    start = 0
    while start < len(scores):
        stop = start
        while stop + 1 < len(scores) and sorted_scores[stop + 1] == sorted_scores[start]:
            stop += 1
        ranks[order[start:stop + 1]] = (start + stop) / 2.0 + 1.0
        start = stop + 1
    rank_sum = ranks[y_true == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def intent_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                   crossing_scores: Sequence[float] | None = None) -> dict:
    """Binary crossing-intent metrics, crossing (1) being the positive class.

    Args:
        y_true: (N,) 0/1 ground truth.
        y_pred: (N,) 0/1 predictions.
        crossing_scores: (N,) P(crossing), for ROC AUC (None: no AUC).

    Returns:
        ``accuracy, balanced_accuracy, precision, recall, f1, roc_auc`` (None when undefined),
        ``confusion_matrix`` [[tn, fp], [fn, tp]], ``support`` {class name: count} and ``n``.
        Precision/recall/F1 with no predicted/true positives are 0 (scikit-learn's
        ``zero_division=0``); balanced accuracy averages the recall of the classes present.
    """
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} targets but {len(y_pred)} predictions")
    if len(y_true) == 0:
        raise DataError("No samples to evaluate: the split is empty. Rebuild the dataset or pick another split.")
    matrix = confusion_matrix(y_true, y_pred)
    (tn, fp), (fn, tp) = matrix
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    present = [c for c in range(2) if matrix[c].sum() > 0]
    return {
        "n": int(len(y_true)),
        "accuracy": _ratio(tp + tn, len(y_true)),
        "balanced_accuracy": float(np.mean([_ratio(matrix[c, c], matrix[c].sum()) for c in present])),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "roc_auc": roc_auc(y_true, crossing_scores) if crossing_scores is not None else None,
        "confusion_matrix": matrix.tolist(),
        "support": {CLASS_NAMES[c]: int(matrix[c].sum()) for c in range(2)},
    }


def box_iou(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """(N, M) IoU between (N, 4) and (M, 4) boxes."""
    a, b = np.asarray(a_xyxy, np.float64).reshape(-1, 4), np.asarray(b_xyxy, np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_boxes(pred_xyxy: np.ndarray, true_xyxy: np.ndarray,
                threshold: float = IOU_THRESHOLD) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, highest IoU first; pairs (pred index, true index) with IoU ≥ threshold."""
    iou = box_iou(pred_xyxy, true_xyxy)
    pairs = []
    if iou.size == 0:
        return pairs
    used_pred, used_true = set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < threshold:
            break
        if i in used_pred or j in used_true:
            continue
        used_pred.add(int(i))
        used_true.add(int(j))
        pairs.append((int(i), int(j)))
    return pairs


# -- evaluate a run ------------------------------------------------------------------------------
def evaluate(run_dir: str | os.PathLike, split: str = "val", *, device: str | None = None,
             max_images: int = 200, conf: float = 0.25, batch_size: int = 8,
             progress: Progress | None = None, home: str | os.PathLike | None = None) -> dict:
    """Evaluate a run on one split and save ``evaluation_<split>.json`` in its folder.

    Args:
        run_dir: the run folder (or a ``<model_type>/<name>`` id).
        split: ``val`` (default), ``test`` or ``train``.
        max_images: matched-intent evaluation uses at most this many frames, evenly spaced.
        conf: detector confidence threshold for matched-intent evaluation.

    Returns:
        The saved dict: ``run``, ``model_type``, ``split``, ``intent`` and/or ``detection`` and
        ``matched_intent``, ``seconds``, ``evaluated_at``.
    """
    from pedsense.device import resolve_device
    from pedsense.infer.predictors import run_model_type
    from pedsense.runs import find_run, now_iso

    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, not {split!r}.")
    run_path = find_run(run_dir, home).path
    model_type = run_model_type(run_path)
    device = resolve_device(device)
    started = time.perf_counter()
    result: dict = {"run": f"{run_path.parent.name}/{run_path.name}", "model_type": model_type,
                    "split": split, "device": device}
    if model_type == "resnet-lstm":
        result["intent"] = _sequence_intent(run_path, split, device, batch_size, progress, home)
    elif model_type == "hybrid":
        result["intent"] = _crop_intent(run_path, split, device, batch_size, progress, home)
        result["detection"] = _detection_map(run_path, split, device, home, dataset="yolo_detector")
        result["matched_intent"] = _matched_intent(run_path, split, device, conf, max_images, progress, home)
    elif model_type == "yolo":
        result["detection"] = _detection_map(run_path, split, device, home, dataset="yolo")
        result["matched_intent"] = _matched_intent(run_path, split, device, conf, max_images, progress, home)
    else:
        raise ConfigError(f"Run {run_path.name} has unknown model type {model_type!r}.")
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["evaluated_at"] = now_iso()
    write_json_atomic(evaluation_path(run_path, split), result)
    return result


def evaluation_path(run_dir: str | os.PathLike, split: str = "val") -> Path:
    return Path(run_dir) / f"evaluation_{split}.json"


def load_evaluation(run_dir: str | os.PathLike, split: str = "val") -> dict | None:
    """A saved evaluation, or None when the run has not been evaluated on ``split``."""
    return read_json(evaluation_path(run_dir, split), None)


def headline_metrics(evaluation: dict) -> dict[str, float | None]:
    """One flat row per evaluation (for tables and ranking runs): intent, matched intent, mAP."""
    row: dict[str, float | None] = {}
    intent = evaluation.get("intent") or evaluation.get("matched_intent") or {}
    for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc"):
        row[key] = intent.get(key)
    detection = evaluation.get("detection") or {}
    row["mAP50"] = detection.get("mAP50")
    row["mAP50-95"] = detection.get("mAP50-95")
    return row


def _report(progress: Progress | None, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(done, total, message)


def _sequence_intent(run_path: Path, split: str, device: str, batch_size: int,
                     progress: Progress | None, home) -> dict:
    """ResNet-LSTM on the split's ground-truth crop sequences."""
    from pedsense.infer.predictors import CropClassifier, _require
    from pedsense.train.resnet_trainer import PedestrianSequenceDataset

    classifier = CropClassifier(_require(run_path / "best.pt", "the ResNet-LSTM weights"), device=device)
    dataset = PedestrianSequenceDataset(split, home=home, crop_size=classifier.crop_size, cache=False)
    batches = range(0, len(dataset), batch_size)
    probabilities = []
    for k, start in enumerate(batches):
        indices = range(start, min(start + batch_size, len(dataset)))
        probabilities.append(classifier.classify_sequences([list(dataset.decode(i)) for i in indices]))
        _report(progress, k + 1, len(batches), f"sequences {indices[-1] + 1}/{len(dataset)}")
    return _classifier_metrics(np.concatenate(probabilities), dataset.labels, classifier,
                               source=f"{len(dataset)} ground-truth crop sequences")


def _crop_intent(run_path: Path, split: str, device: str, batch_size: int,
                 progress: Progress | None, home) -> dict:
    """The hybrid's classifier on the split's ground-truth single crops."""
    from pedsense.infer.predictors import CropClassifier, _require
    from pedsense.train.resnet_trainer import parse_label, read_image, read_split_rows

    classifier = CropClassifier(_require(run_path / "resnet_classifier.pt", "the hybrid's classifier"),
                                device=device)
    resnet = paths(home).resnet
    rows = read_split_rows(resnet / "crops.csv", split, "ResNet crop dataset", "pedsense preprocess resnet")
    files = [resnet / "crops" / split / f"{row['crop_id'].strip()}.jpg" for row in rows]
    labels = [parse_label(row["label"], f"crops.csv crop {row['crop_id']}") for row in rows]
    probabilities = []
    for start in range(0, len(files), batch_size * 4):
        chunk = files[start:start + batch_size * 4]
        probabilities.append(classifier.classify([read_image(path) for path in chunk]))
        _report(progress, start + len(chunk), len(files), f"crops {start + len(chunk)}/{len(files)}")
    return _classifier_metrics(np.concatenate(probabilities), labels, classifier,
                               source=f"{len(files)} ground-truth crops")


def _classifier_metrics(probabilities: np.ndarray, labels: Sequence[int], classifier, *, source: str) -> dict:
    names = list(classifier.class_names)
    # map the checkpoint's class order onto pedsense's (0 not-crossing, 1 crossing)
    predicted = [CLASS_NAMES.index(names[i]) if names[i] in CLASS_NAMES else int(i)
                 for i in probabilities.argmax(axis=1)]
    metrics = intent_metrics(labels, predicted, probabilities[:, classifier.crossing_index])
    metrics["source"] = source
    return metrics


def _detection_map(run_path: Path, split: str, device: str, home, *, dataset: str) -> dict:
    """mAP50 and mAP50-95 from Ultralytics' validator on the run's YOLO dataset."""
    from pedsense.infer.predictors import Detector, _run_imgsz, detector_weights

    data_yaml = getattr(paths(home), dataset) / "data.yaml"
    command = "pedsense preprocess yolo" if dataset == "yolo" else "pedsense preprocess detector"
    if not data_yaml.is_file():
        raise DataError(f"{data_yaml} is missing, so mAP cannot be measured. Build it with `{command}`.")
    if f"\n{split}:" not in "\n" + data_yaml.read_text(encoding="utf-8"):
        raise DataError(f"{data_yaml} has no '{split}' split. Evaluate on val, or rebuild with a {split} split.")
    detector = Detector(detector_weights(run_path), device=device, imgsz=_run_imgsz(run_path))
    metrics = detector.model.val(data=str(data_yaml), split=split, imgsz=detector.imgsz, batch=8,
                                 device=device, plots=False, verbose=False, project=str(run_path / "eval"),
                                 name=split, exist_ok=True, workers=0)
    return {"mAP50": float(metrics.box.map50), "mAP50-95": float(metrics.box.map),
            "precision": float(metrics.box.mp), "recall": float(metrics.box.mr), "dataset": str(data_yaml)}


def _yolo_ground_truth(label_file: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(M, 4) pixel boxes and (M,) classes from one YOLO label file (``class cx cy w h``)."""
    rows = [line.split() for line in label_file.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if label_file.is_file() else []
    if not rows:
        return np.empty((0, 4), np.float32), np.empty(0, np.int64)
    table = np.array([[float(v) for v in row[:5]] for row in rows], np.float64)
    cx, cy, w, h = table[:, 1] * width, table[:, 2] * height, table[:, 3] * width, table[:, 4] * height
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return xyxy, table[:, 0].astype(np.int64)


def _matched_intent(run_path: Path, split: str, device: str, conf: float, max_images: int,
                    progress: Progress | None, home) -> dict:
    """Intent on detections matched to ground-truth boxes (IoU ≥ 0.5) of the 2-class YOLO dataset."""
    import cv2

    from pedsense.infer.predictors import load_predictor

    images_dir = paths(home).yolo / "images" / split
    images = sorted(images_dir.glob("*.jpg")) if images_dir.is_dir() else []
    if not images:
        return {"skipped": f"No {split} images in {images_dir}: build the 2-class dataset with "
                           "`pedsense preprocess yolo` to measure intent on detections."}
    if len(images) > max_images:
        images = [images[i] for i in np.linspace(0, len(images) - 1, max_images).round().astype(int)]
    predictor = load_predictor(run_path, device=device, conf=conf)
    y_true, y_pred, scores, ground_truth_boxes, detections = [], [], [], 0, 0
    for k, image_path in enumerate(images):
        frame = cv2.imread(str(image_path))
        if frame is None:
            continue
        label_file = paths(home).yolo / "labels" / split / f"{image_path.stem}.txt"
        true_xyxy, true_cls = _yolo_ground_truth(label_file, frame.shape[1], frame.shape[0])
        predictions = predictor.predict(frame, k)
        ground_truth_boxes += len(true_xyxy)
        detections += len(predictions)
        for i, j in match_boxes(predictions.xyxy, true_xyxy):
            y_true.append(int(true_cls[j]))
            y_pred.append(CLASS_NAMES.index(predictions.labels[i]))
            scores.append(float(predictions.crossing_scores[i]))
        _report(progress, k + 1, len(images), f"matched intent: frame {k + 1}/{len(images)}")
    if not y_true:
        return {"skipped": f"No detection matched a ground-truth box at IoU ≥ {IOU_THRESHOLD} on "
                           f"{len(images)} frames: the detector found nothing usable (train longer).",
                "images": len(images), "detections": detections, "ground_truth_boxes": ground_truth_boxes}
    metrics = intent_metrics(y_true, y_pred, scores)
    metrics.update({"images": len(images), "detections": detections, "ground_truth_boxes": ground_truth_boxes,
                    "matched": len(y_true), "match_rate": _ratio(len(y_true), ground_truth_boxes),
                    "iou_threshold": IOU_THRESHOLD})
    return metrics
