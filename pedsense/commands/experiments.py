"""`pedsense sweep`, `pedsense sweep-worker`, `pedsense sweeps`, `pedsense leaderboard`.

A sweep's base config takes every option of `pedsense train <model>` (from the trainer's spec);
``--vary`` names what changes. Trials are ordinary runs (``pedsense runs`` lists them), one line
per trial on stdout; Ctrl-C stops the running trial, which runs again when the sweep resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pedsense.errors import ConfigError
from pedsense.train.params import SPECS

STORAGE_HELP = ("the sweep's Optuna storage, a SQLAlchemy URL (default: $PEDSENSE_SWEEP_STORAGE, else "
                "sqlite:///<home>/models/sweeps.db); a PostgreSQL/MySQL URL lets workers on other "
                "machines join the same study")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sweep``, ``sweep-worker``, ``sweeps`` and ``leaderboard`` to the `pedsense` parser."""
    from pedsense.commands.train import add_trainer_options
    from pedsense.sweeps.spec import PRUNERS, SAMPLERS

    sweep = subparsers.add_parser("sweep", help="sweep a trainer's parameters and seeds on Optuna")
    kinds = sweep.add_subparsers(dest="model_type", metavar="MODEL", required=True)
    for model_type, spec in SPECS.items():
        sub = kinds.add_parser(model_type, help=f"sweep: {spec.description}",
                               description=f"Sweep the {model_type} trainer. Options named after the "
                                           "trainer's parameters set the base config of every trial.")
        sub.add_argument("sweep_name", metavar="SWEEP",
                         help="the sweep's name (its Optuna study); its runs are SWEEP-tNNN")
        sub.add_argument("--vary", action="append", default=[], metavar="PARAM=VALUES",
                         help="a parameter to vary: PARAM=V1,V2,... or PARAM=LOW:HIGH[:log|:STEP] "
                              "(repeat for several)")
        sub.add_argument("--seeds", default=None, metavar="S1,S2,...",
                         help="seeds every configuration runs with (default: the base config's seed)")
        sub.add_argument("--sampler", choices=SAMPLERS, default="grid", help="grid, or Optuna's random/TPE")
        sub.add_argument("--budget", type=int, default=None,
                         help="trials to run, 1-200 (default for a grid: all of it)")
        sub.add_argument("--prune", dest="pruner", choices=PRUNERS, default="none",
                         help="median: stop trials below the median of earlier ones at the same epoch")
        sub.add_argument("--sampler-seed", type=int, default=0, help="seed of the sampler (default 0)")
        base = sub.add_mutually_exclusive_group()
        base.add_argument("--preset", choices=("quick", "seed"), default=None, help="base config: a preset")
        base.add_argument("--from-run", default=None, metavar="RUN", help="base config: a run's parameters")
        sub.add_argument("--storage", default=None, metavar="URL", help=STORAGE_HELP)
        mode = sub.add_mutually_exclusive_group()
        mode.add_argument("--create-only", action="store_true",
                          help="create the study and exit (start workers with `pedsense sweep-worker`)")
        mode.add_argument("--detach", action="store_true", help="run its worker in the background")
        add_trainer_options(sub, model_type)
        sub.set_defaults(func=cmd_sweep)

    worker = subparsers.add_parser("sweep-worker", help="join a sweep and run its trials",
                                   description="Run trials of an existing sweep until its budget is "
                                               "spent. Start several (on this or other machines, with "
                                               "one --storage) to run trials side by side.")
    worker.add_argument("sweep_name", metavar="STUDY", help="the sweep's name")
    worker.add_argument("--storage", default=None, metavar="URL", help=STORAGE_HELP)
    worker.add_argument("--max-trials", type=int, default=None, help="leave after this many trials")
    worker.set_defaults(func=cmd_sweep_worker)

    listing = subparsers.add_parser("sweeps", help="list sweeps, or show one sweep's configurations")
    listing.add_argument("sweep_name", nargs="?", metavar="NAME", help="show this sweep's results")
    listing.add_argument("--storage", default=None, metavar="URL", help=STORAGE_HELP)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_sweeps)

    board = subparsers.add_parser("leaderboard", help="evaluated runs as mean ± std over seeds, beside "
                                                      "the published JAAD results")
    board.add_argument("--val", action="store_true", help="include runs evaluated on val (marked)")
    board.add_argument("--no-published", action="store_true", help="leave out the published rows")
    board.add_argument("--format", choices=("table", "csv", "markdown", "latex"), default="table")
    board.add_argument("-o", "--output", default=None, help="write to this file instead of stdout")
    board.set_defaults(func=cmd_leaderboard)


def _storage(args: argparse.Namespace) -> str | None:
    from pedsense.sweeps.worker import STORAGE_ENV

    return args.storage or os.environ.get(STORAGE_ENV) or None


def spec_from_args(args: argparse.Namespace):
    """The :class:`SweepSpec` a `pedsense sweep` command line describes."""
    from pedsense.commands.train import resolve_params
    from pedsense.sweeps.spec import SweepError, SweepSpec, base_config, parse_seeds, parse_vary

    overrides = resolve_params(args.model_type, argparse.Namespace(**{**vars(args), "preset": None}))
    base, source = base_config(args.model_type, preset=args.preset, run=args.from_run, overrides=overrides)
    varied: dict[str, Any] = {}
    for text in args.vary:
        name, value = parse_vary(args.model_type, text)
        if name in varied:
            raise SweepError({f"varied.{name}": f"--vary {name} is given twice: give all its values in one."})
        varied[name] = value
    return SweepSpec(args.sweep_name, args.model_type, varied, base=base, seeds=parse_seeds(args.seeds),
                     sampler=args.sampler, budget=args.budget, pruner=args.pruner,
                     sampler_seed=args.sampler_seed, base_source=source)


def cmd_sweep(args: argparse.Namespace) -> int:
    from pedsense.sweeps import create_sweep, launch_worker

    if args.sampler_seed < 0:
        raise ConfigError("--sampler-seed must be >= 0.")
    sweep = create_sweep(spec_from_args(args), storage=_storage(args))
    spec = sweep.spec
    print(f"sweep {spec.name}: {spec.n_trials} trials of {spec.model_type} ({spec.sampler}, varying "
          f"{', '.join(spec.varied)}; seeds {', '.join(map(str, spec.seeds))}; base: {spec.base_source}) "
          f"in {sweep.shown_storage}", flush=True)
    if args.create_only:
        print(f"start workers with: pedsense sweep-worker {spec.name}"
              + (f" --storage {sweep.shown_storage}" if args.storage else ""))
        return 0
    if args.detach:
        started = launch_worker(spec.name, storage=_storage(args))
        print(f"worker {started['pid']} started; its log: {started['log']}")
        return 0
    return _work(spec.name, _storage(args), None)


def cmd_sweep_worker(args: argparse.Namespace) -> int:
    return _work(args.sweep_name, _storage(args), args.max_trials)


def _work(name: str, storage: str | None, max_trials: int | None) -> int:
    from pedsense.commands.launch import StopOnInterrupt
    from pedsense.sweeps import run_worker

    with StopOnInterrupt() as stop:
        report = run_worker(name, storage=storage, max_trials=max_trials, should_stop=stop,
                            on_trial=_print_trial)
    done = sum(1 for o in report.outcomes if o.state == "complete")
    print(f"worker done: {report.reason}; {len(report.outcomes)} trials here, {done} complete")
    return 130 if stop() else 0


def _print_trial(outcome) -> None:
    values = ", ".join(f"{k}={v}" for k, v in outcome.params.items())
    value = f" {outcome.value:.4g}" if outcome.value is not None else ""
    print(f"trial {outcome.number} (seed {outcome.seed}, {values}): {outcome.state}{value}"
          + (f"  {outcome.run_id}" if outcome.run_id else "") + (f"  ({outcome.error})" if outcome.error else ""),
          flush=True)


def cmd_sweeps(args: argparse.Namespace) -> int:
    from pedsense.sweeps import configurations, list_sweeps, open_sweep, trials_frame

    if not args.sweep_name:
        sweeps = list_sweeps(_storage(args))
        if args.json:
            print(json.dumps(sweeps, indent=2))
        elif not sweeps:
            print("No sweeps yet. Start one with `pedsense sweep resnet-lstm NAME --vary learning_rate=1e-4,1e-3`.")
        for s in [] if args.json else sweeps:
            best = f"{s['best']:.4g}" if s["best"] is not None else "—"
            print(f"{s['name']}  {s['trainer']}  {s['sampler']}  varying {s['varied']}  {s['trials']} trials  "
                  f"best {s['metric']} {best}")
        return 0
    sweep = open_sweep(args.sweep_name, storage=_storage(args), join=False)
    table = configurations(trials_frame(sweep), list(sweep.spec.varied))
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        print(f"{sweep.name}: mean ± std of {sweep.metric} over seeds per configuration (best first)")
        print(table.to_string(index=False) if len(table) else "no trial has finished yet")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from pedsense.leaderboard import leaderboard, shown_table, to_csv, to_latex, to_markdown

    table = leaderboard(include_val=args.val, published=not args.no_published)
    if args.format == "csv":
        text = to_csv(table)
    elif args.format == "markdown":
        text = to_markdown(table)
    elif args.format == "latex":
        text = to_latex(table)
    elif table.empty:
        text = "No evaluated runs yet: evaluate one with `pedsense evaluate RUN --split test`.\n"
    else:
        text = shown_table(table).to_string(index=False) + "\n"
    if args.output:
        from pedsense.io import write_text_atomic

        write_text_atomic(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
