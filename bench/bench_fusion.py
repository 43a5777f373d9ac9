"""Crops alone, context alone and both, on the same benchmark windows (issue 18.6).

Trains, for each seed, the ResNet-LSTM on the crop sequences, the context family's GRU on the
context build, and the fused ResNet-LSTM (``context_features``), then scores each run's chosen
checkpoint on the official test windows with ``pedsense evaluate``'s own code. The sequence build
and the context build cut the same windows (``IntentOptions``); the script checks that first
and prints the count of each. Without ``--home`` it makes the synthetic demo set (intent task,
200-frame clips) in a temporary folder: the figures then only show the pipeline works; a home
with JAAD's clips gives the real comparison (``pedsense preprocess frames``, ``preprocess resnet
--task intent``, ``preprocess context`` first).

    .venv/bin/python bench/bench_fusion.py [--home H] [--seeds 3] [--epochs 3] [--device cuda]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pedsense.config import paths  # noqa: E402
from pedsense.data.context_format import build_context, load_context_split  # noqa: E402
from pedsense.evaluation import evaluate  # noqa: E402
from pedsense.train.context_trainer import train_context  # noqa: E402
from pedsense.train.resnet_trainer import train_resnet_lstm  # noqa: E402

METRICS = ("accuracy", "auc_binary", "roc_auc", "f1")
FUSED = "box,vehicle,traffic"


def demo_home(folder: Path) -> Path:
    from pedsense.data.frames import extract_frames
    from pedsense.data.resnet_format import build_resnet_sequences
    from pedsense.data.synthetic import make_demo_dataset

    make_demo_dataset(folder, n_videos=3, seed=0, num_frames=200, width=320, height=180)
    extract_frames(home=folder)
    build_resnet_sequences(16, 8, (64, 64), home=folder, task="intent")
    return folder


def same_windows(home: Path) -> int:
    """The test windows both builds hold (checked equal: video, pedestrian, first frame)."""
    with open(paths(home).resnet / "labels.csv", newline="") as f:
        sequences = {(r["video_id"], r["track_id"], int(r["start_frame"])) for r in csv.DictReader(f)
                     if r["split"] == "test"}
    context = load_context_split(home, "test").windows
    windows = {(r.video_id, str(r.track_id), int(r.start_frame)) for r in context.itertuples()}
    if sequences != windows:
        sys.exit(f"The builds differ: {len(sequences - windows)} test sequences without a context window, "
                 f"{len(windows - sequences)} the other way (frames missing for some windows?).")
    return len(windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a data home with the intent sequence build (default: demo set)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        home = args.home or demo_home(Path(temp) / "home")
        build_context(home)
        print(f"test windows in both builds: {same_windows(home)}")
        resnet = dict(home=home, device=args.device, epochs=args.epochs, batch_size=16, learning_rate=1e-3,
                      backbone="resnet18", frozen_children=8)  # a frozen backbone: the feature cache on
        context = dict(home=home, device=args.device, epochs=max(args.epochs, 5))
        if args.home is None:  # offline demo: small and from scratch
            resnet.update(pretrained=False, crop_size=32)
            context.update(batch_size=16)  # 55 training windows
        kinds = {
            "crops alone (ResNet-LSTM)": lambda seed: train_resnet_lstm("crops", seed=seed, **resnet),
            "context alone (GRU)": lambda seed: train_context("context", seed=seed, **context),
            f"both (ResNet-LSTM + {FUSED})": lambda seed: train_resnet_lstm(
                "fused", seed=seed, context_features=FUSED, **resnet),
        }
        print(f"{'model':<44} {'n':>5} " + " ".join(f"{m:>15}" for m in METRICS) + f" {'train s':>8}")
        for label, train in kinds.items():
            scores, seconds, n = {m: [] for m in METRICS}, [], 0
            for seed in range(1, args.seeds + 1):
                started = time.perf_counter()
                run = train(seed)
                seconds.append(time.perf_counter() - started)
                intent = evaluate(run, "test", home=home, device=args.device)["intent"]
                n = intent["n"]
                for m in METRICS:
                    scores[m].append(intent[m])
            cells = [f"{statistics.mean(v):.3f} ± {statistics.pstdev(v):.3f}" for v in scores.values()]
            print(f"{label:<44} {n:>5} " + " ".join(f"{c:>15}" for c in cells)
                  + f" {statistics.mean(seconds):>8.1f}")


if __name__ == "__main__":
    main()
