"""`pedsense train yolo|resnet-lstm|hybrid`: every trainer parameter as an option.

Options come from the trainer's parameter spec (``pedsense.train.params``): names, types,
choices, help and defaults are written once there. The run is queued on the data home's queue
like a dashboard's (``pedsense.runqueue``), waits for a free slot (saying why), then trains in
this process: one line per epoch on stdout, a progress bar on stderr (terminals only), Ctrl-C
stops after the current batch (status ``stopped``, weights kept); a second Ctrl-C aborts at
once. Dashboards see it live and can stop it. ``--detach`` leaves it to a worker process instead
and returns at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pedsense.commands.runs import add_detach_option
from pedsense.errors import ConfigError
from pedsense.io import read_json
from pedsense.train.params import SPECS, Param, spec_for

SHOWN_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "val_auc_binary", "val_roc_auc", "val_f1",
                 "precision", "recall", "mAP50",
                 "mAP50-95", "lr", "seconds")


def _option_help(param: Param) -> str:
    default = param.none_label if param.default is None else param.default
    shown = {False: "false", True: "true"}.get(default, default) if isinstance(default, bool) else default
    rule = "" if param.kind in ("bool", "text", "choice") else f"; {param.describe()}"
    return f"{param.help.replace('%', '%%')}{rule} (default: {shown})"


def add_trainer_options(parser: argparse.ArgumentParser, model_type: str) -> None:
    """One ``--option`` per parameter of the trainer's spec; every default is None = "not given"."""
    for param in spec_for(model_type):
        flag = "--" + param.name.replace("_", "-")
        if param.kind == "bool":
            parser.add_argument(flag, dest=param.name, action=argparse.BooleanOptionalAction,
                                default=None, help=_option_help(param))
            continue
        choices = ([c if isinstance(c, str) else {None: "none", False: "false", True: "true"}[c]
                    for c in param.choices] if param.kind == "choice" else None)
        parser.add_argument(flag, dest=param.name, type=param.cli_value, default=None,
                            metavar="|".join(choices) if choices else param.name.upper(),
                            help=_option_help(param))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` (with yolo, resnet-lstm, hybrid) to the `pedsense` parser."""
    train = subparsers.add_parser("train", help="train a model (yolo, resnet-lstm, hybrid)")
    kinds = train.add_subparsers(dest="model_type", metavar="MODEL", required=True)
    for model_type, spec in SPECS.items():
        sub = kinds.add_parser(model_type, help=spec.description, description=spec.description)
        sub.add_argument("--preset", choices=("quick", "seed"), default=None,
                         help="start from a preset: quick (CPU, minutes) or seed (the seed defaults); "
                              "options given explicitly override it")
        add_trainer_options(sub, model_type)
        add_detach_option(sub)
        sub.set_defaults(func=cmd_train)


def resolve_params(model_type: str, args: argparse.Namespace) -> dict[str, Any]:
    """The preset's parameters, overridden by every option given on the command line."""
    from pedsense.train.presets import preset_params

    params = preset_params(model_type, args.preset) if args.preset else {}
    for name in spec_for(model_type).names:
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
            note = ((read_json(Path(event.run_dir) / "config.json", {}) or {}).get("selection") or {}).get("note")
            if note:  # a context run's best epoch chosen on a tiny val split, or early
                print(f"note: {note}", file=self.out, flush=True)

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
    from pedsense.launches import queue_run

    params = resolve_params(args.model_type, args)
    if "run_dir" in params or "on_event" in params:
        raise ConfigError("run_dir/on_event cannot be set from the command line.")
    if args.detach:
        return detach(queue_run(args.model_type, params))
    from pedsense.procs import me

    return run_here(queue_run(args.model_type, params, reserved_by=me()))


def run_here(folder) -> int:
    """Wait for a slot, then do the queued run ``folder`` in this process (epoch lines, Ctrl-C
    stops); 130 when it ended stopped."""
    from pedsense.procs import Heartbeat
    from pedsense.runqueue import RunTaken, wait_for_slot
    from pedsense.worker import execute

    heartbeat = Heartbeat(folder.worker_path)
    with StopOnInterrupt() as stop:
        try:
            wait_for_slot(folder, report=lambda why: print(why, file=sys.stderr, flush=True),
                          on_claimed=heartbeat.start, cancel_if=stop)
            execute(folder, on_event=ConsoleReporter(), should_stop=stop)
        except RunTaken as exc:
            print(str(exc), file=sys.stderr, flush=True)
            return 130
        finally:
            heartbeat.stop()
    return 130 if folder.status == "stopped" else 0


def detach(folder) -> int:
    """Leave the queued run ``folder`` to a worker process that waits for a slot itself."""
    from pedsense.worker import spawn_worker

    process = spawn_worker(folder, wait=True)
    print(folder.run_id, flush=True)
    print(f"queued; worker process {process.pid} starts it when a slot is free (its output: "
          f"{folder.worker_log_path}). Follow it with `pedsense runs` or the dashboard, stop it with "
          f"`pedsense stop {folder.run_id}`.", file=sys.stderr, flush=True)
    return 0


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
