"""Data-parallel training: samples/s of two processes (``devices="cpu,cpu"``) over one process.

Trains the ResNet-LSTM twice on the same sequences, one process, then two gloo processes
(the trainer starts them itself, ``pedsense.train.spawn``; torchrun runs the same loop), with
the same global batch, and prints each side's training samples per second after the first
epoch (an epoch's samples over its wall time, validation included) and their ratio. On this
project's 2-core CPU machine two processes share the same two cores, so the ratio shows the
cost of DDP's gradient all-reduce rather than a speed-up; on a machine with a device per
process it is the scaling figure.

    .venv/bin/python bench/bench_ddp.py [--sequences 16] [--epochs 3] [--backbone resnet18] [--crop 64]

Uses the same data as ``bench_cache.py`` ($PEDSENSE_HOME's ResNet sequences at 224, else a
small demo set), resized to ``--crop``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cache import source_home, subset_home  # noqa: E402

import torch  # noqa: E402

from pedsense.runfolder import RunFolder  # noqa: E402
from pedsense.train.resnet_trainer import PedestrianSequenceDataset, train_resnet_lstm  # noqa: E402


def run(home: Path, devices: str | None, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    run_dir = train_resnet_lstm(name="bench-ddp", epochs=args.epochs, batch_size=args.batch, home=home,
                                backbone=args.backbone, crop_size=args.crop, pretrained=False,
                                feature_cache="off", devices=devices, num_workers=0)
    folder = RunFolder(run_dir)
    seconds = [float(r["seconds"]) for r in folder.read_metrics()]
    samples = (folder.read_config().get("distributed") or {}).get("samples_per_epoch")
    shutil.rmtree(run_dir)
    return {"seconds": seconds, "samples": samples, "wall": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=16, help="train sequences kept (val: half)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="the global batch")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--crop", type=int, default=64)
    args = parser.parse_args()
    home = subset_home(source_home(), args.sequences)
    n_train = len(PedestrianSequenceDataset("train", home=home, crop_size=args.crop))
    print(f"ResNet-LSTM ({args.backbone}, seed cut, {args.crop}x{args.crop}), {n_train} train sequences, "
          f"global batch {args.batch}, {args.epochs} epochs, {torch.get_num_threads()} torch threads, cpu")
    one = run(home, None, args)
    two = run(home, "cpu,cpu", args)
    n_one = n_train - 1 if n_train % args.batch == 1 and n_train > args.batch else n_train
    rate_one = n_one / statistics.median(one["seconds"][1:])
    rate_two = (two["samples"] or n_one) / statistics.median(two["seconds"][1:])
    print(f"  1 process:   epochs {[round(s, 1) for s in one['seconds']]} s, {rate_one:.1f} samples/s")
    print(f"  2 processes: epochs {[round(s, 1) for s in two['seconds']]} s, {rate_two:.1f} samples/s "
          f"({two['samples']} samples per epoch, as one process: {n_one})")
    print(f"  samples/s, 2 processes / 1 process = {rate_two / rate_one:.2f}x (on one CPU box both sides "
          "share the same cores: the ratio says what DDP costs or gains there, not how it scales on GPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
