"""Where a model is wrong: filter a predictions table, score it at a threshold, list the worst.

Pure functions over the table ``pedsense.errors_browser.table`` reads (one row per window, crop or
detection). Every number is ``pedsense.metrics`` (scikit-learn): :func:`browse` is what the Errors
page redraws from on each change, and what ``bench/bench_errors.py`` times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from pedsense.breakdown import breakdown
from pedsense.config import CLASS_NAMES
from pedsense.errors import DataError
from pedsense.errors_browser.table import CATEGORY_COLUMNS, UNKNOWN
from pedsense.metrics import METRIC_NAMES, classification_metrics, threshold_curves

# Confusion cells as (true label, predicted label), crossing = 1.
CELL_NAMES = {(0, 0): "true negative", (0, 1): "false positive", (1, 0): "false negative",
              (1, 1): "true positive"}
JOIN_KEY = ("video_id", "track_id", "end_frame")


@dataclass(frozen=True)
class Filters:
    """Which samples to look at. Empty choices keep everything.

    ``tte_bins``: TTE bins to keep; ``values``: ``{column: values to keep}`` for any categorical
    column (``CATEGORY_COLUMNS``); ``p_range``: inclusive range of P(crossing); ``cell``: a
    confusion cell ``(true, predicted)`` at the threshold — it picks the windows listed, while the
    metrics and the matrix stay those of every filtered window.
    """

    tte_bins: tuple[str, ...] = ()
    values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    p_range: tuple[float, float] = (0.0, 1.0)
    cell: tuple[int, int] | None = None

    def describe(self) -> str:
        """The filters in words, e.g. ``TTE 30-39 · age child · P(crossing) 0.60-1.00``."""
        parts = [f"TTE {', '.join(self.tte_bins)}"] if self.tte_bins else []
        parts += [f"{column} {', '.join(map(str, chosen))}" for column, chosen in self.values.items() if chosen]
        if tuple(self.p_range) != (0.0, 1.0):
            parts.append(f"P(crossing) {self.p_range[0]:.2f}-{self.p_range[1]:.2f}")
        if self.cell is not None:
            parts.append(CELL_NAMES[tuple(self.cell)] + "s")
        return " · ".join(parts) or "no filter"


def filter_mask(table: pd.DataFrame, filters: Filters) -> np.ndarray:
    """(N,) bool: the rows every filter but the confusion cell keeps.

    Raises:
        DataError: a filter names a column the table does not have.
    """
    keep = np.ones(len(table), dtype=bool)
    chosen = dict(filters.values)
    if filters.tte_bins:
        chosen["tte_bin"] = filters.tte_bins
    for column, values in chosen.items():
        if not values:
            continue
        if column not in table.columns:
            raise DataError(f"No column {column!r} to filter on (have: {', '.join(CATEGORY_COLUMNS)}); "
                            "drop that filter.")
        keep &= table[column].isin([str(v) for v in values]).to_numpy()
    low, high = filters.p_range
    p = table["p_crossing"].to_numpy()
    keep &= (p >= low) & (p <= high)
    return keep


def predicted(table: pd.DataFrame, threshold: float) -> np.ndarray:
    """(N,) 0/1 predictions: P(crossing) at or above ``threshold`` is crossing."""
    return (table["p_crossing"].to_numpy() >= threshold).astype(np.int64)


def cell_mask(table: pd.DataFrame, cell: tuple[int, int] | None, threshold: float) -> np.ndarray:
    """(N,) bool: the rows in confusion cell ``(true, predicted)`` (all rows for None)."""
    if cell is None:
        return np.ones(len(table), dtype=bool)
    truth, guess = cell
    return (table["label"].to_numpy() == truth) & (predicted(table, threshold) == guess)


def worst_first(table: pd.DataFrame, threshold: float, limit: int | None = 200) -> pd.DataFrame:
    """The rows sorted by ``error = |label - P(crossing)|``, largest first, with ``predicted`` and
    ``error`` columns added (at most ``limit`` rows; None: all)."""
    error = np.abs(table["label"].to_numpy() - table["p_crossing"].to_numpy())
    ranked = table.assign(predicted=predicted(table, threshold), error=error)
    order = np.argsort(-error, kind="stable")
    if limit is not None:
        order = order[:limit]
    return ranked.iloc[order]


def attribute_metrics(table: pd.DataFrame, column: str, threshold: float) -> pd.DataFrame:
    """Metrics per value of ``column`` with counts (``pedsense.breakdown``'s rows, without "all")."""
    if column not in table.columns:
        raise DataError(f"No column {column!r} to break the metrics down by; pick one of "
                        f"{', '.join(CATEGORY_COLUMNS)}.")
    if not len(table):
        return breakdown(table, [], [], by=(), threshold=threshold).iloc[0:0]
    rows = breakdown(table, table["label"].to_numpy(), table["p_crossing"].to_numpy(), by=(column,),
                     threshold=threshold)
    return rows[rows["factor"] != "all"].reset_index(drop=True)


@dataclass(frozen=True)
class ErrorView:
    """What the Errors page draws for one table, filter and threshold.

    ``metrics``: ``classification_metrics`` of the filtered rows (confusion matrix included);
    ``curves``: ``threshold_curves`` (None with one class); ``by_attribute``: metrics per value of
    the chosen column (None when none was asked for); ``windows``: the rows of the chosen cell,
    worst first (at most ``limit``), ``selected`` how many there are in all.
    """

    total: int
    filtered: int
    selected: int
    threshold: float
    filters: Filters
    metrics: dict[str, Any]
    curves: dict[str, Any] | None
    by_attribute: pd.DataFrame | None
    windows: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.filtered == 0

    def empty_message(self) -> str:
        """Why nothing is listed, and what to change."""
        if self.filtered == 0:
            return (f"No window of the {self.total} matches {self.filters.describe()}: widen the "
                    "probability range or clear a filter.")
        return (f"No {CELL_NAMES[tuple(self.filters.cell)]} among the {self.filtered} filtered windows "
                f"at threshold {self.threshold:.2f}: pick another cell or move the threshold.")


def browse(table: pd.DataFrame, filters: Filters | None = None, threshold: float = 0.5, *,
           attribute: str | None = None, limit: int = 200) -> ErrorView:
    """Filter ``table``, score what is left at ``threshold`` and list the chosen cell worst first."""
    filters = filters or Filters()
    subset = table[filter_mask(table, filters)]
    y_true, scores = subset["label"].to_numpy(), subset["p_crossing"].to_numpy()
    metrics = classification_metrics(y_true, scores, threshold=threshold)
    in_cell = subset[cell_mask(subset, filters.cell, threshold)]
    return ErrorView(
        total=len(table), filtered=len(subset), selected=len(in_cell), threshold=threshold, filters=filters,
        metrics=metrics, curves=threshold_curves(y_true, scores, threshold=threshold,
                                                 confusion=metrics["confusion_matrix"]),
        by_attribute=attribute_metrics(subset, attribute, threshold) if attribute else None,
        windows=worst_first(in_cell, threshold, limit))


def column_values(table: pd.DataFrame, column: str) -> list[str]:
    """The values a filter on ``column`` offers, sorted, ``unknown`` last."""
    values = sorted(set(table[column].astype(str)) - {UNKNOWN})
    return values + ([UNKNOWN] if (table[column].astype(str) == UNKNOWN).any() else [])


# -- two runs ---------------------------------------------------------------------------------------
def join_runs(first: pd.DataFrame, second: pd.DataFrame, threshold_first: float = 0.5,
              threshold_second: float = 0.5) -> pd.DataFrame:
    """The samples both runs scored, matched by pedestrian and last frame (``JOIN_KEY``: a window
    of one run meets the window or crop of the other that ends on the same frame).

    Returns:
        The first run's rows that the second run shares (all their columns), plus ``p_a``/``p_b``,
        ``predicted_a``/``predicted_b`` (each at its run's threshold), ``label_b`` and ``sample_id_b``.

    Raises:
        DataError: the two tables share no sample (other splits or other data).
    """
    key = list(JOIN_KEY)
    a = first[first["track_id"] != UNKNOWN].drop_duplicates(key)
    b = second[second["track_id"] != UNKNOWN].drop_duplicates(key)[key + ["sample_id", "label", "p_crossing"]]
    b = b.rename(columns={"sample_id": "sample_id_b", "label": "label_b", "p_crossing": "p_b"})
    joined = a.merge(b, on=key, how="inner")
    if not len(joined):
        raise DataError("The two runs share no sample (no pedestrian with a window or crop ending on the "
                        "same frame): evaluate both on the same split of the same dataset build.")
    return joined.assign(p_a=joined["p_crossing"],
                         predicted_a=(joined["p_crossing"].to_numpy() >= threshold_first).astype(np.int64),
                         predicted_b=(joined["p_b"].to_numpy() >= threshold_second).astype(np.int64))


def disagreement_counts(joined: pd.DataFrame) -> pd.DataFrame:
    """Where two runs disagree, counted per pair of confusion cells.

    Returns:
        Columns ``truth``, ``cell_a``, ``cell_b``, ``windows`` (the count), ``right`` (``"A"`` or
        ``"B"``): one row per combination that occurs, most windows first.
    """
    differ = joined[joined["predicted_a"] != joined["predicted_b"]]
    if not len(differ):
        return pd.DataFrame(columns=["truth", "cell_a", "cell_b", "windows", "right"])
    counts = differ.groupby(["label", "predicted_a", "predicted_b"]).size().reset_index(name="windows")
    counts["truth"] = [CLASS_NAMES[t] for t in counts["label"]]
    counts["cell_a"] = [CELL_NAMES[(t, p)] for t, p in zip(counts["label"], counts["predicted_a"])]
    counts["cell_b"] = [CELL_NAMES[(t, p)] for t, p in zip(counts["label"], counts["predicted_b"])]
    counts["right"] = np.where(counts["predicted_a"] == counts["label"], "A", "B")
    return counts.sort_values("windows", ascending=False, kind="stable")[
        ["truth", "cell_a", "cell_b", "windows", "right", "label", "predicted_a", "predicted_b"]
    ].reset_index(drop=True)


def disagreeing(joined: pd.DataFrame, cell: tuple[int, int, int] | None = None) -> pd.DataFrame:
    """The shared samples the runs disagree on (``cell``: one ``(label, predicted_a, predicted_b)``),
    the most confident disagreement first (largest ``|p_a - p_b|``)."""
    rows = joined[joined["predicted_a"] != joined["predicted_b"]]
    if cell is not None:
        label, a, b = cell
        rows = rows[(rows["label"] == label) & (rows["predicted_a"] == a) & (rows["predicted_b"] == b)]
    gap = np.abs(rows["p_a"].to_numpy() - rows["p_b"].to_numpy())
    return rows.assign(gap=gap).iloc[np.argsort(-gap, kind="stable")]


def shared_metrics(joined: pd.DataFrame, labels: tuple[str, str] = ("A", "B")) -> pd.DataFrame:
    """Both runs' metrics on the samples they share (``classification_metrics`` of each side's
    predictions): one row per run, ``run`` then ``METRIC_NAMES`` and ``n``."""
    rows = []
    for name, side in zip(labels, ("a", "b")):
        metrics = classification_metrics(joined["label"].to_numpy(), joined[f"p_{side}"].to_numpy(),
                                         y_pred=joined[f"predicted_{side}"].to_numpy())
        rows.append({"run": name, "n": metrics["n"], **{m: metrics[m] for m in METRIC_NAMES}})
    return pd.DataFrame(rows)
