"""Test-split metrics, overall and broken down by TTE bin, occlusion, time of day and weather.

All numbers come from scikit-learn. Two AUCs are reported: ``auc`` from the predicted
probabilities (the usual ROC AUC) and ``auc_binary`` from the thresholded predictions, which is
what the JAAD benchmark's ``test()`` computes (``roc_auc_score(y, np.round(pred))``); compare
``auc_binary`` with published AUCs.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from pedsense.data.intent import tte_bin
from pedsense.errors import DataError

BREAKDOWN_FACTORS = ("tte_bin", "occlusion", "time_of_day", "weather")
METRIC_NAMES = ("accuracy", "auc", "auc_binary", "f1", "precision", "recall")
BREAKDOWN_COLUMNS = ("factor", "group", "n", "positives") + METRIC_NAMES


def classification_metrics(y_true: Sequence[int], y_prob: Sequence[float],
                           threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, AUC (probabilities and thresholded), F1, precision and recall of class 1.

    Args:
        y_true: (N,) labels, 1 crossing / 0 not-crossing.
        y_prob: (N,) predicted probability of crossing.
        threshold: probability at or above which a sample is predicted crossing.

    Returns:
        ``{"n", "positives", "accuracy", "auc", "auc_binary", "f1", "precision", "recall"}``;
        the AUCs are NaN when only one class is present (ROC AUC is undefined then);
        every metric is NaN for an empty input.
    """
    y_true, y_prob = _as_arrays(y_true, y_prob)
    if len(y_true) == 0:  # an empty split has no metrics, not an error
        return {"n": 0, "positives": 0, **{name: float("nan") for name in METRIC_NAMES}}
    y_pred = (y_prob >= threshold).astype(int)
    two_classes = len(np.unique(y_true)) == 2
    return {
        "n": int(len(y_true)),
        "positives": int(y_true.sum()),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "auc": float(roc_auc_score(y_true, y_prob)) if two_classes else float("nan"),
        "auc_binary": float(roc_auc_score(y_true, y_pred)) if two_classes else float("nan"),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
    }


def breakdown(windows_meta: pd.DataFrame | Iterable[Mapping[str, Any]], y_true: Sequence[int],
              y_prob: Sequence[float], by: Sequence[str] = BREAKDOWN_FACTORS,
              threshold: float = 0.5) -> pd.DataFrame:
    """Metrics per group of each factor in ``by``, after one overall row.

    Args:
        windows_meta: one row per sample (e.g. ``IntentDataset.rows("test")``), in the order of
            ``y_true``; ``tte_bin`` is derived from a ``tte`` column when absent.
        y_true: (N,) labels.
        y_prob: (N,) predicted probability of crossing.
        by: the columns to group by; a factor missing from ``windows_meta`` raises DataError.
        threshold: decision threshold for accuracy/F1/precision/recall.

    Returns:
        DataFrame with columns ``BREAKDOWN_COLUMNS``: first ``factor="all", group="all"``, then
        one row per (factor, group), groups sorted.
    """
    meta = pd.DataFrame(list(windows_meta)) if not isinstance(windows_meta, pd.DataFrame) \
        else windows_meta.reset_index(drop=True)
    y_true, y_prob = _as_arrays(y_true, y_prob)
    if len(meta) != len(y_true):
        raise DataError(f"breakdown got {len(meta)} metadata rows for {len(y_true)} predictions; "
                        "pass one metadata row per predicted sample, in the same order.")
    if "tte_bin" in by and "tte_bin" not in meta.columns and "tte" in meta.columns:
        meta = meta.assign(tte_bin=[tte_bin(int(t)) for t in meta["tte"]])
    rows = [{"factor": "all", "group": "all", **classification_metrics(y_true, y_prob, threshold)}]
    for factor in by:
        if factor not in meta.columns:
            raise DataError(f"breakdown factor '{factor}' is not a metadata column "
                            f"(have: {', '.join(map(str, meta.columns))}); drop it from `by`.")
        groups = meta[factor].astype(str).to_numpy()
        for group in sorted(set(groups)):
            mask = groups == group
            rows.append({"factor": factor, "group": group,
                         **classification_metrics(y_true[mask], y_prob[mask], threshold)})
    return pd.DataFrame(rows, columns=list(BREAKDOWN_COLUMNS))


def _as_arrays(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=int).reshape(-1)
    y_prob = np.asarray(y_prob, dtype=float).reshape(-1)
    if y_true.shape != y_prob.shape:
        raise DataError(f"{len(y_true)} labels but {len(y_prob)} probabilities; "
                        "pass one probability per label.")
    return y_true, y_prob
