"""Named parameter sets per trainer: "quick (CPU)" and the seed's defaults.

A preset is a set of overrides of the trainer's parameter spec (``pedsense.train.params``);
the seed preset overrides nothing (the spec's defaults are the seed's), and every override is
checked against the spec when this module is imported. The dashboard's forms and
``pedsense train --preset`` read these. Importing this module is cheap (no torch). ``reaches``
is what the preset measured on the default demo set (``pedsense demo-data`` then
``pedsense preprocess all``) on 2 CPU cores; see docs/training/presets.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from pedsense.errors import ConfigError
from pedsense.train.params import SPECS, spec_for


@dataclass(frozen=True)
class Preset:
    """One named set of trainer parameters."""

    key: str
    label: str
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)
    reaches: str = ""


# The seed API's positional parameters (besides ``name``), whose defaults the spec holds.
SEED_PARAMETERS = {
    "yolo": ("epochs", "batch_size", "imgsz", "model_variant", "device"),
    "resnet-lstm": ("epochs", "batch_size", "learning_rate", "device"),
    "hybrid": ("yolo_model", "epochs", "batch_size", "learning_rate", "yolo_epochs", "device"),
    "context": ("epochs", "batch_size", "learning_rate", "device"),
}
SEED_DEFAULTS: dict[str, dict[str, Any]] = {
    model_type: {name: spec_for(model_type)[name].default for name in names}
    for model_type, names in SEED_PARAMETERS.items()
}

QUICK: dict[str, dict[str, Any]] = {
    # YOLO from scratch on 2 cores: every 4th of the (highly redundant) frames at 320 px. With
    # Ultralytics' defaults (nbs 64: one optimizer step per 64 images; 3 warmup epochs) 5 epochs
    # are ~30 optimizer steps, almost all warming up, and mAP50 stays 0. One step per batch of 8,
    # a short warmup and AdamW at 3e-3 make ~235 full-rate steps.
    "yolo": {"epochs": 5, "batch_size": 8, "imgsz": 320, "model_variant": "yolo26n", "fraction": 0.25,
             "optimizer": "AdamW", "lr0": 0.003, "warmup_epochs": 0.3, "nbs": 8},
    # 32 px crops and resnet18: a 16-frame sequence costs what one 128 px image would.
    "resnet-lstm": {"epochs": 3, "batch_size": 8, "learning_rate": 1e-3, "backbone": "resnet18",
                    "crop_size": 32},
    # stage 1 with the YOLO preset's detector settings (one step per batch, short warmup, AdamW)
    "hybrid": {"yolo_epochs": 5, "imgsz": 320, "yolo_batch_size": 8, "fraction": 0.25,
               "optimizer": "AdamW", "lr0": 0.003, "warmup_epochs": 0.3, "nbs": 8, "epochs": 3,
               "batch_size": 32, "learning_rate": 1e-3, "backbone": "resnet18", "crop_size": 32},
    # the context family's defaults are its recipe and already train in minutes on a CPU
    "context": {"epochs": 4},
}

QUICK_REACHES = {
    "yolo": "mAP50 0.43 after 5 epochs from scratch (offline; ~4 min, load ≈ 2.5). Put yolo26n.pt in "
            "models/base/ to fine-tune instead.",
    "resnet-lstm": "val_acc 0.93 after 3 epochs from scratch (~8.5 min on 2 shared cores, load ≈ 5; "
                   "an epoch took 20 s on a quiet machine).",
    "hybrid": "detector mAP50 0.49-0.51 after 5 epochs from scratch, classifier val_acc 0.93; ~5 min.",
    "context": "seconds on the demo set; on real JAAD see docs/notes/ctx-model.md (bench_context).",
}

PRESETS: dict[str, dict[str, Preset]] = {
    model_type: {
        "quick": Preset("quick", "quick (CPU)",
                        "Finishes on the demo set in a few minutes on 2 CPU cores.",
                        QUICK[model_type], QUICK_REACHES[model_type]),
        "seed": Preset("seed", "seed defaults",
                       "The seed API's defaults: full-size models, for a GPU and real JAAD data."
                       if model_type != "context" else
                       "The family's recipe, tuned on JAAD's val splits: minutes on a CPU.",
                       SEED_DEFAULTS[model_type], ""),
    }
    for model_type in SEED_DEFAULTS
}


def _check_presets() -> None:
    """Every preset's overrides are valid values of its trainer's spec (fails at import)."""
    for model_type, presets in PRESETS.items():
        for preset in presets.values():
            SPECS[model_type].check(preset.params)


_check_presets()


def presets_for(model_type: str) -> dict[str, Preset]:
    """The presets of one trainer (``yolo``, ``resnet-lstm``, ``hybrid``), keyed by name."""
    if model_type not in PRESETS:
        raise ConfigError(f"Unknown model type {model_type!r}; expected one of {', '.join(PRESETS)}.")
    return PRESETS[model_type]


def preset_params(model_type: str, preset: str) -> dict[str, Any]:
    """The parameters of ``preset`` (``quick`` or ``seed``) for ``model_type``."""
    presets = presets_for(model_type)
    if preset not in presets:
        raise ConfigError(f"Unknown preset {preset!r} for {model_type}; use one of {', '.join(presets)}.")
    return dict(presets[preset].params)
