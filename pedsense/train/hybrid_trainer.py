"""Train the hybrid pipeline: YOLO26 1-class pedestrian detector + ResNet intent classifier.

Stage 1 (``detector``) fine-tunes YOLO on ``data/processed/yolo_detector/data.yaml`` (skipped
when ``yolo_model`` is given). Stage 2 (``classifier``) trains ``ResNetClassifier`` on
ground-truth crops ``data/processed/resnet/crops/{split}/<crop_id>.jpg`` + ``crops.csv``,
built on the fly when missing. Metrics rows carry ``stage`` = detector | classifier.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from pedsense.config import CLASS_NAMES, DETECTOR_CLASS_NAMES, paths
from pedsense.device import resolve_device, resolve_device_list
from pedsense.errors import ConfigError
from pedsense.io import link_or_copy
from pedsense.data.intent import IntentOptions
from pedsense.train import distributed
from pedsense.train.checkpoints import load_weights
from pedsense.train.common import (TrainingRun, check_batch_size, check_crop_size, dataset_task,
                                   manifest_summary,
                                   require_task)
from pedsense.train.events import EventHook, StopHook
from pedsense.train.params import HYBRID
from pedsense.train.resnet_lstm import ResNetClassifier
from pedsense.train.fit import FitSettings, fit_classifier
from pedsense.train.resnet_trainer import DEFAULT_CACHE_MB, CachedImageDataset, read_image
from pedsense.train.samples import check_missing, parse_label, read_split_rows
from pedsense.train.transforms import normalize_uint8, resize_crop
from pedsense.train.yolo_inputs import (YoloDataset, check_model_variant, detector_problem, fetch_base_model,
                                        load_yolo_dataset)
from pedsense.train.yolo_trainer import check_yolo_settings, fit_yolo, publish_weights

log = logging.getLogger(__name__)


class PedestrianCropDataset(CachedImageDataset):
    """Single ground-truth pedestrian crops of one split (the hybrid classifier's data).

    ``__getitem__`` returns ``(crop, label)``: crop (3, H, W) float32 normalised like
    :func:`pedsense.train.transforms.crops_to_tensor`; ``crop_size=(w, h)`` resizes.
    """

    def __init__(self, split: str = "train", transform: Callable | None = None, *,
                 home: str | os.PathLike | None = None, crop_size: Sequence[int] | int | None = None,
                 cache: bool = True, cache_limit_mb: float = DEFAULT_CACHE_MB):
        self.split, self.transform = split, transform
        resnet = paths(home).resnet
        self.root = resnet / "crops" / split
        self.manifest_path = self.root.parent / "manifest.json"
        self.labels_path = resnet / "crops.csv"
        rebuild = "pedsense preprocess crops"
        rows = read_split_rows(self.labels_path, split, "hybrid crop dataset", rebuild)
        self.crop_ids = [row["crop_id"].strip() for row in rows]
        self.labels = [parse_label(row["label"], f"crops.csv crop {row['crop_id']}") for row in rows]
        self.samples = [self.root / f"{crop_id}.jpg" for crop_id in self.crop_ids]
        missing = [p.name for p in self.samples if not p.is_file()]
        check_missing(missing, len(rows), f"'{split}' crop images", rebuild)
        first = read_image(self.samples[0])
        self.crop_size = check_crop_size(crop_size) or (first.shape[1], first.shape[0])
        self._init_cache(cache, cache_limit_mb)

    def decode(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 BGR crop ``index``."""
        return resize_crop(read_image(self.samples[index]), self.crop_size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        crop = normalize_uint8(torch.from_numpy(self.pixels(index)))
        if self.transform is not None:
            crop = self.transform(crop)
        return crop, self.labels[index]


def ensure_crops(home: str | os.PathLike | None, task: str = "action", split: str = "default",
                 intent: IntentOptions | None = None) -> bool:
    """Build the ground-truth crops when ``crops.csv`` is missing. True when it built them.

    ``task``, ``split`` and ``intent`` go to ``pedsense.data.resnet_format.build_resnet_crops``.
    """
    if (paths(home).resnet / "crops.csv").is_file():
        return False
    from pedsense.data.resnet_format import build_resnet_crops

    log.info("crops.csv is missing; building ground-truth crops (pedsense preprocess crops --task %s)", task)
    build_resnet_crops(home=home, task=task, split=split, intent=intent)
    return True


def check_yolo_model(yolo_model: str | os.PathLike | None) -> Path | None:
    """The existing detector weights to reuse, or None to train stage 1.

    The file is loaded (Ultralytics' restricted loader: only known model classes are rebuilt, no
    code in the file runs) and must hold a detection model, so a text file named ``x.pt`` is
    refused here, before any run folder or work exists.
    """
    if yolo_model is None or not str(yolo_model).strip():
        return None
    path = Path(yolo_model).expanduser()
    if not path.is_file():
        raise ConfigError(f"yolo_model {path} does not exist. Give the path of a trained detector "
                          "(e.g. models/hybrid/<run>/yolo_detector.pt), or leave it empty to train stage 1.")
    if path.suffix.lower() != ".pt":
        raise ConfigError(f"yolo_model must be an Ultralytics .pt file, got {path.name}.")
    path = path.resolve()
    stat = path.stat()
    problem = detector_problem(str(path), stat.st_size, stat.st_mtime_ns)
    if problem:
        raise ConfigError(f"yolo_model {path} {problem}. Give the weights of a trained detector (a "
                          "YOLO run's best.pt or a hybrid run's yolo_detector.pt), or leave it empty "
                          "to train stage 1.")
    return path


def train_hybrid(name=None, yolo_model=None, epochs=30, batch_size=16, learning_rate=1e-4, yolo_epochs=50,
                 device=None, *, on_event: EventHook = None, should_stop: StopHook = None,
                 run_dir: str | os.PathLike | None = None, home: str | os.PathLike | None = None,
                 imgsz: int = 640, model_variant: str = "yolo26n", yolo_batch_size: int | None = None,
                 backbone: str = "resnet50", pretrained: bool = True, dropout: float = 0.3,
                 crop_size: int | Sequence[int] | None = None, weight_decay: float = 1e-4,
                 frozen_children: int = 6, num_workers: int | None = None, workers: int | None = None,
                 patience: int = 100, seed: int = 42, cache: bool | str = False,
                 fraction: float = 1.0, lr0: float = 0.01, optimizer: str = "auto",
                 warmup_epochs: float = 3.0, nbs: int = 64, verbose: bool = False, task: str | None = None,
                 split: str = "default", sample_type: str = "beh", tte: str | Sequence[int] | None = None,
                 overlap: float = 0.8, irrelevant: str = "not-crossing", obs_length: int = 16,
                 placement: str = "boxes", resume: bool = False,
                 init_weights: str | os.PathLike | None = None, feature_cache: str = "auto",
                 devices: str | Sequence[str] | int | None = None, prediction_samples: int = 8) -> Path:
    """Train the hybrid pipeline: YOLO26 pedestrian detector + ResNet intent classifier.

    Stage 1 trains the 1-class detector for ``yolo_epochs`` (``yolo_batch_size``, default
    ``batch_size``; ``imgsz``; ``model_variant``; ``fraction`` of the images; Ultralytics'
    ``lr0``, ``optimizer``, ``warmup_epochs`` and ``nbs``, as in ``train_yolo``) unless
    ``yolo_model`` names existing weights.
    Stage 2 trains ``ResNetClassifier`` for ``epochs`` on ground-truth crops (AdamW, weighted
    cross-entropy, cosine schedule, best by validation accuracy).

    Args:
        task: the question the crops must answer: ``action`` (crossing now), ``intent`` (the
            JAAD benchmark: will they cross) or empty to train on the crops as built (``action``
            when the run builds them). Crops built for the other task (or, under ``intent``,
            another protocol) are refused.
        split: video split of crops the run builds: default, high_visibility, all_videos (JAAD's
            split files) or random.
        sample_type: intent crops: beh (behaviour pedestrians) or all (also bystanders).
        tte: intent: frames from a window's end to the event, MIN MAX (empty: 30 60).
        overlap: intent: window overlap (JAAD: 0.8).
        irrelevant: intent: crossing=-1 pedestrians: not-crossing (the benchmark's) or exclude.
        obs_length: intent: frames per observation window (16).
        placement: intent: count a track's boxes (the benchmark's) or its frames.
        resume: continue ``run_dir`` (stopped, interrupted or failed) at the stage and epoch it
            reached: a detector stage cut short resumes through Ultralytics, a finished one is
            not trained again, the classifier continues from ``last.pt``
            (``pedsense.train.resume.resume_run`` checks the run first).
        init_weights: a pedsense ``ResNetClassifier`` checkpoint the classifier starts from,
            with a fresh optimizer and schedule (``pedsense.train.resume.extend_run``).
        feature_cache: the classifier's frozen-feature cache (as ``train_resnet_lstm``'s).
        devices: several devices train data-parallel: the detector through Ultralytics' DDP (GPUs
            only; on CPUs it trains in one process), the classifier in one process per device
            (PyTorch DDP); the run starts those processes itself. Under an outside torchrun only
            the classifier can train (give ``yolo_model``).

    Returns:
        The run folder ``models/hybrid/<name>_<YYYYmmdd_HHMMSS>/`` (or ``run_dir``) with
        ``yolo_detector.pt``, ``resnet_classifier.pt`` (= ``best.pt``), ``last.pt``, ``config.json``.
    """
    params = HYBRID.check(HYBRID.bind(locals()))
    reuse = check_yolo_model(params["yolo_model"])
    intent = IntentOptions.from_dict(params)
    devices = resolve_device_list(params["devices"])
    ctx = distributed.current(devices, resolve_device(params["device"]) if not devices else "cpu")
    if reuse is None and ctx.launcher == "torchrun" and not resume:
        raise ConfigError("Under torchrun the hybrid trains its classifier only: give yolo_model= (a detector "
                          "trained by a YOLO run, which takes devices= itself), or start the hybrid without "
                          "torchrun (it starts its own processes for the classifier).")
    detector_data, yolo_settings, variant = None, None, None
    if reuse is None:
        detector_data = load_yolo_dataset(paths(home).yolo_detector / "data.yaml",
                                          "pedsense preprocess detector")
        gpus = devices if devices and devices[0] != "cpu" else None  # Ultralytics' DDP: GPUs only
        stage1 = {**params, "epochs": params["yolo_epochs"], "devices": gpus,
                  "batch_size": params["yolo_batch_size"] or params["batch_size"]}
        yolo_settings = check_yolo_settings(stage1, detector_data.counts["train"])
        variant = check_model_variant(params["model_variant"])
    task = params["task"]
    built_crops = ensure_crops(home, task or "action", params["split"], intent)
    train_set = PedestrianCropDataset("train", home=home, crop_size=params["crop_size"])
    built = require_task(task, train_set.manifest_path, "hybrid crop dataset",
                         "pedsense preprocess crops",
                         # the protocol's options only bind intent crops
                         options=intent.as_dict() if task == "intent" else None)
    val_set = PedestrianCropDataset("val", home=home, crop_size=train_set.crop_size)
    batch_size = check_batch_size(params["batch_size"], len(train_set), "training crops")
    if devices and len(devices) > 1:
        distributed.check_global_batch(batch_size, len(devices))
    if distributed.needs_spawn(devices):  # one process per device, each back in this function
        from pedsense.train.spawn import run_spawned

        return run_spawned("pedsense.train.hybrid_trainer:train_hybrid", "hybrid",
                           {**params, "resume": resume, "init_weights": init_weights}, devices,
                           name=name, run_dir=run_dir, home=home, on_event=on_event, should_stop=should_stop)
    datasets = (train_set.manifest_path, train_set.labels_path)
    if detector_data is not None:
        datasets += (detector_data.yaml_path.parent / "manifest.json", detector_data.yaml_path)
    if ctx.launcher == "torchrun":
        ctx.join()
    run = distributed.open_run(ctx, "hybrid", name, run_dir=run_dir, home=home, on_event=on_event,
                               should_stop=should_stop, resume=resume, init_weights=init_weights,
                               datasets=datasets)
    # the classifier's last.pt when it had started; refused here, before anything is written
    resume_from = run.checkpoint("last.pt", required=False) if resume else None
    with run.guarded():
        torch.manual_seed(params["seed"])
        classifier = ResNetClassifier(2, params["dropout"], backbone=params["backbone"],
                                      pretrained=params["pretrained"],
                                      frozen_children=params["frozen_children"])
        if init_weights is not None:
            load_weights(classifier, init_weights)
        classifier.to(ctx.device)
        detector_source, detector_weights = _detector_source(reuse, variant, home) if ctx.is_main else ("", "")
        run.start({
            "parameters": HYBRID.record(params),
            "task": built["task"], "intent_options": built["intent_options"],
            "class_names": list(CLASS_NAMES), "detector_class_names": list(DETECTOR_CLASS_NAMES),
            "device": ctx.device, **({"distributed": ctx.record()} if ctx.active else {}),
            "weights_source": {"detector": detector_weights, "classifier": classifier.weights_source},
            "model_args": classifier.model_args, "crop_size": list(train_set.crop_size),
            "dataset": {"crops_train": len(train_set), "crops_val": len(val_set),
                        "crops_built_by_run": built_crops,
                        "train_class_counts": train_set.class_counts(),
                        "val_class_counts": val_set.class_counts(),
                        "detector": dict(detector_data.counts) if detector_data else None,
                        "detector_task": dataset_task(detector_data.yaml_path.parent / "manifest.json")
                        if detector_data else None,
                        "manifest": manifest_summary(train_set.manifest_path)},
        })
        # stage 1 in rank 0 only; the other ranks wait for it to join them for stage 2
        detector_best = _stage_detector(run, reuse, detector_data, detector_source, yolo_settings) \
            if ctx.is_main else {}
        classifier_best: dict = {}
        if not ctx.join().agree_stop(run, run.stop_now()):
            settings = FitSettings(params["epochs"], batch_size, params["learning_rate"],
                                   params["weight_decay"], ctx.device, params["num_workers"],
                                   stage="classifier", best_files=("best.pt", "resnet_classifier.pt"),
                                   feature_cache=params["feature_cache"], home=home, seed=params["seed"],
                                   prediction_samples=params["prediction_samples"])
            classifier_best = fit_classifier(run, classifier, train_set, val_set, settings,
                                             resume_from=resume_from, ctx=ctx)
        ctx.leave()
        return run.finish(classifier_best, detector_best_metric=run.best_record(detector_best, "mAP50-95"),
                          best_checkpoint="best.pt", detector_checkpoint="yolo_detector.pt")


def _detector_source(reuse: Path | None, variant: tuple | None, home) -> tuple[str, str]:
    if reuse is not None:
        return str(reuse), f"reused ({reuse})"
    kind, value = variant
    return (str(value), f"file ({value})") if kind == "file" else fetch_base_model(str(value), home)


def _stage_detector(run: TrainingRun, reuse: Path | None, dataset: YoloDataset | None,
                    source: str, settings) -> dict:
    """Stage 1: train the detector into ``<run>/detector/`` (or reuse one) -> ``yolo_detector.pt``.

    A finished stage is recorded in config.json (``stages_done``); a resumed run whose detector
    was done goes straight to the classifier, one cut short continues it through Ultralytics.
    """
    if reuse is not None:
        link_or_copy(reuse, run.path / "yolo_detector.pt")
        run.log(f"stage detector skipped: reusing {reuse}")
        return {}
    done = run.stages_done().get("detector") if run.resuming else None
    if done is not None and (run.path / "yolo_detector.pt").is_file():
        run.log("stage detector finished before the resume: going on with the classifier")
        return done
    save_dir = run.path / "detector"
    save_dir.mkdir(exist_ok=True)
    try:
        bridge, _ = fit_yolo(run, dataset, source, settings, save_dir, stage="detector", resume=run.resuming)
    finally:  # a stopped or failed stage still leaves its best finite weights in place
        publish_weights(save_dir, run.path, {"best.pt": "yolo_detector.pt"})
    if not run.stop_now():
        run.stage_done("detector", bridge.best())
    return bridge.best()
