"""What sampling the machine costs a run (``pedsense.sysmon.SystemSampler``), side by side.

A stand-in for a training process tree (this process and ``--children`` child processes, like a
trainer with its data-loader workers) is watched for ``--seconds`` twice, one after the other:
without the sampler, then with it at its real interval (``SAMPLE_EVERY_S``). Printed: the CPU
this process used in each window (the difference is the sampler, as a share of one core), the
sampler thread's own CPU time per sample, the share it implies at the real interval (from a
burst of fast samples, which measures a sample precisely), and the ratio to the budget of 1 %
of a core (target ≤ 1.0).

    .venv/bin/python bench/bench_sysmon.py [--seconds 30] [--children 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pedsense.sysmon import SAMPLE_EVERY_S, SystemSampler, read_system, visible_gpus  # noqa: E402

BUDGET = 0.01  # of one core


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def watch(seconds: float, folder: Path | None, every_s: float = SAMPLE_EVERY_S) -> tuple[float, SystemSampler | None]:
    """CPU seconds this process used over ``seconds`` of idling, with a sampler when ``folder``."""
    sampler = SystemSampler(folder, every_s=every_s).start() if folder else None
    before = cpu_seconds()
    time.sleep(seconds)
    used = cpu_seconds() - before
    if sampler is not None:
        sampler.stop()
    return used, sampler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each window (default 30)")
    parser.add_argument("--children", type=int, default=3, help="child processes in the tree (default 3)")
    args = parser.parse_args()
    children = [subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.5)"])
                for _ in range(args.children)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base, _ = watch(args.seconds, None)
            used, sampler = watch(args.seconds, Path(tmp) / "real")
            burst = SystemSampler(Path(tmp) / "burst", every_s=0.05).start()
            time.sleep(5.0)
            burst.stop()
            rows = read_system(Path(tmp) / "real")
    finally:
        for child in children:
            child.kill()
            child.wait()
    per_sample = burst.cpu_seconds / max(burst.samples, 1)
    implied = per_sample / SAMPLE_EVERY_S
    measured = max(used - base, 0.0) / args.seconds
    print(f"tree: this process + {args.children} children; GPUs seen through NVML: {len(visible_gpus())}")
    print(f"window without sampler: {base:.3f} CPU s in {args.seconds:.0f} s; with it "
          f"({sampler.samples} samples every {SAMPLE_EVERY_S:g} s, {len(rows)} rows): {used:.3f} CPU s")
    print(f"measured side by side: {100 * measured:.3f} % of a core")
    print(f"one sample: {1000 * per_sample:.2f} ms CPU (mean of {burst.samples}) -> "
          f"{100 * implied:.3f} % of a core every {SAMPLE_EVERY_S:g} s")
    print(f"ratio to the budget (1 % of a core): {max(measured, implied) / BUDGET:.3f}  (target <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
