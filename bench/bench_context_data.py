"""Time the context build on real JAAD: parse all 346 videos (annotations, attributes, vehicle,
traffic) and featurise every benchmark window, for JAAD_beh and JAAD_all; check the window counts.

Target (issue 18): parse and featurise all 346 videos in <= 60 s on 2 CPU cores. The window counts
must be the benchmark's: JAAD_beh 2,134 / 242 / 1,881 and JAAD_all 8,613 / 1,265 / 6,732
(train / val / test). Each sample type is built from scratch in a temporary data home whose raw
folders link to ``--jaad``; the parse alone (``load_annotation_folder``) is timed beside it.

    .venv/bin/python bench/bench_context_data.py --jaad /tmp/jaadfull/jaad [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from pedsense.data.context_format import _known_frames, build_context, load_context_split  # noqa: E402
from pedsense.data.intent import IntentOptions  # noqa: E402
from pedsense.data.jaad import load_annotation_folder  # noqa: E402

EXPECTED = {"beh": (2134, 242, 1881), "all": (8613, 1265, 6732)}
TARGET_S = 60.0
RAW = ("annotations", "annotations_attributes", "annotations_vehicle", "annotations_traffic",
       "split_ids")


def make_home(jaad: Path, root: Path) -> Path:
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    for name in RAW:
        if (jaad / name).is_dir():
            (raw / name).symlink_to((jaad / name).resolve())
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jaad", type=Path, required=True, help="JAAD's annotation repository")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench_context_") as tmp:
        parse_times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            videos, _ = load_annotation_folder(args.jaad / "annotations")
            parse_times.append(time.perf_counter() - start)
        print(f"parse only: {len(videos)} videos in {_spread(parse_times)}")
        del videos
        for sample_type, expected in EXPECTED.items():
            times = []
            for i in range(args.repeat):
                home = make_home(args.jaad, Path(tmp) / f"{sample_type}{i}")
                start = time.perf_counter()
                folder = build_context(home, intent=IntentOptions(sample_type=sample_type))
                times.append(time.perf_counter() - start)
                manifest = json.loads((folder / "manifest.json").read_text())
                if i == 0:
                    print(f"JAAD_{sample_type} features: {feature_check(home, sample_type)}")
                shutil.rmtree(home / "data" / "processed")
            got = tuple(manifest["splits"].get(s, {}).get("windows", 0) for s in ("train", "val", "test"))
            ok = got == expected
            failed |= not ok or max(times) > TARGET_S
            print(f"JAAD_{sample_type}: parse + featurise {manifest['videos']} videos in "
                  f"{_spread(times)} (target <= {TARGET_S:.0f} s, ratio {statistics.mean(times) / TARGET_S:.2f}); "
                  f"windows train/val/test {got} {'==' if ok else '!='} benchmark {expected}")
    return 1 if failed else 0


def feature_check(home: Path, sample_type: str) -> str:
    """NaNs, and the share of frames whose group is unknown, over every split of the build."""
    parts = []
    for split in ("train", "val", "test"):
        data = load_context_split(home, split, sample_type=sample_type)
        nans = sum(int(np.isnan(a).sum()) for a in data.groups.values())
        unknown = {g: float((~_known_frames(data, g)).mean()) for g in data.groups}
        parts.append(f"{split} {nans} NaN, unknown frames "
                     + ", ".join(f"{g} {share:.1%}" for g, share in unknown.items()))
    return "; ".join(parts)


def _spread(times: list[float]) -> str:
    if len(times) == 1:
        return f"{times[0]:.1f} s"
    return f"{statistics.mean(times):.1f} s ± {statistics.stdev(times):.1f} (n={len(times)})"


if __name__ == "__main__":
    sys.exit(main())
