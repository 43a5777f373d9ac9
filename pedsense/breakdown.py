"""Test-split metrics, overall and broken down by TTE bin, occlusion, time of day and weather.

The numbers are ``pedsense.metrics.classification_metrics`` (scikit-learn) per group: ``roc_auc``
from the predicted probabilities, ``auc_binary`` from the thresholded predictions (the JAAD
benchmark's AUC: compare it with published AUCs).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from pedsense.data.intent import tte_bin
from pedsense.errors import DataError
from pedsense.metrics import classification_metrics

BREAKDOWN_FACTORS = ("tte_bin", "occlusion", "time_of_day", "weather")
METRIC_NAMES = ("accuracy", "roc_auc", "auc_binary", "f1", "precision", "recall")
BREAKDOWN_COLUMNS = ("factor", "group", "n", "positives") + METRIC_NAMES


def _row(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> dict[str, Any]:
    metrics = classification_metrics(y_true, y_prob, threshold=threshold)
    return {"n": metrics["n"], "positives": metrics["positives"],
            **{name: metrics[name] for name in METRIC_NAMES}}


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
    rows = [{"factor": "all", "group": "all", **_row(y_true, y_prob, threshold)}]
    for factor in by:
        if factor not in meta.columns:
            raise DataError(f"breakdown factor '{factor}' is not a metadata column "
                            f"(have: {', '.join(map(str, meta.columns))}); drop it from `by`.")
        groups = meta[factor].astype(str).to_numpy()
        for group in sorted(set(groups)):
            mask = groups == group
            rows.append({"factor": factor, "group": group, **_row(y_true[mask], y_prob[mask], threshold)})
    # None (undefined) reads as NaN in the numeric columns
    return pd.DataFrame(rows, columns=list(BREAKDOWN_COLUMNS)).astype({m: float for m in METRIC_NAMES})


def _as_arrays(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=int).reshape(-1)
    y_prob = np.asarray(y_prob, dtype=float).reshape(-1)
    if y_true.shape != y_prob.shape:
        raise DataError(f"{len(y_true)} labels but {len(y_prob)} probabilities; "
                        "pass one probability per label.")
    return y_true, y_prob
