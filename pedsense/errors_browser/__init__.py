"""The error browser: which pedestrians a model gets wrong, at which TTE, under which conditions.

``evaluate()`` keeps every scored sample in ``<run>/predictions_<split>.parquet``
(:mod:`.table`); :func:`load_run_table` reads it back with the evaluation and says whether the
dataset was rebuilt since; :mod:`.browse` filters, scores at a threshold, draws ROC/PR curves,
breaks metrics down per attribute, lists windows worst first and joins two runs;
:mod:`.playback` (OpenCV: import it where needed) plays one window. No Streamlit here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pedsense.errors_browser.browse import (CELL_NAMES, ErrorView, Filters, attribute_metrics, browse,
                                            column_values, disagreeing, disagreement_counts, join_runs,
                                            shared_metrics, worst_first)
from pedsense.errors_browser.table import (ATTRIBUTE_COLUMNS, CATEGORY_COLUMNS, COLUMNS, DatasetDrift,
                                           NotEvaluated, dataset_drift, dataset_stamp, predictions_path,
                                           read_predictions)
from pedsense.evaluation import SPLITS, dataset_manifest_path, load_evaluation


@dataclass(frozen=True)
class RunTable:
    """One run's predictions on one split, with its evaluation and any dataset drift."""

    run_dir: Path
    split: str
    table: pd.DataFrame
    evaluation: dict
    drift: DatasetDrift | None

    @property
    def run_id(self) -> str:
        return f"{self.run_dir.parent.name}/{self.run_dir.name}"

    @property
    def unit(self) -> str:
        return (self.evaluation.get("predictions") or {}).get("unit", "samples")


def load_run_table(run_dir: str | os.PathLike, split: str = "val", *,
                   home: str | os.PathLike | None = None) -> RunTable:
    """The predictions table of ``run_dir`` on ``split``.

    Raises:
        NotEvaluated: not evaluated on ``split``, or evaluated before predictions were kept.
        DataError: nothing was scored, or the table is unreadable.
    """
    from pedsense.infer import run_model_type

    run_dir = Path(run_dir)
    evaluation = load_evaluation(run_dir, split)
    table = read_predictions(run_dir, split, evaluation)
    drift = dataset_drift(evaluation, dataset_manifest_path(run_model_type(run_dir), home, Path(run_dir)))
    return RunTable(run_dir=run_dir, split=split, table=table, evaluation=evaluation, drift=drift)


def browsable_splits(run_dir: str | os.PathLike) -> list[str]:
    """The splits ``run_dir`` has a predictions table for."""
    return [split for split in SPLITS if predictions_path(run_dir, split).is_file()]


__all__ = [
    "ATTRIBUTE_COLUMNS", "CATEGORY_COLUMNS", "CELL_NAMES", "COLUMNS", "DatasetDrift", "ErrorView", "Filters",
    "NotEvaluated", "RunTable", "attribute_metrics", "browsable_splits", "browse", "column_values",
    "dataset_drift", "dataset_stamp", "disagreeing", "disagreement_counts", "join_runs", "load_run_table",
    "predictions_path", "read_predictions", "shared_metrics", "worst_first",
]
