"""Dashboard overhead: the quick ResNet-LSTM preset in a worker process vs called directly.

Prints, side by side on the same data (in pairs whose order alternates, so drift in the load of
a shared machine hits both sides alike; the median of the pairs' ratios):

- the wall-time ratio of a run launched through the ``RunManager`` (queued on disk, trained in a
  ``python -m pedsense.worker`` process, followed through its ``events.jsonl``) to the same
  trainer called in this process (target <= 1.05). The worker's time runs from ``submit`` to the
  snapshot reading ``completed``: its process start (Python, torch) is counted.
- the latency from a worker's EpochEnd (the time its record was written) to that epoch's
  metrics being readable through ``RunManager.snapshot`` (target <= 1 s; the Runs page polls
  every second, so a chart shows an epoch within latency + 1 s).

    .venv/bin/python bench/bench_dashboard.py [--epochs 3] [--repeats 2]   # the default demo set (8 clips)
    .venv/bin/python bench/bench_dashboard.py --videos 3 --frames 120        # a small one, for a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PEDSENSE_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")

from pedsense.runs import RunManager  # noqa: E402
from pedsense.train.presets import preset_params  # noqa: E402

EXTRA = dict(num_workers=0, device="cpu")


def make_home(root: Path, videos: int, frames: int) -> Path:
    """A demo set with frames and ResNet sequences built (64×64 crops)."""
    from pedsense.data.frames import extract_frames
    from pedsense.data.resnet_format import build_resnet_sequences
    from pedsense.data.synthetic import make_demo_dataset

    make_demo_dataset(root, n_videos=videos, seed=0, num_frames=frames)
    extract_frames(home=root)
    build_resnet_sequences(16, 8, (64, 64), home=root)
    return root


def quick(epochs: int) -> dict:
    return {**preset_params("resnet-lstm", "quick"), "epochs": epochs, **EXTRA}


def run_direct(home: Path, epochs: int) -> tuple[float, float]:
    """Wall time of a direct call, and the part of it before RunStarted (validation, data)."""
    from pedsense.train.resnet_trainer import train_resnet_lstm

    marks: dict[str, float] = {}
    started = time.perf_counter()
    train_resnet_lstm(name="direct", home=home, **quick(epochs),
                      on_event=lambda e: marks.setdefault(type(e).__name__, time.perf_counter()))
    return time.perf_counter() - started, marks["RunStarted"] - started


def run_worker(home: Path, epochs: int) -> tuple[float, float, list[float]]:
    """Wall time through the manager's worker process, the part of it before RunStarted (the
    process start, imports, validation, data), and per-epoch EpochEnd -> snapshot latencies."""
    from pedsense.runfolder import RunFolder
    from pedsense.train.events import read_records

    manager = RunManager(home)
    seen: dict[int, float] = {}
    done = threading.Event()

    def poll(run_id: str) -> None:
        while not done.is_set():
            rows = len(manager.snapshot(run_id).metrics)
            now = time.time()
            for n in range(1, rows + 1):
                seen.setdefault(n, now)
            time.sleep(0.02)

    started, submitted = time.perf_counter(), time.time()
    run_id = manager.submit("resnet-lstm", {"name": "worker", **quick(epochs)})
    poller = threading.Thread(target=poll, args=(run_id,), daemon=True)
    poller.start()
    snap = manager.wait(run_id, 3600)
    elapsed = time.perf_counter() - started
    time.sleep(0.1)  # let the poller see the last epoch, which arrives with the completion
    done.set()
    poller.join()
    manager.shutdown()
    if snap.status != "completed":
        raise SystemExit(f"worker run ended {snap.status}: {snap.error}")
    records, _ = read_records(RunFolder(snap.path).events_path)
    emitted = [r["t"] for r in records if r["type"] == "EpochEnd"]
    return elapsed, records[0]["t"] - submitted, [seen[n] - t for n, t in enumerate(emitted, 1) if n in seen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the quick preset's: 3)")
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs")
    parser.add_argument("--videos", type=int, default=8, help="demo clips (default: the default demo set's 8)")
    parser.add_argument("--frames", type=int, default=300, help="frames per demo clip (default 300)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp), args.videos, args.frames)
        os.environ["PEDSENSE_HOME"] = str(home)
        run_direct(home, 1)  # warm-up: imports, allocator, file cache (a worker pays its imports)
        direct, worker, latencies = [], [], []
        for pair in range(args.repeats):
            order = ("direct", "worker") if pair % 2 == 0 else ("worker", "direct")
            for side in order:
                if side == "direct":
                    direct.append(run_direct(home, args.epochs))
                else:
                    seconds, start, lat = run_worker(home, args.epochs)
                    worker.append((seconds, start))
                    latencies += lat
    ratios = [w[0] / d[0] for w, d in zip(worker, direct)]
    print(f"quick ResNet-LSTM preset, {args.epochs} epochs, {args.videos} demo clips of {args.frames} frames, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    for label, runs in (("direct call   ", direct), ("worker process", worker)):
        print(f"{label}: {[round(total, 1) for total, _ in runs]} s; before RunStarted "
              f"{[round(start, 1) for _, start in runs]} s; training "
              f"{[round(total - start, 1) for total, start in runs]} s")
    print(f"wall-time ratio worker/direct: {statistics.median(ratios):.3f} median of {len(ratios)} pairs "
          f"{[round(r, 3) for r in ratios]} (target <= 1.05)")
    print(f"EpochEnd -> snapshot latency: max {max(latencies) * 1000:.0f} ms, "
          f"median {statistics.median(latencies) * 1000:.0f} ms over {len(latencies)} epochs "
          f"(target <= 1000 ms; the Runs page adds its 1 s refresh)")


if __name__ == "__main__":
    main()
