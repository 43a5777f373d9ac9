"""`pedsense train yolo|resnet-lstm|hybrid`: every trainer parameter as an option.

Options are generated from the trainer's signature, so a new keyword shows up here by itself.
One line per epoch on stdout, a progress bar on stderr (terminals only), Ctrl-C stops after
the current batch (status ``stopped``, weights kept); a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import signal
import sys
import threading
from typing import Any, Callable

from pedsense.errors import ConfigError

TRAINERS = {
    "yolo": ("pedsense.train.yolo_trainer", "train_yolo", "fine-tune YOLO26 as a 2-class intent detector"),
    "resnet-lstm": ("pedsense.train.resnet_trainer", "train_resnet_lstm",
                    "train ResNet + LSTM on pedestrian crop sequences"),
    "hybrid": ("pedsense.train.hybrid_trainer", "train_hybrid",
               "train the YOLO pedestrian detector + ResNet crop classifier"),
}
HOOKS = ("on_event", "should_stop", "run_dir", "home", "resume", "init_weights")
SHOWN_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "precision", "recall", "mAP50",
                 "mAP50-95", "lr", "seconds")

HELP = {
    "name": "run name prefix (default: the model type)",
    "epochs": "training epochs (hybrid: ResNet classifier epochs)",
    "batch_size": "batch size",
    "imgsz": "YOLO training image size (multiple of 32)",
    "model_variant": "YOLO variant (yolo26n, yolo26s, …) or a .pt/.yaml path",
    "device": "cpu, cuda, cuda:N, mps (default: auto-detect)",
    "learning_rate": "AdamW learning rate",
    "yolo_model": "existing detector .pt (skips stage 1)",
    "yolo_epochs": "YOLO detector epochs (stage 1)",
    "yolo_batch_size": "YOLO detector batch size (default: --batch-size)",
    "backbone": "ResNet backbone (resnet18, resnet34, resnet50, resnet101)",
    "pretrained": "start from ImageNet weights (offline: from scratch)",
    "hidden_size": "LSTM hidden size",
    "num_layers": "LSTM layers",
    "dropout": "dropout rate",
    "crop_size": "resize crops to this square size in px (default: as built, 224)",
    "weight_decay": "AdamW weight decay",
    "frozen_children": "frozen leading children of the ResNet (seed: 6)",
    "num_workers": "DataLoader workers (default: 0 when the data fits in memory)",
    "workers": "Ultralytics DataLoader workers (default: up to 2)",
    "patience": "YOLO early-stopping patience (epochs)",
    "seed": "random seed",
    "lr0": "YOLO (hybrid: stage 1) initial learning rate",
    "optimizer": "YOLO (hybrid: stage 1) optimizer (auto, SGD, AdamW, …)",
    "cache": "YOLO image cache: false, ram or disk",
    "verbose": "show Ultralytics' own output",
    "fraction": "share of the YOLO training images used (0-1]",
    "task": "refuse a dataset built for another task: action or intent (default: train on the dataset as built)",
    "split": "video split the crops are built with when missing: default, high_visibility, all_videos, random",
    "sample_type": "intent: beh (behaviour pedestrians) or all (also bystanders, labelled not-crossing)",
    "tte": "intent: time-to-event range in frames before the crossing point, e.g. '30 60'",
    "overlap": "intent: overlap between consecutive observation windows (JAAD: 0.8)",
    "irrelevant": "intent: pedestrians with crossing=-1: exclude or not-crossing",
    "obs_length": "intent: observation length in frames (JAAD: 16)",
    "warmup_epochs": "YOLO (hybrid: stage 1) learning-rate warm-up epochs (may be fractional; 0 = none)",
    "nbs": "YOLO (hybrid: stage 1) nominal batch size: gradients accumulate to it (quick preset: 8)",
}
# Parameters whose default is None need their type spelled out.
TYPES: dict[str, Callable] = {"name": str, "device": str, "yolo_model": str, "crop_size": int,
                              "num_workers": int, "workers": int, "yolo_batch_size": int}


def trainer_function(model_type: str) -> Callable:
    module, function, _ = TRAINERS[model_type]
    return getattr(importlib.import_module(module), function)


def trainer_parameters(model_type: str) -> dict[str, inspect.Parameter]:
    """The trainer's user-facing parameters (hooks and paths left out), imported lazily."""
    signature = inspect.signature(trainer_function(model_type))
    return {n: p for n, p in signature.parameters.items() if n not in HOOKS}


def _parse_cache(text: str) -> bool | str:
    lowered = text.strip().lower()
    if lowered in ("false", "no", "0", "off", "none"):
        return False
    if lowered in ("true", "yes", "1", "on"):
        return True
    return lowered


def add_trainer_options(parser: argparse.ArgumentParser, model_type: str) -> None:
    """One ``--option`` per trainer parameter; every default is None = "not given"."""
    for name, parameter in trainer_parameters(model_type).items():
        flag = "--" + name.replace("_", "-")
        default = parameter.default
        shown = f" (default: {default})" if default is not None else ""
        if isinstance(default, bool) and name != "cache":
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=HELP.get(name, name) + shown)
            continue
        if name == "cache":
            kind = _parse_cache
        else:
            kind = TYPES.get(name) or (type(default) if default is not None else str)
        parser.add_argument(flag, dest=name, type=kind, default=None, metavar=name.upper(),
                            help=HELP.get(name, name) + shown)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` (with yolo, resnet-lstm, hybrid) to the `pedsense` parser."""
    train = subparsers.add_parser("train", help="train a model (yolo, resnet-lstm, hybrid)")
    kinds = train.add_subparsers(dest="model_type", metavar="MODEL", required=True)
    for model_type, (_, _, help_text) in TRAINERS.items():
        sub = kinds.add_parser(model_type, help=help_text, description=help_text)
        sub.add_argument("--preset", choices=("quick", "seed"), default=None,
                         help="start from a preset: quick (CPU, minutes) or seed (the seed defaults); "
                              "options given explicitly override it")
        add_trainer_options(sub, model_type)
        sub.set_defaults(func=cmd_train)


def resolve_params(model_type: str, args: argparse.Namespace) -> dict[str, Any]:
    """The preset's parameters, overridden by every option given on the command line."""
    from pedsense.train.presets import preset_params

    params = preset_params(model_type, args.preset) if args.preset else {}
    for name in trainer_parameters(model_type):
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    return params


class ConsoleReporter:
    """Trainer events -> one stdout line per epoch and a stderr progress bar (terminals only)."""

    def __init__(self, out=None, err=None, width: int = 24):
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.interactive = hasattr(self.err, "isatty") and self.err.isatty()
        self.width = width
        self.bar_shown = False

    def __call__(self, event) -> None:
        kind = type(event).__name__
        if kind == "BatchEnd":
            self._bar(event)
        elif kind == "EpochEnd":
            self._clear_bar()
            shown = "  ".join(f"{k}={_fmt(event.metrics[k])}" for k in SHOWN_METRICS
                              if event.metrics.get(k) is not None)
            print(f"[{event.stage}] epoch {event.epoch}/{event.total_epochs}  {shown}", file=self.out, flush=True)
        elif kind == "RunStarted":
            print(f"run {event.run_id} started ({event.config.get('device')}, weights: "
                  f"{event.config.get('weights_source')})", file=self.out, flush=True)
        elif kind == "StageStarted" and event.stage != "train":
            print(f"stage {event.stage}: {event.total_epochs} epochs", file=self.out, flush=True)
        elif kind == "RunFinished":
            self._clear_bar()
            best = ", ".join(f"{k}={_fmt(v)}" for k, v in (event.best_metric or {}).items())
            print(f"run {event.status}: {event.run_dir}" + (f"  best: {best}" if best else "")
                  + (f"  error: {event.error}" if event.error else ""), file=self.out, flush=True)

    def _bar(self, event) -> None:
        if not self.interactive:
            return
        fraction = event.batch / max(event.total_batches, 1)
        filled = int(round(fraction * self.width))
        self.err.write(f"\r{event.stage} epoch {event.epoch} [{'#' * filled}{'.' * (self.width - filled)}] "
                       f"{event.batch}/{event.total_batches}")
        self.err.flush()
        self.bar_shown = True

    def _clear_bar(self) -> None:
        if self.bar_shown:
            self.err.write("\r" + " " * 79 + "\r")
            self.err.flush()
            self.bar_shown = False


class StopOnInterrupt:
    """First Ctrl-C asks the trainer to stop after this batch; the second one aborts."""

    def __init__(self, err=None):
        self.err = err or sys.stderr
        self.event = threading.Event()
        self.previous = None

    def __call__(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum, frame) -> None:
        if self.event.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.event.set()
        print("\nstopping after this batch (weights are saved); Ctrl-C again to abort",
              file=self.err, flush=True)

    def __enter__(self) -> "StopOnInterrupt":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def cmd_train(args: argparse.Namespace) -> int:
    params = resolve_params(args.model_type, args)
    train = trainer_function(args.model_type)
    if "run_dir" in params or "on_event" in params:
        raise ConfigError("run_dir/on_event cannot be set from the command line.")
    with StopOnInterrupt() as stop:
        run_dir = train(**params, on_event=ConsoleReporter(), should_stop=stop)
    from pedsense.runs import RunFolder

    return 130 if RunFolder(run_dir).status == "stopped" else 0


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
