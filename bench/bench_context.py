"""The context family on real JAAD: quality over 5 seeds and training speed, with the defaults.

Builds the context sets of JAAD_beh and JAAD_all from the annotations in ``--jaad`` (in a
temporary data home whose raw folders link there; ``--home`` reuses a home already built), trains
``train_context`` with its defaults for each seed, picks each run's epoch on the official val
split (balanced accuracy, the trainer's rule) and scores that checkpoint on the official test
windows. Prints mean ± std over the seeds beside the floors of issue 18, the trivial baselines on
the same windows, and the seconds of one epoch of the model (the GRU by default) over JAAD_all's
8,613 training windows.
Test numbers are only ever printed: nothing here chooses anything on them.

    .venv/bin/python bench/bench_context.py --jaad /tmp/jaadfull/jaad [--seeds 5] [--set epochs=10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_context_data import make_home  # noqa: E402  (a home whose raw folders link to --jaad)
from pedsense.benchmarks import trivial_baselines  # noqa: E402
from pedsense.data.context_format import build_context, built_sample_types, load_context_split  # noqa: E402
from pedsense.data.intent import IntentOptions  # noqa: E402
from pedsense.metrics import classification_metrics  # noqa: E402
from pedsense.runfolder import RunFolder  # noqa: E402
from pedsense.train.checkpoints import load_context_model  # noqa: E402
from pedsense.train.context_model import predict_proba  # noqa: E402
from pedsense.train.context_trainer import train_context  # noqa: E402
from pedsense.train.params import CONTEXT  # noqa: E402

METRICS = ("accuracy", "auc_binary", "roc_auc", "f1", "precision", "recall")
# issue 18's floors (mean over 5 seeds on the official test windows)
FLOORS = {"beh": {"auc_binary": 0.62, "roc_auc": 0.68, "f1": 0.74},
          "all": {"accuracy": 0.85, "auc_binary": 0.81, "f1": 0.63}}
EPOCH_TARGET_S = 5.0
TOTAL_TARGET_S = 15 * 60


def run_seed(home: Path, sample_type: str, seed: int, overrides: dict) -> dict:
    run = train_context(home=home, seed=seed, sample_type=sample_type, device="cpu", **overrides)
    folder = RunFolder(run)
    rows = folder.read_metrics()
    config = folder.read_config()
    model, meta = load_context_model(run / "best.pt")
    test = load_context_split(home, "test", sample_type=sample_type).select(meta["features"])
    p = predict_proba(model, test.groups)[:, 1]
    return {"test": classification_metrics(test.labels, p), "labels": test.labels,
            "best_epoch": meta["epoch"], "val": config["best_metric"], "epochs": len(rows),
            "epoch_seconds": [r["seconds"] for r in rows], "run_seconds": config["duration_s"],
            "note": (config.get("selection") or {}).get("note"), "features": meta["features"]}


def spread(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {std:.3f}"


def report(sample_type: str, results: list[dict]) -> bool:
    print(f"\nJAAD_{sample_type}: {len(results)} seeds, features {', '.join(results[0]['features'])}, "
          f"{results[0]['test']['n']} test windows ({results[0]['test']['positives']} crossing)")
    print(f"  best epochs (by val balanced accuracy): {[r['best_epoch'] for r in results]}"
          f"  val AUC {spread([r['val'].get('val_auc_binary') for r in results])}")
    ok = True
    print("  test metric    mean ± std (5 seeds)   floor   ")
    for metric in METRICS:
        floor = FLOORS[sample_type].get(metric)
        mean = statistics.fmean(r["test"][metric] for r in results)
        verdict = "" if floor is None else ("  ok" if mean >= floor else "  BELOW")
        ok &= floor is None or mean >= floor
        print(f"  {metric:<13}  {spread([r['test'][metric] for r in results]):<21}  "
              f"{'' if floor is None else f'≥ {floor:.2f}'}{verdict}")
    for row in trivial_baselines(results[0]["labels"]):
        print(f"  baseline {row['model']:<20} accuracy {row['accuracy']:.3f}  auc_binary {row['auc_binary']:.3f}"
              f"  f1 {row['f1']:.3f}")
    notes = [r["note"] for r in results if r["note"]]
    if notes:  # one per seed, differing only in the epoch: the first says it
        print(f"  note ({len(notes)} of {len(results)} seeds): {notes[0]}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jaad", type=Path, help="JAAD's annotation repository (annotations/, ...)")
    parser.add_argument("--home", type=Path, help="a data home with both context builds (skips building)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sample-types", default="beh,all")
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                        help="override a default (for tuning on val; the bench's figures use none)")
    parser.add_argument("--json", type=Path, help="also write every run's numbers here")
    parser.add_argument("--tune", action="store_true",
                        help="print val numbers only (tuning looks at val, never at test)")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name] = CONTEXT[name].check(CONTEXT[name].cli_value(value))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_context_") as tmp:
        home = args.home
        if home is None:
            if args.jaad is None:
                parser.error("give --jaad DIR (or --home with both context builds)")
            home = make_home(args.jaad, Path(tmp) / "home")
        sample_types = args.sample_types.split(",")
        for sample_type in sample_types:
            if sample_type not in built_sample_types(home):
                t0 = time.perf_counter()
                build_context(home, intent=IntentOptions(sample_type=sample_type))
                print(f"built JAAD_{sample_type} in {time.perf_counter() - t0:.1f} s")
        print(f"defaults: {json.dumps({**CONTEXT.record(CONTEXT.defaults()), **overrides})}")
        ok, everything = True, {}
        for sample_type in sample_types:
            results = []
            for seed in range(1, args.seeds + 1):
                results.append(run_seed(home, sample_type, seed, overrides))
                r = results[-1]
                if args.tune:
                    print(f"  JAAD_{sample_type} seed {seed}: best epoch {r['best_epoch']}/{r['epochs']}, val "
                          + ", ".join(f"{k} {v:.3f}" for k, v in r["val"].items() if isinstance(v, float))
                          + f" ({r['run_seconds']:.0f} s, epoch {statistics.median(r['epoch_seconds']):.2f} s)",
                          flush=True)
                    continue
                print(f"  JAAD_{sample_type} seed {seed}: epoch {r['best_epoch']}/{r['epochs']}, test "
                      + ", ".join(f"{m} {r['test'][m]:.3f}" for m in METRICS) + f" ({r['run_seconds']:.0f} s)",
                      flush=True)
            if args.tune:
                continue
            ok &= report(sample_type, results)
            everything[sample_type] = [{k: v for k, v in r.items() if k != "labels"} for r in results]
            if sample_type == "all":
                seconds = [s for r in results for s in r["epoch_seconds"]]
                median = statistics.median(seconds)
                model = {**CONTEXT.defaults(), **overrides}["model"]
                print(f"  one {model} epoch over JAAD_all train (8,613 windows): "
                      f"median {median:.2f} s, {spread(seconds)} s over {len(seconds)} epochs "
                      f"(target ≤ {EPOCH_TARGET_S:.0f} s){'' if median <= EPOCH_TARGET_S else '  OVER'}")
        total = time.perf_counter() - started
        print(f"\nwhole bench: {total / 60:.1f} min (target ≤ {TOTAL_TARGET_S / 60:.0f} min)"
              f"{'' if total <= TOTAL_TARGET_S else '  OVER'}")
        if args.json:
            args.json.write_text(json.dumps(everything, indent=1, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
