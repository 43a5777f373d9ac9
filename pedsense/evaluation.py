"""Evaluate a run: crossing-intent metrics (the JAAD pedestrian-action benchmark's set) and mAP.

``evaluate(run_dir, split="val")`` writes ``evaluation_<split>.json`` in the run folder:

- ``intent``: accuracy, balanced accuracy, precision, recall, F1, ROC AUC and the confusion
  matrix on the split's ground-truth samples (ResNet-LSTM: crop sequences; hybrid: single crops).
- ``detection`` (YOLO and hybrid): mAP50 / mAP50-95 from Ultralytics' validator.
- ``matched_intent`` (YOLO and hybrid): intent metrics on detections matched one-to-one to
  ground-truth boxes at IoU ≥ 0.5, on the frames of the split's YOLO dataset.
- ``benchmark``: the JAAD benchmark's view of the same predictions (``pedsense.breakdown``):
  accuracy, AUC, F1, precision, recall; on ``intent`` datasets a breakdown by TTE bin,
  occlusion, time of day and weather (from the extra columns of ``labels.csv``/``crops.csv``);
  and the run's row beside the published JAAD results (``pedsense.benchmarks``), each marked
  "comparable" or "not comparable", every difference named in its caveats.

Beside it, ``predictions_<split>.parquet`` keeps every scored sample (window, crop or matched
detection) with its P(crossing), label and metadata (TTE, occlusion, time of day, weather, the
pedestrian's JAAD attributes): ``pedsense.errors_browser`` reads it for the Errors page. The JSON
records the dataset build it was made on (``dataset``) and the table (``predictions``).

Every metric comes from ``pedsense.metrics`` (scikit-learn): ``roc_auc`` from probabilities,
``auc_binary`` from thresholded predictions (the benchmark's AUC).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from pedsense.config import CLASS_NAMES, paths
from pedsense.data.yolo_format import read_label_file
from pedsense.errors import ConfigError, DataError
from pedsense.geometry import IOU_THRESHOLD, box_iou, match_boxes, yolo_to_xyxy  # noqa: F401 (re-exported)
from pedsense.io import disk_full_error, is_disk_full, read_json, write_json_atomic
from pedsense.metrics import classification_metrics
from pedsense.train.samples import parse_label, read_split_rows

SPLITS = ("train", "val", "test")
Progress = Callable[[int, int, str], None]


# -- metrics -------------------------------------------------------------------------------------
def intent_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                   crossing_scores: Sequence[float] | None = None) -> dict:
    """``pedsense.metrics.classification_metrics`` of one split's predictions, refusing an empty one.

    Raises:
        DataError: no samples (the split is empty).
    """
    if len(y_true) == 0:
        raise DataError("No samples to evaluate: the split is empty. Rebuild the dataset or pick another split.")
    return classification_metrics(y_true, crossing_scores, y_pred=y_pred)


# -- evaluate a run ------------------------------------------------------------------------------
def evaluate(run_dir: str | os.PathLike, split: str = "val", *, device: str | None = None,
             max_images: int = 200, conf: float = 0.25, batch_size: int = 8,
             progress: Progress | None = None, home: str | os.PathLike | None = None) -> dict:
    """Evaluate a run on one split and save ``evaluation_<split>.json`` in its folder.

    Args:
        run_dir: the run folder (or a ``<model_type>/<name>`` id).
        split: ``val`` (default), ``test`` or ``train``.
        max_images: matched-intent evaluation uses at most this many frames, evenly spaced.
        conf: detector confidence threshold for matched-intent evaluation.

    Returns:
        The saved dict: ``run``, ``model_type``, ``split``, ``task`` (of the dataset evaluated
        on), ``intent`` and/or ``detection`` and ``matched_intent``, ``benchmark`` (see
        :func:`benchmark_section`), ``dataset`` (``errors_browser.table.dataset_stamp`` of the
        build evaluated on), ``predictions`` (the table's file, rows and kind; None when nothing
        was scored), ``seconds``, ``evaluated_at``.

    Raises:
        ConfigError: the run was trained on one task and the dataset on disk is now built for
            the other (its metrics would answer another question).
    """
    from pedsense.device import resolve_device
    # errors_browser reads evaluations (it imports this module), so its table is imported here
    from pedsense.errors_browser.table import dataset_stamp
    from pedsense.infer import run_model_type
    from pedsense.runfolder import find_run, now_iso

    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, not {split!r}.")
    run_path = find_run(run_dir, home).path
    model_type = run_model_type(run_path)
    if model_type not in DATASET_MANIFESTS:
        raise ConfigError(f"Run {run_path.name} has unknown model type {model_type!r}.")
    run_id = f"{run_path.parent.name}/{run_path.name}"
    manifest_path = dataset_manifest_path(model_type, home, run_path)
    # a context build holds the benchmark's windows only: its task is always intent
    task = "intent" if model_type == "context" else \
        check_run_task(run_path, manifest_path, run_id)
    device = resolve_device(device)
    started = time.perf_counter()
    result: dict = {"run": run_id, "model_type": model_type, "split": split, "device": device,
                    "task": task}
    samples, inputs = None, MODEL_INPUTS
    if model_type == "context":
        result["intent"], samples, inputs = _context_intent(run_path, split, device, home)
    elif model_type == "resnet-lstm":
        result["intent"], samples, inputs = _sequence_intent(run_path, split, device, batch_size, progress,
                                                             home)
    elif model_type == "hybrid":
        result["intent"], samples = _crop_intent(run_path, split, device, batch_size, progress, home)
        result["detection"] = _detection_map(run_path, split, device, home, dataset="yolo_detector")
        result["matched_intent"], _ = _matched_intent(run_path, split, device, conf, max_images, progress, home)
    else:
        result["detection"] = _detection_map(run_path, split, device, home, dataset="yolo")
        result["matched_intent"], samples = _matched_intent(run_path, split, device, conf, max_images,
                                                            progress, home)
    result["benchmark"] = (benchmark_section(samples, manifest_path,
                                             label=run_id, split=split, inputs=inputs)
                           if samples is not None else
                           {"skipped": "no intent predictions to score (see matched_intent)"})
    result["dataset"] = dataset_stamp(manifest_path)
    try:
        result["predictions"] = _keep_predictions(run_path, split, samples, home)
        result["seconds"] = round(time.perf_counter() - started, 2)
        result["evaluated_at"] = now_iso()
        write_json_atomic(evaluation_path(run_path, split), result)
    except OSError as exc:  # the run folder's disk is full: say where and how much is free
        if not is_disk_full(exc):
            raise
        raise disk_full_error(run_path, None, "rerun the evaluation") from exc
    return result


def _keep_predictions(run_path: Path, split: str, samples: "Samples | None", home) -> dict | None:
    """Write every scored sample beside its metadata (``predictions_<split>.parquet``, the Errors
    page's table) before the JSON that points at it; None, and no stale table, when nothing was scored."""
    from pedsense.errors_browser.table import build_table, predictions_path, write_predictions  # see evaluate

    if samples is None or not samples.rows:
        predictions_path(run_path, split).unlink(missing_ok=True)
        return None
    table = build_table(samples.y_true, samples.p_crossing, samples.rows, split=split, home=home)
    return {**write_predictions(run_path, split, table), "unit": samples.unit}


# -- the benchmark view ----------------------------------------------------------------------------
# Where each model type's evaluation data lives: the manifest of the dataset it is scored on.
DATASET_MANIFESTS = {"resnet-lstm": ("sequences",), "hybrid": ("resnet", "crops"), "yolo": ("yolo",),
                     "context": ("processed", "context")}  # context: per sample type, see dataset_manifest_path
MODEL_INPUTS = ("rgb",)  # every pedsense model sees RGB frames or crops only


@dataclass
class Samples:
    """What a run predicted on one split, ready for the benchmark's metrics.

    ``y_true`` (N,) 0/1 labels; ``p_crossing`` (N,) P(crossing); ``rows`` one metadata dict per
    sample (the ``labels.csv``/``crops.csv`` row; empty when there is none); ``unit`` says what a
    sample is; ``caveat`` how that differs from the benchmark's 16-frame windows ("" when not).
    """

    y_true: list[int]
    p_crossing: np.ndarray
    rows: list[dict]
    unit: str
    caveat: str = ""


def dataset_manifest_path(model_type: str, home=None, run_path: Path | None = None) -> Path:
    """The ``manifest.json`` of the dataset ``model_type`` runs are evaluated on (a context run's:
    the build of the sample type it was trained on, from ``run_path``'s config)."""
    if model_type == "context":
        from pedsense.data.context_format import context_manifest_path

        config = read_json(Path(run_path) / "config.json", {}) if run_path is not None else {}
        return context_manifest_path(home, (config or {}).get("sample_type"))
    base = paths(home)
    first, *rest = DATASET_MANIFESTS[model_type]
    return getattr(base, first).joinpath(*rest) / "manifest.json"


def run_task(run_path: Path) -> str | None:
    """The task a run was trained on (``action``/``intent``), None when its config predates tasks."""
    config = read_json(Path(run_path) / "config.json", {}) or {}
    manifest = (config.get("dataset") or {}).get("manifest") or {}
    return config.get("task") or manifest.get("task")


def check_run_task(run_path: Path, manifest_path: Path, run_id: str) -> str:
    """The task of the dataset on disk, refused when the run was trained on the other one."""
    trained = run_task(run_path)
    if not manifest_path.is_file():
        return trained or "action"  # not built: reading the dataset says so, with the fix
    manifest = read_json(manifest_path, {}) or {}
    dataset = manifest.get("task") or "action"
    if trained is not None and trained != dataset:
        raise ConfigError(
            f"Run {run_id} was trained on task '{trained}', but {manifest_path.parent} is now built "
            f"for task '{dataset}', so its metrics would answer another question. Fix: rebuild the "
            f"dataset with `--task {trained}` (pedsense preprocess ... --task {trained}), or "
            "evaluate a run trained on the current data.")
    return dataset


def benchmark_section(samples: Samples, manifest_path: Path, *, label: str = "this run",
                      threshold: float = 0.5, split: str = "test",
                      inputs: Sequence[str] = MODEL_INPUTS) -> dict:
    """The benchmark's metrics, per-group breakdown and reference rows of one run's predictions.

    ``split`` is the part the samples come from: published numbers are ``test``-split numbers,
    so on any other part every published row is marked not comparable, and says why. ``inputs``
    is what the model saw (``pedsense.benchmarks.INPUT_NAMES``; RGB for the crop models).

    Returns:
        ``{"task", "intent_options", "split", "data_split", "synthetic", "unit", "inputs",
        "threshold", "metrics", "breakdown", "reference"}`` (JSON-ready; undefined metrics are
        None). ``baselines``: "always crossing" and "always not-crossing" scored on the same samples
        (``pedsense.benchmarks.trivial_baselines``). ``metrics`` is ``pedsense.metrics.classification_metrics``; ``breakdown`` its rows
        per TTE bin, occlusion, time of day and weather (``intent`` datasets; else ``[]`` with a
        ``breakdown_note``); ``reference`` the run's row, then each published JAAD result with
        ``comparison`` ("comparable"/"not comparable") and ``caveats`` naming every difference.
    """
    from pedsense.benchmarks import compare_with_published, trivial_baselines
    from pedsense.breakdown import BREAKDOWN_FACTORS, breakdown

    manifest = read_json(manifest_path, {}) or {}
    task = manifest.get("task") or "action"
    options = manifest.get("intent_options") if task == "intent" else None
    synthetic = bool(manifest.get("synthetic"))
    data_split = split_scheme(manifest)
    metrics = classification_metrics(samples.y_true, samples.p_crossing, threshold=threshold)
    section: dict[str, Any] = {"task": task, "intent_options": options, "split": split,
                               "data_split": data_split, "synthetic": synthetic,
                               "unit": samples.unit, "inputs": list(inputs),
                               "threshold": threshold, "metrics": metrics, "breakdown": []}
    columns = set(samples.rows[0]) if samples.rows else set()
    needed = {"occlusion", "time_of_day", "weather"}
    if task == "intent" and needed <= columns and ("tte" in columns or "tte_bin" in columns):
        table = breakdown(samples.rows, samples.y_true, samples.p_crossing, BREAKDOWN_FACTORS, threshold)
        section["breakdown"] = table.to_dict(orient="records")
    else:
        section["breakdown_note"] = (
            "The breakdown by TTE bin, occlusion, time of day and weather needs an `intent` "
            "dataset's labels.csv/crops.csv" + ("" if task == "intent" else
                                                " (this dataset is built for `action`)") + ".")
    # what answering one class everywhere scores on these very samples: the floor a model must clear
    section["baselines"] = trivial_baselines(samples.y_true)
    section["reference"] = compare_with_published(
        metrics, inputs, options=options, task=task, synthetic=synthetic, split=data_split,
        evaluated_on=split, unit=samples.caveat, label=label)
    return json_safe(section)


def split_scheme(manifest: dict) -> str:
    """The video split a dataset was actually built on (``default``, ..., or ``random`` when the
    build fell back to a random split because the split files were missing)."""
    source = str((manifest.get("split") or {}).get("source") or manifest.get("split_source") or "")
    if source.startswith("official:"):
        return source.split(":", 1)[1]
    return "random" if source else "unknown"


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf as None and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluation_path(run_dir: str | os.PathLike, split: str = "val") -> Path:
    return Path(run_dir) / f"evaluation_{split}.json"


def load_evaluation(run_dir: str | os.PathLike, split: str = "val") -> dict | None:
    """A saved evaluation, or None when the run has not been evaluated on ``split``."""
    return read_json(evaluation_path(run_dir, split), None)


def headline_metrics(evaluation: dict) -> dict[str, float | None]:
    """One flat row per evaluation (for tables and ranking runs): intent, matched intent, mAP."""
    row: dict[str, float | None] = {}
    intent = evaluation.get("intent") or evaluation.get("matched_intent") or {}
    for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "auc_binary"):
        row[key] = intent.get(key)
    detection = evaluation.get("detection") or {}
    row["mAP50"] = detection.get("mAP50")
    row["mAP50-95"] = detection.get("mAP50-95")
    return row


def _report(progress: Progress | None, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(done, total, message)


def _sequence_intent(run_path: Path, split: str, device: str, batch_size: int,
                     progress: Progress | None, home) -> tuple[dict, Samples, tuple]:
    """ResNet-LSTM on the split's ground-truth crop sequences (a fused run: with their context
    features). Returns (metrics, samples, the model's inputs)."""
    from pedsense.infer import CropClassifier, require_weights
    from pedsense.train.resnet_trainer import PedestrianSequenceDataset

    classifier = CropClassifier(require_weights(run_path / "best.pt", "the ResNet-LSTM weights"), device=device)
    # a fused run reads its windows' context features from the same build (leak guard included)
    dataset = PedestrianSequenceDataset(split, home=home, crop_size=classifier.crop_size, cache=False,
                                        context_features=classifier.context_groups or None)
    batches = range(0, len(dataset), batch_size)
    probabilities = []
    for k, start in enumerate(batches):
        indices = range(start, min(start + batch_size, len(dataset)))
        context = {g: a[indices.start:indices.stop] for g, a in dataset.context.items()} if dataset.context else None
        probabilities.append(classifier.classify_sequences([list(dataset.decode(i)) for i in indices], context))
        _report(progress, k + 1, len(batches), f"sequences {indices[-1] + 1}/{len(dataset)}")
    probabilities = np.concatenate(probabilities)
    # the dataset reads labels.csv with read_split_rows too, so the rows line up with its samples
    rows = read_split_rows(paths(home).resnet / "labels.csv", split, "ResNet sequence dataset",
                           "pedsense preprocess resnet")
    samples = Samples(list(dataset.labels), probabilities[:, classifier.crossing_index], rows,
                      unit=f"{dataset.sequence_length}-frame crop sequences")
    fused = f" + context {', '.join(classifier.context_groups)}" if dataset.context else ""
    metrics = _classifier_metrics(probabilities, dataset.labels, classifier,
                                  source=f"{len(dataset)} ground-truth crop sequences{fused}")
    return metrics, samples, MODEL_INPUTS + context_inputs(classifier.context_groups)


def _context_intent(run_path: Path, split: str, device: str, home) -> tuple[dict, Samples, tuple]:
    """A context model on the split's windows of the build it was trained on. Returns (metrics,
    samples, the model's inputs)."""
    from pedsense.data.context_format import load_context_split
    from pedsense.infer import require_weights
    from pedsense.train.checkpoints import load_context_model
    from pedsense.train.context_model import predict_proba

    model, meta = load_context_model(require_weights(run_path / "best.pt", "the context model's weights"), device)
    windows = load_context_split(home, split, sample_type=meta.get("sample_type"))
    missing = [g for g in model.groups if g not in windows.groups]
    if missing:
        raise DataError(f"The context build on disk has no {', '.join(missing)} features, which this run "
                        "reads: rebuild it as the run was trained (`pedsense preprocess context --sample-type "
                        f"{windows.sample_type}`), or evaluate a run trained on the current build.")
    windows = windows.select(model.groups)  # the windows it was trained on: some feature known
    if not len(windows):
        raise DataError(f"The context build has no {split} windows with known features: nothing to score. "
                        "Pick another split.")
    probabilities = predict_proba(model, windows.groups, device=device)
    labels = [int(v) for v in windows.labels]
    rows = [{"sequence_id": row["window_id"], **{k: row[k] for k in CONTEXT_ROW_COLUMNS}}
            for row in windows.windows.to_dict("records")]
    metrics = intent_metrics(labels, list(probabilities.argmax(1)), probabilities[:, 1])
    metrics["source"] = f"{len(labels)} observation windows, features {', '.join(model.groups)}"
    if windows.dropped_unknown:
        metrics["dropped_unknown"] = windows.dropped_unknown
    samples = Samples(labels, probabilities[:, 1], rows, unit="observation windows, annotations only")
    return metrics, samples, context_inputs(model.groups)


# The windows.csv columns a context window's table row carries (its context, as an intent build's)
CONTEXT_ROW_COLUMNS = ("video_id", "track_id", "start_frame", "end_frame", "tte", "event_frame", "occlusion",
                       "time_of_day", "weather", "track_label")


def context_inputs(groups: Sequence[str]) -> tuple[str, ...]:
    """The benchmark's names (``pedsense.benchmarks.INPUT_NAMES``) of a context model's groups."""
    names = {"box": "box", "history": "box", "vehicle": "speed", "traffic": "traffic", "behaviour": "behaviour"}
    return tuple(dict.fromkeys(names.get(g, g) for g in groups))


def _crop_intent(run_path: Path, split: str, device: str, batch_size: int,
                 progress: Progress | None, home) -> tuple[dict, Samples]:
    """The hybrid's classifier on the split's ground-truth single crops."""
    from pedsense.infer import CropClassifier, require_weights
    from pedsense.train.resnet_trainer import read_image

    classifier = CropClassifier(require_weights(run_path / "resnet_classifier.pt", "the hybrid's classifier"),
                                device=device)
    resnet = paths(home).resnet
    rows = read_split_rows(resnet / "crops.csv", split, "ResNet crop dataset", "pedsense preprocess resnet")
    files = [resnet / "crops" / split / f"{row['crop_id'].strip()}.jpg" for row in rows]
    labels = [parse_label(row["label"], f"crops.csv crop {row['crop_id']}") for row in rows]
    probabilities = []
    for start in range(0, len(files), batch_size * 4):
        chunk = files[start:start + batch_size * 4]
        probabilities.append(classifier.classify([read_image(path) for path in chunk]))
        _report(progress, start + len(chunk), len(files), f"crops {start + len(chunk)}/{len(files)}")
    probabilities = np.concatenate(probabilities)
    samples = Samples(labels, probabilities[:, classifier.crossing_index], rows,
                      unit="single ground-truth crops",
                      caveat="scored per frame (single crops), not per 16-frame window")
    return _classifier_metrics(probabilities, labels, classifier,
                               source=f"{len(files)} ground-truth crops"), samples


def _classifier_metrics(probabilities: np.ndarray, labels: Sequence[int], classifier, *, source: str) -> dict:
    names = list(classifier.class_names)
    # map the checkpoint's class order onto pedsense's (0 not-crossing, 1 crossing)
    predicted = [CLASS_NAMES.index(names[i]) if names[i] in CLASS_NAMES else int(i)
                 for i in probabilities.argmax(axis=1)]
    metrics = intent_metrics(labels, predicted, probabilities[:, classifier.crossing_index])
    metrics["source"] = source
    return metrics


def _detection_map(run_path: Path, split: str, device: str, home, *, dataset: str) -> dict:
    """mAP50 and mAP50-95 from Ultralytics' validator on the run's YOLO dataset."""
    from pedsense.infer import Detector, detector_weights, run_imgsz

    data_yaml = getattr(paths(home), dataset) / "data.yaml"
    command = "pedsense preprocess yolo" if dataset == "yolo" else "pedsense preprocess detector"
    if not data_yaml.is_file():
        raise DataError(f"{data_yaml} is missing, so mAP cannot be measured. Build it with `{command}`.")
    if f"\n{split}:" not in "\n" + data_yaml.read_text(encoding="utf-8"):
        raise DataError(f"{data_yaml} has no '{split}' split. Evaluate on val, or rebuild with a {split} split.")
    from pedsense.device import torch_threads_kept

    detector = Detector(detector_weights(run_path), device=device, imgsz=run_imgsz(run_path))
    with torch_threads_kept():  # Ultralytics' validator drops torch to one CPU thread
        metrics = detector.model.val(data=str(data_yaml), split=split, imgsz=detector.imgsz, batch=8,
                                     device=device, plots=False, verbose=False,
                                     project=str(run_path / "eval"), name=split, exist_ok=True, workers=0)
    return {"mAP50": float(metrics.box.map50), "mAP50-95": float(metrics.box.map),
            "precision": float(metrics.box.mp), "recall": float(metrics.box.mr), "dataset": str(data_yaml)}


def _matched_intent(run_path: Path, split: str, device: str, conf: float, max_images: int,
                    progress: Progress | None, home) -> tuple[dict, Samples | None]:
    """Intent on detections matched to ground-truth boxes (IoU ≥ 0.5) of the 2-class YOLO dataset.

    Returns the metrics (or ``{"skipped": why}``) and the matched samples (None when none)."""
    import cv2

    from pedsense.infer import load_predictor

    images_dir = paths(home).yolo / "images" / split
    images = sorted(images_dir.glob("*.jpg")) if images_dir.is_dir() else []
    if not images:
        return {"skipped": f"No {split} images in {images_dir}: build the 2-class dataset with "
                           "`pedsense preprocess yolo` to measure intent on detections."}, None
    if len(images) > max_images:
        images = [images[i] for i in np.linspace(0, len(images) - 1, max_images).round().astype(int)]
    predictor = load_predictor(run_path, device=device, conf=conf)
    y_true, y_pred, scores, rows, ground_truth_boxes, detections = [], [], [], [], 0, 0
    for k, image_path in enumerate(images):
        frame = cv2.imread(str(image_path))
        if frame is None:
            continue
        label_file = paths(home).yolo / "labels" / split / f"{image_path.stem}.txt"
        true_xyxy, true_cls = read_label_file(label_file, frame.shape[1], frame.shape[0])
        predictions = predictor.predict(frame, k)
        ground_truth_boxes += len(true_xyxy)
        detections += len(predictions)
        video, _, frame_text = image_path.stem.rpartition("_")  # images are <video>_<frame>.jpg
        for i, j in match_boxes(predictions.xyxy, true_xyxy):
            y_true.append(int(true_cls[j]))
            y_pred.append(CLASS_NAMES.index(predictions.labels[i]))
            scores.append(float(predictions.crossing_scores[i]))
            rows.append({"sample_id": f"{image_path.stem}_{j}", "video_id": video or image_path.stem,
                         "frame": int(frame_text) if frame_text.isdigit() else -1,
                         "xyxy": [float(v) for v in true_xyxy[j]], "image_wh": (frame.shape[1], frame.shape[0])})
        _report(progress, k + 1, len(images), f"matched intent: frame {k + 1}/{len(images)}")
    if not y_true:
        return {"skipped": f"No detection matched a ground-truth box at IoU ≥ {IOU_THRESHOLD} on "
                           f"{len(images)} frames: the detector found nothing usable (train longer).",
                "images": len(images), "detections": detections, "ground_truth_boxes": ground_truth_boxes}, None
    metrics = intent_metrics(y_true, y_pred, scores)
    metrics.update({"images": len(images), "detections": detections, "ground_truth_boxes": ground_truth_boxes,
                    "matched": len(y_true), "match_rate": len(y_true) / ground_truth_boxes if ground_truth_boxes else 0.0,
                    "iou_threshold": IOU_THRESHOLD})
    samples = Samples(y_true, np.asarray(scores, np.float64), rows,
                      unit=f"detections matched to ground-truth boxes (IoU ≥ {IOU_THRESHOLD})",
                      caveat="scored per detected box in single frames, not per 16-frame window")
    return metrics, samples
