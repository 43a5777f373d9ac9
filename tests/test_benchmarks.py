"""The published reference table, the comparison marks, and the metric breakdown."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from pedsense.benchmarks import (BENCHMARK_OPTIONS, PUBLISHED_JAAD, WACV2021_URL,
                                 compare_with_published, published_results)
from pedsense.breakdown import BREAKDOWN_COLUMNS, breakdown
from pedsense.metrics import classification_metrics
from pedsense.data.intent import IntentOptions
from pedsense.errors import DataError


# ---------------------------------------------------------------- reference table

def _published(model: str, dataset: str = "JAAD_all"):
    return next(r for r in PUBLISHED_JAAD if r.model == model and r.dataset == dataset)


@pytest.mark.parametrize("model, acc, auc, f1", [
    ("PCPA", 0.85, 0.86, 0.68),
    ("C3D", 0.84, 0.81, 0.65),
    ("I3D", 0.81, 0.74, 0.63),
])
def test_reference_table_holds_the_wacv2021_jaad_all_numbers(model, acc, auc, f1):
    row = _published(model)
    assert (row.accuracy, row.auc, row.f1) == (acc, auc, f1)
    assert "WACV 2021" in row.source and row.url == WACV2021_URL
    assert row.locator.startswith("Table")


def test_every_published_row_is_attributed_and_in_range():
    for row in PUBLISHED_JAAD:
        assert row.dataset in ("JAAD_beh", "JAAD_all")
        assert row.source and row.locator and row.inputs
        for value in (row.accuracy, row.auc, row.f1, row.precision, row.recall):
            assert value is None or 0.0 <= value <= 1.0


def test_published_results_are_pandas_ready_and_filter_by_variant():
    frame = pd.DataFrame(published_results())
    assert {"model", "dataset", "accuracy", "auc_binary", "roc_auc", "f1", "precision", "recall",
            "inputs", "source"} <= set(frame.columns)
    assert len(frame) == len(PUBLISHED_JAAD)
    assert published_results("JAAD_beh") == [r.as_row() for r in PUBLISHED_JAAD
                                             if r.dataset == "JAAD_beh"]


# ---------------------------------------------------------------- comparison marks

RUN = {"accuracy": 0.7, "auc_binary": 0.62, "roc_auc": 0.71, "f1": 0.5}


def test_a_benchmark_run_on_test_is_comparable_with_same_input_rows_only():
    rows = compare_with_published(RUN, inputs=("rgb",), options=IntentOptions(sample_type="all"))
    own, by_model = rows[0], {r["model"]: r for r in rows[1:]}
    assert own["comparison"] == "this run" and own["accuracy"] == 0.7 and own["caveats"] == ""
    # the benchmark's AUC (thresholded) is the run's `auc_binary`, beside the published AUC
    assert own["auc_binary"] == 0.62 and own["roc_auc"] == 0.71
    assert by_model["C3D"]["auc_binary"] == 0.81 and by_model["C3D"]["roc_auc"] is None
    assert by_model["PCPA"]["comparison"] == "not comparable" and by_model["PCPA"]["comparable"] is False
    assert "pose" in by_model["PCPA"]["caveats"]
    # Same inputs, same data variant, benchmark protocol, labelling and test split: comparable.
    assert by_model["C3D"]["comparison"] == "comparable"
    assert by_model["C3D"]["comparable"] is True and by_model["C3D"]["caveats"] == ""


@pytest.mark.parametrize("kwargs, expected", [
    ({"evaluated_on": "val"}, "scored on the 'val' split; published numbers are 'test'-split numbers"),
    ({"synthetic": True}, "synthetic demo set"),
    ({"task": "action"}, "task 'action'"),
    ({"split": "random"}, "split 'random'"),
    ({"options": IntentOptions(sample_type="beh")}, "published on JAAD_all, this run on JAAD_beh"),
    ({"options": {"obs_length": 8, "sample_type": "all"}}, "obs_length=8"),
    ({"options": IntentOptions(sample_type="all", irrelevant="exclude")}, "irrelevant=exclude"),
    ({"options": IntentOptions(sample_type="all", placement="frames")}, "placement=frames"),
    ({"unit": "scored per frame (single crops), not per 16-frame window"}, "single crops"),
    ({"inputs": ("rgb", "box")}, "this run also uses bounding-box coordinates"),
])
def test_every_difference_is_named_and_makes_the_row_not_comparable(kwargs, expected):
    kwargs = {"options": IntentOptions(sample_type="all"), **kwargs}
    rows = compare_with_published(RUN, **kwargs)
    c3d = next(r for r in rows if r["model"] == "C3D")
    assert expected in c3d["caveats"]
    assert c3d["comparable"] is False and c3d["comparison"] == "not comparable"
    assert not any(r["comparison"] == "comparable" for r in rows)


def test_benchmark_options_are_the_published_protocol():
    assert (BENCHMARK_OPTIONS.obs_length, BENCHMARK_OPTIONS.tte, BENCHMARK_OPTIONS.overlap) == (16, (30, 60), 0.8)
    assert (BENCHMARK_OPTIONS.irrelevant, BENCHMARK_OPTIONS.placement) == ("not-crossing", "boxes")


# ---------------------------------------------------------------- breakdown

# A hand-made test split: 10 windows, two TTE bins, two occlusion levels, day/night, one weather.
META = pd.DataFrame({
    "tte": [30, 33, 36, 45, 48, 30, 57, 60, 51, 39],
    "occlusion": ["none", "none", "part", "part", "none", "full", "none", "part", "none", "none"],
    "time_of_day": ["daytime"] * 6 + ["nighttime"] * 4,
    "weather": ["clear"] * 10,
})
Y_TRUE = np.array([1, 1, 0, 1, 0, 0, 1, 0, 1, 0])
Y_PROB = np.array([0.9, 0.4, 0.2, 0.7, 0.6, 0.1, 0.8, 0.3, 0.55, 0.45])


def _sklearn(y, p):
    pred = (p >= 0.5).astype(int)
    return {"accuracy": accuracy_score(y, pred), "roc_auc": roc_auc_score(y, p),
            "auc_binary": roc_auc_score(y, pred), "f1": f1_score(y, pred),
            "precision": precision_score(y, pred, zero_division=0),
            "recall": recall_score(y, pred, zero_division=0)}


def test_breakdown_equals_sklearn_per_group():
    table = breakdown(META, Y_TRUE, Y_PROB)
    assert list(table.columns) == list(BREAKDOWN_COLUMNS)
    overall = table.iloc[0]
    assert (overall["factor"], overall["group"], overall["n"]) == ("all", "all", 10)
    for name, value in _sklearn(Y_TRUE, Y_PROB).items():
        assert overall[name] == pytest.approx(value)
    bins = META["tte"].map(lambda t: "30-39" if t < 40 else ("40-49" if t < 50 else "50-60"))
    for factor, column in (("tte_bin", bins), ("time_of_day", META["time_of_day"])):
        for group in sorted(set(column)):
            mask = (column == group).to_numpy()
            row = table[(table["factor"] == factor) & (table["group"] == group)].iloc[0]
            assert row["n"] == mask.sum() and row["positives"] == Y_TRUE[mask].sum()
            expected = _sklearn(Y_TRUE[mask], Y_PROB[mask])
            for name in ("accuracy", "f1", "precision", "recall"):
                assert row[name] == pytest.approx(expected[name]), (factor, group, name)


def test_breakdown_single_class_group_has_nan_auc():
    table = breakdown(META, Y_TRUE, Y_PROB, by=("occlusion",))
    full = table[table["group"] == "full"].iloc[0]  # one not-crossing window
    assert full["n"] == 1 and full["accuracy"] == 1.0
    assert math.isnan(full["roc_auc"]) and math.isnan(full["auc_binary"])


def test_breakdown_accepts_dict_rows_and_rejects_bad_input():
    rows = META.to_dict("records")
    assert breakdown(rows, Y_TRUE, Y_PROB).equals(breakdown(META, Y_TRUE, Y_PROB))
    with pytest.raises(DataError, match="metadata rows"):
        breakdown(rows[:5], Y_TRUE, Y_PROB)
    with pytest.raises(DataError, match="lighting"):
        breakdown(rows, Y_TRUE, Y_PROB, by=("lighting",))


def test_metrics_of_an_empty_split():
    metrics = classification_metrics([], [])
    assert metrics["n"] == 0 and metrics["roc_auc"] is None and metrics["accuracy"] is None
