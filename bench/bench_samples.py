"""What scoring the prediction samples costs an epoch (``prediction_samples``), side by side.

Trains the ResNet-LSTM twice on the same sequences, one after the other: ``prediction_samples=0``
then ``8`` (the default), and prints the mean epoch time of each, the time the previews took
per epoch (recorded in the run's config.json: picking and decoding the samples once, then each
epoch their sheet and record; their P(crossing) comes from the validation pass itself), and the
ratio of that to an epoch (target <= 0.03). The side-by-side difference of the two epoch times
is printed too, but on a shared machine it is within the noise.

    .venv/bin/python bench/bench_samples.py [--sequences 48] [--epochs 3] [--frozen-children 6]
        [--backbone resnet50] [--crop-size N]

Uses ``$PEDSENSE_HOME``'s ResNet dataset when built at 224, else a small demo set (built in a
temporary folder, as ``bench_cache.py`` does); either way ``--sequences`` train sequences.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PEDSENSE_OFFLINE", "1")  # never wait on a download while timing

from bench_cache import source_home, subset_home  # noqa: E402

from pedsense.runfolder import RunFolder  # noqa: E402
from pedsense.train.resnet_trainer import train_resnet_lstm  # noqa: E402

TARGET = 0.03


def run(home: Path, samples: int, args: argparse.Namespace) -> dict:
    os.environ["PEDSENSE_HOME"] = str(home)
    folder = RunFolder(train_resnet_lstm(name=f"samples{samples}", epochs=args.epochs, batch_size=8,
                                         frozen_children=args.frozen_children, prediction_samples=samples,
                                         backbone=args.backbone, crop_size=args.crop_size, num_workers=0))
    rows = folder.read_metrics()
    seconds = [r["seconds"] for r in rows[1:]] or [r["seconds"] for r in rows]  # the first epoch warms up
    cost = folder.read_config().get("prediction_samples") or {}
    return {"epoch_s": statistics.mean(seconds), "previews_s": cost.get("seconds", 0.0),
            "scored_epochs": cost.get("epochs", 0), "samples": cost.get("samples", 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=48, help="train sequences (val: half as many)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--frozen-children", type=int, default=6, help="6: the seed's cut (no feature cache)")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--crop-size", type=int, default=None, help="resize the crops (default: as built, 224)")
    args = parser.parse_args()
    home = subset_home(source_home(), args.sequences)
    without = run(home, 0, args)
    with_samples = run(home, 8, args)
    per_epoch = with_samples["previews_s"] / max(with_samples["scored_epochs"], 1)
    print(f"{args.sequences} train sequences, {args.backbone} at {args.crop_size or 'built'} px, "
          f"frozen_children={args.frozen_children}, {args.epochs} epochs")
    print(f"epoch without prediction samples: {without['epoch_s']:.2f} s; with 8: {with_samples['epoch_s']:.2f} s "
          f"(side by side: {with_samples['epoch_s'] / without['epoch_s']:.3f}x, noise included)")
    print(f"previews: {with_samples['samples']} samples, {with_samples['previews_s']:.3f} s over "
          f"{with_samples['scored_epochs']} epochs = {per_epoch:.3f} s per epoch")
    print(f"ratio previews / epoch: {per_epoch / with_samples['epoch_s']:.4f}  (target <= {TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
