"""Time and memory of ``load_annotations`` against a plain full-tree ``ElementTree.parse``.

Copies the real JAAD annotation files (``tests/data/jaad``) many times into a temp folder
(about 100 MB by default, like the 133 MB of the full dataset), then measures side by side
in this one process:

- ``load_annotations(folder)``: the streaming parser, keeping every VideoAnnotation;
- ``ET.parse`` of every file, keeping every tree (what a full-tree loader holds);
- ``ET.parse`` of every file, dropping each tree at once (tokenising only, nothing kept).

Times are the best of ``--repeat`` runs, taken in turn; peak memory is measured with
tracemalloc in separate runs (tracemalloc slows everything down).

    .venv/bin/python bench/bench_parse.py [--mb 100] [--repeat 3] [--source tests/data/jaad]
"""

from __future__ import annotations

import argparse
import gc
import math
import shutil
import sys
import tempfile
import time
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pedsense.config import REPO_ROOT  # noqa: E402
from pedsense.data.jaad import load_annotations  # noqa: E402


def default_source() -> Path:
    """The real annotations the repository carries for its tests."""
    return REPO_ROOT / "tests" / "data" / "jaad"


def make_corpus(source: Path, target: Path, megabytes: float) -> tuple[Path, int, int]:
    """Copy ``source/annotations`` (and attributes) until ``megabytes`` of XML are in ``target``.

    Returns:
        (annotations folder, number of XML files, total bytes).
    """
    xml_files = sorted((source / "annotations").glob("*.xml"))
    if not xml_files:
        sys.exit(f"No annotation XML in {source / 'annotations'} (use --source)")
    one_copy = sum(f.stat().st_size for f in xml_files)
    copies = max(1, math.ceil(megabytes * 1e6 / one_copy))
    annotations, attributes = target / "annotations", target / "annotations_attributes"
    annotations.mkdir(parents=True)
    attributes.mkdir()
    for copy in range(copies):
        for xml in xml_files:
            stem = f"c{copy:04d}_{xml.stem}"
            shutil.copyfile(xml, annotations / f"{stem}.xml")
            extra = source / "annotations_attributes" / f"{xml.stem}_attributes.xml"
            if extra.exists():
                shutil.copyfile(extra, attributes / f"{stem}_attributes.xml")
    return annotations, copies * len(xml_files), copies * one_copy


def run_streaming(folder: Path):
    return load_annotations(folder)


def run_tree_keep(folder: Path):
    return [ET.parse(f) for f in sorted(folder.glob("*.xml"))]


def run_tree_drop(folder: Path):
    for f in sorted(folder.glob("*.xml")):
        ET.parse(f)


def time_once(fn, folder: Path, results: dict) -> None:
    """Append the seconds of one run of ``fn`` (holding its result) to ``results[fn.__name__]``."""
    gc.collect()
    start = time.perf_counter()
    kept = fn(folder)
    results.setdefault(fn.__name__, []).append(time.perf_counter() - start)
    del kept


def peak_memory(fn, folder: Path) -> int:
    """Peak bytes allocated by Python while ``fn`` runs and holds its result."""
    gc.collect()
    tracemalloc.start()
    kept = fn(folder)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="MB of XML to parse (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument("--source", type=Path, default=default_source(),
                        help="a JAAD folder holding annotations/ (default tests/data/jaad)")
    args = parser.parse_args(argv)

    functions = (run_tree_keep, run_streaming, run_tree_drop)
    with tempfile.TemporaryDirectory(prefix="pedsense_bench_parse_") as tmp:
        folder, n_files, n_bytes = make_corpus(args.source, Path(tmp), args.mb)
        print(f"corpus: {n_files} files, {n_bytes / 1e6:.1f} MB of XML (copies of {args.source})")
        times: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            for fn in functions:
                time_once(fn, folder, times)
        peaks = {fn.__name__: peak_memory(fn, folder) for fn in functions}

    best = {name: min(values) for name, values in times.items()}
    print(f"{'':28s}{'best s':>9s}{'MB/s':>8s}{'peak MB':>10s}")
    labels = {"run_streaming": "load_annotations (kept)", "run_tree_keep": "ET.parse, trees kept",
              "run_tree_drop": "ET.parse, trees dropped"}
    for name, label in labels.items():
        print(f"{label:28s}{best[name]:9.2f}{n_bytes / 1e6 / best[name]:8.1f}"
              f"{peaks[name] / 1e6:10.1f}")
    print(f"time ratio   (ET.parse trees kept / load_annotations):    "
          f"{best['run_tree_keep'] / best['run_streaming']:.2f}x  (> 1: load_annotations faster)")
    print(f"time ratio   (ET.parse trees dropped / load_annotations): "
          f"{best['run_tree_drop'] / best['run_streaming']:.2f}x")
    print(f"memory ratio (load_annotations peak / ET.parse trees kept peak): "
          f"{peaks['run_streaming'] / peaks['run_tree_keep']:.3f}  (< 1: load_annotations leaner)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
