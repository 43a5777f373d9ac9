"""YOLO datasets from extracted frames and JAAD boxes.

``build_yolo_dataset()`` → ``data/processed/yolo/`` (2 classes: 0 not-crossing, 1 crossing) and
``build_detector_dataset()`` → ``data/processed/yolo_detector/`` (1 class: pedestrian), each::

    images/{train,val[,test]}/<video>_<frame>.jpg   hard links to data/raw/frames/
    labels/{train,val[,test]}/<video>_<frame>.txt   "class cx cy w h", normalised, clipped
    data.yaml                                        absolute path, splits, class names
    manifest.json                                    parameters, counts, split, leakage check

Who gets which class (the crossing dataset):

- behaviour pedestrians (``pedestrian`` tracks, ids ending in ``b``; any box with a ``cross``
  value): ``crossing`` → 1, anything else (``not-crossing``, ``irrelevant``) → 0.
- ``ped`` tracks (bystanders, no behaviour labels): 0, not-crossing. They are pedestrians the
  car does not interact with; leaving them unlabelled would teach the detector that they are
  background. ``include_bystanders=False`` drops them.
- ``people`` tracks (one box around a group) are never labelled in either dataset.

Frames without any labelled box are left out unless ``include_empty=True``.

Under ``task="intent"`` (the JAAD benchmark protocol, ``pedsense.data.intent``) the 2-class
dataset holds only the frames of the observation windows: a pedestrian's box is labelled with
its track-level ``crossing`` (1 crossing, 0 not; ``ped`` bystanders 0 under ``sample_type="all"``)
on every frame inside one of its windows. Frames in no pedestrian's window are left out; on a
kept frame, a pedestrian outside its own windows (the frames from 30 frames before its event on,
or one the protocol skips) is left unlabelled, and the manifest counts these boxes
(``unlabelled_boxes``) so nothing goes unsaid. ``include_bystanders`` does not apply (the
sample type decides). The detector dataset's labels do not depend on the task; its split does.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from pedsense.config import CLASS_NAMES, DETECTOR_CLASS_NAMES, RANDOM_SEED, TRAIN_SPLIT, paths
from pedsense.data.intent import IntentOptions, Window
from pedsense.data.annotation import LABEL_CODES
from pedsense.data.manifest import (BuildInputs, IntentSelection, StagedBuild, build_summary,
                                    collect_inputs, now_iso, select_intent_windows, task_options,
                                    task_parameters, with_input_problems)
from pedsense.data.splits import leakage_check
from pedsense.errors import ConfigError, DataError
from pedsense.geometry import clip_boxes, xyxy_to_yolo, yolo_to_xyxy
from pedsense.io import link_or_copy, write_text_atomic

BEHAVIOUR_LABEL = "pedestrian"
BYSTANDER_LABEL = "ped"
GROUP_LABEL = "people"

# The attributes a 2-class dataset can be built from: (name of value 0, name of value 1).
ATTRIBUTE_CLASSES = {
    "cross": CLASS_NAMES,
    "action": ("standing", "walking"),
    "look": ("not-looking", "looking"),
}

Labeller = Callable[[object, object], "int | None"]
Progress = Callable[[int, int, str], None]


# -- labels ---------------------------------------------------------------------------------
def attribute_class(box, attribute: str = "cross") -> int | None:
    """Class index of one behaviour box for ``attribute`` (``cross``: 1 crossing, 0 otherwise).

    Accepts the parser's strings (``"crossing"``) and JAAD's integer codes (1/0/-1).
    Returns None when the box has no value for ``attribute``, or one outside JAAD's vocabulary
    (never coerced to a class; the parser leaves such boxes out and counts them).
    """
    value = getattr(box, attribute, None)
    if value is None:
        value = (getattr(box, "extra", None) or {}).get(attribute)
    if value is None:
        return None
    code = LABEL_CODES[attribute].get(value.strip().lower()) if isinstance(value, str) else value
    if code is None:
        try:
            code = int(value)
        except (TypeError, ValueError):
            return None
    return 1 if int(code) == 1 else 0


def intent_labeller(attribute: str = "cross", include_bystanders: bool = True) -> Labeller:
    """``labeller(track, box) -> class or None`` for the 2-class dataset (see module docstring)."""
    if attribute not in ATTRIBUTE_CLASSES:
        raise DataError(f"attribute={attribute!r} is not supported; use one of "
                        f"{', '.join(ATTRIBUTE_CLASSES)}.")

    def label(track, box) -> int | None:
        if track.label == GROUP_LABEL:
            return None
        # Go by the box's own value, not the track label: in real JAAD a few tracks carry
        # behaviour labels under another label (the parser follows JAAD's old_id rule).
        value = attribute_class(box, attribute)
        if value is not None:
            return value
        if getattr(track, "is_behavioural", False):
            return None  # a behaviour box without a usable value is not a bystander
        return 0 if include_bystanders and attribute == "cross" else None

    return label


def detector_labeller(track, box) -> int | None:
    """Every individual pedestrian (behaviour or bystander) is class 0; groups are skipped."""
    return 0 if track.label in (BEHAVIOUR_LABEL, BYSTANDER_LABEL) else None


def window_labels(windows: Iterable[Window]) -> dict[int, dict[str, int]]:
    """``{frame: {track_id: label}}`` over every frame of one video's intent windows."""
    labels: dict[int, dict[str, int]] = defaultdict(dict)
    for window in windows:
        for frame in window.frames:
            labels[frame][window.track_id] = window.label
    return dict(labels)


def window_labeller(labels_by_frame: dict[int, dict[str, int]]) -> Labeller:
    """``labeller(track, box)``: the track-level label inside the pedestrian's windows, else None."""

    def label(track, box) -> int | None:
        return labels_by_frame.get(box.frame, {}).get(track.track_id)

    return label


def yolo_line(class_id: int, xyxy, width: float, height: float) -> str | None:
    """``"class cx cy w h"`` normalised to [0, 1] and clipped to the image; None if nothing is left."""
    clipped = clip_boxes(xyxy, (width, height))
    x1, y1, x2, y2 = clipped[0]
    if x2 - x1 < 1.0 or y2 - y1 < 1.0:
        return None
    cx, cy, w, h = xyxy_to_yolo(clipped, (width, height))[0]
    return f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def read_label_file(label_file: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(M, 4) pixel boxes and (M,) classes of one YOLO label file (``class cx cy w h`` lines, the
    inverse of :func:`yolo_line`); empty when the file is missing or empty."""
    rows = [line.split() for line in label_file.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if label_file.is_file() else []
    if not rows:
        return np.empty((0, 4), np.float32), np.empty(0, np.int64)
    table = np.array([[float(v) for v in row[:5]] for row in rows], np.float64)
    xyxy = yolo_to_xyxy(table[:, 1:5], (width, height)).astype(np.float32)
    return xyxy, table[:, 0].astype(np.int64)


def annotation_size(annotation, meta: dict) -> tuple[float, float]:
    """The (width, height) the annotation's pixel coordinates refer to."""
    width = float(getattr(annotation, "width", 0) or meta.get("width") or 0)
    height = float(getattr(annotation, "height", 0) or meta.get("height") or 0)
    if width <= 0 or height <= 0:
        raise DataError(f"{meta.get('video_id')}: neither the annotation nor the frames give an image size.")
    return width, height


def boxes_by_frame(annotation) -> dict[int, list[tuple[object, object]]]:
    """``{frame: [(track, box), ...]}`` over every visible box of every track."""
    index: dict[int, list] = defaultdict(list)
    for track in annotation.tracks:
        for box in track.boxes:
            index[box.frame].append((track, box))
    return index


# -- builds ---------------------------------------------------------------------------------
def build_yolo_dataset(attribute: str = "cross", *, home=None, split: str = "default",
                       frame_step: int = 1, progress: Progress | None = None,
                       include_bystanders: bool = True, include_empty: bool = False,
                       train_ratio: float = TRAIN_SPLIT, seed: int = RANDOM_SEED,
                       task: str = "action", intent: IntentOptions | None = None) -> dict:
    """Build the 2-class crossing-intent YOLO dataset in ``data/processed/yolo/``.

    Args:
        attribute: the box attribute giving the class (``cross``; also ``action``, ``look``;
            only ``cross`` under ``task="intent"``).
        split: which video split (``default``, ``high_visibility``, ``all_videos``, ``random``).
        frame_step: keep every n-th extracted frame.
        progress: ``progress(done_videos, total_videos, message)``.
        include_bystanders: ``action``: label ``ped`` bystanders not-crossing (else drop them).
        include_empty: keep frames without any labelled box as background images.
        task: ``action`` (per-frame ``cross``) or ``intent`` (the JAAD benchmark windows; see the
            module docstring).
        intent: the ``intent`` protocol (``pedsense.data.intent.IntentOptions``; None: the JAAD
            benchmark's); checked, but unused, under ``action``.

    Returns:
        The manifest, plus ``path`` (the dataset folder) and ``reused`` (nothing was rebuilt).

    Raises:
        DataError: no annotations, frames not extracted yet, or nothing to label.
        ConfigError: an unknown task or intent option.
    """
    labeller = intent_labeller(attribute, include_bystanders)  # validates ``attribute``
    options = task_options(task, intent, split)
    if options is not None and attribute != "cross":
        raise ConfigError(f"task='intent' labels by the track-level `crossing`; attribute={attribute!r} "
                          "only works with task='action'.")
    params = {"dataset": "yolo", "attribute": attribute, "split": split, "frame_step": frame_step,
              "include_bystanders": include_bystanders, "include_empty": include_empty,
              "train_ratio": train_ratio, "seed": seed, **task_parameters(task, options)}
    return _build(paths(home).yolo, params, list(ATTRIBUTE_CLASSES[attribute]), labeller,
                  home=home, progress=progress, options=options)


def build_detector_dataset(*, home=None, split: str = "default", frame_step: int = 1,
                           progress: Progress | None = None, include_empty: bool = False,
                           train_ratio: float = TRAIN_SPLIT, seed: int = RANDOM_SEED,
                           task: str = "action", intent: IntentOptions | None = None) -> dict:
    """Build the 1-class pedestrian detector dataset in ``data/processed/yolo_detector/``.

    Same layout, split and options as ``build_yolo_dataset``; stage 1 of the hybrid trains on it.
    Its labels (every individual pedestrian, every frame) are the same under both tasks: ``task``
    is recorded (so a hybrid run can check its stages agree) and the split options apply; the
    other intent options are checked and recorded but change nothing.
    """
    options = task_options(task, intent, split)
    params = {"dataset": "yolo_detector", "split": split, "frame_step": frame_step,
              "include_empty": include_empty, "train_ratio": train_ratio, "seed": seed, "task": task}
    return _build(paths(home).yolo_detector, params, list(DETECTOR_CLASS_NAMES), detector_labeller,
                  home=home, progress=progress, options=None, recorded_options=options)


def _build(out: Path, params: dict, class_names: list[str], labeller: Labeller, *, home,
           progress: Progress | None, options=None, recorded_options=None) -> dict:
    """Shared body of the two YOLO builds: reuse, or stage every video and swap in.

    ``options`` (intent) decide the labels; ``recorded_options`` only go in the manifest.
    """
    if int(params["frame_step"]) < 1:
        raise DataError(f"frame_step={params['frame_step']!r} must be 1 or more.")
    inputs = collect_inputs(home, params["split"], params["train_ratio"], params["seed"])
    staged = StagedBuild(out.parent, out.name, [out.name], out.name, params, inputs.fingerprint)
    with staged.locked():
        return _run_build(staged, out, inputs, params, class_names, labeller, home, progress,
                          options, recorded_options or options)


def _run_build(staged: StagedBuild, out: Path, inputs: BuildInputs, params: dict, class_names: list[str],
               labeller: Labeller, home, progress: Progress | None, options, recorded_options) -> dict:
    existing = staged.existing()
    if existing is not None:
        relocate_data_yaml(out)
        return {**existing, "path": str(out), "reused": True}
    staged.begin(videos=len(inputs.video_ids))
    annotations = inputs.load_annotations(include_unassigned=options is not None)
    selection = select_intent_windows(inputs, annotations, options) if options is not None else None
    counts = _empty_counts(inputs, class_names)
    written: dict[str, set] = {part: set() for part in inputs.parts}
    total = len(inputs.video_ids)
    for done, (part, video) in enumerate((part, v) for part, vs in inputs.parts.items() for v in vs):
        if progress:
            progress(done, total, f"{video}: {params['dataset']} labels")
        row = staged.finished_video(video)
        if row is None:
            video_labeller, keep = labeller, None
            if selection is not None:
                by_frame = window_labels(selection.by_video.get(video, []))
                video_labeller, keep = window_labeller(by_frame), set(by_frame)
            row = _write_video(staged, out.name, part, video, annotations.get(video), inputs.metas[video],
                               paths(home).video_frames(video), video_labeller, len(class_names), params,
                               keep_frames=keep)
            staged.mark_video(video, row)
        _add_counts(counts[part], row, class_names)
        if any(r["images"] for r in row):
            written[part].add(video)
    if progress:
        progress(total, total, f"{params['dataset']} dataset written")
    return _commit(staged, out, inputs, annotations, counts, class_names, params, selection,
                   written, recorded_options)


def _write_video(staged: StagedBuild, name: str, part: str, video: str, annotation, meta: dict,
                 frames_dir: Path, labeller: Labeller, num_classes: int, params: dict,
                 keep_frames: set | None = None) -> list[dict]:
    """Link the frames of one video and write their label files. Returns its count row.

    ``keep_frames`` (intent) limits the images to those frames (the observation windows').
    """
    if annotation is None:
        return [{"split": part, "video_id": video, "images": 0, "boxes": [0] * num_classes,
                 "unlabelled": 0, "error": "annotation could not be parsed"}]
    width, height = annotation_size(annotation, meta)
    index = boxes_by_frame(annotation)
    images, labels = staged.path(name, "images", part), staged.path(name, "labels", part)
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    boxes, written, unlabelled = [0] * num_classes, 0, 0
    for frame in meta["frames"][:: int(params["frame_step"])]:
        if keep_frames is not None and frame not in keep_frames:
            continue
        lines, missed = [], 0
        for track, box in index.get(frame, ()):
            class_id = labeller(track, box)
            line = None if class_id is None else yolo_line(class_id, box.xyxy, width, height)
            if line:
                lines.append(line)
                boxes[class_id] += 1
            elif class_id is None and track.label in (BEHAVIOUR_LABEL, BYSTANDER_LABEL):
                missed += 1
        if not lines and not params["include_empty"]:
            continue
        stem = f"{video}_{frame:06d}"
        link_or_copy(frames_dir / f"frame_{frame:06d}.jpg", images / f"{stem}.jpg")
        (labels / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        written += 1
        unlabelled += missed
    return [{"split": part, "video_id": video, "images": written, "boxes": boxes, "unlabelled": unlabelled}]


def _empty_counts(inputs: BuildInputs, class_names: list[str]) -> dict:
    return {part: {"videos": 0, "images": 0, "boxes": {name: 0 for name in class_names},
                   "unlabelled_boxes": 0} for part in inputs.parts}


def _add_counts(part_counts: dict, rows: list[dict], class_names: list[str]) -> None:
    for row in rows:
        part_counts["videos"] += 1 if row["images"] else 0
        part_counts["images"] += row["images"]
        part_counts["unlabelled_boxes"] += row.get("unlabelled", 0)
        for name, n in zip(class_names, row["boxes"]):
            part_counts["boxes"][name] += n


def _commit(staged: StagedBuild, out: Path, inputs: BuildInputs, annotations: dict, counts: dict,
            class_names: list[str], params: dict, selection: IntentSelection | None,
            written: dict[str, set], options) -> dict:
    """Check the result is usable, write data.yaml and the manifest, swap the dataset in."""
    report, report_warnings = inputs.report(annotations)
    if sum(c["images"] for c in counts.values()) == 0:
        raise DataError(with_input_problems(_empty_message(params, selection), report_warnings))
    parts = [part for part in inputs.parts if counts[part]["images"]]
    warnings = [f"the {part!r} part has no images" for part in ("train", "val") if part not in parts]
    warnings += report_warnings  # names each video skipped because its annotation is unreadable
    unlabelled = sum(c["unlabelled_boxes"] for c in counts.values())
    if unlabelled:
        warnings.append(f"{unlabelled} pedestrian boxes on the written frames are unlabelled "
                        "(outside their own intent windows, or dropped by the options)")
    pedestrians = None
    if selection is not None:
        pedestrians = {part: {(w.video_id, w.track_id) for v in written[part]
                              for w in selection.by_video.get(v, [])} for part in written}
    leakage = leakage_check(written, pedestrians)
    _write_data_yaml(staged.path(out.name, "data.yaml"), out, parts, class_names)
    manifest = {
        "dataset": params["dataset"], "created_at": now_iso(), "synthetic": inputs.synthetic,
        "class_names": class_names, "task": params["task"],
        "intent_options": options.as_dict() if options is not None else None,
        "split": inputs.split_manifest(), "counts": counts, "leakage": leakage,
        "intent": selection.manifest() if selection is not None else None,
        "skipped_videos": inputs.skipped, **report, "warnings": warnings,
        "summary": build_summary(inputs, params["task"], options, selection, leakage),
    }
    if params["dataset"] == "yolo_detector" and options is not None:
        manifest["note"] = "detector labels do not depend on the task; only the split applies"
    manifest = staged.commit(manifest)
    return {**manifest, "path": str(out), "reused": False}


def _empty_message(params: dict, selection: IntentSelection | None) -> str:
    if selection is not None:
        skipped = selection.manifest()["skipped"]
        reasons = ", ".join(f"{n} {r}" for r, n in skipped.items()) or "none"
        return (f"The {params['dataset']} dataset would be empty: no intent window falls on an "
                f"extracted frame (skipped: {reasons}). Tracks need obs_length + max TTE visible "
                "frames before their event; lower --tte or --sequence-length, use --sample-type all, "
                "or extract every frame (`pedsense preprocess frames`).")
    return (f"The {params['dataset']} dataset would be empty: no extracted frame holds a labelled "
            "box. Check the annotations match the clips, or extract all frames "
            "(`pedsense preprocess frames`) rather than a sub-sample.")


def _write_data_yaml(path: Path, final_dir: Path, parts: list[str], class_names: list[str]) -> None:
    """Ultralytics' dataset file. ``path`` is the final folder, not the staging one."""
    lines = ["# written by pedsense; see manifest.json", f"path: {json.dumps(str(final_dir))}"]
    lines += [f"{part}: images/{part}" for part in ("train", "val", "test") if part in parts]
    lines += ["names:"] + [f"  {i}: {json.dumps(name)}" for i, name in enumerate(class_names)]
    write_text_atomic(path, "\n".join(lines) + "\n")


def relocate_data_yaml(dataset_dir: str | Path) -> Path:
    """Point ``data.yaml``'s absolute ``path`` at ``dataset_dir`` (after the data home moved).

    Rewrites the file (atomically, so a hard-linked copy elsewhere is untouched) only when the
    path differs. Returns the data.yaml path.
    """
    dataset_dir = Path(dataset_dir).resolve()
    yaml_path = dataset_dir / "data.yaml"
    lines = yaml_path.read_text(encoding="utf-8").splitlines()
    wanted = f"path: {json.dumps(str(dataset_dir))}"
    if wanted not in lines:
        lines = [wanted if line.startswith("path:") else line for line in lines]
        write_text_atomic(yaml_path, "\n".join(lines) + "\n")
    return yaml_path
