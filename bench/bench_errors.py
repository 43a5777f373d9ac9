"""The Errors page's filter -> redraw time on a synthetic table of 50,000 windows.

Times ``pedsense.errors_browser.browse`` (filter, metrics at the threshold with the confusion
matrix, ROC/PR curves, metrics per value of one attribute, the chosen cell worst first) for a few
filter settings, side by side with the unfiltered table, and prints the slowest median against
the 300 ms target as a ratio (target <= 1.0).

    .venv/bin/python bench/bench_errors.py [--rows 50000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pedsense.errors_browser import COLUMNS, Filters, browse  # noqa: E402
from pedsense.errors_browser.table import _typed  # noqa: E402

TARGET_S = 0.300
CHOICES = {"occlusion": ["none", "part", "full"], "time_of_day": ["daytime", "nighttime"],
           "weather": ["clear", "cloudy", "rain", "snow"], "track_label": ["pedestrian", "ped"],
           "age": ["child", "young", "adult", "senior"], "gender": ["female", "male", "n/a"],
           "group_size": ["1", "2", "3", "4"], "signalized": ["n/a", "NS", "S"], "intersection": ["no", "yes"],
           "motion_direction": ["n/a", "LAT", "LONG"], "designated": ["ND", "D"],
           "traffic_direction": ["OW", "TW"], "num_lanes": ["1", "2", "3", "4"]}


def synthetic_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` windows of 300 videos with random attributes; P(crossing) leans to the label."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)
    p = np.clip(rng.normal(0.35 + 0.3 * label, 0.25), 0.0, 1.0)
    tte = rng.choice(np.arange(30, 61, 3), rows)
    end = rng.integers(76, 600, rows)
    data = {"sample_id": [f"w{i}" for i in range(rows)], "kind": "window",
            "video_id": [f"video_{v:04d}" for v in rng.integers(1, 301, rows)],
            "track_id": [f"0_{t}b" for t in rng.integers(0, 3000, rows)],
            "start_frame": end - 15, "end_frame": end, "label": label, "p_crossing": p, "split": "test",
            "tte": tte, "tte_bin": np.select([tte < 40, tte < 50], ["30-39", "40-49"], "50-60"),
            "event_frame": end + tte, "event_source": "crossing_point"}
    data.update({column: rng.choice(values, rows) for column, values in CHOICES.items()})
    return _typed(pd.DataFrame(data, columns=list(COLUMNS)))


CASES = {
    "no filter": (Filters(), "age"),
    "TTE 30-39": (Filters(tte_bins=("30-39",)), "occlusion"),
    "TTE + 2 attributes + P range": (Filters(tte_bins=("40-49", "50-60"),
                                             values={"age": ("adult", "senior"), "weather": ("clear",)},
                                             p_range=(0.2, 0.9)), "gender"),
    "false negatives": (Filters(cell=(1, 0)), "time_of_day"),
}


def time_case(table: pd.DataFrame, filters: Filters, attribute: str, repeats: int) -> float:
    browse(table, filters, 0.5, attribute=attribute)  # warm-up
    times = []
    for k in range(repeats):
        started = time.perf_counter()
        browse(table, filters, 0.3 + 0.05 * k, attribute=attribute)  # the threshold slider moves
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    table = synthetic_table(args.rows)
    print(f"browse() on {len(table):,} windows, median of {args.repeats} (threshold moving each time):")
    worst = 0.0
    for name, (filters, attribute) in CASES.items():
        seconds = time_case(table, filters, attribute, args.repeats)
        worst = max(worst, seconds)
        print(f"  {name:<30} {seconds * 1000:7.1f} ms   (metrics per {attribute})")
    print(f"slowest / target {TARGET_S * 1000:.0f} ms = {worst / TARGET_S:.2f}  (target <= 1.0)")


if __name__ == "__main__":
    main()
