"""The GPU check: every path pedsense has written for CUDA, run once, in one table.

    python bench/gpu_check.py            # nothing to edit; at most ~8 minutes on one GPU

On CUDA, at the seed's sizes (YOLO26n at 640, ResNet-50 at 224, 16-frame sequences):

- each family (YOLO, ResNet-LSTM, hybrid: detector and classifier stages) trains ~200 steps
  through its real trainer (float16 autocast + GradScaler, channels-last on CUDA) and through a
  bare PyTorch loop of the same model and batch (AMP, channels-last, inputs already on the
  GPU): trainer / bare samples per second (goal >= 0.95), and the peak GPU memory of each;
- ResNet-50 trained whole (batch 256, AMP, channels-last) in crops/s, beside NVIDIA's published
  ResNet-50 AMP training figure (A100: 2,470 img/s);
- inference frames/s of the hybrid and the ResNet-LSTM on each engine present: PyTorch CUDA,
  ONNX Runtime's CUDA provider and its TensorRT provider (onnxruntime-gpu);
- a ``torchrun`` data-parallel run on the GPUs present (NCCL; one GPU runs the path);
- the frozen-feature cache built and read back on the GPU;
- the tests that skip without CUDA (``pytest -m cuda``).

It prints one table and exits 1 when a path fails. A GPU that disappears mid-check fails its
step; the steps after it are marked not run, and the table says where it stopped (exit 2).

Without a GPU it says so in one line and runs the same steps on the CPU at tiny sizes (PyTorch,
ONNX Runtime and OpenVINO for inference; gloo for torchrun): ``tests/test_gpu_check.py`` runs it.

    python bench/gpu_check.py [--cpu] [--home DATA_HOME] [--budget 480]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("PEDSENSE_OFFLINE", "1")  # never wait on a download while timing

#: NVIDIA's published ResNet-50 v1.5 training throughput with AMP on one A100 (images/s)
NVIDIA_A100_RESNET50_AMP = 2470
TRAINER_GOAL = 0.95
SEQUENCE_LENGTH = 16


@dataclass(frozen=True)
class Sizes:
    """What one mode trains and times."""

    label: str
    imgsz: int
    backbone: str
    crop: int
    yolo_batch: int
    lstm_batch: int
    hybrid_batch: int
    steps: int           # trainer steps per family (about)
    bare_steps: int      # timed steps of a bare loop (after warm-up)
    r50_batch: int
    frames: int          # frames predicted per inference engine
    demo: dict = field(default_factory=dict)  # make_demo_dataset's sizes


SEED = Sizes("seed", imgsz=640, backbone="resnet50", crop=224, yolo_batch=16, lstm_batch=8, hybrid_batch=16,
             steps=200, bare_steps=40, r50_batch=256, frames=32,
             demo={"n_videos": 6, "num_frames": 240, "width": 1280, "height": 720})
TINY = Sizes("tiny", imgsz=64, backbone="resnet18", crop=32, yolo_batch=4, lstm_batch=4, hybrid_batch=8,
             steps=3, bare_steps=2, r50_batch=4, frames=3,
             demo={"n_videos": 3, "num_frames": 60, "width": 320, "height": 180})


@dataclass
class Row:
    step: str
    status: str = "not run"
    figure: str = ""
    note: str = ""


class GpuLost(RuntimeError):
    """The GPU stopped answering."""


class Check:
    """Runs named steps in order, each into one table row; stops at a lost GPU or the budget."""

    def __init__(self, device: str, budget_s: float):
        self.device, self.deadline = device, time.monotonic() + budget_s
        self.rows: list[Row] = []
        self.stopped_at: str | None = None

    def step(self, name: str, function: Callable[[], tuple[str, str] | str], *, needs_s: float = 0) -> bool:
        row = Row(name)
        self.rows.append(row)
        if self.stopped_at:
            row.note = f"stopped at {self.stopped_at}"
            return False
        if time.monotonic() + needs_s > self.deadline:
            row.note = "the time budget is spent (--budget)"
            return False
        started = time.monotonic()
        try:
            result = function()
        except SkipStep as skip:
            row.status, row.note = "skip", str(skip)
            return False
        except Exception as exc:  # a check reports every failure in its table
            row.status = "FAIL"
            row.note = _first_line(exc)
            if self.gpu_lost():
                self.stopped_at = name
                row.note = f"GPU lost: {row.note}"
            if os.environ.get("GPU_CHECK_TRACEBACKS"):
                traceback.print_exc()
            return False
        figure, note = result if isinstance(result, tuple) else (result, "")
        row.status, row.figure = "ok", figure
        row.note = f"{note} ({time.monotonic() - started:.0f} s)".strip()
        return True

    def gpu_lost(self) -> bool:
        if not self.device.startswith("cuda"):
            return False
        import torch

        try:
            torch.cuda.synchronize()
            return torch.ones(1, device=self.device).add_(1).item() != 2.0
        except Exception:
            return True

    @property
    def failed(self) -> bool:
        return any(row.status == "FAIL" for row in self.rows)

    def table(self) -> str:
        widths = [max(len(getattr(r, c)) for r in [Row("step", "status", "figure", "note"), *self.rows])
                  for c in ("step", "status", "figure")]
        lines = []
        for row in [Row("step", "status", "figure", "note"), *self.rows]:
            lines.append(f"{row.step:<{widths[0]}}  {row.status:<{widths[1]}}  {row.figure:<{widths[2]}}  {row.note}")
        return "\n".join(lines)


class SkipStep(Exception):
    """A step that does not apply here (an engine not installed)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


# -- data ---------------------------------------------------------------------------------------
def prepare_home(sizes: Sizes, home: Path | None) -> Path:
    """A data home with every dataset built: ``home`` when given (already built), else the demo set."""
    if home is not None:
        from pedsense.config import paths

        built = paths(home)
        needed = {"yolo": built.yolo / "data.yaml", "detector": built.yolo_detector / "data.yaml",
                  "resnet": built.resnet / "labels.csv", "crops": built.resnet / "crops.csv"}
        missing = [name for name, path in needed.items() if not path.is_file()]
        if missing:
            raise RuntimeError(f"--home has no {', '.join(missing)} build: run `pedsense --home DIR preprocess "
                               "all` first, or leave out --home (the check builds the demo set itself)")
        return home
    from pedsense.data.frames import extract_frames
    from pedsense.data.resnet_format import build_resnet_crops, build_resnet_sequences
    from pedsense.data.synthetic import make_demo_dataset
    from pedsense.data.yolo_format import build_detector_dataset, build_yolo_dataset

    home = Path(tempfile.mkdtemp(prefix="pedsense-gpu-check-"))
    make_demo_dataset(home, seed=0, **sizes.demo)
    extract_frames(home=home)
    build_yolo_dataset(home=home)
    build_detector_dataset(home=home)
    build_resnet_sequences(SEQUENCE_LENGTH, 4, (sizes.crop, sizes.crop), home=home)
    build_resnet_crops((sizes.crop, sizes.crop), home=home)
    return home


def trimmed_copy(home: Path, sizes: Sizes) -> Path:
    """A hard-link copy of ``home`` whose sequence and crop tables keep a few batches per split,
    and whose detector datasets validate on a few images (the tiny CPU mode: every step runs, in
    seconds). Files are replaced, never edited, so ``home`` is untouched."""
    import csv

    from pedsense.config import paths
    from pedsense.data.yolo_format import relocate_data_yaml
    from pedsense.io import write_csv_atomic, write_text_atomic
    from pedsense.train.yolo_inputs import list_images, spread_subset

    copy = Path(tempfile.mkdtemp(prefix="pedsense-gpu-check-tiny-")) / "home"
    shutil.copytree(home, copy, copy_function=os.link, ignore=shutil.ignore_patterns("models"))
    for dataset in (paths(copy).yolo, paths(copy).yolo_detector):
        yaml_path = relocate_data_yaml(dataset)
        images = list_images(dataset, "images/val")
        write_text_atomic(dataset / "val_tiny.txt",
                          "\n".join(spread_subset(images, min(1.0, 2 * sizes.yolo_batch / max(1, len(images))))) + "\n")
        lines = yaml_path.read_text(encoding="utf-8").splitlines()
        write_text_atomic(yaml_path, "\n".join("val: val_tiny.txt" if line.startswith("val:") else line
                                               for line in lines) + "\n")
    for table, batch in (("labels.csv", sizes.lstm_batch), ("crops.csv", sizes.hybrid_batch)):
        path = paths(copy).resnet / table
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns, rows = list(reader.fieldnames or []), list(reader)
        kept = []
        for split, limit in (("train", batch * (sizes.steps + 1)), ("val", batch)):
            for label in ("0", "1"):  # both classes in each split
                kept += [r for r in rows if r["split"] == split and r["label"] == label][:limit // 2]
        write_csv_atomic(path, kept, columns)
    return copy


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0


def epochs_for(samples: int, batch: int, steps: int) -> int:
    """Epochs that make about ``steps`` optimizer steps (at least 1)."""
    return max(1, math.ceil(steps / max(1, math.ceil(samples / batch))))


def yolo_fraction(images: int, batch: int, steps: int) -> float:
    """The share of the training images that makes about ``steps`` batches in one epoch (1.0:
    all of them, over as many epochs as ``epochs_for`` says)."""
    return min(1.0, max(2 * batch, steps * batch) / max(1, images))


# -- training: trainer vs bare loop --------------------------------------------------------------
class BatchClock:
    """``on_event`` that timestamps every BatchEnd: samples/s per stage, first batch of each
    epoch excluded (data loader start-up, the autocast/cudnn warm-up)."""

    def __init__(self, device: str):
        self.device, self.times = device, {}

    def __call__(self, event) -> None:
        # no synchronize here: the trainers' own syncs (loss.item()) pace them, and one more per
        # batch would slow the trainer side only
        if type(event).__name__ == "BatchEnd":
            self.times.setdefault(event.stage, {}).setdefault(event.epoch, []).append(time.perf_counter())

    def rate(self, stage: str, batch: int) -> tuple[float, int]:
        """(samples/s, batches timed) of a stage."""
        seconds, batches = 0.0, 0
        for stamps in self.times.get(stage, {}).values():
            if len(stamps) >= 2:
                seconds += stamps[-1] - stamps[0]
                batches += len(stamps) - 1
        if batches == 0:
            raise RuntimeError(f"stage {stage!r} announced fewer than 2 batches per epoch: no rate")
        return batches * batch / seconds, batches


def peak_memory(device: str) -> str:
    if not device.startswith("cuda"):
        return ""
    import torch

    return f"peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def timed_loop(device: str, steps: int, one_step: Callable[[], None], batch: int, warm: int = 3) -> float:
    """Samples/s of ``one_step`` after ``warm`` untimed steps."""
    import torch

    for _ in range(warm):
        one_step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        one_step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - started)


def bare_classifier(device: str, model, inputs_shape: tuple, batch: int, steps: int, lr: float = 1e-4) -> float:
    """A bare AMP + channels-last loop of a pedsense ResNet model on random inputs already on the device."""
    import torch

    cuda = device.startswith("cuda")
    model = model.to(device).train()
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    criterion = torch.nn.CrossEntropyLoss()
    inputs = torch.randn(batch, *inputs_shape, device=device)
    labels = torch.randint(0, 2, (batch,), device=device)

    def one_step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda" if cuda else "cpu", dtype=torch.float16, enabled=cuda):
            loss = criterion(model(inputs).float(), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return timed_loop(device, steps, one_step, batch)


def bare_yolo(device: str, nc: int, imgsz: int, batch: int, steps: int) -> float:
    """A bare AMP + channels-last loop of YOLO26n's forward, loss and SGD step on random images."""
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    cuda = device.startswith("cuda")
    model = DetectionModel("yolo26n.yaml", nc=nc, verbose=False).to(device)
    model.args = get_cfg()  # the loss reads its gains (box, cls, dfl) from here, as in training
    model.train()
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, nesterov=True)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    per_image = 4  # pedestrians per image
    targets = {
        "img": torch.rand(batch, 3, imgsz, imgsz, device=device),
        "batch_idx": torch.arange(batch, device=device).repeat_interleave(per_image).float(),
        "cls": torch.randint(0, nc, (batch * per_image, 1), device=device).float(),
        "bboxes": torch.rand(batch * per_image, 4, device=device) * 0.3 + torch.tensor([0.35, 0.35, 0.05, 0.1],
                                                                                      device=device),
    }

    def one_step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda" if cuda else "cpu", dtype=torch.float16, enabled=cuda):
            loss, _ = model.loss(targets)
        scaler.scale(loss.sum()).backward()
        scaler.step(optimizer)
        scaler.update()

    return timed_loop(device, steps, one_step, batch)


def ratio_text(trainer: float, bare: float) -> str:
    ratio = trainer / bare
    return f"{trainer:.1f} / {bare:.1f} samples/s = {ratio:.2f} ({'meets' if ratio >= TRAINER_GOAL else 'misses'} " \
           f">= {TRAINER_GOAL})"


def train_yolo_family(home: Path, sizes: Sizes, device: str) -> tuple[str, str]:
    from pedsense.config import paths
    from pedsense.train.yolo_trainer import train_yolo

    images = count_files(paths(home).yolo / "images" / "train")
    fraction = yolo_fraction(images, sizes.yolo_batch, sizes.steps)
    epochs = epochs_for(round(images * fraction), sizes.yolo_batch, sizes.steps)
    clock = BatchClock(device)
    reset_peak(device)
    train_yolo(name="gpu-check", epochs=epochs, batch_size=sizes.yolo_batch, imgsz=sizes.imgsz, device=device,
               home=home, on_event=clock, warmup_epochs=0, fraction=fraction)
    memory = peak_memory(device)
    (stage,) = clock.times or {"train": None}
    trainer, batches = clock.rate(stage, sizes.yolo_batch)
    bare = bare_yolo(device, 2, sizes.imgsz, sizes.yolo_batch, sizes.bare_steps)
    return ratio_text(trainer, bare), f"{batches + epochs} steps, batch {sizes.yolo_batch} @ {sizes.imgsz}; {memory}"


def train_lstm_family(home: Path, sizes: Sizes, device: str) -> tuple[str, str]:
    from pedsense.train.resnet_lstm import ResNetLSTM
    from pedsense.train.resnet_trainer import PedestrianSequenceDataset, train_resnet_lstm

    samples = len(PedestrianSequenceDataset("train", home=home, crop_size=sizes.crop))
    epochs = epochs_for(samples, sizes.lstm_batch, sizes.steps)
    clock = BatchClock(device)
    reset_peak(device)
    train_resnet_lstm(name="gpu-check", epochs=epochs, batch_size=sizes.lstm_batch, device=device, home=home,
                      backbone=sizes.backbone, pretrained=False, crop_size=sizes.crop, feature_cache="off",
                      on_event=clock)
    memory = peak_memory(device)
    trainer, batches = clock.rate("train", sizes.lstm_batch)
    model = ResNetLSTM(2, backbone=sizes.backbone, pretrained=False)
    bare = bare_classifier(device, model, (SEQUENCE_LENGTH, 3, sizes.crop, sizes.crop), sizes.lstm_batch,
                           sizes.bare_steps)
    return ratio_text(trainer, bare), (f"{batches + epochs} steps, batch {sizes.lstm_batch} x {SEQUENCE_LENGTH} "
                                       f"x {sizes.backbone}@{sizes.crop}; {memory}")


def train_hybrid_family(home: Path, sizes: Sizes, device: str) -> tuple[str, str]:
    from pedsense.config import paths
    from pedsense.train.hybrid_trainer import train_hybrid
    from pedsense.train.resnet_lstm import ResNetClassifier
    from pedsense.train.samples import count_split_rows

    images = count_files(paths(home).yolo_detector / "images" / "train")
    crops = count_split_rows(paths(home).resnet / "crops.csv", "train")
    fraction = yolo_fraction(images, sizes.yolo_batch, sizes.steps)
    clock = BatchClock(device)
    reset_peak(device)
    train_hybrid(name="gpu-check", epochs=epochs_for(crops, sizes.hybrid_batch, sizes.steps),
                 batch_size=sizes.hybrid_batch, fraction=fraction,
                 yolo_epochs=epochs_for(round(images * fraction), sizes.yolo_batch, sizes.steps),
                 yolo_batch_size=sizes.yolo_batch, imgsz=sizes.imgsz, device=device, home=home,
                 backbone=sizes.backbone, pretrained=False, crop_size=sizes.crop, warmup_epochs=0,
                 on_event=clock)
    memory = peak_memory(device)
    stages = list(clock.times)
    detector_stage = next(s for s in stages if "detect" in s or "yolo" in s)
    classifier_stage = next(s for s in stages if s != detector_stage)
    detector, _ = clock.rate(detector_stage, sizes.yolo_batch)
    classifier, _ = clock.rate(classifier_stage, sizes.hybrid_batch)
    bare_detector = bare_yolo(device, 1, sizes.imgsz, sizes.yolo_batch, sizes.bare_steps)
    bare_crops = bare_classifier(device, ResNetClassifier(2, backbone=sizes.backbone, pretrained=False),
                                 (3, sizes.crop, sizes.crop), sizes.hybrid_batch, sizes.bare_steps)
    worst = min(detector / bare_detector, classifier / bare_crops)
    return (f"detector {detector / bare_detector:.2f}, classifier {classifier / bare_crops:.2f} "
            f"({'meets' if worst >= TRAINER_GOAL else 'misses'} >= {TRAINER_GOAL})",
            f"detector {detector:.1f}/{bare_detector:.1f}, classifier {classifier:.1f}/{bare_crops:.1f} "
            f"samples/s; {memory}")


def resnet50_crops(sizes: Sizes, device: str) -> tuple[str, str]:
    """ResNet-50 (or the tiny backbone on a CPU) trained whole: crops/s beside NVIDIA's A100 figure."""
    import torch
    import torchvision

    model = getattr(torchvision.models, sizes.backbone)(num_classes=1000)
    reset_peak(device)
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # as NVIDIA's figure is measured: cuDNN picks its fastest kernels
    try:
        rate = bare_classifier(device, model, (3, sizes.crop, sizes.crop), sizes.r50_batch,
                               max(sizes.bare_steps // 2, 2), lr=1e-3)
    finally:
        torch.backends.cudnn.benchmark = benchmark
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    published = (f"NVIDIA's published ResNet-50 AMP training on A100: {NVIDIA_A100_RESNET50_AMP} img/s "
                 f"(x{rate / NVIDIA_A100_RESNET50_AMP:.2f})" if sizes.backbone == "resnet50" else
                 f"{sizes.backbone}@{sizes.crop}: not comparable with NVIDIA's ResNet-50 figure")
    return f"{rate:.0f} crops/s", f"batch {sizes.r50_batch}, AMP, channels-last; {published}; {peak_memory(device)}"


# -- inference -----------------------------------------------------------------------------------
def clip_items(home: Path, frames: int):
    from pedsense.data.video import iter_frames
    from pedsense.infer import load_clip_ground_truth
    from pedsense.infer.clips import list_clips

    clip = list_clips(home)[0]
    truth, _ = load_clip_ground_truth(clip, home)
    return [(i, frame, truth.at(i)) for i, frame in iter_frames(clip) if i < frames + 2]


def frames_per_second(predictor, items, device: str) -> float:
    """Frames/s of ``predict_stream`` over the items (the first two frames warm up)."""
    import torch

    list(predictor.predict_stream(items[:2], state=predictor.new_state()))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    list(predictor.predict_stream(items[2:], state=predictor.new_state()))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (len(items) - 2) / (time.perf_counter() - started)


def latest_run(home: Path, model_type: str) -> Path:
    from pedsense.runfolder import list_runs

    runs = [r.path for r in list_runs(home, model_types=(model_type,)) if r.status == "completed"]
    if not runs:
        raise RuntimeError(f"no completed {model_type} run to predict with (its training step failed)")
    return max(runs, key=lambda p: p.name)


def ort_gpu_providers(tensorrt: bool) -> list[str]:
    """ONNX Runtime's providers for the GPU check, or SkipStep when they are not installed."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise SkipStep("onnxruntime is not installed") from exc
    available = ort.get_available_providers()
    wanted = "TensorrtExecutionProvider" if tensorrt else "CUDAExecutionProvider"
    if wanted not in available:
        raise SkipStep(f"{wanted} is not in onnxruntime's providers ({', '.join(available)}): "
                       "pip install onnxruntime-gpu" + (" and TensorRT" if tensorrt else ""))
    return [wanted, "CUDAExecutionProvider", "CPUExecutionProvider"] if tensorrt else \
        [wanted, "CPUExecutionProvider"]


def on_ort_providers(predictor, providers: list[str]):
    """The predictor with its exported models' ONNX Runtime sessions opened on ``providers``."""
    import onnxruntime as ort

    def session(path):
        return ort.InferenceSession(str(path), providers=providers)

    classifier = predictor.classifier
    for name, path in classifier.files.items():
        opened = session(path)
        classifier.sessions[name] = (lambda s, n: (lambda array: s.run(None, {n: array})[0]))(
            opened, opened.get_inputs()[0].name)
    detector = getattr(predictor, "detector", None)
    if detector is not None:
        opened = session(detector.weights)
        for model in detector._idle:
            backend = getattr(getattr(model.predictor, "model", None), "backend", None)
            if backend is not None and hasattr(backend, "session"):
                backend.session = opened
    return predictor


def inference(home: Path, model_type: str, engine: str, sizes: Sizes, device: str) -> tuple[str, str]:
    from pedsense.export import export_run
    from pedsense.infer import load_predictor
    from pedsense.infer.backends import read_export

    run = latest_run(home, model_type)
    items = clip_items(home, sizes.frames)
    if engine == "pytorch":
        predictor = load_predictor(run, device=device, backend="pytorch")
    else:
        format = "openvino" if engine == "openvino" else "onnx"
        if format == "openvino" and device.startswith("cuda"):
            raise SkipStep("OpenVINO is a CPU engine here")
        if read_export(run, model_type, format)[0] is None:
            export_run(run, format)
        predictor = load_predictor(run, device="cpu", backend=format)
        if engine in ("onnx-cuda", "onnx-tensorrt"):
            predictor = on_ort_providers(predictor, ort_gpu_providers(engine == "onnx-tensorrt"))
    fps = frames_per_second(predictor, items, device)
    return f"{fps:.1f} frames/s", f"{len(items) - 2} frames, {predictor.describe_backend()[:90]}"


# -- torchrun, the feature cache, the CUDA tests -------------------------------------------------
def ddp_params(sizes: Sizes) -> dict:
    """The short ResNet-LSTM training each torchrun process runs."""
    return {"name": "gpu-check-ddp", "epochs": 1, "batch_size": sizes.lstm_batch, "backbone": sizes.backbone,
            "pretrained": False, "crop_size": sizes.crop, "feature_cache": "off"}


def ddp_child(home: Path, run_dir: Path, sizes: Sizes) -> None:
    """What each torchrun process runs: rank 0 writes the queued run folder, the others follow it."""
    from pedsense.train.resnet_trainer import train_resnet_lstm

    train_resnet_lstm(**ddp_params(sizes), home=home, run_dir=run_dir)


def torchrun_ddp(home: Path, sizes: Sizes, device: str, cpu: bool) -> tuple[str, str]:
    import torch

    from pedsense.launches import queue_run
    from pedsense.runfolder import RunFolder
    from pedsense.train.distributed import find_torchrun

    processes = torch.cuda.device_count() if device.startswith("cuda") else 2
    run = queue_run("resnet-lstm", ddp_params(sizes), home).path  # as the dashboard queues one
    command = [find_torchrun(), "--standalone", "--nnodes", "1", "--nproc-per-node", str(processes),
               str(Path(__file__).resolve()), "--ddp-child", str(home), "--ddp-run", str(run),
               *(["--cpu"] if cpu else [])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        errors = [line for line in (done.stderr or done.stdout).splitlines() if "Error" in line]
        raise RuntimeError(f"torchrun exited {done.returncode}: {(errors or ['?'])[-1].strip()[:300]}")
    record = RunFolder(run).read_config().get("distributed") or {}
    expected = "nccl" if device.startswith("cuda") else "gloo"
    if record.get("backend") != expected or int(record.get("world_size") or 0) != processes:
        raise RuntimeError(f"config.json's distributed record is {record}, not {expected} x {processes}")
    return f"{processes} x {expected}", f"world {record.get('world_size')}, launcher {record.get('launcher')}"


def feature_cache(home: Path, sizes: Sizes, device: str) -> tuple[str, str]:
    from pedsense.runfolder import RunFolder
    from pedsense.train.resnet_trainer import train_resnet_lstm

    statuses = []
    for _ in range(2):  # built, then read back
        run = train_resnet_lstm(name="gpu-check-cache", epochs=1, batch_size=sizes.lstm_batch, device=device,
                                home=home, backbone=sizes.backbone, pretrained=False, crop_size=sizes.crop,
                                feature_cache="fp16", frozen_children=8)
        record = RunFolder(run).read_config().get("feature_cache") or {}
        statuses.append(str((record.get("train") or {}).get("status")))
    if statuses[0] not in ("built", "hit") or statuses[1] != "hit":
        raise RuntimeError(f"train split's cache was {statuses[0]}, then {statuses[1]} (expected built, then hit)")
    return "built, then hit", f"fp16, fully frozen {sizes.backbone}; {peak_memory(device)}"


def cuda_tests(device: str) -> tuple[str, str]:
    if not device.startswith("cuda"):
        raise SkipStep("no GPU: the tests marked cuda skip")
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider",
                           "--durations=0", str(ROOT / "tests")], capture_output=True, text=True, timeout=400,
                          cwd=ROOT)
    summary = (done.stdout.strip().splitlines() or ["no output"])[-1]
    if done.returncode != 0:
        raise RuntimeError(f"pytest -m cuda: {summary}")
    return summary.strip("= "), ""


# -- main ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="the tiny CPU mode even when a GPU is present")
    parser.add_argument("--home", type=Path, help="a data home with every dataset built (default: a new demo set)")
    parser.add_argument("--budget", type=float, default=480, help="seconds before the remaining steps are not run")
    parser.add_argument("--ddp-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ddp-run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available() and not args.cpu
    sizes = SEED if cuda else TINY
    if args.ddp_child:
        ddp_child(args.ddp_child, args.ddp_run, sizes)
        return 0
    device = "cuda:0" if cuda else "cpu"
    if cuda:
        print(f"GPU check on {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)} at the seed's sizes "
              f"(budget {args.budget:.0f} s)", flush=True)
    else:
        print("No CUDA GPU here: running the same steps on the CPU at tiny sizes.", flush=True)
    check = Check(device, args.budget)
    home: Path | None = None
    made: list[Path] = []  # the folders this check created: removed at the end (about 1 GB per run)

    def data():
        nonlocal home
        home = prepare_home(sizes, args.home).resolve()
        if args.home is None:
            made.append(home)
        if sizes is TINY:
            home = trimmed_copy(home, sizes)
            made.append(home.parent)
        return str(home), f"{sizes.label} sizes"

    started_in = Path.cwd()
    try:
        check.step("data (demo set, every dataset built)", data)
        if home is None:
            print(check.table())
            return 1
        return run_steps(check, home, sizes, device, cuda)
    finally:
        os.chdir(started_in)
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


def run_steps(check: Check, home: Path, sizes: Sizes, device: str, cuda: bool) -> int:
    """Every step after the data one, in the data home; the table, and the exit code."""
    os.environ["PEDSENSE_HOME"] = str(home)
    # Ultralytics logs to MLflow when it is installed, into the working folder: make it the data home
    os.chdir(home)
    check.step("train yolo: trainer / bare", lambda: train_yolo_family(home, sizes, device), needs_s=30)
    check.step("train resnet-lstm: trainer / bare", lambda: train_lstm_family(home, sizes, device), needs_s=30)
    check.step("train hybrid: trainer / bare", lambda: train_hybrid_family(home, sizes, device), needs_s=40)
    check.step(f"{sizes.backbone} training crops/s", lambda: resnet50_crops(sizes, device), needs_s=10)
    engines = ("pytorch", "onnx-cuda", "onnx-tensorrt") if cuda else ("pytorch", "onnx", "openvino")
    for model_type in ("hybrid", "resnet-lstm"):
        for engine in engines:
            check.step(f"infer {model_type}: {engine}", lambda m=model_type, e=engine: inference(home, m, e, sizes,
                                                                                                 device),
                       needs_s=60 if engine == "onnx-tensorrt" else 15)
    check.step("torchrun data-parallel", lambda: torchrun_ddp(home, sizes, device, not cuda), needs_s=30)
    check.step("feature cache", lambda: feature_cache(home, sizes, device), needs_s=20)
    check.step("tests marked cuda", lambda: cuda_tests(device), needs_s=60)
    print(check.table())
    if check.stopped_at:
        print(f"The GPU was lost during '{check.stopped_at}': the steps after it did not run.")
        return 2
    return 1 if check.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
