"""Inference speed: hybrid vs YOLO-only frames per second, and batched vs per-crop classification.

Prints two ratios, each measured side by side in one run (the two sides alternate frame by
frame, so both see the same machine load):

- hybrid FPS / YOLO-only FPS (target >= 0.75): YOLO26n alone, against the hybrid's detector
  plus one batched ResNet classification of every pedestrian crop of the frame;
- batched / per-crop classification speed-up (target >= 2): the same crops classified in one
  forward pass, against one forward pass per crop.

    .venv/bin/python bench/bench_infer.py [--frames 20] [--device cpu] [--size 1280x720]
        [--yolo RUN --hybrid RUN]  [--backbone resnet50] [--crop 224]

Without ``--yolo/--hybrid`` the models are built untrained at their deployed sizes (YOLO26n at
640, ResNet-50 at 224x224 by default) in a temporary data home: speed does not depend on the
weights. An untrained detector finds nobody, so the hybrid then classifies the crops of the
frame's ground-truth pedestrians (the demo clip has at least 4 per frame); with trained runs it
classifies its own detections. The crops per frame are printed either way.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("YOLO_OFFLINE", "1")

import numpy as np  # noqa: E402

MIN_PEDESTRIANS = 4


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


def untrained_runs(home: Path, backbone: str, crop: int) -> tuple[Path, Path]:
    """A YOLO run and a hybrid run whose weights are untrained, at the deployed sizes."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from pedsense.config import CLASS_NAMES
    from pedsense.io import write_json_atomic
    from pedsense.train.checkpoints import save_classifier
    from pedsense.train.resnet_lstm import ResNetClassifier

    def detector(path: Path, names: dict) -> None:
        model = DetectionModel("yolo26n.yaml", nc=len(names), verbose=False)
        model.names = names
        torch.save({"model": model.half(), "train_args": {"imgsz": 640, "task": "detect"}}, path)

    yolo = home / "models" / "yolo" / "bench_20000101_000000"
    hybrid = home / "models" / "hybrid" / "bench_20000101_000000"
    for run, model_type in ((yolo, "yolo"), (hybrid, "hybrid")):
        run.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run / "config.json", {"model_type": model_type, "parameters": {"imgsz": 640}})
    detector(yolo / "best.pt", {0: CLASS_NAMES[0], 1: CLASS_NAMES[1]})
    detector(hybrid / "yolo_detector.pt", {0: "pedestrian"})
    classifier = ResNetClassifier(2, 0.3, backbone=backbone, pretrained=False)
    save_classifier(hybrid / "resnet_classifier.pt", classifier, class_names=CLASS_NAMES,
                    crop_size=(crop, crop), epoch=0, metrics={})
    return yolo, hybrid


def time_it(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def bench_pipelines(yolo, hybrid, frames) -> tuple[float, float, float]:
    """(YOLO-only FPS, hybrid FPS, mean crops per frame), alternating frame by frame."""
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
    return 1 / statistics.mean(yolo_times), 1 / statistics.mean(hybrid_times), statistics.mean(crops_per_frame)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="1280x720", help="demo clip size WxH")
    parser.add_argument("--yolo", help="a trained YOLO run folder")
    parser.add_argument("--hybrid", help="a trained hybrid run folder")
    parser.add_argument("--backbone", default="resnet50", help="untrained hybrid classifier backbone")
    parser.add_argument("--crop", type=int, default=224, help="untrained hybrid crop size")
    args = parser.parse_args(argv)

    from pedsense.infer import HybridPredictor, YoloPredictor

    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="pedsense_bench_") as tmp:
        home = Path(tmp)
        frames = demo_frames(home, args.frames, size)
        if args.yolo and args.hybrid:
            yolo_run, hybrid_run, source = Path(args.yolo), Path(args.hybrid), "trained runs"
        else:
            yolo_run, hybrid_run = untrained_runs(home, args.backbone, args.crop)
            source = f"untrained YOLO26n@640 and {args.backbone}@{args.crop}"
        yolo = YoloPredictor(yolo_run, device=args.device)
        hybrid = HybridPredictor(hybrid_run, device=args.device)
        yolo_fps, hybrid_fps, crops = bench_pipelines(yolo, hybrid, frames)
        batched, one_by_one, n_crops = bench_batching(hybrid.classifier, frames)

    import torch

    print(f"device {args.device} ({torch.get_num_threads()} torch threads) · {len(frames)} frames "
          f"{size[0]}x{size[1]} · {source} · {crops:.1f} crops per frame")
    print(f"YOLO-only FPS {yolo_fps:.2f} · hybrid FPS {hybrid_fps:.2f}")
    print(f"hybrid FPS / YOLO-only FPS = {hybrid_fps / yolo_fps:.2f} (target >= 0.75)")
    print(f"classify {n_crops} crops: batched {batched:.3f}s · per-crop {one_by_one:.3f}s")
    print(f"batched / per-crop speed-up = {one_by_one / batched:.2f} (target >= 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
