"""Each stage of a predictor on the fastest engine measured on this machine.

``choose_backend`` (``pedsense.infer.backends``) says which engines may run a run; here each
stage (the detector, the classifier, a ResNet-LSTM's features + temporal halves) is loaded on
the fastest of them::

    timings known for this machine and these exports?  ── yes ─► fastest first
        │ no
        ▼
    load the stage on every candidate engine, time a few representative calls
    (a 1280x720 frame for a detector, a batch of crops for a classifier), record them in
    ``export_timings.json`` beside ``export.json``, keep the fastest model

An engine that fails to load its export is passed over, saying which and why, for the next
(PyTorch last, which loads the run's own weights). A reduced-precision engine (``openvino-bf16``)
is kept only where it agrees with the float32 model on a probe of distinct crops: every
probability within ``AGREEMENT_TOLERANCE``; what it measured is recorded with the timings, and said.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pedsense.infer.backends import (
    ENGINE_GROUPS,
    ENGINE_NAMES,
    PYTORCH,
    REDUCED_PRECISION,
    REDUCED_PRECISION_COMPONENTS,
    BackendChoice,
    BackendUnavailable,
)
from pedsense.infer.models import Detector, ExportedCropClassifier, WeightsMissing
from pedsense.io import read_json, write_json_atomic
from pedsense.runfolder import now_iso

TIMINGS_RECORD = "export_timings.json"
#: timed calls per engine after one warm-up, in turns (the minimum is kept: the least disturbed by load)
TIMED_CALLS = 3
PROBE_FRAME_HW = (720, 1280)
PROBE_CROPS = 4
#: a reduced-precision engine is used only when, on AGREEMENT_CROPS distinct probe crops (or
#: sequences), no class probability differs from the float32 model's by more
AGREEMENT_TOLERANCE = 0.02
AGREEMENT_CROPS = 8
MEASURED, AGREES = "fastest measured here", "agrees with float32"  # what the choice's reason quotes


def machine_key() -> str:
    """What a timing holds for: this host, its CPU and torch's thread count."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} · {cpu} · {torch.get_num_threads()} threads"


def probe(model: Any) -> None:
    """One representative call of a stage model."""
    rng = np.random.default_rng(0)
    if isinstance(model, Detector):
        model.detect(rng.integers(0, 255, (*PROBE_FRAME_HW, 3), dtype=np.uint8), 0.25)
        return
    crops = [rng.integers(0, 255, (model.crop_size[1], model.crop_size[0], 3), dtype=np.uint8)] * PROBE_CROPS
    if model.splits_into_features:
        features = model.embed(crops)
        model.classify_feature_sequences([np.stack([features[0]] * model.sequence_length)] * PROBE_CROPS)
    else:
        model.classify(crops)


def probe_probabilities(model: Any) -> np.ndarray:
    """A crop model's class probabilities on ``AGREEMENT_CROPS`` distinct, smooth random crops
    (a sequence model: as many sequences of them): (N, C)."""
    import cv2

    rng = np.random.default_rng(1)
    width, height = model.crop_size
    crops = [cv2.resize(rng.integers(0, 255, (8, 4, 3), dtype=np.uint8), (width, height),
                        interpolation=cv2.INTER_LINEAR) for _ in range(AGREEMENT_CROPS)]
    if not model.splits_into_features:
        return model.classify(crops)
    features = model.embed(crops)
    steps = np.arange(model.sequence_length)
    return model.classify_feature_sequences([features[(shift + steps) % len(features)]
                                             for shift in range(AGREEMENT_CROPS)])


def disagreement(reduced: Any, reference: Any) -> float:
    """How far a reduced-precision model's probe probabilities lie from the float32 model's: the
    largest absolute difference (within the tolerance, only a near-tie can change class)."""
    return float(np.abs(probe_probabilities(reduced) - probe_probabilities(reference)).max())


def stage_candidates(choice: BackendChoice, group: tuple[str, ...]) -> tuple[str, ...]:
    """The engines that may run a stage: a reduced-precision engine runs only crop models
    (``REDUCED_PRECISION_COMPONENTS``); elsewhere its float32 twin stands in for it."""
    if any(component in REDUCED_PRECISION_COMPONENTS for component in group):
        return choice.candidates
    return tuple(dict.fromkeys(REDUCED_PRECISION.get(engine, (engine,))[0] for engine in choice.candidates))


def time_models(models: dict[str, Any]) -> dict[str, float]:
    """{engine: seconds of one representative call}: after a warm-up each, the engines take turns
    for ``TIMED_CALLS`` rounds, so a burst of load on the machine (the first use is often a busy
    moment) falls on all of them alike; each engine's fastest call is kept."""
    for model in models.values():
        probe(model)
    times: dict[str, list[float]] = {engine: [] for engine in models}
    for _ in range(TIMED_CALLS):
        for engine, model in models.items():
            started = time.perf_counter()
            probe(model)
            times[engine].append(time.perf_counter() - started)
    return {engine: min(values) for engine, values in times.items()}


def _exports_stamp(choice: BackendChoice) -> dict:
    return {format: record.get("exported_at") for format, record in sorted(choice.records.items())}


def _machine_entry(run_dir: Path, choice: BackendChoice) -> dict | None:
    everything = read_json(Path(run_dir) / TIMINGS_RECORD, {})
    entry = everything.get(machine_key()) if isinstance(everything, dict) else None
    if not isinstance(entry, dict) or entry.get("exports") != _exports_stamp(choice):
        return None
    return entry


def recorded(run_dir: Path, choice: BackendChoice, group: str,
             candidates: tuple[str, ...]) -> tuple[dict[str, float] | None, dict[str, float]]:
    """What was measured for ``group`` on this machine against these exports, read once:
    ({engine: seconds} for every one of ``candidates``, or None when some was not measured;
    {reduced-precision engine: its disagreement with float32})."""
    entry = _machine_entry(run_dir, choice) or {}
    seconds = _numbers(entry, "groups", group)
    timings = {engine: seconds[engine] for engine in candidates} if set(candidates) <= set(seconds) else None
    return timings, _numbers(entry, "agreement", group)


def _numbers(entry: dict, part: str, group: str) -> dict[str, float]:
    """{engine: value} of an entry's ``part`` ("groups": seconds, "agreement") for ``group``,
    the entries that are numbers only (a hand-edited or foreign file's others are left out, so
    what they stood for is measured again)."""
    record = entry.get(part)
    record = record.get(group) if isinstance(record, dict) else None
    if not isinstance(record, dict):
        return {}
    return {engine: float(value) for engine, value in record.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def record_timings(run_dir: Path, choice: BackendChoice, group: str, seconds: dict[str, float],
                   disagreements: dict[str, float] | None = None) -> None:
    """Add ``group``'s timings (and its reduced-precision engines' disagreement) to this machine's
    entry (other machines' entries are kept)."""
    path = Path(run_dir) / TIMINGS_RECORD
    everything = read_json(path, {})
    everything = everything if isinstance(everything, dict) else {}  # not ours: written anew
    key, stamp = machine_key(), _exports_stamp(choice)
    entry = everything.get(key) if isinstance(everything.get(key), dict) else {}
    if entry.get("exports") != stamp:
        entry = {"exports": stamp}
    for part in ("groups", "agreement"):
        entry[part] = entry[part] if isinstance(entry.get(part), dict) else {}
    entry["groups"][group] = {engine: round(value, 5) for engine, value in seconds.items()}
    if disagreements:
        entry["agreement"][group] = {engine: round(value, 5) for engine, value in disagreements.items()}
    entry["measured_at"] = now_iso()
    everything[key] = entry
    try:
        write_json_atomic(path, everything)
    except OSError:  # a read-only run folder: the timing is simply measured again next time
        pass


def _describe(seconds: dict[str, float]) -> str:
    ranked = sorted(seconds.items(), key=lambda item: item[1])
    return " · ".join(f"{ENGINE_NAMES[engine]} {value * 1000:.0f} ms" for engine, value in ranked)


def load_fastest(run_dir: Path, choice: BackendChoice, group: tuple[str, ...],
                 build: Callable[[str], Any]) -> tuple[Any, str, list[str]]:
    """The stage ``group`` built on the fastest engine that loads (and, in reduced precision,
    agrees with float32).

    Returns:
        (model, engine, sentences: why this engine, and every engine passed over).
    """
    name = "+".join(group)
    notes: list[str] = []
    candidates = stage_candidates(choice, group)
    if len(candidates) == 1:
        if candidates != choice.candidates:  # bf16 asked for, and this stage is not a crop model
            asked = ENGINE_NAMES[choice.candidates[0]]
            notes.append(f"the {name} runs at float32 ({asked} runs the crop models only)")
        return build(candidates[0]), candidates[0], notes
    known, disagreements = recorded(run_dir, choice, name, candidates)
    if known:
        notes.append(f"{name}: {MEASURED} ({_describe(known)})")
        notes.extend(_agreement_notes(name, disagreements))
        agreeing = [engine for engine in candidates
                    if engine not in REDUCED_PRECISION or disagreements.get(engine, 1.0) <= AGREEMENT_TOLERANCE]
        order = sorted(agreeing, key=known.get)
    else:
        order = list(candidates)
    models: dict[str, Any] = {}
    for engine in order:
        try:
            models[engine] = build(engine)
        except (BackendUnavailable, WeightsMissing, OSError, RuntimeError) as exc:
            if engine == PYTORCH:
                raise
            notes.append(f"{ENGINE_NAMES[engine]} could not load the {name} export ({_first_line(exc)}): "
                         f"passed over")
            continue
        if known:  # the fastest that loads
            return models[engine], engine, notes
    if not models:
        raise BackendUnavailable(f"No engine could load the run's {name}: " + "; ".join(notes))
    seconds = time_models(models)
    reference = models[PYTORCH]  # auto always has PyTorch, the trained model itself, last
    disagreements = {engine: disagreement(models[engine], reference)
                     for engine in models if engine in REDUCED_PRECISION}
    if len(seconds) == len(candidates):
        record_timings(run_dir, choice, name, seconds, disagreements)
    usable = [engine for engine in seconds if disagreements.get(engine, 0.0) <= AGREEMENT_TOLERANCE]
    fastest = min(usable, key=seconds.get)
    notes.append(f"{name}: {MEASURED} ({_describe(seconds)})")
    notes.extend(_agreement_notes(name, disagreements))
    return models[fastest], fastest, notes


def _agreement_notes(name: str, disagreements: dict[str, float]) -> list[str]:
    notes = []
    for engine, value in disagreements.items():
        if value > AGREEMENT_TOLERANCE:
            notes.append(f"{ENGINE_NAMES[engine]} differs by up to {value:.3f} from float32 on the {name} "
                         f"probe (tolerance {AGREEMENT_TOLERANCE}): passed over")
        else:
            notes.append(f"{name}: {ENGINE_NAMES[engine]} {AGREES} to {value:.3f} on the probe")
    return notes


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def exported_detector(run_dir: Path, choice: BackendChoice, engine: str) -> Detector:
    """The run's exported detector on ``engine`` (ONNX Runtime or OpenVINO)."""
    path, part = choice.component(run_dir, "detector", engine)
    return Detector(path, device="cpu", imgsz=part.get("imgsz"), names=part.get("names"))


def exported_classifier(run_dir: Path, choice: BackendChoice, engine: str,
                        components: tuple[str, ...]) -> ExportedCropClassifier:
    """The run's exported ResNet classifier (``components`` of its export) on ``engine``."""
    files, meta = {}, {}
    for name in components:
        files[name], part = choice.component(run_dir, name, engine)
        meta = part.get("meta") or meta
    return ExportedCropClassifier(files, meta, engine)


def group_of(model_type: str, component: str) -> tuple[str, ...]:
    """The components that share one engine with ``component``."""
    return next(g for g in ENGINE_GROUPS.get(model_type, ((component,),)) if component in g)


def settle(choice: BackendChoice, engines: dict[str, str], notes: list[str]) -> BackendChoice:
    """The choice with the engines in use and what was said on the way."""
    timed = tuple(n for n in notes if MEASURED in n or AGREES in n)
    measured = choice.measured + timed
    passed = tuple(n for n in notes if n not in timed)
    return replace(choice, engines={**choice.engines, **engines}, measured=measured,
                   reason="; ".join(measured) if measured else choice.reason,
                   notes=tuple(dict.fromkeys(choice.notes + passed)))


__all__ = ["AGREEMENT_CROPS", "AGREEMENT_TOLERANCE", "TIMINGS_RECORD", "disagreement", "exported_classifier",
           "exported_detector", "group_of", "load_fastest", "machine_key", "probe", "probe_probabilities",
           "record_timings", "recorded", "settle", "stage_candidates", "time_models"]
