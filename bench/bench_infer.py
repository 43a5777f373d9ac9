"""Inference speed: hybrid vs YOLO-only frames per second, and batched vs per-crop classification.

Prints two ratios per configuration, each measured side by side in one run (the two sides
alternate frame by frame, so both see the same machine load):

- hybrid FPS / YOLO-only FPS (target >= 0.75): YOLO26n alone, against the hybrid's detector
  plus one batched ResNet classification of every pedestrian crop of the frame;
- batched / per-crop classification speed-up (target >= 2): the same crops classified in one
  forward pass, against one forward pass per crop.

    .venv/bin/python bench/bench_infer.py [--frames 20] [--device cpu] [--size 1280x720]
        [--threads N] [--configs seed,quick]  |  [--yolo RUN --hybrid RUN]

Two configurations, one after the other in the same run, with models built untrained (speed
does not depend on the weights) in a temporary data home:

- ``seed``: the seed defaults, for a GPU: YOLO26n at 640 px, ResNet-50 at 224x224;
- ``quick``: what the quick (CPU) presets of ``pedsense.train.presets`` train: the YOLO and
  hybrid detectors at their ``imgsz``, the hybrid's ``backbone`` at its ``crop_size``.

An untrained detector finds nobody, so the hybrid then classifies the crops of the frame's
ground-truth pedestrians (the demo clip has at least 4 per frame); with ``--yolo/--hybrid``
trained runs it classifies its own detections. The crops per frame are printed either way.

Threads: Ultralytics' first predict of each model sets torch to ``cpu_count - 1`` threads for
the whole thread (1 on 2 cores), which the hybrid's ResNet would inherit. After the warm-up
the benchmark sets ``--threads`` (default: torch's count before any predict; ``import
pedsense`` keeps Ultralytics from lowering it) so both sides run on the same, stated count.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("YOLO_OFFLINE", "1")

import pedsense  # noqa: E402,F401  (first: sets OMP_NUM_THREADS before torch/Ultralytics load)
import numpy as np  # noqa: E402

MIN_PEDESTRIANS = 4
HYBRID_TARGET = 0.75
BATCHING_TARGET = 2.0


@dataclass(frozen=True)
class Config:
    """The models of one benchmark configuration."""

    label: str
    yolo_imgsz: int
    hybrid_imgsz: int
    backbone: str
    crop: int

    @property
    def models(self) -> str:
        return (f"YOLO26n@{self.yolo_imgsz} vs YOLO26n@{self.hybrid_imgsz} + "
                f"{self.backbone}@{self.crop}")


def preset_configs() -> dict[str, Config]:
    """``seed`` and ``quick`` configurations, read from the trainers' defaults and presets."""
    from pedsense.config import CROP_SIZE
    from pedsense.train.hybrid_trainer import train_hybrid
    from pedsense.train.presets import preset_params

    hybrid_defaults = {n: p.default for n, p in inspect.signature(train_hybrid).parameters.items()}
    seed = Config("seed", preset_params("yolo", "seed")["imgsz"], hybrid_defaults["imgsz"],
                  hybrid_defaults["backbone"], hybrid_defaults["crop_size"] or CROP_SIZE[0])
    yolo, hybrid = preset_params("yolo", "quick"), preset_params("hybrid", "quick")
    quick = Config("quick", yolo.get("imgsz", seed.yolo_imgsz), hybrid.get("imgsz", seed.hybrid_imgsz),
                   hybrid.get("backbone", seed.backbone), hybrid.get("crop_size") or seed.crop)
    return {"seed": seed, "quick": quick}


def demo_frames(home: Path, frames: int, size: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``frames`` (frame, (N, 4) ground-truth boxes) pairs with at least 4 pedestrians each."""
    from pedsense.data.video import iter_frames
    from pedsense.infer import load_clip_ground_truth
    from pedsense.infer.clips import list_clips

    from pedsense.data.synthetic import make_demo_dataset

    make_demo_dataset(home, n_videos=2, seed=0, num_frames=max(frames * 2, 60), width=size[0], height=size[1])
    picked = []
    for clip in list_clips(home):
        truth, _ = load_clip_ground_truth(clip, home)
        if truth is None:
            continue
        for index, frame in iter_frames(clip):
            boxes = truth.at(index).xyxy
            if len(boxes) >= MIN_PEDESTRIANS:
                picked.append((frame, boxes))
            if len(picked) == frames:
                return picked
    if not picked:
        raise SystemExit(f"No demo frame has {MIN_PEDESTRIANS} pedestrians; try --size 1280x720 or more frames.")
    return picked


def untrained_runs(home: Path, config: Config) -> tuple[Path, Path]:
    """A YOLO run and a hybrid run of ``config``'s sizes whose weights are untrained."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from pedsense.config import CLASS_NAMES
    from pedsense.io import write_json_atomic
    from pedsense.train.checkpoints import save_classifier
    from pedsense.train.resnet_lstm import ResNetClassifier

    def detector(path: Path, names: dict, imgsz: int) -> None:
        model = DetectionModel("yolo26n.yaml", nc=len(names), verbose=False)
        model.names = names
        torch.save({"model": model.half(), "train_args": {"imgsz": imgsz, "task": "detect"}}, path)

    yolo = home / "models" / "yolo" / f"bench_{config.label}_20000101_000000"
    hybrid = home / "models" / "hybrid" / f"bench_{config.label}_20000101_000000"
    for run, model_type, imgsz in ((yolo, "yolo", config.yolo_imgsz), (hybrid, "hybrid", config.hybrid_imgsz)):
        run.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run / "config.json", {"model_type": model_type, "parameters": {"imgsz": imgsz}})
    detector(yolo / "best.pt", {0: CLASS_NAMES[0], 1: CLASS_NAMES[1]}, config.yolo_imgsz)
    detector(hybrid / "yolo_detector.pt", {0: "pedestrian"}, config.hybrid_imgsz)
    classifier = ResNetClassifier(2, 0.3, backbone=config.backbone, pretrained=False)
    save_classifier(hybrid / "resnet_classifier.pt", classifier, class_names=CLASS_NAMES,
                    crop_size=(config.crop, config.crop), epoch=0, metrics={})
    return yolo, hybrid


def time_it(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def bench_pipelines(yolo, hybrid, frames) -> tuple[float, float, float]:
    """(YOLO-only FPS, hybrid FPS, mean crops per frame), alternating frame by frame (median times)."""
    yolo_times, hybrid_times, crops_per_frame = [], [], []

    def hybrid_frame(frame, truth_boxes):
        boxes, _, _ = hybrid.detector.detect(frame, hybrid.conf)
        if len(boxes) < MIN_PEDESTRIANS:
            boxes = truth_boxes  # an untrained detector: classify the real pedestrians instead
        crops_per_frame.append(len(boxes))
        probabilities = hybrid.classifier.classify(hybrid.classifier.crops(frame, boxes))
        hybrid.classifier.labels_of(probabilities)

    for frame, boxes in frames[:2]:  # warm-up: first calls allocate and pick kernels
        yolo.predict(frame)
        hybrid_frame(frame, boxes)
    crops_per_frame.clear()
    for frame, boxes in frames:
        yolo_times.append(time_it(yolo.predict, frame))
        hybrid_times.append(time_it(hybrid_frame, frame, boxes))
    # medians: one frame slowed by another job on the machine should not move the ratio
    return 1 / statistics.median(yolo_times), 1 / statistics.median(hybrid_times), statistics.mean(crops_per_frame)


def bench_batching(classifier, frames, repeats: int = 3) -> tuple[float, float, int]:
    """(batched seconds, per-crop seconds, crops) for the crops of the frames, best of ``repeats``."""
    crop_sets = [classifier.crops(frame, boxes) for frame, boxes in frames]
    classifier.classify(crop_sets[0])
    classifier.classify_one_by_one(crop_sets[0][:1])
    batched, one_by_one = [], []
    for _ in range(repeats):
        batched.append(sum(time_it(classifier.classify, crops) for crops in crop_sets))
        one_by_one.append(sum(time_it(classifier.classify_one_by_one, crops) for crops in crop_sets))
    return min(batched), min(one_by_one), sum(len(c) for c in crop_sets)


@dataclass
class Result:
    """One configuration's measurements."""

    label: str
    models: str
    yolo_fps: float
    hybrid_fps: float
    crops_per_frame: float
    batched_s: float
    one_by_one_s: float
    n_crops: int
    threads_left_by_ultralytics: int

    @property
    def fps_ratio(self) -> float:
        return self.hybrid_fps / self.yolo_fps

    @property
    def speed_up(self) -> float:
        return self.one_by_one_s / self.batched_s


def bench_config(label: str, models: str, yolo_run: Path, hybrid_run: Path, frames, device: str,
                 threads: int) -> Result:
    """Load both predictors, warm them up, fix the thread count, then time both comparisons."""
    import torch

    from pedsense.infer import HybridPredictor, YoloPredictor

    yolo = YoloPredictor(yolo_run, device=device)
    hybrid = HybridPredictor(hybrid_run, device=device)
    for frame, _ in frames[:2]:  # first calls load the models (and Ultralytics resets threads)
        yolo.predict(frame)
        hybrid.detector.detect(frame, hybrid.conf)
    left = torch.get_num_threads()
    torch.set_num_threads(threads)
    yolo_fps, hybrid_fps, crops = bench_pipelines(yolo, hybrid, frames)
    batched, one_by_one, n_crops = bench_batching(hybrid.classifier, frames)
    return Result(label, models, yolo_fps, hybrid_fps, crops, batched, one_by_one, n_crops, left)


def verdict(value: float, target: float) -> str:
    return f"{value:.2f} {'meets' if value >= target else 'misses'} >= {target:g}"


def report(results: list[Result], device: str, threads: int, frames: int, size) -> None:
    left = sorted({r.threads_left_by_ultralytics for r in results})
    print(f"device {device} · {threads} torch threads (Ultralytics' first predict left "
          f"{'/'.join(map(str, left))}; set back) · {frames} frames {size[0]}x{size[1]}")
    for r in results:
        print(f"\n[{r.label}] {r.models} · {r.crops_per_frame:.1f} crops per frame")
        print(f"  YOLO-only FPS {r.yolo_fps:.2f} · hybrid FPS {r.hybrid_fps:.2f}")
        print(f"  hybrid FPS / YOLO-only FPS = {verdict(r.fps_ratio, HYBRID_TARGET)}")
        print(f"  classify {r.n_crops} crops: batched {r.batched_s:.3f}s · per-crop {r.one_by_one_s:.3f}s")
        print(f"  batched / per-crop speed-up = {verdict(r.speed_up, BATCHING_TARGET)}")
    print()
    for r in results:
        print(f"{r.label}: hybrid/YOLO {r.fps_ratio:.2f} (target {HYBRID_TARGET}), "
              f"batched/per-crop {r.speed_up:.2f} (target {BATCHING_TARGET:g})")


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="1280x720", help="demo clip size WxH")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads while timing (default: %(default)s, torch's own count)")
    parser.add_argument("--configs", default="seed,quick", help="untrained configurations to compare")
    parser.add_argument("--yolo", help="a trained YOLO run folder (with --hybrid: bench these instead)")
    parser.add_argument("--hybrid", help="a trained hybrid run folder")
    args = parser.parse_args(argv)

    size = tuple(int(v) for v in args.size.lower().split("x"))
    results = []
    with tempfile.TemporaryDirectory(prefix="pedsense_bench_") as tmp:
        home = Path(tmp)
        frames = demo_frames(home, args.frames, size)
        if args.yolo and args.hybrid:
            results.append(bench_config("trained", f"{args.yolo} vs {args.hybrid}", Path(args.yolo),
                                        Path(args.hybrid), frames, args.device, args.threads))
        else:
            configs = preset_configs()
            for label in args.configs.split(","):
                if label not in configs:
                    parser.error(f"unknown configuration {label!r}; use {', '.join(configs)}")
                yolo_run, hybrid_run = untrained_runs(home, configs[label])
                results.append(bench_config(label, configs[label].models, yolo_run, hybrid_run, frames,
                                            args.device, args.threads))
    report(results, args.device, args.threads, len(frames), size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
