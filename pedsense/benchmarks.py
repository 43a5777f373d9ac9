"""Published JAAD crossing-prediction results, and how a pedsense run compares with them.

Every number here is attributed to a table of its paper. Only numbers that could be checked
against the source are listed; precision/recall are ``None`` where they were not verified.
The published protocol is the JAAD benchmark's: 16 observed boxes, TTE 30-60, overlap 0.8,
``crossing = -1`` as not-crossing, windows counted in boxes, JAAD's ``default`` split, scored on
its ``test`` part (see ``pedsense.data.intent``). The benchmark code computes AUC from
thresholded predictions, so a published AUC stands beside pedsense's ``auc_binary``; the
probability ROC-AUC (``roc_auc``) is shown separately under its own name.

A run's row is marked comparable with a published row only when nothing differs: the run was
scored on ``test``, under the benchmark's protocol, split and sample type, on JAAD (not the
synthetic demo set), per observation window, with the same inputs. Every difference is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from pedsense.data.intent import IntentOptions

WACV2021 = ("I. Kotseruba, A. Rasouli, J. K. Tsotsos, \"Benchmark for Evaluating Pedestrian "
            "Action Prediction\", WACV 2021, pp. 1258-1268")
WACV2021_URL = ("https://openaccess.thecvf.com/content/WACV2021/papers/"
                "Kotseruba_Benchmark_for_Evaluating_Pedestrian_Action_Prediction_WACV_2021_paper.pdf")

MFT2025 = ("Multi-Context Fusion Transformer for Pedestrian Crossing Intention Prediction in Urban "
           "Environments (MFT), arXiv:2511.20011, 2025")
MFT2025_URL = "https://arxiv.org/abs/2511.20011"
PRESENCE_LEAK_NOTE = ("presence leak: its inputs include behaviour tags, which JAAD_all has only "
                      "for behaviour pedestrians while every bystander is labelled not-crossing, "
                      "so their presence alone predicts the label (never comparable)")

# What the models see. pedsense's classifiers see RGB pedestrian crops only.
INPUT_NAMES = {"rgb": "RGB frames/crops", "box": "bounding-box coordinates",
               "pose": "2D pose keypoints", "speed": "ego-vehicle speed/action",
               "flow": "optical flow", "traffic": "annotated traffic scene",
               "behaviour": "annotated behaviour tags/attributes"}
BENCHMARK_OPTIONS = IntentOptions()  # the protocol the published numbers follow
BENCHMARK_SPLIT = "default"          # JAAD's split files the published numbers use ...
BENCHMARK_PART = "test"              # ... and the part they are scored on
METRICS = ("accuracy", "auc", "f1", "precision", "recall")  # as published (auc: thresholded)
# The columns of a comparison row, published and run alike.
ROW_METRICS = ("accuracy", "auc_binary", "roc_auc", "f1", "precision", "recall")


@dataclass(frozen=True)
class PublishedResult:
    """One published result on JAAD (``dataset`` is ``JAAD_beh`` or ``JAAD_all``)."""

    model: str
    dataset: str
    accuracy: float
    auc: float | None
    f1: float | None
    precision: float | None
    recall: float | None
    inputs: tuple[str, ...]
    source: str
    locator: str
    url: str = ""
    leak: str = ""  # why no run is ever comparable with this row ("" when it can be)

    @property
    def sample_type(self) -> str:
        """``beh`` or ``all``, the pedsense ``IntentOptions.sample_type`` of this variant."""
        return self.dataset.split("_", 1)[1]

    def as_row(self) -> dict[str, Any]:
        """The published numbers as a comparison row: the published AUC is ``auc_binary``."""
        return {"model": self.model, "dataset": self.dataset, "accuracy": self.accuracy,
                "auc_binary": self.auc, "roc_auc": None, "f1": self.f1,
                "precision": self.precision, "recall": self.recall,
                "inputs": ", ".join(self.inputs), "source": f"{self.source}, {self.locator}",
                "url": self.url, "leak": self.leak}


PUBLISHED_JAAD: tuple[PublishedResult, ...] = (
    PublishedResult("PCPA", "JAAD_all", 0.85, 0.86, 0.68, None, None,
                    ("rgb", "pose", "box", "speed"), WACV2021,
                    "Table 3 (PCPA, temporal + modality attention)", WACV2021_URL),
    PublishedResult("C3D", "JAAD_all", 0.84, 0.81, 0.65, None, None, ("rgb",), WACV2021,
                    "Table 2 (C3D, RGB)", WACV2021_URL),
    PublishedResult("I3D", "JAAD_all", 0.81, 0.74, 0.63, None, None, ("rgb",), WACV2021,
                    "Table 2 (I3D, RGB)", WACV2021_URL),
    # Annotation-only models (no pixels): what the context family stands beside.
    PublishedResult("MFT (box + vehicle only)", "JAAD_beh", 0.48, 0.51, 0.49, None, None,
                    ("box", "speed"), MFT2025, "ablation by input context (localization + vehicle "
                    "motion only)", MFT2025_URL),
    PublishedResult("MFT (box + vehicle only)", "JAAD_all", 0.69, 0.77, 0.51, None, None,
                    ("box", "speed"), MFT2025, "ablation by input context (localization + vehicle "
                    "motion only)", MFT2025_URL),
    PublishedResult("MFT", "JAAD_beh", 0.705, 0.65, 0.787, None, None,
                    ("box", "speed", "traffic", "behaviour"), MFT2025,
                    "main results (all four contexts)", MFT2025_URL),
    PublishedResult("MFT", "JAAD_all", 0.93, None, None, None, None,
                    ("box", "speed", "traffic", "behaviour"), MFT2025, "abstract (accuracy)",
                    MFT2025_URL, leak=PRESENCE_LEAK_NOTE),
)


def published_results(dataset: str | None = None) -> list[dict[str, Any]]:
    """The reference table as pandas-ready dicts, optionally one variant (``JAAD_all``)."""
    return [r.as_row() for r in PUBLISHED_JAAD if dataset is None or r.dataset == dataset]


def compare_with_published(run_metrics: Mapping[str, float], inputs: Iterable[str] = ("rgb",), *,
                           options: IntentOptions | Mapping[str, Any] | None = None,
                           task: str = "intent", synthetic: bool = False,
                           split: str = BENCHMARK_SPLIT, evaluated_on: str = BENCHMARK_PART,
                           unit: str = "", label: str = "this run") -> list[dict[str, Any]]:
    """The run's own metrics, then every published row marked comparable or not, and why.

    Args:
        run_metrics: the run's metrics (``pedsense.metrics.classification_metrics``): ``accuracy``,
            ``auc_binary`` (the benchmark's AUC), ``roc_auc``, ``f1``, ``precision``, ``recall``.
        inputs: what the run's model sees (names from ``INPUT_NAMES``).
        options: the run's intent protocol (``IntentOptions`` or its ``as_dict()``);
            ``None`` means the benchmark's.
        task: ``intent`` or ``action``; an ``action`` run answers a different question.
        synthetic: the run was trained/tested on the synthetic demo set.
        split: the video split the run's data used (``default``, ``high_visibility``,
            ``all_videos`` or ``random``).
        evaluated_on: the part it was scored on (``train``, ``val``, ``test``).
        unit: how the run was scored when not per observation window ("" when it was), e.g.
            "scored per frame (single crops), not per 16-frame window".
        label: the name of the run's row.

    Returns:
        Dicts with ``model, dataset, accuracy, auc_binary, roc_auc, f1, precision, recall,
        inputs, comparison, comparable, caveats, source, url``. A published row's
        ``auc_binary`` is its published AUC (the same definition); its ``roc_auc`` is None.
        ``comparison`` is ``"this run"``, ``"comparable"`` or ``"not comparable"``;
        ``caveats`` names every difference; ``comparable`` is True only when there is none.
    """
    if isinstance(options, Mapping):
        options = IntentOptions.from_dict(options)
    options = options or BENCHMARK_OPTIONS
    run_inputs = tuple(inputs)
    own_caveats = _data_caveats(options, task, synthetic, split, evaluated_on, unit)
    own = {"model": label, "dataset": "synthetic" if synthetic else f"JAAD_{options.sample_type}",
           **{m: _maybe_float(run_metrics.get(m)) for m in ROW_METRICS},
           "inputs": ", ".join(run_inputs), "comparison": "this run", "comparable": None,
           "caveats": "; ".join(own_caveats), "source": "pedsense", "url": ""}
    rows = [own]
    for result in PUBLISHED_JAAD:
        caveats = ([result.leak] if result.leak else []) \
            + _row_caveats(result, options, run_inputs, synthetic) + own_caveats
        rows.append({**result.as_row(), "comparison": "not comparable" if caveats else "comparable",
                     "comparable": not caveats, "caveats": "; ".join(caveats)})
    return rows


def _row_caveats(result: PublishedResult, options: IntentOptions, run_inputs: tuple[str, ...],
                 synthetic: bool) -> list[str]:
    """The differences between the run and one published row: inputs, then sample type."""
    caveats = [note for note in [_input_difference(result.inputs, run_inputs)] if note]
    if not synthetic and options.sample_type != result.sample_type:
        caveats.append(f"published on {result.dataset}, this run on JAAD_{options.sample_type}")
    return caveats


def _input_difference(published: tuple[str, ...], ours: tuple[str, ...]) -> str:
    extra, missing = sorted(set(published) - set(ours)), sorted(set(ours) - set(published))
    parts = []
    if extra:
        parts.append("published model also uses " + ", ".join(INPUT_NAMES.get(i, i) for i in extra))
    if missing:
        parts.append("this run also uses " + ", ".join(INPUT_NAMES.get(i, i) for i in missing))
    return "; ".join(parts)


def _data_caveats(options: IntentOptions, task: str, synthetic: bool, split: str,
                  evaluated_on: str, unit: str) -> list[str]:
    """Every way the run's data, protocol or scoring differs from the benchmark's."""
    caveats = []
    if evaluated_on != BENCHMARK_PART:
        caveats.append(f"scored on the '{evaluated_on}' split; published numbers are "
                       f"'{BENCHMARK_PART}'-split numbers")
    if task != "intent":
        caveats.append(f"this run is task '{task}' (is the pedestrian crossing now), "
                       "not the benchmark's 'intent' (will they cross in 1-2 s)")
    if synthetic:
        caveats.append("this run is on the synthetic demo set, not JAAD")
    if split != BENCHMARK_SPLIT:
        caveats.append(f"this run uses split '{split}', the benchmark '{BENCHMARK_SPLIT}'")
    if task == "intent":
        protocol = ("obs_length", "tte", "overlap", "irrelevant", "placement")
        changed = [p for p in protocol if getattr(options, p) != getattr(BENCHMARK_OPTIONS, p)]
        if changed:
            caveats.append("different protocol: " + ", ".join(
                f"{p}={getattr(options, p)} (benchmark {getattr(BENCHMARK_OPTIONS, p)})" for p in changed))
    if unit:
        caveats.append(unit)
    return caveats


def trivial_baselines(labels: Sequence[int]) -> list[dict[str, Any]]:
    """What answering one class for every window scores on these windows (``labels`` (N,), 1
    crossing): "always crossing" and "always not-crossing", each a comparison row with every
    ``pedsense.metrics`` metric. On real JAAD test: always crossing F1 0.770, accuracy 0.626 on
    JAAD_beh; always not-crossing accuracy 0.825 on JAAD_all.
    """
    from pedsense.metrics import classification_metrics

    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    rows = []
    for name, answer in (("always crossing", 1), ("always not-crossing", 0)):
        metrics = classification_metrics(labels, np.full(len(labels), float(answer)))
        rows.append({"model": name, **{m: metrics.get(m) for m in (*ROW_METRICS, "balanced_accuracy")},
                     "n": metrics["n"], "inputs": "none", "comparison": "trivial baseline",
                     "source": "computed on the same windows"})
    return rows


def _maybe_float(value) -> float | None:
    return None if value is None else float(value)
