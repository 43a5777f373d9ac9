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
(PyTorch last, which loads the run's own weights).
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
    BackendChoice,
    BackendUnavailable,
)
from pedsense.infer.models import Detector, ExportedCropClassifier, WeightsMissing
from pedsense.io import read_json, write_json_atomic
from pedsense.runfolder import now_iso

TIMINGS_RECORD = "export_timings.json"
#: timed calls per engine after one warm-up (the minimum is kept: the least disturbed by load)
TIMED_CALLS = 2
PROBE_FRAME_HW = (720, 1280)
PROBE_CROPS = 4


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


def time_model(model: Any) -> float:
    """Seconds of one representative call (the fastest of ``TIMED_CALLS`` after a warm-up)."""
    probe(model)
    times = []
    for _ in range(TIMED_CALLS):
        started = time.perf_counter()
        probe(model)
        times.append(time.perf_counter() - started)
    return min(times)


def _exports_stamp(choice: BackendChoice) -> dict:
    return {format: record.get("exported_at") for format, record in sorted(choice.records.items())}


def recorded_timings(run_dir: Path, choice: BackendChoice, group: str) -> dict[str, float] | None:
    """{engine: seconds} measured for ``group`` on this machine against these exports, if any."""
    entry = (read_json(Path(run_dir) / TIMINGS_RECORD, {}) or {}).get(machine_key())
    if not isinstance(entry, dict) or entry.get("exports") != _exports_stamp(choice):
        return None
    seconds = (entry.get("groups") or {}).get(group)
    if not isinstance(seconds, dict) or not set(choice.candidates) <= set(seconds):
        return None
    return {engine: float(seconds[engine]) for engine in choice.candidates}


def record_timings(run_dir: Path, choice: BackendChoice, group: str, seconds: dict[str, float]) -> None:
    """Add ``group``'s timings to this machine's entry (other machines' entries are kept)."""
    path = Path(run_dir) / TIMINGS_RECORD
    everything = read_json(path, {}) or {}
    key, stamp = machine_key(), _exports_stamp(choice)
    entry = everything.get(key) if isinstance(everything.get(key), dict) else {}
    if entry.get("exports") != stamp:
        entry = {"exports": stamp, "groups": {}}
    entry["groups"][group] = {engine: round(value, 5) for engine, value in seconds.items()}
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
    """The stage ``group`` built on the fastest engine that loads.

    Returns:
        (model, engine, sentences: why this engine, and every engine passed over).
    """
    name = "+".join(group)
    notes: list[str] = []
    if len(choice.candidates) == 1:
        return build(choice.candidates[0]), choice.candidates[0], notes
    known = recorded_timings(run_dir, choice, name)
    order = sorted(choice.candidates, key=known.get) if known else list(choice.candidates)
    if known:
        notes.append(f"{name}: fastest measured here ({_describe(known)})")
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
    seconds = {engine: time_model(model) for engine, model in models.items()}
    if len(seconds) == len(choice.candidates):
        record_timings(run_dir, choice, name, seconds)
    fastest = min(seconds, key=seconds.get)
    notes.append(f"{name}: fastest measured here ({_describe(seconds)})")
    return models[fastest], fastest, notes


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
    timed = tuple(n for n in notes if "fastest measured here" in n)
    measured = choice.measured + timed
    passed = tuple(n for n in notes if n not in timed)
    return replace(choice, engines={**choice.engines, **engines}, measured=measured,
                   reason="; ".join(measured) if measured else choice.reason,
                   notes=tuple(dict.fromkeys(choice.notes + passed)))


__all__ = ["TIMINGS_RECORD", "exported_classifier", "exported_detector", "group_of", "load_fastest", "machine_key",
           "probe", "record_timings", "recorded_timings", "settle", "time_model"]
