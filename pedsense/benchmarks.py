"""Published JAAD crossing-prediction results, and how a pedsense run compares with them.

Every number here is attributed to a table of its paper. Only numbers that could be checked
against the source are listed; precision/recall are ``None`` where they were not verified.
The published protocol is the JAAD benchmark's: 16 observed frames, TTE 30-60 frames,
overlap 0.8, the ``default`` split (see ``pedsense.data.intent``). Note: the benchmark code
computes AUC from thresholded predictions; compare it with pedsense's ``auc_binary``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from pedsense.data.intent import IntentOptions

WACV2021 = ("I. Kotseruba, A. Rasouli, J. K. Tsotsos, \"Benchmark for Evaluating Pedestrian "
            "Action Prediction\", WACV 2021, pp. 1258-1268")
WACV2021_URL = ("https://openaccess.thecvf.com/content/WACV2021/papers/"
                "Kotseruba_Benchmark_for_Evaluating_Pedestrian_Action_Prediction_WACV_2021_paper.pdf")

# What the models see. pedsense's classifiers see RGB pedestrian crops only.
INPUT_NAMES = {"rgb": "RGB frames/crops", "box": "bounding-box coordinates",
               "pose": "2D pose keypoints", "speed": "ego-vehicle speed/action",
               "flow": "optical flow"}
BENCHMARK_OPTIONS = IntentOptions()  # the protocol the published numbers follow
METRICS = ("accuracy", "auc", "f1", "precision", "recall")


@dataclass(frozen=True)
class PublishedResult:
    """One published result on JAAD (``dataset`` is ``JAAD_beh`` or ``JAAD_all``)."""

    model: str
    dataset: str
    accuracy: float
    auc: float
    f1: float
    precision: float | None
    recall: float | None
    inputs: tuple[str, ...]
    source: str
    locator: str
    url: str = ""

    @property
    def sample_type(self) -> str:
        """``beh`` or ``all``, the pedsense ``IntentOptions.sample_type`` of this variant."""
        return self.dataset.split("_", 1)[1]

    def as_row(self) -> dict[str, Any]:
        return {"model": self.model, "dataset": self.dataset,
                **{m: getattr(self, m) for m in METRICS},
                "inputs": ", ".join(self.inputs), "source": f"{self.source}, {self.locator}",
                "url": self.url}


PUBLISHED_JAAD: tuple[PublishedResult, ...] = (
    PublishedResult("PCPA", "JAAD_all", 0.85, 0.86, 0.68, None, None,
                    ("rgb", "pose", "box", "speed"), WACV2021,
                    "Table 3 (PCPA, temporal + modality attention)", WACV2021_URL),
    PublishedResult("C3D", "JAAD_all", 0.84, 0.81, 0.65, None, None, ("rgb",), WACV2021,
                    "Table 2 (C3D, RGB)", WACV2021_URL),
    PublishedResult("I3D", "JAAD_all", 0.81, 0.74, 0.63, None, None, ("rgb",), WACV2021,
                    "Table 2 (I3D, RGB)", WACV2021_URL),
)


def published_results(dataset: str | None = None) -> list[dict[str, Any]]:
    """The reference table as pandas-ready dicts, optionally one variant (``JAAD_all``)."""
    return [r.as_row() for r in PUBLISHED_JAAD if dataset is None or r.dataset == dataset]


def compare_with_published(run_metrics: Mapping[str, float], inputs: Iterable[str] = ("rgb",), *,
                           options: IntentOptions | Mapping[str, Any] | None = None,
                           task: str = "intent", synthetic: bool = False,
                           label: str = "this run") -> list[dict[str, Any]]:
    """The run's own metrics, then every published row marked by how comparable it is.

    Args:
        run_metrics: the run's test-split metrics (``accuracy``, ``auc``, ``f1``, ``precision``,
            ``recall``; ``auc_binary`` too when known).
        inputs: what the run's model sees (names from ``INPUT_NAMES``).
        options: the run's intent protocol (``IntentOptions`` or its ``as_dict()``);
            ``None`` means the benchmark's.
        task: ``intent`` or ``action``; an ``action`` run answers a different question.
        synthetic: the run was trained/tested on the synthetic demo set.
        label: the name of the run's row.

    Returns:
        Dicts with ``model, dataset, accuracy, auc, f1, precision, recall, inputs, comparison,
        caveats, comparable, source``. ``comparison`` is ``"different inputs"`` or
        ``"same inputs"``; ``caveats`` lists every other difference; ``comparable`` is True only
        when there is none of either.
    """
    if isinstance(options, Mapping):
        options = IntentOptions.from_dict(options)
    options = options or BENCHMARK_OPTIONS
    run_inputs = tuple(inputs)
    own = {"model": label, "dataset": f"JAAD_{options.sample_type}" if not synthetic else "synthetic",
           **{m: _maybe_float(run_metrics.get(m)) for m in METRICS},
           "auc_binary": _maybe_float(run_metrics.get("auc_binary")),
           "inputs": ", ".join(run_inputs), "comparison": "this run",
           "caveats": "; ".join(_data_caveats(options, task, synthetic, None)),
           "comparable": None, "source": "pedsense", "url": ""}
    rows = [own]
    for result in PUBLISHED_JAAD:
        input_note = _input_difference(result.inputs, run_inputs)
        caveats = _data_caveats(options, task, synthetic, result)
        rows.append({**result.as_row(), "auc_binary": None,
                     "comparison": "different inputs" if input_note else "same inputs",
                     "caveats": "; ".join(([input_note] if input_note else []) + caveats),
                     "comparable": not input_note and not caveats})
    return rows


def _input_difference(published: tuple[str, ...], ours: tuple[str, ...]) -> str:
    extra, missing = sorted(set(published) - set(ours)), sorted(set(ours) - set(published))
    parts = []
    if extra:
        parts.append("published model also uses " + ", ".join(INPUT_NAMES.get(i, i) for i in extra))
    if missing:
        parts.append("this run also uses " + ", ".join(INPUT_NAMES.get(i, i) for i in missing))
    return "; ".join(parts)


def _data_caveats(options: IntentOptions, task: str, synthetic: bool,
                  result: PublishedResult | None) -> list[str]:
    """Every way the run's data or protocol differs from the benchmark's."""
    caveats = []
    if task != "intent":
        caveats.append(f"this run is task '{task}' (is the pedestrian crossing now), "
                       "not the benchmark's 'intent' (will they cross in 1-2 s)")
    if synthetic:
        caveats.append("this run is on the synthetic demo set, not JAAD")
    if result is not None and options.sample_type != result.sample_type:
        caveats.append(f"published on {result.dataset}, this run on JAAD_{options.sample_type}")
    if options.split != BENCHMARK_OPTIONS.split:
        caveats.append(f"this run uses split '{options.split}', the benchmark 'default'")
    protocol = ("obs_length", "tte", "overlap")
    changed = [p for p in protocol if getattr(options, p) != getattr(BENCHMARK_OPTIONS, p)]
    if changed:
        caveats.append("different protocol: " + ", ".join(
            f"{p}={getattr(options, p)} (benchmark {getattr(BENCHMARK_OPTIONS, p)})" for p in changed))
    if options.irrelevant != "not-crossing":
        caveats.append("crossing=-1 pedestrians excluded (the benchmark code counts them "
                       "not-crossing; set irrelevant='not-crossing' to match)")
    return caveats


def _maybe_float(value) -> float | None:
    return None if value is None else float(value)
