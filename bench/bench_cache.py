"""Epoch time with and without the frozen-feature cache (``feature_cache``), side by side.

For ResNet-50 at 224x224 with the whole backbone frozen (``frozen_children=8``), trains the
ResNet-LSTM with ``feature_cache="off"`` then ``"fp16"`` on the same sequences (one after the other),
and prints: the epoch time of each after the first (the uncached side has every crop decoded in
memory by then, so its epochs cost the backbone), their ratio (target >= 50x), and the cached
side's one-off extraction (as seconds and in uncached epochs). ``--cut6`` measures the seed's cut
too (``frozen_children=6``: the cache holds layer2's 512x28x28 maps and epochs still train
layer3-4), which decides whether ``feature_cache="auto"`` caches it.

    .venv/bin/python bench/bench_cache.py [--sequences 4] [--epochs 3] [--cut6]

Uses ``$PEDSENSE_HOME``'s ResNet dataset when built at 224, else builds a small demo set in a
temporary folder; either way a copy keeps ``--sequences`` train sequences (half as many val).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PEDSENSE_OFFLINE", "1")  # never wait on a download while timing

import torch  # noqa: E402

from pedsense.config import paths  # noqa: E402
from pedsense.runfolder import RunFolder  # noqa: E402
from pedsense.train.resnet_trainer import train_resnet_lstm  # noqa: E402


def source_home() -> Path:
    """A data home whose ResNet sequences are 224x224: $PEDSENSE_HOME's, or a fresh small demo set."""
    home = paths().home
    labels = paths(home).resnet / "labels.csv"
    if labels.is_file() and (json.loads((paths(home).sequences / "manifest.json").read_text())
                             .get("crop_size") in ([224, 224], None)):
        return home
    from pedsense.data.frames import extract_frames
    from pedsense.data.resnet_format import build_resnet_sequences
    from pedsense.data.synthetic import make_demo_dataset

    home = Path(tempfile.mkdtemp(prefix="pedsense-bench-cache-"))
    print(f"building a small demo set in {home} …", flush=True)
    make_demo_dataset(home, n_videos=3, num_frames=150)
    extract_frames(home=home)
    build_resnet_sequences(home=home)
    return home


def subset_home(source: Path, n_train: int) -> Path:
    """A copy of ``source``'s sequence dataset keeping ``n_train`` train and ``n_train // 2`` val rows."""
    home = Path(tempfile.mkdtemp(prefix="pedsense-bench-cache-subset-"))
    src, dst = paths(source).resnet, paths(home).resnet
    shutil.copytree(src / "sequences", dst / "sequences", copy_function=os.link)
    with open(src / "labels.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows, fields = list(reader), reader.fieldnames
    limits = {"train": n_train, "val": max(2, n_train // 2)}
    kept = []
    for split, limit in limits.items():  # half of each class where the split has enough
        for label in ("0", "1"):
            kept += [r for r in rows if r["split"] == split and r["label"] == label][: limit // 2]
    with open(dst / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    return home


def run(home: Path, frozen_children: int, cache: str, epochs: int) -> dict:
    started = time.perf_counter()
    run_dir = train_resnet_lstm(name=f"bench-{cache}", epochs=epochs, batch_size=4, home=home,
                                pretrained=False, frozen_children=frozen_children, feature_cache=cache)
    wall = time.perf_counter() - started
    folder = RunFolder(run_dir)
    seconds = [float(r["seconds"]) for r in folder.read_metrics()]
    record = folder.read_config().get("feature_cache") or {}
    extraction = sum(float(record.get(s, {}).get("seconds", 0.0)) for s in ("train", "val"))
    shutil.rmtree(run_dir)
    return {"epochs": seconds, "extraction": extraction, "wall": wall, "record": record}


def compare(home: Path, frozen_children: int, epochs: int) -> None:
    # one side, then the other, on the same data; medians of the epochs after the first per side
    off, on = run(home, frozen_children, "off", epochs), None
    shutil.rmtree(paths(home).data / "cache", ignore_errors=True)  # the cached side pays its extraction
    on = run(home, frozen_children, "fp16", epochs)
    later_off = statistics.median(off["epochs"][1:])
    later_on = statistics.median(on["epochs"][1:])
    first_on = on["epochs"][0] + on["extraction"]
    shape = on["record"].get("train", {}).get("shape")
    print(f"frozen_children={frozen_children} (cache holds {shape} per crop, fp16):")
    print(f"  uncached epochs: {[round(s, 2) for s in off['epochs']]} s")
    print(f"  cached epochs:   {[round(s, 3) for s in on['epochs']]} s, extraction {on['extraction']:.1f} s")
    print(f"  epoch time after the first, uncached / cached = {later_off / later_on:.1f}x "
          f"(target >= 50x for a fully frozen backbone)")
    print(f"  first epoch: cached {first_on:.1f} s (extraction {on['extraction']:.1f} s = "
          f"{on['extraction'] / off['epochs'][0]:.2f} uncached first epochs) vs uncached {off['epochs'][0]:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=4, help="train sequences kept (val: half)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--cut6", action="store_true", help="also measure the seed's cut (frozen_children=6)")
    args = parser.parse_args()
    home = subset_home(source_home(), args.sequences)
    print(f"ResNet-50 at 224x224, {args.sequences} train sequences, {args.epochs} epochs, "
          f"{torch.get_num_threads()} torch threads, device cpu")
    compare(home, 8, args.epochs)
    if args.cut6:
        compare(home, 6, args.epochs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
