"""The leaderboard: every evaluated run, grouped by what makes results comparable, as mean ± std
over seeds, beside the published JAAD results.

A row of the leaderboard is one *group*: runs of one model family and one configuration (every
parameter but the seed and the runtime-only ones, :data:`RUNTIME_PARAMS`), evaluated on one
split, under one task and protocol (sample type, video split, obs/TTE/overlap, ``crossing = -1``
handling, window placement), with the same inputs and scoring unit. Its metrics are the mean and
sample standard deviation (``ddof=1``; none for one seed) over those runs, ``n`` how many.
The numbers come from each run's ``evaluation_<split>.json`` (``pedsense evaluate``): its
``benchmark`` section. Beside each group stand the published rows (``pedsense.benchmarks``),
each marked comparable or not and why, as ``compare_with_published`` decided when the run was
evaluated; the rules live there only. Exports: CSV (means and stds as numbers), Markdown and
LaTeX (``mean ± std``) for a paper.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pandas as pd

from pedsense.benchmarks import ROW_METRICS, compare_with_published
from pedsense.evaluation import headline_metrics, load_evaluation
from pedsense.runsummary import readable_runs
from pedsense.train.params import SPECS

FAMILIES = {"yolo": "YOLO26", "resnet-lstm": "ResNet-LSTM", "hybrid": "YOLO + ResNet hybrid",
            "context": "Context (annotations only)"}
METRIC_TITLES = {"accuracy": "accuracy", "auc_binary": "AUC", "roc_auc": "ROC-AUC", "f1": "F1",
                 "precision": "precision", "recall": "recall"}
# Parameters that change where or how fast a run trains, not what it learns.
RUNTIME_PARAMS = ("name", "device", "seed", "num_workers", "workers", "verbose", "prediction_samples")
SPLIT_ORDER = {"test": 0, "val": 1, "train": 2}
TEXT_COLUMNS = ("model", "config", "task", "dataset", "protocol", "split", "inputs")


@dataclass(frozen=True)
class Entry:
    """One run evaluated on one split."""

    run_id: str
    model_type: str
    split: str
    task: str
    dataset: str
    protocol: str
    inputs: str
    unit: str
    seed: Any
    config: Mapping[str, Any]
    metrics: Mapping[str, float | None]
    own_caveats: str = ""
    reference: tuple = ()
    options: Mapping[str, Any] | None = None
    synthetic: bool = False
    data_split: str = "unknown"
    sweep: str | None = None
    note: str = ""

    @property
    def key(self) -> tuple:
        """What must be equal for two runs' numbers to be seeds of one result."""
        return (self.model_type, self.task, self.dataset, self.protocol, self.inputs, self.split,
                self.unit, self.own_caveats, json.dumps(self.config, sort_keys=True, default=str))


@dataclass
class Group:
    """Runs that differ only by their seed; metrics as mean and std over them."""

    entries: list[Entry]
    mean: dict[str, float | None] = field(default_factory=dict)
    std: dict[str, float | None] = field(default_factory=dict)

    @property
    def first(self) -> Entry:
        return self.entries[0]

    @property
    def n(self) -> int:
        return len(self.entries)

    @property
    def label(self) -> str:
        sweeps = sorted({e.sweep for e in self.entries if e.sweep})
        return FAMILIES.get(self.first.model_type, self.first.model_type) + \
            (f" (sweep {', '.join(sweeps)})" if sweeps else "")

    @property
    def config_text(self) -> str:
        return describe_config(self.first.model_type, self.first.config)


# -- reading the evaluations -----------------------------------------------------------------------
def evaluated_runs(home: str | os.PathLike | None = None, splits: Iterable[str] = ("test", "val")) -> list[Entry]:
    """One :class:`Entry` per run and split it was evaluated on (``evaluation_<split>.json``)."""
    entries = []
    for folder in readable_runs(home):  # a damaged config.json would read as no parameters
        config = folder.read_config()
        for split in splits:
            evaluation = load_evaluation(folder.path, split)
            if isinstance(evaluation, dict):
                entries.append(entry_of(folder.run_id, folder.model_type, split, evaluation, config))
    return entries


def entry_of(run_id: str, model_type: str, split: str, evaluation: Mapping[str, Any],
             config: Mapping[str, Any]) -> Entry:
    """The leaderboard's view of one saved evaluation (see ``pedsense.evaluation.evaluate``)."""
    model_type = str(config.get("model_type") or evaluation.get("model_type") or model_type)
    parameters = dict(config.get("parameters") or {})
    configuration = {k: v for k, v in parameters.items() if k not in RUNTIME_PARAMS}
    sweep = (config.get("sweep") or {}).get("name") if isinstance(config.get("sweep"), Mapping) else None
    common = {"run_id": run_id, "model_type": model_type, "split": str(evaluation.get("split") or split),
              "seed": parameters.get("seed"), "config": configuration, "sweep": sweep}
    bench = evaluation.get("benchmark") or {}
    if isinstance(bench.get("metrics"), Mapping):
        options = bench.get("intent_options")
        task = bench.get("task") or "action"
        synthetic = bool(bench.get("synthetic"))
        reference = tuple(bench.get("reference") or ())
        own = reference[0] if reference else {}
        return Entry(**common, task=task,
                     dataset=own.get("dataset") or ("synthetic" if synthetic else
                                                    f"JAAD_{(options or {}).get('sample_type', 'beh')}"),
                     protocol=describe_protocol(task, options, bench.get("data_split") or "unknown"),
                     inputs=", ".join(bench.get("inputs") or ()), unit=str(bench.get("unit") or ""),
                     metrics={m: _number(bench["metrics"].get(m)) for m in ROW_METRICS},
                     own_caveats=str(own.get("caveats") or ""), reference=reference[1:], options=options,
                     synthetic=synthetic, data_split=bench.get("data_split") or "unknown")
    headline = headline_metrics(dict(evaluation))
    task = str(evaluation.get("task") or config.get("task") or "action")
    return Entry(**common, task=task, dataset="—", inputs="rgb", unit="",
                 protocol=describe_protocol(task, config.get("intent_options"), "unknown"), metrics={m: _number(headline.get(m)) for m in ROW_METRICS},
                 note=str(bench.get("skipped") or "evaluated before the benchmark section existed: "
                          "evaluate it again to compare it with the published results"))


def describe_protocol(task: str, options: Mapping[str, Any] | None, data_split: str) -> str:
    """``"intent: beh, split default, obs 16, TTE 30-60, overlap 0.8, crossing=-1 as
    not-crossing, windows in boxes"`` or ``"action: crossing now, split default"``."""
    if task != "intent" or not options:
        return f"{task}: crossing now, split {data_split}" if task == "action" else f"{task}, split {data_split}"
    tte = "-".join(str(t) for t in options.get("tte") or ())
    irrelevant = options.get("irrelevant")
    return (f"intent: {options.get('sample_type')}, split {data_split}, obs {options.get('obs_length')}, "
            f"TTE {tte}, overlap {options.get('overlap')}, crossing=-1 "
            + ("as not-crossing" if irrelevant == "not-crossing" else f"{irrelevant}d")
            + f", windows in {options.get('placement')}")


def describe_config(model_type: str, config: Mapping[str, Any]) -> str:
    """The parameters that differ from the trainer's defaults: ``"backbone=resnet18, epochs=3"``."""
    spec = SPECS.get(model_type)
    if spec is None:
        return ", ".join(f"{k}={v}" for k, v in sorted(config.items()))
    shown = []
    for param in spec:
        if param.name in config and json.dumps(config[param.name]) != json.dumps(param.record(param.default)):
            shown.append(f"{param.name}={_value_text(config[param.name])}")
    return ", ".join(shown) or "defaults"


def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


# -- grouping ----------------------------------------------------------------------------------------
def group_entries(entries: Iterable[Entry]) -> list[Group]:
    """Entries grouped by :attr:`Entry.key`; test before val, then by mean accuracy."""
    groups: dict[tuple, Group] = {}
    for entry in entries:
        groups.setdefault(entry.key, Group([])).entries.append(entry)
    for group in groups.values():
        for metric in ROW_METRICS:
            values = [e.metrics.get(metric) for e in group.entries if e.metrics.get(metric) is not None]
            series = pd.Series(values, dtype=float)
            group.mean[metric] = float(series.mean()) if values else None
            group.std[metric] = float(series.std(ddof=1)) if len(values) > 1 else None
    return sorted(groups.values(), key=lambda g: (SPLIT_ORDER.get(g.first.split, 9),
                                                  -(g.mean.get("accuracy") or -1.0), g.label))


def published_beside(group: Group) -> list[dict[str, Any]]:
    """The published rows beside ``group``, each marked comparable or not with its reasons (the
    ones ``compare_with_published`` gave when the group's runs were evaluated)."""
    entry = group.first
    if entry.reference:
        return [dict(row) for row in entry.reference]
    if entry.note:
        return []
    # an evaluation without its reference rows: ask the one home of the rules now
    return compare_with_published(group.mean, entry.inputs.split(", "), options=entry.options, task=entry.task,
                                  synthetic=entry.synthetic, split=entry.data_split,
                                  evaluated_on=entry.split)[1:]


# -- the table ------------------------------------------------------------------------------------
def leaderboard_table(groups: Iterable[Group], *, published: bool = True) -> pd.DataFrame:
    """One row per group (``n`` seeds, ``<metric>`` mean, ``<metric>_std``), each followed by the
    published rows with ``comparison`` (comparable / not comparable) and ``notes`` (why)."""
    rows = []
    for group in groups:
        entry = group.first
        comparable = [r["model"] for r in published_beside(group) if r.get("comparable")]
        notes = "; ".join(n for n in (entry.own_caveats, entry.note) if n)
        rows.append({"model": group.label, "config": group.config_text, "task": entry.task,
                     "dataset": entry.dataset, "protocol": entry.protocol, "split": entry.split,
                     "inputs": entry.inputs, "n": group.n,
                     **{m: group.mean.get(m) for m in ROW_METRICS},
                     **{f"{m}_std": group.std.get(m) for m in ROW_METRICS},
                     "comparison": "comparable with " + ", ".join(comparable) if comparable else
                     ("no published row is comparable" if entry.reference else "—"),
                     "notes": notes, "source": "pedsense: " + ", ".join(e.run_id for e in group.entries)})
        if published:
            for row in published_beside(group):
                rows.append({"model": f"{row['model']} (published)", "config": "", "task": "intent",
                             "dataset": row.get("dataset"), "protocol": "JAAD benchmark", "split": "test",
                             "inputs": row.get("inputs"), "n": None,
                             **{m: _number(row.get(m)) for m in ROW_METRICS},
                             **{f"{m}_std": None for m in ROW_METRICS},
                             "comparison": row.get("comparison"), "notes": row.get("caveats") or "",
                             "source": row.get("source")})
    columns = [*TEXT_COLUMNS, "n", *ROW_METRICS, *(f"{m}_std" for m in ROW_METRICS), "comparison", "notes", "source"]
    return pd.DataFrame(rows, columns=columns)


def leaderboard(home: str | os.PathLike | None = None, *, include_val: bool = False,
                published: bool = True) -> pd.DataFrame:
    """The leaderboard of a data home: runs evaluated on ``test`` (and ``val`` when asked)."""
    splits = ("test", "val") if include_val else ("test",)
    return leaderboard_table(group_entries(evaluated_runs(home, splits)), published=published)


def shown_table(table: pd.DataFrame, digits: int = 3, pm: str = "±") -> pd.DataFrame:
    """The table as text: each metric ``mean ± std`` (``mean`` for one seed), no std columns."""
    shown = table[[*TEXT_COLUMNS, "n"]].copy()
    shown["n"] = [("" if n is None or (isinstance(n, float) and math.isnan(n)) else str(int(n)))
                  for n in table["n"]]
    for metric in ROW_METRICS:
        shown[METRIC_TITLES[metric]] = [_mean_std(m, s, digits, pm)
                                        for m, s in zip(table[metric], table[f"{metric}_std"])]
    shown["comparison"] = table["comparison"]
    shown["notes"] = table["notes"]
    return shown


def _mean_std(mean: Any, std: Any, digits: int, pm: str) -> str:
    mean, std = _number(mean), _number(std)
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" + (f" {pm} {std:.{digits}f}" if std is not None else "")


# -- exports ------------------------------------------------------------------------------------------
def to_csv(table: pd.DataFrame) -> str:
    """CSV with each metric's mean and std as numbers (empty where undefined)."""
    return table.to_csv(index=False, float_format="%.6g")


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A Markdown table (``mean ± std``), for a README or a paper draft."""
    return shown_table(table, digits).to_markdown(index=False) + "\n"


def to_latex(table: pd.DataFrame, digits: int = 3) -> str:
    """A LaTeX ``tabular`` (booktabs; ``mean $\\pm$ std``), for a paper."""
    shown = shown_table(table, digits, pm="PLUSMINUS")
    latex = shown.to_latex(index=False, escape=True, column_format="l" * len(shown.columns),
                           caption="Crossing-intent results on JAAD (mean ± std over seeds; n = seeds)."
                           .replace("±", "$\\pm$"), label="tab:pedsense-leaderboard")
    return latex.replace("PLUSMINUS", "$\\pm$").replace("—", "--")
