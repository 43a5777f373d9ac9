"""What a sweep is: one trainer, a base config, the parameters to vary, seeds, sampler, budget.

Every value is checked against the trainer's parameter spec (``pedsense.train.params``): the
kinds, bounds and choices of a varied parameter are that parameter's, so a range can never
reach outside what the trainer accepts. :meth:`SweepSpec.checked` returns the canonical spec or
raises :class:`SweepError` with one message per bad field, each naming the fix. Importing this
module is cheap (no Optuna, no torch).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from pedsense.errors import ConfigError
from pedsense.runfolder import BEST_METRIC, find_run
from pedsense.train.params import FormError, Param, spec_for
from pedsense.train.presets import preset_params

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median")
MAX_BUDGET = 200
# Kinds a sweep can vary (values), and those a range can span.
VARIED_KINDS = ("int", "float", "bool", "choice", "variant", "size")
RANGE_KINDS = ("int", "float")
# Parameters a sweep never varies, and why (the message the user sees).
NOT_VARIED = {
    "name": "the trials' runs are named <sweep>-t<trial>; a name in the base config is their prefix",
    "device": "the device says where the trials run, not how they learn: set it in the base config",
    "seed": "seeds are the sweep's own list (seeds), so that every configuration runs with each seed",
    "task": "the task decides which dataset the trials train on: run one sweep per task",
}
INTENT_GROUP = "intent"  # the hybrid's protocol builds the crops every trial trains on


class SweepError(FormError):
    """An invalid sweep (or a study that cannot be joined); ``field_errors`` maps field -> message."""


@dataclass(frozen=True)
class Range:
    """A span of a number parameter: ``low`` to ``high`` inclusive, log-uniform when ``log``;
    with ``step`` it is the values ``low, low + step, ... <= high`` (what a grid needs)."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def describe(self) -> str:
        text = f"{self.low:g} to {self.high:g}"
        if self.step:
            text += f" step {self.step:g}"
        return text + (" (log)" if self.log else "")

    def as_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step}

    def values(self) -> tuple:
        """The grid values of a stepped range (rounded so 0.1 + 0.2 reads 0.3)."""
        if all(isinstance(v, int) for v in (self.low, self.high, self.step)):
            return tuple(range(self.low, self.high + 1, self.step))
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return tuple(round(self.low + k * self.step, 12) for k in range(count))


@dataclass(frozen=True)
class SweepSpec:
    """One sweep. ``varied`` maps a parameter to a tuple of values or a :class:`Range`;
    ``seeds`` empty means the base config's seed; ``budget`` None means the whole grid."""

    name: str
    model_type: str
    varied: Mapping[str, Any]
    base: Mapping[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    sampler: str = "grid"
    budget: int | None = None
    pruner: str = "none"
    sampler_seed: int = 0
    base_source: str = "the trainer's defaults"

    @property
    def metric(self) -> str:
        """The validation metric a trial's value is (the run's best, higher is better)."""
        return BEST_METRIC.get(self.model_type, ("val_acc", True))[0]

    @property
    def n_configurations(self) -> int | None:
        """How many configurations the grid holds (None for a sampled sweep)."""
        if self.sampler != "grid":
            return None
        return math.prod(len(_grid_values(v)) for v in self.varied.values())

    @property
    def n_trials(self) -> int:
        """Trials the sweep runs: its budget, or the whole grid times the seeds."""
        if self.budget is not None:
            return self.budget
        return (self.n_configurations or 0) * max(len(self.seeds), 1)

    def checked(self) -> "SweepSpec":
        """The canonical spec (values in their parameter's type, seeds resolved).

        Raises:
            SweepError: one message per bad field (``name``, ``trainer``, ``base.<param>``,
                ``varied``/``varied.<param>``, ``seeds``, ``sampler``, ``budget``, ``pruner``).
        """
        return check_spec(self)

    def grid(self) -> list[dict[str, Any]]:
        """Every configuration of a grid sweep, in order (the last parameter varies fastest)."""
        names = list(self.varied)
        return [dict(zip(names, combo)) for combo in
                itertools.product(*(_grid_values(self.varied[n]) for n in names))]

    def grid_trials(self) -> list[tuple[dict[str, Any], int]]:
        """``(configuration, seed)`` of every trial a grid sweep runs, configuration by
        configuration; a budget below the whole grid takes configurations at random
        (``sampler_seed``), each with all its seeds."""
        configs = self.grid()
        if self.budget is not None and self.budget < len(configs) * len(self.seeds):
            random.Random(self.sampler_seed).shuffle(configs)
        trials = [(config, seed) for config in configs for seed in self.seeds]
        return trials[: self.n_trials]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (what a study records)."""
        spec = spec_for(self.model_type)
        varied = {}
        for name, value in self.varied.items():
            if isinstance(value, Range):
                varied[name] = {"range": value.as_dict()}
            else:
                varied[name] = {"values": [spec[name].record(v) for v in value]}
        return {"name": self.name, "model_type": self.model_type, "varied": varied,
                "base": {k: spec[k].record(v) if k in spec else v for k, v in self.base.items()},
                "seeds": list(self.seeds), "sampler": self.sampler, "budget": self.budget,
                "pruner": self.pruner, "sampler_seed": self.sampler_seed, "base_source": self.base_source}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SweepSpec":
        """The spec :meth:`as_dict` wrote (values are canonical again after :meth:`checked`)."""
        varied = {}
        for name, entry in (data.get("varied") or {}).items():
            if "range" in entry:
                varied[name] = Range(**entry["range"])
            else:
                varied[name] = tuple(entry.get("values") or ())
        return cls(name=data["name"], model_type=data["model_type"], varied=varied,
                   base=dict(data.get("base") or {}), seeds=tuple(data.get("seeds") or ()),
                   sampler=data.get("sampler", "grid"), budget=data.get("budget"),
                   pruner=data.get("pruner", "none"), sampler_seed=data.get("sampler_seed", 0),
                   base_source=data.get("base_source", "the trainer's defaults"))


def _grid_values(value: Any) -> tuple:
    return value.values() if isinstance(value, Range) else tuple(value)


# -- checking ----------------------------------------------------------------------------------
def check_spec(spec: SweepSpec) -> SweepSpec:
    """See :meth:`SweepSpec.checked`."""
    errors: dict[str, str] = {}
    name = str(spec.name or "").strip()
    if not name:
        errors["name"] = "give the sweep a name (letters, digits, '.', '_' and '-'), e.g. lr-search."
    elif not all(c.isalnum() or c in "._-" for c in name) or name.startswith((".", "-")):
        suggestion = "".join(c if c.isalnum() or c in "._-" else "-" for c in name).strip(".-") or "my-sweep"
        errors["name"] = (f"{name!r} may hold only letters, digits, '.', '_' and '-' and not start with "
                          f"'.' or '-' (it names the study and its runs): e.g. {suggestion!r}.")
    try:
        trainer = spec_for(spec.model_type)
    except ConfigError as exc:
        raise SweepError({**errors, "trainer": str(exc)}) from None
    base = dict(spec.base)
    for field_name, message in trainer.errors(base).items():
        errors[f"base.{field_name}"] = message
    varied = _check_varied(spec, trainer, errors)
    seeds = _check_seeds(spec, trainer, base, errors)
    if spec.sampler not in SAMPLERS:
        errors["sampler"] = f"must be one of {', '.join(SAMPLERS)}, got {spec.sampler!r}."
    if spec.pruner not in PRUNERS:
        errors["pruner"] = f"must be one of {', '.join(PRUNERS)}, got {spec.pruner!r}."
    if isinstance(spec.sampler_seed, bool) or not isinstance(spec.sampler_seed, int) or spec.sampler_seed < 0:
        errors["sampler_seed"] = f"must be a whole number >= 0, got {spec.sampler_seed!r}."
    if errors:
        raise SweepError(errors)
    checked = replace(spec, name=name, varied=varied, seeds=seeds,
                      base={k: trainer[k].check(v) for k, v in base.items()})
    _check_budget(checked, errors)
    if errors:
        raise SweepError(errors)
    return checked


def _check_varied(spec: SweepSpec, trainer, errors: dict[str, str]) -> dict[str, Any]:
    if not spec.varied:
        errors["varied"] = ("nothing is varied: give at least one parameter with values or a range, "
                            "e.g. learning_rate=1e-4,1e-3 or dropout=0.1:0.5.")
        return {}
    checked = {}
    for name, value in spec.varied.items():
        key = f"varied.{name}"
        if name not in trainer:
            errors[key] = (f"the {spec.model_type} trainer has no parameter {name!r}; parameters it can "
                           f"vary: {', '.join(variable_names(spec.model_type))}.")
            continue
        param = trainer[name]
        reason = _why_not_varied(spec.model_type, param)
        if reason:
            errors[key] = f"{name} cannot be varied: {reason}."
            continue
        try:
            checked[name] = (_check_range(param, value, spec.sampler) if isinstance(value, Range)
                             else _check_values(param, value))
        except ConfigError as exc:
            errors[key] = str(exc)
    return checked


def _why_not_varied(model_type: str, param: Param) -> str:
    if param.name in NOT_VARIED:
        return NOT_VARIED[param.name]
    if param.group == INTENT_GROUP:
        return ("the intent protocol decides which crops every trial trains on: build the crops for "
                "one protocol (pedsense preprocess crops --task intent ...) and sweep within it")
    if param.kind not in VARIED_KINDS:
        return f"it is a {param.kind} setting, not a hyperparameter"
    return ""


def variable_names(model_type: str) -> list[str]:
    """The parameters of ``model_type``'s trainer a sweep may vary."""
    return [p.name for p in spec_for(model_type) if not _why_not_varied(model_type, p)]


def _check_values(param: Param, values: Any) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        values = (values,)
    checked = []
    for value in values:
        try:
            checked.append(param.check(value))
        except ConfigError as exc:
            raise ConfigError(f"value {value!r} {exc}") from None
    if len(checked) < 2:
        raise ConfigError("needs two or more values to be varied; a single value belongs in the base "
                          "config.")
    seen = set()
    for value in checked:
        key = json.dumps(param.record(value))
        if key in seen:
            raise ConfigError(f"value {param.record(value)!r} is given twice: give each value once.")
        seen.add(key)
    return tuple(checked)


def _check_range(param: Param, span: Range, sampler: str) -> Range:
    if param.kind not in RANGE_KINDS:
        choices = f" ({param.describe()})" if param.choices or param.kind == "bool" else ""
        raise ConfigError(f"a range needs a number parameter; give {param.name} a list of values{choices}.")
    for label, value in (("low", span.low), ("high", span.high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"the range's {label} must be a number, got {value!r}.")
        try:
            param.check(value)
        except ConfigError as exc:
            raise ConfigError(f"the range's {label} {value!r} is outside what {param.name} accepts: it "
                              f"{exc}") from None
    if span.low > span.high:
        raise ConfigError(f"the range's low {span.low:g} is above its high {span.high:g}: give low <= high.")
    if span.low == span.high:
        raise ConfigError(f"the range {span.low:g} to {span.high:g} is one value; widen it, or put the "
                          "value in the base config.")
    if span.log and span.low <= 0:
        raise ConfigError(f"a log range needs low > 0, got {span.low:g}.")
    if span.log and span.step:
        raise ConfigError("a log range takes no step; for a log-spaced grid give the values.")
    step = span.step
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
            raise ConfigError(f"the range's step must be a number > 0, got {step!r}.")
        if step > span.high - span.low:
            raise ConfigError(f"the step {step:g} is wider than the range {span.describe()}: it would "
                              "hold one value.")
    if param.kind == "int":
        for label, value in (("low", span.low), ("high", span.high), ("step", step)):
            if value is not None and int(value) != value:
                raise ConfigError(f"{param.name} is a whole number: the range's {label} must be too, "
                                  f"got {value!r}.")
        low, high = int(span.low), int(span.high)
        step = int(step) if step is not None else None
    else:
        low, high = float(span.low), float(span.high)
        step = float(step) if step is not None else None
    if sampler == "grid" and step is None:
        raise ConfigError(f"a grid needs values or a range with a step (LOW:HIGH:STEP), not "
                          f"{span.describe()}; or sample the range with sampler random or tpe.")
    return Range(low, high, bool(span.log), step)


def _check_seeds(spec: SweepSpec, trainer, base: dict, errors: dict[str, str]) -> tuple[int, ...]:
    seeds = tuple(spec.seeds)
    if not seeds:
        seeds = (base.get("seed", trainer["seed"].default),) if "seed" in trainer else (0,)
    if "seed" not in trainer:
        return tuple(seeds)
    checked = []
    for seed in seeds:
        try:
            checked.append(trainer["seed"].check(seed))
        except ConfigError as exc:
            errors["seeds"] = f"seed {seed!r} {exc}"
            return ()
    if len(set(checked)) != len(checked):
        errors["seeds"] = f"{checked} repeats a seed: give each seed once."
    return tuple(checked)


def _check_budget(spec: SweepSpec, errors: dict[str, str]) -> None:
    seeds = len(spec.seeds)
    budget = spec.budget
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or not 1 <= budget <= MAX_BUDGET):
        errors["budget"] = f"must be a whole number of trials from 1 to {MAX_BUDGET}, got {budget!r}."
        return
    if spec.sampler == "grid":
        configs = spec.n_configurations or 0
        full = configs * seeds
        shown = f"{configs} configuration{'s' * (configs != 1)} × {seeds} seed{'s' * (seeds != 1)}"
        if budget is None and full > MAX_BUDGET:
            errors["budget"] = (f"the grid is {full} trials ({shown}), over the cap of {MAX_BUDGET}: "
                                "vary fewer values, give a budget, or sample with random or tpe.")
        elif budget is not None and budget > full:
            errors["budget"] = (f"{budget} is more than the grid's {full} trials ({shown}): lower it, "
                                "or leave it empty to run the whole grid.")
    elif budget is None:
        errors["budget"] = f"random and tpe sweeps need a budget: a number of trials from 1 to {MAX_BUDGET}."
    if "budget" not in errors and budget is not None and budget % seeds:
        lower, higher = budget - budget % seeds, budget - budget % seeds + seeds
        errors["budget"] = (f"{budget} is not a multiple of the {seeds} seeds: every configuration runs "
                            f"once per seed; use {lower or higher}" + (f" or {higher}" if lower else "") + ".")


# -- reading what the user typed -------------------------------------------------------------------
def parse_values(model_type: str, name: str, text: str | Sequence[str]) -> tuple:
    """``"1e-4, 3e-4"`` (or a list of strings) -> the raw values of parameter ``name``
    (command-line parsing of the trainer's spec; :meth:`SweepSpec.checked` checks them)."""
    param = spec_for(model_type)[name] if name in spec_for(model_type) else None
    pieces = [p.strip() for p in (text.split(",") if isinstance(text, str) else text)]
    pieces = [p for p in pieces if p]
    return tuple(_cli_value(param, p) for p in pieces)


def parse_value(model_type: str, name: str, text: str) -> Any:
    """One typed value of parameter ``name`` (``"true"`` -> True, ``"1e-3"`` -> 0.001, ...);
    empty text is None. :meth:`SweepSpec.checked` checks it."""
    param = spec_for(model_type)[name] if name in spec_for(model_type) else None
    return _cli_value(param, text.strip()) if text.strip() else None


_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _cli_value(param: Param | None, text: str) -> Any:
    if param is None:
        return text
    if param.kind == "bool":
        return _BOOLS.get(text.lower(), text)  # anything else: check() says "true or false"
    return param.cli_value(text)


def parse_range(text: str) -> Range:
    """``"LOW:HIGH"``, ``"LOW:HIGH:log"`` or ``"LOW:HIGH:STEP"`` -> :class:`Range`."""
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (2, 3):
        raise ConfigError(f"{text!r} is not a range: write LOW:HIGH, LOW:HIGH:log or LOW:HIGH:STEP.")
    low, high = (_number(p, text) for p in parts[:2])
    if len(parts) == 2:
        return Range(low, high)
    if parts[2].lower() == "log":
        return Range(low, high, log=True)
    return Range(low, high, step=_number(parts[2], text))


def _number(piece: str, text: str) -> float | int:
    try:
        return int(piece)
    except ValueError:
        try:
            return float(piece)
        except ValueError:
            raise ConfigError(f"{piece!r} in {text!r} is not a number.") from None


def parse_vary(model_type: str, text: str) -> tuple[str, Any]:
    """One ``--vary`` option: ``NAME=V1,V2,...`` (values) or ``NAME=LOW:HIGH[:log|:STEP]`` (a range)."""
    name, sep, rest = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not rest.strip():
        raise SweepError({"varied": f"{text!r} must read NAME=V1,V2,... or NAME=LOW:HIGH[:log|:STEP], "
                                    "e.g. learning_rate=1e-4,1e-3."})
    if ":" in rest:
        try:
            return name, parse_range(rest)
        except ConfigError as exc:
            raise SweepError({f"varied.{name}": str(exc)}) from None
    return name, parse_values(model_type, name, rest)


def parse_seeds(text: str | None) -> tuple[int, ...]:
    """``"0, 1, 2"`` -> ``(0, 1, 2)``; empty -> ``()`` (the base config's seed)."""
    seeds = []
    for piece in (text or "").split(","):
        piece = piece.strip()
        if not piece:
            continue
        try:
            seeds.append(int(piece))
        except ValueError:
            raise SweepError({"seeds": f"{piece!r} is not a whole number: give seeds as 0, 1, 2."}) from None
    return tuple(seeds)


def base_config(model_type: str, *, preset: str | None = None, run: str | None = None,
                overrides: Mapping[str, Any] | None = None, home=None) -> tuple[dict, str]:
    """The base parameters of a sweep and where they come from (shown and recorded).

    Args:
        preset: a preset of the trainer (``pedsense.train.presets``), e.g. ``quick``.
        run: a run whose recorded parameters to start from (its model type must match).
        overrides: parameters set on top of either.

    Raises:
        SweepError: both a preset and a run, an unknown preset, or a run of another trainer.
    """
    if preset and run:
        raise SweepError({"base": "give a preset or a run as the base config, not both."})
    params: dict[str, Any] = {}
    source = "the trainer's defaults"
    if preset:
        try:
            params, source = preset_params(model_type, preset), f"preset {preset}"
        except ConfigError as exc:
            raise SweepError({"base": str(exc)}) from None
    elif run:
        folder = find_run(run, home)
        config = folder.read_config()
        if (config.get("model_type") or folder.model_type) != model_type:
            raise SweepError({"base": f"run {folder.run_id} is a {folder.model_type} run; a {model_type} "
                                      f"sweep needs a {model_type} run as its base."})
        spec = spec_for(model_type)
        recorded = config.get("parameters") or {}
        params = {k: v for k, v in recorded.items() if k in spec and k not in ("name", "seed")}
        source = f"run {folder.run_id}"
    params.update(overrides or {})
    return params, source
