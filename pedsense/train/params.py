"""Trainer parameters: each declared once, one spec per trainer.

Every user-facing parameter of the three seed trainers is a :class:`Param` here: its default,
kind, bounds or choices, label, help text and form group. Everything else derives from it:

- validation: :meth:`Spec.check` (one function; every bad field named, with the fix),
- the CLI options (``pedsense train <type> --option``, ``pedsense.commands.train``),
- the dashboard forms (``ui.forms``: essentials first, the rest under "Advanced"),
- the presets (``pedsense.train.presets``: overrides checked against the spec),
- the run's recorded config (``config.json`` ``"parameters"``: :meth:`Spec.record`).

The seed functions keep their exact signatures; a test checks each against its spec. Adding a
parameter to a trainer is one :class:`Param` in its spec plus the keyword in its signature.
Importing this module is cheap (no torch, no ultralytics).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from pedsense.data.intent import IRRELEVANT_POLICIES, PLACEMENTS, SAMPLE_TYPES
from pedsense.data.splits import SPLITS
from pedsense.errors import ConfigError
from pedsense.train.param_kinds import KIND_CHECKS, bound_text, choice_text, parse_number

# Keyword arguments the callers (run manager, CLI, resume) pass; never a form field.
HOOKS = ("on_event", "should_stop", "run_dir", "home", "progress", "resume", "init_weights")
MODEL_TYPES = ("yolo", "resnet-lstm", "hybrid", "context")
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
YOLO_VARIANTS = ("yolo26n", "yolo26s", "yolo26m", "yolo26l", "yolo26x")
FEATURE_CACHE_MODES = ("auto", "fp16", "fp32", "off")
OPTIMIZERS = ("auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp")
GROUPS = {"essentials": "Essentials", "advanced": "Advanced", "detector": "Stage 1: detector",
          "intent": "Intent protocol (crops built by the run)"}


class FormError(ConfigError):
    """Invalid training parameters; ``field_errors`` maps each bad field to its message."""

    def __init__(self, field_errors: Mapping[str, str]):
        self.field_errors = dict(field_errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.field_errors.items()))


@dataclass(frozen=True)
class Param:
    """One trainer parameter.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``choice``, ``text``, ``size`` (None, an int
    or (width, height)), ``range`` (a (min, max) pair of ints), ``device``, ``devices`` (a device
    list: ``cpu,cpu``, ``cuda:0,cuda:1`` or a GPU count, as a tuple), ``variant`` (a YOLO
    variant name or a .pt/.yaml path) or ``weights`` (a detector's .pt file). Bounds are
    inclusive unless ``exclusive_min``; ``optional`` allows None, which means ``none_label``.
    """

    name: str
    default: Any
    kind: str
    help: str
    label: str = ""
    group: str = "advanced"
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    multiple_of: int | None = None
    choices: tuple = ()
    optional: bool = False
    none_label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def check(self, value: Any) -> Any:
        """``value`` in its canonical type, or ConfigError naming the parameter and the fix."""
        if value is None or (isinstance(value, str) and not value.strip() and self.kind != "text"):
            if self.optional:
                return None
            raise ConfigError(f"needs a value ({self.describe()}).")
        return KIND_CHECKS[self.kind](self, value)

    def describe(self) -> str:
        """The rule in words: "a whole number from 1 to 10000", "one of beh, all", ..."""
        if self.kind in ("int", "float"):
            what = "a whole number" if self.kind == "int" else "a number"
            if self.minimum is not None and self.maximum is not None and not self.exclusive_min:
                bounds = f" from {bound_text(self.minimum)} to {bound_text(self.maximum)}"
            else:
                low = "" if self.minimum is None else \
                    f" {'>' if self.exclusive_min else '≥'} {bound_text(self.minimum)}"
                high = "" if self.maximum is None else f" and ≤ {bound_text(self.maximum)}"
                bounds = low + high
            extra = f", a multiple of {self.multiple_of}" if self.multiple_of else ""
            return f"{what}{bounds}{extra}"
        if self.kind == "choice":
            return "one of " + ", ".join(choice_text(c) for c in self.choices)
        if self.kind == "size":
            return f"a size in pixels, N or WxH, from {bound_text(self.minimum)} to {bound_text(self.maximum)}"
        if self.kind == "range":
            return f"MIN MAX with {bound_text(self.minimum)} <= MIN <= MAX <= {bound_text(self.maximum)}"
        return {"bool": "true or false", "device": "auto, cpu, cuda or cuda:N",
                "devices": "a device list such as cpu,cpu or cuda:0,cuda:1, or a number of GPUs",
                "variant": "a YOLO variant such as yolo26n, or a .pt/.yaml file",
                "weights": "a trained detector's .pt file", "text": "text"}[self.kind]

    def cli_value(self, text: str) -> Any:
        """Parse one command-line value (types are checked afterwards by :meth:`check`)."""
        text = text.strip()
        if self.kind == "choice":
            for choice in self.choices:
                if text == choice_text(choice) or text.lower() == str(choice).lower():
                    return choice
            return text
        if self.kind == "int":
            return parse_number(text, int)
        if self.kind == "float":
            return parse_number(text, float)
        return text

    def record(self, value: Any) -> Any:
        """JSON-ready form of a checked value (tuples become lists; a device list is one string)."""
        if self.kind == "devices" and value is not None:
            return ",".join(value)
        return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Spec:
    """The parameters of one trainer, in its signature's order, and where the trainer lives."""

    model_type: str
    params: tuple[Param, ...]
    trainer: str = ""        # "module:function" of the seed trainer
    description: str = ""

    def load_trainer(self):
        """The seed trainer function (imported on first use: it brings torch)."""
        import importlib

        module_name, function = self.trainer.split(":")
        return getattr(importlib.import_module(module_name), function)

    def __iter__(self):
        return iter(self.params)

    def __getitem__(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self.params)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def bind(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The spec's parameters from a call's arguments (a trainer passes ``locals()``)."""
        return {name: arguments[name] for name in self.names if name in arguments}

    def errors(self, values: Mapping[str, Any]) -> dict[str, str]:
        """``{field: message}`` for every bad or unknown value (empty when all are valid)."""
        errors = {}
        for name, value in values.items():
            if name not in self:
                errors[name] = f"the {self.model_type} trainer has no parameter {name!r}."
                continue
            try:
                self[name].check(value)
            except ConfigError as exc:
                errors[name] = str(exc)
        return errors

    def check(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter, defaults filled in, in its canonical type.

        Raises:
            FormError: one message per bad or unknown field.
        """
        errors = self.errors(values)
        if errors:
            raise FormError(errors)
        return {p.name: p.check(values[p.name]) if p.name in values else p.default for p in self.params}

    def record(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """JSON-ready checked values: the ``"parameters"`` of a run's config.json."""
        return {p.name: p.record(values.get(p.name, p.default)) for p in self.params}

    def groups(self) -> dict[str, list[Param]]:
        """Parameters by form group, essentials first (groups without parameters left out)."""
        grouped: dict[str, list[Param]] = {g: [] for g in GROUPS}
        for param in self.params:
            grouped[param.group].append(param)
        return {g: ps for g, ps in grouped.items() if ps}


# -- the parameters, each written once ----------------------------------------------------------
def _p(name: str, default: Any, kind: str, help: str, **rules: Any) -> Param:
    return Param(name, default, kind, help, **rules)


NAME = _p("name", None, "text", "Prefix of the run folder `models/<type>/<name>_<YYYYmmdd_HHMMSS>/`. "
          "Letters, digits, `.`, `_` and `-`; anything else (like `/` or `..`) becomes `-`. "
          "Empty: the model type.", label="Run name", group="essentials", optional=True,
          none_label="the model type")
EPOCHS = _p("epochs", 30, "int", "Passes over the training set.", group="essentials", minimum=1, maximum=10000)
BATCH_SIZE = _p("batch_size", 8, "int", "Samples per optimisation step; lower it if memory runs out. "
                "At most the number of training samples.", label="Batch size", group="essentials",
                minimum=1, maximum=4096)
LEARNING_RATE = _p("learning_rate", 1e-4, "float", "AdamW learning rate.", label="Learning rate",
                   group="essentials", minimum=0.0, exclusive_min=True, maximum=1.0)
DEVICE = _p("device", None, "device", "`auto` takes the first GPU when there is one, else the CPU.",
            group="essentials", optional=True, none_label="auto")
IMGSZ = _p("imgsz", 640, "int", "Square training image size in pixels, a multiple of 32 (YOLO's "
           "largest stride). 640 is the seed default; 320 trains about 4x faster.", label="Image size",
           minimum=32, maximum=4096, multiple_of=32)
MODEL_VARIANT = _p("model_variant", "yolo26n", "variant", "YOLO26 size, n (nano, fastest) to x "
                   "(largest), or a .pt/.yaml file. Base weights are fetched once into `models/base/` "
                   "(offline: built from scratch, recorded in config.json).", label="Model variant",
                   choices=YOLO_VARIANTS)
WORKERS = _p("workers", None, "int", "Ultralytics data-loader workers (0-2 on a small CPU machine).",
             minimum=0, maximum=64, optional=True, none_label="up to 2")
PATIENCE = _p("patience", 100, "int", "Stop early after this many epochs without improvement "
              "(Ultralytics' patience).", minimum=1, maximum=10000)
SEED = _p("seed", 42, "int", "Random seed, so a run can be repeated.", minimum=0, maximum=2**31 - 1)
LR0 = _p("lr0", 0.01, "float", "Initial learning rate of the Ultralytics optimizer.",
         label="YOLO learning rate (lr0)", minimum=0.0, exclusive_min=True, maximum=1.0)
OPTIMIZER = _p("optimizer", "auto", "choice", "Ultralytics optimizer; `auto` picks one from the run "
               "length.", choices=OPTIMIZERS)
CACHE = _p("cache", False, "choice", "Cache decoded images in RAM (fastest, more memory) or on disk, "
           "or off.", label="Image cache", choices=(False, True, "ram", "disk"))
FRACTION = _p("fraction", 1.0, "float", "Share of the YOLO training images used, evenly spread over "
              "the videos (consecutive frames are near-duplicates).", minimum=0.0, exclusive_min=True, maximum=1.0)
WARMUP_EPOCHS = _p("warmup_epochs", 3.0, "float", "Ultralytics' learning-rate warm-up, in epochs "
                   "(may be fractional; 0 = none).", label="Warm-up epochs", minimum=0.0, maximum=100.0)
NBS = _p("nbs", 64, "int", "Ultralytics' nominal batch size: gradients accumulate over "
         "nbs / batch size batches per optimizer step.", label="Nominal batch size (nbs)", minimum=1, maximum=4096)
VERBOSE = _p("verbose", False, "bool", "Ultralytics' own output in the run's log.")
BACKBONE = _p("backbone", "resnet50", "choice", "ResNet depth of the feature extractor (the seed: "
              "resnet50).", choices=BACKBONES)
PRETRAINED = _p("pretrained", True, "bool", "Start from ImageNet weights (downloaded once; offline the "
                "run starts from random weights, says so and records it in config.json).")
HIDDEN_SIZE = _p("hidden_size", 256, "int", "LSTM hidden units (the seed: 256).", label="LSTM hidden size",
                 minimum=1, maximum=8192)
NUM_LAYERS = _p("num_layers", 1, "int", "Stacked LSTM layers (the seed: 1).", label="LSTM layers",
                minimum=1, maximum=16)
DROPOUT = _p("dropout", 0.3, "float", "Dropout before the classifier head (the seed: 0.3).",
             minimum=0.0, maximum=0.99)
CROP_SIZE = _p("crop_size", None, "size", "Resize the dataset's crops to N or WxH pixels.",
               label="Crop size", minimum=16, maximum=1024, optional=True, none_label="as built")
WEIGHT_DECAY = _p("weight_decay", 1e-4, "float", "AdamW weight decay.", minimum=0.0, maximum=1.0)
LABEL_SMOOTHING = _p("label_smoothing", 0.0, "float", "Cross-entropy label smoothing: the target "
                     "puts this much probability on the other class (0: none).", minimum=0.0, maximum=0.5)
FROZEN_CHILDREN = _p("frozen_children", 6, "int", "Leading ResNet children kept frozen (the seed: 6, "
                     "up to layer2; 8 freezes the whole backbone).", minimum=0, maximum=9)
NUM_WORKERS = _p("num_workers", None, "int", "DataLoader worker processes.", label="DataLoader workers",
                 minimum=0, maximum=64, optional=True, none_label="0 when the data fits in memory")
TASK = _p("task", None, "choice", "The question the labels answer: `action` (is the pedestrian "
          "crossing now), `intent` (will they cross, 1-2 s ahead: the JAAD benchmark), or as built "
          "(whatever the dataset on disk holds). A dataset built for the other task is refused.",
          group="essentials", choices=(None, "action", "intent"), optional=True,
          none_label="as built (the dataset's task)")
YOLO_MODEL = _p("yolo_model", None, "weights", "Reuse a trained detector and skip stage 1: a completed "
                "YOLO or hybrid run's weights, or a .pt under models/.", label="Existing detector",
                group="essentials", optional=True, none_label="none: train stage 1")
YOLO_EPOCHS = _p("yolo_epochs", 50, "int", "Epochs of the stage-1 YOLO pedestrian detector (ignored "
                 "when an existing detector is picked).", label="Detector epochs", group="essentials",
                 minimum=1, maximum=10000)
YOLO_BATCH_SIZE = _p("yolo_batch_size", None, "int", "Batch size of stage 1.", label="Detector batch size",
                     group="detector", minimum=1, maximum=4096, optional=True, none_label="= batch size")
SPLIT = _p("split", "default", "choice", "Video split of the crops the run builds when they are "
           "missing: JAAD's split files or a seeded random split.", group="intent", choices=SPLITS)
SAMPLE_TYPE = _p("sample_type", "beh", "choice", "beh: behaviour pedestrians; all: also `ped` "
                 "bystanders, labelled not-crossing.", label="Sample type", group="intent", choices=SAMPLE_TYPES)
TTE = _p("tte", None, "range", "Frames from a window's end to the event, MIN MAX.",
         label="TTE (frames before the event)", group="intent", minimum=0, maximum=600,
         optional=True, none_label="30 60 (the benchmark)")
OVERLAP = _p("overlap", 0.8, "float", "Overlap of consecutive observation windows (JAAD: 0.8).",
             group="intent", minimum=0.0, maximum=0.99)
IRRELEVANT = _p("irrelevant", "not-crossing", "choice", "Pedestrians with crossing = -1: not-crossing "
                "(the benchmark's) or excluded.", label="crossing = -1", group="intent",
                choices=IRRELEVANT_POLICIES)
OBS_LENGTH = _p("obs_length", 16, "int", "Frames per observation window (JAAD: 16).",
                label="Observation length", group="intent", minimum=1, maximum=256)
FEATURE_CACHE = _p("feature_cache", "auto", "choice", "Compute the frozen backbone's output of each "
                   "crop once (batched, no gradients), keep it under `data/cache/features/` and train "
                   "only the layers after the cut, so later epochs (and later runs on the same data and "
                   "weights) skip the backbone. `auto`: on (float16 on disk) when the whole backbone is "
                   "frozen (frozen children ≥ 8); `fp16`/`fp32`: on at any cut, stored at that "
                   "precision; `off`: never. A changed dataset, backbone, weights or crop size never "
                   "reuses old features.", label="Frozen-feature cache", choices=FEATURE_CACHE_MODES)
DEVICES = _p("devices", None, "devices", "Train data-parallel, one process per device (PyTorch DDP: "
             "`gloo` on CPUs, `nccl` on GPUs): cpu,cpu, cuda:0,cuda:1 or a number of GPUs. "
             "`batch_size` is the global batch, split over the processes. Overrides `device`.",
             label="Devices (data-parallel)", optional=True, none_label="one process on `device`")
PREDICTION_SAMPLES = _p("prediction_samples", 8, "int", "Validation samples scored after every epoch and "
                        "kept with their pictures and P(crossing) (YOLO: frames with the predicted boxes), "
                        "for the run view's predictions slider; the same seeded samples every epoch. 0: none.",
                        label="Prediction samples", minimum=0, maximum=64)
CONTEXT_FEATURES = _p("context_features", None, "text", "Fuse the window's context features with the crops "
                      "(box, vehicle, traffic, history, behaviour; comma-separated): a small GRU's summary joins the "
                      "LSTM's last state (late fusion). `behaviour` is refused on an `all` build (presence leak).",
                      label="Context features (fusion)", optional=True, none_label="none: crops alone")
PLACEMENT = _p("placement", "boxes", "choice", "Count a track's boxes (the benchmark's; a window "
               "bridges a frame gap) or its frames (frame-accurate).", label="Window placement",
               group="intent", choices=PLACEMENTS)


def _essential(param: Param, **changes: Any) -> Param:
    return replace(param, group="essentials", **changes)


YOLO = Spec("yolo", (
    NAME, replace(EPOCHS, default=50), replace(BATCH_SIZE, default=16), _essential(IMGSZ),
    _essential(MODEL_VARIANT), DEVICE,
    WORKERS, PATIENCE, replace(SEED, default=0), LR0, OPTIMIZER, CACHE, FRACTION, WARMUP_EPOCHS, NBS,
    VERBOSE, replace(DEVICES, help="Train on several GPUs with Ultralytics' own DDP: cuda:0,cuda:1 or a "
                     "number of GPUs (CUDA only). `batch_size` is the global batch. Overrides `device`."),
    PREDICTION_SAMPLES,
), "pedsense.train.yolo_trainer:train_yolo", "fine-tune YOLO26 as a 2-class intent detector")
RESNET_LSTM = Spec("resnet-lstm", (
    NAME, EPOCHS, BATCH_SIZE, LEARNING_RATE, DEVICE,
    BACKBONE, PRETRAINED, HIDDEN_SIZE, NUM_LAYERS, DROPOUT, CROP_SIZE, WEIGHT_DECAY, FROZEN_CHILDREN,
    NUM_WORKERS, SEED, TASK, FEATURE_CACHE, DEVICES, LABEL_SMOOTHING, PREDICTION_SAMPLES, CONTEXT_FEATURES,
), "pedsense.train.resnet_trainer:train_resnet_lstm", "train ResNet + LSTM on pedestrian crop sequences")
_DETECTOR = {"group": "detector"}
HYBRID = Spec("hybrid", (
    NAME, YOLO_MODEL, EPOCHS, replace(BATCH_SIZE, default=16, label="Classifier batch size"),
    LEARNING_RATE, YOLO_EPOCHS, DEVICE,
    replace(IMGSZ, **_DETECTOR), replace(MODEL_VARIANT, **_DETECTOR), YOLO_BATCH_SIZE, BACKBONE,
    PRETRAINED, DROPOUT, CROP_SIZE, WEIGHT_DECAY, FROZEN_CHILDREN, NUM_WORKERS,
    replace(WORKERS, **_DETECTOR), replace(PATIENCE, **_DETECTOR), SEED, replace(CACHE, **_DETECTOR),
    replace(FRACTION, **_DETECTOR), replace(LR0, **_DETECTOR), replace(OPTIMIZER, **_DETECTOR),
    replace(WARMUP_EPOCHS, **_DETECTOR), replace(NBS, **_DETECTOR), replace(VERBOSE, **_DETECTOR), TASK,
    SPLIT, SAMPLE_TYPE, TTE, OVERLAP, IRRELEVANT, OBS_LENGTH, PLACEMENT, FEATURE_CACHE,
    replace(DEVICES, help="Train data-parallel, one process per device: the detector through "
            "Ultralytics' DDP (GPUs only), the classifier through PyTorch DDP (`gloo` on CPUs, `nccl` "
            "on GPUs): cpu,cpu, cuda:0,cuda:1 or a number of GPUs. Batch sizes are global, split over "
            "the processes. Overrides `device`."),
    replace(PREDICTION_SAMPLES, help="Validation crops of stage 2 scored after every epoch and kept with "
            "their pictures and P(crossing), for the run view's predictions slider; the same seeded crops "
            "every epoch. 0: none."),
), "pedsense.train.hybrid_trainer:train_hybrid",
    "train the YOLO pedestrian detector + ResNet crop classifier")
CONTEXT_MODELS, CLASS_WEIGHTINGS = ("gru", "transformer"), ("auto", "balanced", "sqrt", "none")
# class_weighting=auto per build, chosen on the official val splits (bench/bench_context.py --tune):
# JAAD_beh (82% crossing in train) needs weighting, or it predicts "crossing" for every window;
# on JAAD_all (20% crossing) sqrt weighting tilts it to crossing (val accuracy/F1 0.889/0.704 vs
# 0.920/0.751 unweighted, 3 seeds), as the benchmark's own models train it (no weighting).
AUTO_CLASS_WEIGHTING = {"beh": "sqrt", "all": "none"}
# relevance_weight: 5-fold cross-validation over JAAD_all's training videos chose 3 (folds' accuracy /
# benchmark AUC / F1 0.868 / 0.792 / 0.673 against 0.843 / 0.749 / 0.605 without, 2 seeds; measured
# before `history`), but on the official test windows it traded accuracy and F1 for AUC
# (docs/benchmark.md has the figures): test's behaviour pedestrians cross less often (63 %) than
# train's (83 %). Off by default.
RELEVANCE_WEIGHT = _p("relevance_weight", 0.0, "float", "Weight of a second training target on `all` "
                      "builds: whether JAAD annotated the pedestrian's behaviour (the pedestrians that matter "
                      "to the driver), learned from the same inputs by a second head. It is never an input, "
                      "and predictions come from the crossing head alone. 0: off; on a `beh` build it has no "
                      "effect (every window is a behaviour pedestrian).", label="Relevance target weight",
                      minimum=0.0, maximum=100.0)
CONTEXT_MODEL = _p("model", "gru", "choice", "The network: a small GRU over the groups side by side, "
                   "beside an MLP of the whole window (the default), or a transformer with one token stream "
                   "per feature group fused by attention. Both stay under 1 M parameters.", group="essentials",
                   choices=CONTEXT_MODELS)
FEATURES = _p("features", None, "text", "Feature groups, comma-separated: box, vehicle (ego action), traffic "
              "(crosswalk, signs, light, road), history (the track before each frame: time since first seen, "
              "earlier boxes), behaviour (look, walk/stand, nod, gesture; refused on an `all` "
              "build: a presence leak).", group="essentials", optional=True, none_label="every group the build allows")
CLASS_WEIGHTING = _p("class_weighting", "auto", "choice", "Weigh the loss by inverse class "
                     "frequency (balanced: what the benchmark's AUC, a balanced accuracy, rewards), by its "
                     "square root (sqrt: between that and accuracy) or not at all (none). auto: the recipe "
                     "of the build's sample type (" + ", ".join(f"{k}: {v}" for k, v in AUTO_CLASS_WEIGHTING.items())
                     + "); config.json records the one used.",
                     label="Class weighting", choices=CLASS_WEIGHTINGS)
CONTEXT = Spec("context", (
    # the recipe, tuned on the official val splits of JAAD_beh and JAAD_all (bench/bench_context.py --tune)
    NAME, replace(EPOCHS, default=8), replace(BATCH_SIZE, default=128), replace(LEARNING_RATE, default=1e-3),
    DEVICE, CONTEXT_MODEL, FEATURES,
    replace(SAMPLE_TYPE, default=None, group="essentials", optional=True, choices=(None,) + SAMPLE_TYPES,
            none_label="the one built (beh when both are)",
            help="Which context build to train on: beh (behaviour pedestrians, JAAD_beh) or all "
                 "(with `ped` bystanders, labelled not-crossing: JAAD_all). Both may be built side by side."),
    replace(HIDDEN_SIZE, default=32, label="Hidden size", maximum=512,
            help="Width of the GRU state, or of the transformer's tokens (a multiple of 4)."),
    replace(NUM_LAYERS, label="Layers", maximum=6, help="Stacked GRU or transformer layers."),
    replace(DROPOUT, default=0.5, help="Dropout before the classifier head (and between layers)."),
    replace(WEIGHT_DECAY, default=0.1), CLASS_WEIGHTING, LABEL_SMOOTHING, SEED, RELEVANCE_WEIGHT,
), "pedsense.train.context_trainer:train_context", "train a small GRU/transformer on JAAD's annotations alone")
SPECS: dict[str, Spec] = {spec.model_type: spec for spec in (YOLO, RESNET_LSTM, HYBRID, CONTEXT)}


def spec_for(model_type: str) -> Spec:
    """The parameter spec of ``model_type`` (``yolo``, ``resnet-lstm``, ``hybrid``, ``context``)."""
    if model_type not in SPECS:
        raise ConfigError(f"Unknown model type {model_type!r}; pick one of {', '.join(SPECS)}.")
    return SPECS[model_type]


def planned_epochs(model_type: str, params: Mapping[str, Any]) -> int:
    """Epochs the run trains in all its stages (the hybrid adds its detector's unless reused)."""
    spec = spec_for(model_type)
    values = {**spec.defaults(), **{k: v for k, v in params.items() if k in spec}}
    epochs = int(values.get("epochs") or 0)
    if model_type == "hybrid" and not values.get("yolo_model"):
        epochs += int(values.get("yolo_epochs") or 0)
    return epochs


def unknown_names(model_type: str, names: Iterable[str]) -> list[str]:
    """The names ``model_type``'s trainer does not take."""
    spec = spec_for(model_type)
    return [n for n in names if n not in spec]
