"""The trainers' parameter specs: one declaration per parameter, checked against the seed API."""

from __future__ import annotations

import inspect
import math

import pytest

from pedsense.errors import ConfigError
from pedsense.train.params import HOOKS, SPECS, FormError, Param, planned_epochs, spec_for
from pedsense.train.presets import PRESETS, SEED_DEFAULTS

# The seed API document's signatures and defaults (shared/seed/pedsense-train-api.md).
SEED_API = {
    "yolo": {"name": None, "epochs": 50, "batch_size": 16, "imgsz": 640, "model_variant": "yolo26n",
             "device": None},
    "resnet-lstm": {"name": None, "epochs": 30, "batch_size": 8, "learning_rate": 1e-4, "device": None},
    "hybrid": {"name": None, "yolo_model": None, "epochs": 30, "batch_size": 16, "learning_rate": 1e-4,
               "yolo_epochs": 50, "device": None},
    # not a seed trainer: the context family's positional parameters follow the ResNet-LSTM's
    "context": {"name": None, "epochs": 8, "batch_size": 128, "learning_rate": 1e-3, "device": None},
}


@pytest.mark.parametrize("model_type", list(SPECS))
def test_each_spec_is_its_trainers_signature(model_type):
    spec = spec_for(model_type)
    signature = inspect.signature(spec.load_trainer())
    params = {n: p for n, p in signature.parameters.items() if n not in HOOKS}
    assert list(params) == list(spec.names)
    assert {n: p.default for n, p in params.items()} == spec.defaults()
    positional = [n for n, p in params.items() if p.kind is not p.KEYWORD_ONLY]
    assert {n: params[n].default for n in positional} == SEED_API[model_type]  # the seed, exactly
    assert SEED_DEFAULTS[model_type] == {k: v for k, v in SEED_API[model_type].items() if k != "name"}


@pytest.mark.parametrize("model_type", list(SPECS))
def test_presets_are_valid_overrides_of_the_spec(model_type):
    spec = spec_for(model_type)
    for preset in PRESETS[model_type].values():
        assert set(preset.params) <= set(spec.names)
        spec.check(preset.params)


@pytest.mark.parametrize("model_type", list(SPECS))
def test_every_number_has_finite_bounds_and_every_param_help(model_type):
    for param in spec_for(model_type):
        assert param.help and param.title
        if param.kind in ("int", "float", "size", "range"):
            assert param.minimum is not None and param.maximum is not None, param.name
            assert math.isfinite(param.minimum) and math.isfinite(param.maximum)
        if param.kind == "choice":
            assert param.default in param.choices, param.name


@pytest.mark.parametrize("name, value, message", [
    ("learning_rate", float("inf"), "finite"),
    ("learning_rate", float("nan"), "finite"),
    ("learning_rate", 0.0, "> 0"),
    ("learning_rate", 2.0, "≤ 1"),
    ("epochs", 0, "from 1 to 10000"),
    ("epochs", 2.5, "whole number"),
    ("epochs", True, "whole number"),
    ("batch_size", "8", "whole number"),
    ("dropout", 1.0, "from 0 to 0.99"),
    ("backbone", "vgg16", "one of resnet18"),
    ("crop_size", "ten", "a size in pixels"),
    ("device", "tpu", "auto, cpu, cuda"),
])
def test_bad_values_are_refused_naming_the_rule(name, value, message):
    errors = spec_for("resnet-lstm" if name not in ("crop_size",) else "hybrid").errors({name: value})
    assert message in errors[name]


def test_check_fills_defaults_and_canonical_types():
    values = spec_for("hybrid").check({"crop_size": "32x48", "tte": "30 45", "device": "CUDA:1"})
    assert values["crop_size"] == (32, 48) and values["tte"] == (30, 45) and values["device"] == "cuda:1"
    assert values["epochs"] == 30 and values["irrelevant"] == "not-crossing"
    with pytest.raises(FormError) as info:
        spec_for("yolo").check({"epochs": -1, "learning_rate": 0.1})
    assert set(info.value.field_errors) == {"epochs", "learning_rate"}
    assert "has no parameter 'learning_rate'" in info.value.field_errors["learning_rate"]


def test_record_is_json_ready_and_planned_epochs_add_the_stages():
    spec = spec_for("hybrid")
    record = spec.record(spec.check({"crop_size": 32}))
    assert record["crop_size"] == [32, 32] and record["tte"] is None
    assert planned_epochs("hybrid", {"epochs": 3, "yolo_epochs": 5}) == 8
    assert planned_epochs("hybrid", {"epochs": 3, "yolo_epochs": 5, "yolo_model": "x.pt"}) == 3


def test_a_new_parameter_is_one_declaration():
    """label_smoothing was added by one Param in the spec plus the keyword: validation, the form's
    group, the CLI option and the recorded config all come from that declaration."""
    import argparse

    from pedsense.commands.train import add_trainer_options

    spec = spec_for("resnet-lstm")
    assert spec.errors({"label_smoothing": 0.7}) and not spec.errors({"label_smoothing": 0.1})
    assert spec["label_smoothing"] in spec.groups()["advanced"]
    assert spec.record(spec.check({"label_smoothing": 0.1}))["label_smoothing"] == 0.1
    parser = argparse.ArgumentParser()
    add_trainer_options(parser, "resnet-lstm")
    assert parser.parse_args(["--label-smoothing", "0.2"]).label_smoothing == 0.2


def test_param_check_names_the_fix():
    with pytest.raises(ConfigError, match="multiple of 32"):
        spec_for("yolo")["imgsz"].check(100)
