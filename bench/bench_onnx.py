"""CPU inference speed: PyTorch, ONNX Runtime, OpenVINO (float32 and bf16) and the best per stage.

Prints, per configuration, ratios measured side by side in one run (the sides alternate frame
by frame, or batch by batch, so all see the same machine load; medians of per-frame times):

- hybrid: FPS on each engine and on ``best`` (``backend="auto"``: per stage the engine timed
  fastest on this machine, as the Viewer picks); best / PyTorch (target >= 1.5): detector + one
  batched classification of the frame's pedestrian crops, every engine through the same
  predictor code; YOLO-only FPS on each engine and hybrid / YOLO-only;
- ResNet-LSTM (ground-truth tracks, 16-frame feature buffers): FPS on each engine and best /
  PyTorch (target >= 2.5) frame by frame (the Viewer playing a clip) and in 8-frame batches (a render);
- PyTorch path speed-up: the current path (channels-last, CNN features of 8 frames' crops in one
  forward pass) against the old one (NCHW, one forward pass per frame), on the same weights.
  Both run under ``torch.inference_mode``, which the old path already used.

    .venv/bin/python bench/bench_onnx.py [--frames 32] [--threads N] [--configs quick,seed]
        [--size 1280x720]

The models are built untrained (speed does not depend on the weights) at the sizes of the
``quick`` (CPU) presets and of the ``seed`` defaults (see ``bench_infer.py``), exported with
``pedsense.export.export_run`` into a temporary data home. An untrained detector finds nobody,
so the hybrid then classifies the crops of the frame's ground-truth pedestrians (as
``bench_infer.py`` does); the crops per frame are printed.
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

import pedsense  # noqa: E402,F401  (first: sets OMP_NUM_THREADS before torch/Ultralytics load)
from bench_infer import MIN_PEDESTRIANS, Config, preset_configs, untrained_runs  # noqa: E402

TARGET = 1.5
LSTM_TARGET = 2.5
CHUNK = 8


def demo_clip(home: Path, frames: int, size: tuple[int, int]):
    """The first ``frames`` consecutive frames of a demo clip: [(index, frame, ground truth)]."""
    from pedsense.data.synthetic import make_demo_dataset
    from pedsense.data.video import iter_frames
    from pedsense.infer import load_clip_ground_truth
    from pedsense.infer.clips import list_clips

    make_demo_dataset(home, n_videos=1, seed=0, num_frames=max(frames, 60), width=size[0], height=size[1])
    clip = list_clips(home)[0]
    truth, _ = load_clip_ground_truth(clip, home)
    return [(index, frame, truth.at(index)) for index, frame in iter_frames(clip) if index < frames]


def untrained_lstm_run(home: Path, config: Config) -> Path:
    """A ResNet-LSTM run with the hybrid's backbone and crop size, untrained."""
    from pedsense.config import CLASS_NAMES, SEQUENCE_LENGTH
    from pedsense.io import write_json_atomic
    from pedsense.train.checkpoints import save_classifier
    from pedsense.train.resnet_lstm import ResNetLSTM

    run = home / "models" / "resnet-lstm" / f"bench_{config.label}_20000101_000000"
    run.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run / "config.json", {"model_type": "resnet-lstm"})
    model = ResNetLSTM(2, backbone=config.backbone, pretrained=False)
    save_classifier(run / "best.pt", model, class_names=CLASS_NAMES, crop_size=(config.crop, config.crop),
                    epoch=0, metrics={}, sequence_length=SEQUENCE_LENGTH)
    return run


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def hybrid_frame(predictor, frame, truth) -> int:
    """The hybrid's work on one frame: detect, then classify the crops in one batch."""
    boxes, _, _ = predictor.detector.detect(frame, predictor.conf)
    if len(boxes) < MIN_PEDESTRIANS:
        boxes = truth.xyxy  # an untrained detector: classify the real pedestrians instead
    predictor.classifier.labels_of(predictor.classifier.classify(predictor.classifier.crops(frame, boxes)))
    return len(boxes)


def side_by_side(sides: dict, steps: list, warm: int = 2) -> dict[str, float]:
    """{name: median seconds per step}, the sides taking turns step by step."""
    for step in steps[:warm]:
        for run in sides.values():
            run(step)
    times = {name: [] for name in sides}
    for step in steps:
        for name, run in sides.items():
            times[name].append(timed(run, step))
    return {name: statistics.median(values) for name, values in times.items()}


#: the engines compared: PyTorch, each export's engine, and ``auto`` (per stage the fastest
#: measured on this machine on first use, as the Viewer picks)
ENGINES = ("pytorch", "onnx", "openvino", "openvino-bf16", "auto")
LABELS = {"pytorch": "PyTorch", "onnx": "ONNX Runtime", "openvino": "OpenVINO", "openvino-bf16": "OpenVINO bf16",
          "auto": "best", "old": "old"}


def engines_here() -> tuple[str, ...]:
    """``ENGINES`` less OpenVINO bf16 on a CPU without bf16 units (OpenVINO refuses it there)."""
    from pedsense.infer.backends import cpu_has_bf16

    return ENGINES if cpu_has_bf16() else tuple(e for e in ENGINES if e != "openvino-bf16")


def predictors(run: Path, device: str) -> dict:
    """{engine: predictor} of ``run`` on every engine of ``ENGINES``."""
    from pedsense.infer import load_predictor

    return {engine: load_predictor(run, device=device, backend=engine) for engine in engines_here()}


def yolo_frame(predictor, frame) -> None:
    predictor.detector.detect(frame, predictor.conf)


def bench_hybrid(run: Path, yolo_run: Path, items, device: str) -> dict:
    from pedsense.infer import CropClassifier, load_predictor

    sides = predictors(run, device)
    old_side = load_predictor(run, device=device, backend="pytorch")
    old_side.classifier = CropClassifier(run / "resnet_classifier.pt", device=device, channels_last=False)
    yolo_sides = predictors(yolo_run, device)
    crops = [hybrid_frame(sides["pytorch"], frame, truth) for _, frame, truth in items[:4]]
    steps = [(frame, truth) for _, frame, truth in items]
    runs = {name: (lambda step, p=p: hybrid_frame(p, *step)) for name, p in {**sides, "old": old_side}.items()}
    runs.update({f"yolo-{name}": (lambda step, p=p: yolo_frame(p, step[0])) for name, p in yolo_sides.items()})
    medians = side_by_side(runs, steps)
    return {"fps": {name: 1 / seconds for name, seconds in medians.items()}, "crops": statistics.mean(crops),
            "auto": sides["auto"].describe_backend(), "auto_engine": sides["auto"].backend,
            "yolo_auto": yolo_sides["auto"].backend}


def bench_lstm(run: Path, items, device: str) -> dict:
    from pedsense.infer import CropClassifier, load_predictor

    sides = predictors(run, device)
    old_side = load_predictor(run, device=device, backend="pytorch")
    old_side.classifier = CropClassifier(run / "best.pt", device=device, channels_last=False)
    states = {name: p.new_state() for name, p in sides.items()}

    def one_frame(predictor, state, item):
        index, frame, truth = item
        predictor.predict(frame, index, truth, state=state)

    # frame by frame, as the Viewer plays a clip (each side keeps its own buffers)
    per_frame = side_by_side({name: (lambda item, p=p, s=states[name]: one_frame(p, s, item))
                              for name, p in sides.items()}, items, warm=0)
    # batches of CHUNK frames, as a render reads a clip; the old path went frame by frame
    chunks = [items[start:start + CHUNK] for start in range(0, len(items) - CHUNK + 1, CHUNK)]

    def batched(predictor, chunk):
        indices, frames, truths = zip(*chunk)
        predictor.predict_batch(frames, indices, truths, state=predictor.new_state())

    def frame_by_frame(predictor, chunk):
        state = predictor.new_state()
        for index, frame, truth in chunk:
            predictor.predict(frame, index, truth, state=state)

    runs = {name: (lambda chunk, p=p: batched(p, chunk)) for name, p in sides.items()}
    runs["old"] = lambda chunk: frame_by_frame(old_side, chunk)
    runs["pytorch-per-frame"] = lambda chunk: frame_by_frame(sides["pytorch"], chunk)
    per_chunk = side_by_side(runs, chunks, warm=1)
    tracks = statistics.mean(len(truth) for _, _, truth in items)
    return {"per_frame": {name: 1 / s for name, s in per_frame.items()},
            "batched": {name: CHUNK / s for name, s in per_chunk.items()}, "tracks": tracks,
            "auto": sides["auto"].describe_backend(), "auto_engine": sides["auto"].backend}


def verdict(value: float, target: float) -> str:
    return f"{value:.2f} {'meets' if value >= target else 'misses'} >= {target:g}"


def engine_line(fps: dict) -> str:
    return " · ".join(f"{LABELS[name]} {fps[name]:.2f}" for name in engines_here())


def main(argv: list[str] | None = None) -> int:
    import torch

    from pedsense.export import export_run

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=32, help="consecutive frames of the demo clip")
    parser.add_argument("--size", default="1280x720", help="demo clip size WxH")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch, ONNX Runtime and OpenVINO threads (default: %(default)s)")
    parser.add_argument("--configs", default="quick,seed", help="configurations to compare")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # before loading: the exported engines take the same count
    size = tuple(int(v) for v in args.size.lower().split("x"))
    configs = preset_configs()
    lines = []
    with tempfile.TemporaryDirectory(prefix="pedsense_bench_onnx_") as tmp:
        home = Path(tmp)
        items = demo_clip(home, args.frames, size)
        for label in args.configs.split(","):
            if label not in configs:
                parser.error(f"unknown configuration {label!r}; use {', '.join(configs)}")
            config = configs[label]
            yolo_run, hybrid_run = untrained_runs(home, config)
            lstm_run = untrained_lstm_run(home, config)
            for run in (yolo_run, hybrid_run, lstm_run):
                for format in ("onnx", "openvino"):
                    export_run(run, format)
            hybrid = bench_hybrid(hybrid_run, yolo_run, items, "cpu")
            torch.set_num_threads(args.threads)  # Ultralytics' first predict may have lowered it
            lstm = bench_lstm(lstm_run, items, "cpu")
            h, lf, lb = hybrid["fps"], lstm["per_frame"], lstm["batched"]
            print(f"\n[{label}] hybrid: YOLO26n@{config.hybrid_imgsz} + {config.backbone}@{config.crop} · "
                  f"{hybrid['crops']:.1f} crops per frame · FPS:")
            print(f"  {engine_line(h)}  (best = {hybrid['auto_engine']}: {hybrid['auto']})")
            print(f"  best/PyTorch = {verdict(h['auto'] / h['pytorch'], TARGET)}; " + ", ".join(
                f"{LABELS[k]}/PyTorch {h[k] / h['pytorch']:.2f}" for k in engines_here()
                if k not in ("pytorch", "auto")))
            print(f"  YOLO-only FPS: {engine_line({k: h[f'yolo-{k}'] for k in engines_here()})}")
            print("  hybrid / YOLO-only FPS: " + " · ".join(
                f"{LABELS[k]} {h[k] / h[f'yolo-{k}']:.2f}" for k in engines_here()))
            print(f"  PyTorch path: old (NCHW) {h['old']:.2f} FPS -> channels-last {h['pytorch']:.2f} FPS "
                  f"(x{h['pytorch'] / h['old']:.2f})")
            print(f"[{label}] resnet-lstm: {config.backbone}@{config.crop}, ground-truth tracks · "
                  f"{lstm['tracks']:.1f} tracks per frame · best = {lstm['auto_engine']}")
            print(f"  frame by frame FPS: {engine_line(lf)}; best/PyTorch = "
                  f"{verdict(lf['auto'] / lf['pytorch'], LSTM_TARGET)}")
            print(f"  {CHUNK}-frame batches FPS: {engine_line(lb)}; best/PyTorch = "
                  f"{verdict(lb['auto'] / lb['pytorch'], LSTM_TARGET)}")
            print(f"  PyTorch path: old (NCHW, frame by frame) {lb['old']:.2f} FPS · current frame by frame "
                  f"{lb['pytorch-per-frame']:.2f} · current {CHUNK}-frame batches {lb['pytorch']:.2f} "
                  f"(batched/old x{lb['pytorch'] / lb['old']:.2f})")
            lines.append(f"{label}: best/PyTorch hybrid {h['auto'] / h['pytorch']:.2f} ({hybrid['auto_engine']}), "
                         f"resnet-lstm {lf['auto'] / lf['pytorch']:.2f} per frame / {lb['auto'] / lb['pytorch']:.2f} "
                         f"batched ({lstm['auto_engine']}); hybrid/YOLO-only "
                         + ", ".join(f"{LABELS[k]} {h[k] / h[f'yolo-{k}']:.2f}" for k in engines_here())
                         + f"; PyTorch new/old hybrid {h['pytorch'] / h['old']:.2f}, "
                         f"resnet-lstm {lb['pytorch'] / lb['old']:.2f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\ncpu · {args.threads} threads · {len(items)} frames {size[0]}x{size[1]} · "
          f"load average {load:.1f} at the end")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
