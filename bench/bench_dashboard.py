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

    .venv/bin/python bench/bench_dashboard.py [--epochs 3] [--repeats 3] [--videos 3]
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


def make_home(root: Path, videos: int) -> Path:
    """A demo set with frames and ResNet sequences built (64×64 crops)."""
    from pedsense.data.frames import extract_frames
    from pedsense.data.resnet_format import build_resnet_sequences
    from pedsense.data.synthetic import make_demo_dataset

    make_demo_dataset(root, n_videos=videos, seed=0, num_frames=120, width=320, height=180)
    extract_frames(home=root)
    build_resnet_sequences(16, 8, (64, 64), home=root)
    return root


def quick(epochs: int) -> dict:
    return {**preset_params("resnet-lstm", "quick"), "epochs": epochs, **EXTRA}


def run_direct(home: Path, epochs: int) -> float:
    from pedsense.train.resnet_trainer import train_resnet_lstm

    started = time.perf_counter()
    train_resnet_lstm(name="direct", home=home, **quick(epochs))
    return time.perf_counter() - started


def run_worker(home: Path, epochs: int) -> tuple[float, list[float]]:
    """Wall time through the manager's worker process, and per-epoch EpochEnd -> snapshot latencies."""
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

    started = time.perf_counter()
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
    return elapsed, [seen[n] - t for n, t in enumerate(emitted, 1) if n in seen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the quick preset's: 3)")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs")
    parser.add_argument("--videos", type=int, default=3, help="demo clips to build the data from")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp), args.videos)
        os.environ["PEDSENSE_HOME"] = str(home)
        run_direct(home, 1)  # warm-up: imports, allocator, file cache
        direct, worker, latencies = [], [], []
        for pair in range(args.repeats):
            order = ("direct", "worker") if pair % 2 == 0 else ("worker", "direct")
            for side in order:
                if side == "direct":
                    direct.append(run_direct(home, args.epochs))
                else:
                    seconds, lat = run_worker(home, args.epochs)
                    worker.append(seconds)
                    latencies += lat
    ratios = [w / d for w, d in zip(worker, direct)]
    print(f"quick ResNet-LSTM preset, {args.epochs} epochs, {args.videos} demo clips, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"direct call    : {[round(x, 1) for x in direct]} s")
    print(f"worker process : {[round(x, 1) for x in worker]} s")
    print(f"wall-time ratio worker/direct: {statistics.median(ratios):.3f} median of {len(ratios)} pairs "
          f"{[round(r, 3) for r in ratios]} (target <= 1.05)")
    print(f"EpochEnd -> snapshot latency: max {max(latencies) * 1000:.0f} ms, "
          f"median {statistics.median(latencies) * 1000:.0f} ms over {len(latencies)} epochs "
          f"(target <= 1000 ms; the Runs page adds its 1 s refresh)")


if __name__ == "__main__":
    main()
