"""Crossing-intent metrics: one scikit-learn implementation for every table pedsense writes.

Crossing (1) is the positive class. Two AUCs are reported, each named for what it is:

- ``roc_auc``: the usual ROC AUC, from the predicted probabilities;
- ``auc_binary``: ROC AUC of the thresholded predictions, which is what the JAAD benchmark's
  ``test()`` computes (``roc_auc_score(y, np.round(pred))``) and so what its published AUCs are.
  Compare published AUCs with ``auc_binary``, never with ``roc_auc``.

Undefined values (an AUC with one class present, anything on an empty input) are ``None``.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score,
                             confusion_matrix, f1_score, precision_recall_curve, precision_score,
                             recall_score, roc_auc_score, roc_curve)

from pedsense.config import CLASS_NAMES
from pedsense.errors import DataError

METRIC_NAMES = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "auc_binary")
# What the JAAD benchmark reports, in its order (auc_binary is its AUC).
BENCHMARK_METRICS = ("accuracy", "auc_binary", "f1", "precision", "recall")
METRIC_LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy",
                 "precision": "precision", "recall": "recall", "f1": "F1",
                 "roc_auc": "ROC-AUC (probabilities)",
                 "auc_binary": "AUC (benchmark: thresholded predictions)"}


def classification_metrics(y_true: Sequence[int], p_crossing: Sequence[float] | None = None, *,
                           y_pred: Sequence[int] | None = None, threshold: float = 0.5) -> dict[str, Any]:
    """Every crossing-intent metric of one set of predictions.

    Args:
        y_true: (N,) labels, 1 crossing / 0 not-crossing.
        p_crossing: (N,) predicted P(crossing); None: no ``roc_auc``.
        y_pred: (N,) 0/1 predictions; None: ``p_crossing >= threshold``.
        threshold: probability at or above which a sample is predicted crossing.

    Returns:
        ``n, positives, accuracy, balanced_accuracy, precision, recall, f1, roc_auc,
        auc_binary`` (floats, or None when undefined), ``confusion_matrix`` [[tn, fp], [fn, tp]]
        and ``support`` {class name: count}. Precision/recall/F1 with no predicted/true
        positives are 0 (``zero_division=0``).
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    scores = None if p_crossing is None else np.asarray(p_crossing, dtype=np.float64).reshape(-1)
    if y_pred is None:
        if scores is None:
            raise DataError("classification_metrics needs predicted probabilities or predictions.")
        y_pred = (scores >= threshold).astype(np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    for name, values in (("predictions", y_pred), ("probabilities", scores)):
        if values is not None and values.shape != y_true.shape:
            raise DataError(f"{len(y_true)} labels but {len(values)} {name}; pass one per label.")
    matrix = confusion_matrix(y_true, y_pred, labels=[0, 1]) if len(y_true) else np.zeros((2, 2), int)
    result: dict[str, Any] = {
        "n": int(len(y_true)), "positives": int(y_true.sum()),
        "confusion_matrix": matrix.tolist(),
        "support": {CLASS_NAMES[c]: int(matrix[c].sum()) for c in range(2)},
    }
    if not len(y_true):
        return {**result, **{name: None for name in METRIC_NAMES}}
    two_classes = bool(matrix[0].sum() and matrix[1].sum())
    # Every metric of the 0/1 predictions is a function of the confusion matrix, so scikit-learn
    # scores its four cells, weighted by their counts: the same numbers as on the N samples, at
    # a fixed cost (the Errors page rescores 50,000 windows on every change).
    cell_true, cell_pred = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    weight = matrix.reshape(-1).astype(np.float64)
    cells = {"y_true": cell_true, "y_pred": cell_pred, "sample_weight": weight}
    with warnings.catch_warnings():  # one class present: balanced accuracy is its recall, said here
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(**cells))
    result.update({
        "accuracy": float(accuracy_score(**cells)),
        "balanced_accuracy": balanced,
        "precision": float(precision_score(**cells, zero_division=0)),
        "recall": float(recall_score(**cells, zero_division=0)),
        "f1": float(f1_score(**cells, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, scores)) if two_classes and scores is not None else None,
        "auc_binary": float(roc_auc_score(cell_true, cell_pred, sample_weight=weight)) if two_classes else None,
    })
    return result


def threshold_curves(y_true: Sequence[int], p_crossing: Sequence[float], *, threshold: float = 0.5,
                     confusion: Sequence[Sequence[int]] | None = None) -> dict[str, Any] | None:
    """ROC and precision-recall curves of P(crossing), with the operating point at ``threshold``.

    Args:
        y_true: (N,) labels, 1 crossing.
        p_crossing: (N,) predicted P(crossing).
        confusion: [[tn, fp], [fn, tp]] at ``threshold`` when already known
            (:func:`classification_metrics`'s), else computed.

    Returns:
        None when the curves are undefined (fewer than two classes present); else ``roc``
        ``{"fpr", "tpr", "thresholds"}`` and ``pr`` ``{"precision", "recall", "thresholds"}``
        (numpy arrays, scikit-learn's, intermediate points dropped) and ``operating``
        ``{"threshold", "fpr", "tpr", "precision", "recall"}`` (precision 1.0 when nothing is
        predicted crossing, where scikit-learn's precision-recall curve ends).
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    scores = np.asarray(p_crossing, dtype=np.float64).reshape(-1)
    if confusion is None:
        confusion = classification_metrics(y_true, scores, threshold=threshold)["confusion_matrix"]
    (tn, fp), (fn, tp) = confusion
    if not (tn + fp) or not (fn + tp):
        return None
    fpr, tpr, roc_thresholds = roc_curve(y_true, scores, drop_intermediate=True)
    precision, recall, pr_thresholds = precision_recall_curve(y_true, scores, drop_intermediate=True)
    operating = {"threshold": float(threshold), "fpr": fp / (fp + tn), "tpr": tp / (tp + fn),
                 "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn)}
    return {"roc": {"fpr": fpr, "tpr": tpr, "thresholds": roc_thresholds},
            "pr": {"precision": precision, "recall": recall, "thresholds": pr_thresholds},
            "operating": operating}
