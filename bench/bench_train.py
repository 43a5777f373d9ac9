"""ResNet-LSTM trainer throughput vs a bare PyTorch loop on the same model and sequences.

Runs ``train_resnet_lstm`` at the quick preset, then (same process, same threads) a bare loop
that trains and evaluates the same model for the same epochs on the same sequences already
decoded into memory. Prints ``trainer samples/s / bare-loop samples/s`` (target >= 0.85).

    .venv/bin/python bench/bench_train.py            # uses $PEDSENSE_HOME's ResNet dataset,
                                                     # else builds the default demo set in a temp dir
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PEDSENSE_OFFLINE", "1")  # never wait on a download while timing

import torch  # noqa: E402
from torch import nn  # noqa: E402

from pedsense.config import paths  # noqa: E402
from pedsense.train.presets import preset_params  # noqa: E402
from pedsense.train.resnet_lstm import ResNetLSTM  # noqa: E402
from pedsense.train.resnet_trainer import (PedestrianSequenceDataset, class_weights,  # noqa: E402
                                           train_resnet_lstm)


def demo_home() -> Path:
    """A data home with the ResNet dataset built: $PEDSENSE_HOME's, or a fresh default demo set."""
    home = paths().home
    if (paths(home).resnet / "labels.csv").is_file():
        return home
    from pedsense.data.frames import extract_frames
    from pedsense.data.resnet_format import build_resnet_sequences
    from pedsense.data.synthetic import make_demo_dataset

    home = Path(tempfile.mkdtemp(prefix="pedsense-bench-"))
    print(f"building the default demo set in {home} …", flush=True)
    make_demo_dataset(home)
    extract_frames(home=home)
    build_resnet_sequences(home=home)
    return home


def bare_loop(home: Path, params: dict) -> tuple[float, int]:
    """Train + evaluate like the trainer, on tensors decoded beforehand. Returns (seconds, samples)."""
    crop = params.get("crop_size")
    train_set = PedestrianSequenceDataset("train", home=home, crop_size=crop)
    val_set = PedestrianSequenceDataset("val", home=home, crop_size=train_set.crop_size)
    train_x = torch.stack([train_set[i][0] for i in range(len(train_set))])
    train_y = torch.tensor(train_set.labels)
    val_x = torch.stack([val_set[i][0] for i in range(len(val_set))])
    val_y = torch.tensor(val_set.labels)
    epochs, batch = params["epochs"], params["batch_size"]

    started = time.perf_counter()
    torch.manual_seed(42)
    model = ResNetLSTM(backbone=params.get("backbone", "resnet50"), pretrained=False)
    criterion = nn.CrossEntropyLoss(weight=class_weights(train_set.class_counts()))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=params["learning_rate"], weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train_x))
        for start in range(0, len(order), batch):
            index = order[start:start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(train_x[index]), train_y[index])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for start in range(0, len(val_x), batch):
                criterion(model(val_x[start:start + batch]), val_y[start:start + batch])
        scheduler.step()
    return time.perf_counter() - started, epochs * (len(train_x) + len(val_x))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each side (best kept)")
    args = parser.parse_args()
    home = demo_home()
    params = preset_params("resnet-lstm", "quick")
    if args.epochs:
        params["epochs"] = args.epochs
    params["pretrained"] = False  # both sides start from the same random init, no download
    ResNetLSTM(backbone=params.get("backbone", "resnet50"), pretrained=False)  # warm imports up

    # The machine is shared: alternate the two sides and keep each one's best of `repeats`.
    trainer_runs, bare_runs = [], []
    for _ in range(args.repeats):
        bare_runs.append(bare_loop(home, params))
        started = time.perf_counter()
        run_dir = train_resnet_lstm(**params, home=home, name="bench")
        trainer_runs.append(time.perf_counter() - started)
    n_train = len(PedestrianSequenceDataset("train", home=home))
    n_val = len(PedestrianSequenceDataset("val", home=home))
    trainer_seconds = min(trainer_runs)
    trainer_rate = params["epochs"] * (n_train + n_val) / trainer_seconds
    bare_seconds, bare_samples = min(bare_runs)
    bare_rate = bare_samples / bare_seconds
    best = json.loads((run_dir / "config.json").read_text())["best_metric"]
    print(f"sequences: {n_train} train + {n_val} val, {params['epochs']} epochs, "
          f"{torch.get_num_threads()} torch threads; best val_acc {best.get('val_acc')}")
    print(f"trainer:   {trainer_rate:8.2f} samples/s (best of {[round(t, 1) for t in trainer_runs]} s)")
    print(f"bare loop: {bare_rate:8.2f} samples/s (best of {[round(t, 1) for t, _ in bare_runs]} s)")
    print(f"trainer samples/s / bare-loop samples/s = {trainer_rate / bare_rate:.3f} (target >= 0.85)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
