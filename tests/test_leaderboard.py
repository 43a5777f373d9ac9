"""The leaderboard: groups over seeds, the published rows beside each with comparable/not and why,
and the CSV / Markdown / LaTeX exports.

Each run's ``evaluation_<split>.json`` is written by the real ``benchmark_section`` from known
predictions and a dataset manifest (JAAD-shaped, or the synthetic demo set's), exactly as
``pedsense evaluate`` writes it; the real end-to-end path is in tests/test_sweeps.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pedsense.benchmarks import PUBLISHED_JAAD
from pedsense.data.intent import IntentOptions
from pedsense.evaluation import Samples, benchmark_section, evaluation_path
from pedsense.io import write_json_atomic
from pedsense.leaderboard import (evaluated_runs, group_entries, leaderboard, shown_table, to_csv, to_latex,
                                  to_markdown)
from pedsense.metrics import classification_metrics
from pedsense.runfolder import RunFolder
from pedsense.train.params import RESNET_LSTM

Y_TRUE = [1, 0, 1, 0, 1, 0, 1, 0, 1, 1]


def manifest(tmp_path, name: str, *, synthetic: bool = False, **options) -> Path:
    path = tmp_path / f"{name}.json"
    write_json_atomic(path, {"task": "intent", "intent_options": IntentOptions(**options).as_dict(),
                             "synthetic": synthetic, "split": {"source": "official:default"}})
    return path


def evaluated_run(home, manifest_path, *, seed: int, wrong: int, split: str = "test", lr: float = 1e-3,
                  sweep: str | None = None) -> tuple[str, dict]:
    """A ResNet-LSTM run evaluated on ``split`` whose predictions get ``wrong`` samples wrong."""
    folder = RunFolder.create("resnet-lstm", "lb", home=home)
    parameters = RESNET_LSTM.record(RESNET_LSTM.check({"learning_rate": lr, "seed": seed, "epochs": 3}))
    config = {"model_type": "resnet-lstm", "parameters": parameters}
    if sweep:
        config["sweep"] = {"name": sweep, "trial": seed}
    folder.write_config(config)
    p = np.array([0.9 if y else 0.1 for y in Y_TRUE])
    p[:wrong] = 1 - p[:wrong]
    section = benchmark_section(Samples(Y_TRUE, p, [], unit="16-frame crop sequences"), manifest_path,
                                label=folder.run_id, split=split)
    write_json_atomic(evaluation_path(folder.path, split), {"run": folder.run_id, "model_type": "resnet-lstm",
                                                             "split": split, "task": "intent",
                                                             "benchmark": section})
    return folder.run_id, classification_metrics(Y_TRUE, p)


def test_seeds_of_one_configuration_are_one_row_with_mean_and_std(tmp_home, tmp_path):
    jaad = manifest(tmp_path, "jaad")
    runs = [evaluated_run(tmp_home, jaad, seed=s, wrong=w, sweep="lr") for s, w in ((0, 1), (1, 2), (2, 4))]
    evaluated_run(tmp_home, jaad, seed=0, wrong=0, lr=3e-3)  # another configuration
    table = leaderboard(tmp_home, published=False)
    assert list(table["n"]) == [1, 3]  # best mean accuracy first
    three = table.iloc[1]
    accuracies = [metrics["accuracy"] for _, metrics in runs]
    assert three["accuracy"] == pytest.approx(np.mean(accuracies))
    assert three["accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert three["f1_std"] == pytest.approx(np.std([m["f1"] for _, m in runs], ddof=1))
    assert three["model"] == "ResNet-LSTM (sweep lr)" and "epochs=3" in three["config"]
    assert three["config"] == "epochs=3, learning_rate=0.001" and "learning_rate=0.003" in table.iloc[0]["config"]
    assert set(three["source"].removeprefix("pedsense: ").split(", ")) == {r for r, _ in runs}
    assert three["protocol"] == ("intent: beh, split default, obs 16, TTE 30-60, overlap 0.8, crossing=-1 "
                                 "as not-crossing, windows in boxes")
    assert table.iloc[0]["accuracy_std"] is None or pd.isna(table.iloc[0]["accuracy_std"])  # one seed


def test_published_rows_beside_each_group_say_comparable_or_why_not(tmp_home, tmp_path):
    evaluated_run(tmp_home, manifest(tmp_path, "jaad", sample_type="all"), seed=0, wrong=1)  # as published
    evaluated_run(tmp_home, manifest(tmp_path, "demo", synthetic=True), seed=0, wrong=2)
    evaluated_run(tmp_home, manifest(tmp_path, "tte", tte=(20, 50)), seed=0, wrong=3)
    table = leaderboard(tmp_home)
    ours = table[~table["model"].str.endswith("(published)")]
    published = len(PUBLISHED_JAAD)
    assert len(ours) == 3 and len(table) == 3 * (1 + published)  # each followed by every published row
    jaad = table.index[table["dataset"].eq("JAAD_all") & ~table["model"].str.endswith("(published)")][0]
    beside = table.iloc[jaad + 1: jaad + 1 + published].set_index(["model", "dataset"]).xs(
        "JAAD_all", level="dataset")
    assert beside.loc["C3D (published)", "comparison"] == "comparable"
    assert beside.loc["PCPA (published)", "comparison"] == "not comparable"
    assert "2D pose keypoints" in beside.loc["PCPA (published)", "notes"]
    assert table.iloc[jaad]["comparison"] == "comparable with C3D, I3D"
    assert beside.loc["C3D (published)", "accuracy"] == 0.84
    synthetic = table.index[table["dataset"].eq("synthetic")][0]
    assert table.iloc[synthetic]["comparison"] == "no published row is comparable"
    assert all("synthetic demo set" in n for n in table.iloc[synthetic + 1: synthetic + 4]["notes"])
    shifted = table.index[table["protocol"].str.contains("TTE 20-50")][0]
    assert "different protocol: tte=(20, 50)" in table.iloc[shifted]["notes"]
    assert "published on JAAD_all, this run on JAAD_beh" in table.iloc[shifted + 2]["notes"]


def test_val_evaluations_appear_only_when_asked_and_marked(tmp_home, tmp_path):
    jaad = manifest(tmp_path, "jaad")
    run_id, _ = evaluated_run(tmp_home, jaad, seed=0, wrong=1)
    folder = RunFolder(tmp_home / "models" / run_id)
    section = benchmark_section(Samples(Y_TRUE, np.array([0.8] * 10), [], unit="16-frame crop sequences"),
                                jaad, label=run_id, split="val")
    write_json_atomic(evaluation_path(folder.path, "val"), {"split": "val", "benchmark": section})
    assert [e.split for e in evaluated_runs(tmp_home, ("test",))] == ["test"]
    table = leaderboard(tmp_home, include_val=True)
    val = table.index[table["split"].eq("val")][0]
    assert table.iloc[val]["model"] == "ResNet-LSTM" and table.iloc[val]["n"] == 1
    assert all(c == "not comparable" for c in table.iloc[val + 1: val + 4]["comparison"])
    assert "scored on the 'val' split" in table.iloc[val + 1]["notes"]
    assert group_entries(evaluated_runs(tmp_home))[0].first.split == "test"  # test before val


def test_an_evaluation_without_a_benchmark_section_is_listed_with_why(tmp_home):
    folder = RunFolder.create("yolo", "nomatch", home=tmp_home)
    folder.write_config({"model_type": "yolo", "parameters": {"epochs": 1, "seed": 0}})
    write_json_atomic(evaluation_path(folder.path, "test"), {
        "split": "test", "task": "action", "detection": {"mAP50": 0.1, "mAP50-95": 0.05},
        "matched_intent": {"skipped": "No detection matched"},
        "benchmark": {"skipped": "no intent predictions to score (see matched_intent)"}})
    table = leaderboard(tmp_home)
    assert len(table) == 1 and table.iloc[0]["model"] == "YOLO26"
    assert table.iloc[0]["notes"] == "no intent predictions to score (see matched_intent)"
    assert shown_table(table).iloc[0]["accuracy"] == "—"


def test_exports_hold_the_same_numbers(tmp_home, tmp_path):
    jaad = manifest(tmp_path, "jaad")
    for seed, wrong in ((0, 1), (1, 3)):
        evaluated_run(tmp_home, jaad, seed=seed, wrong=wrong)
    table = leaderboard(tmp_home)
    csv = pd.read_csv(io.StringIO(to_csv(table)))
    assert list(csv.columns[:8]) == ["model", "config", "task", "dataset", "protocol", "split", "inputs", "n"]
    assert csv.loc[0, "accuracy"] == pytest.approx(0.8) and csv.loc[0, "accuracy_std"] == pytest.approx(0.141421)
    markdown = to_markdown(table)
    assert "| ResNet-LSTM" in markdown and "0.800 ± 0.141" in markdown and "C3D (published)" in markdown
    latex = to_latex(table)
    assert "\\begin{tabular}" in latex and "\\toprule" in latex and "0.800 $\\pm$ 0.141" in latex
    assert "JAAD\\_beh" in latex  # escaped
    assert to_csv(leaderboard(tmp_path / "empty")).startswith("model,config,task")
