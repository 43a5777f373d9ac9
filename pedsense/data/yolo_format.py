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
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Callable

from pedsense.config import CLASS_NAMES, DETECTOR_CLASS_NAMES, RANDOM_SEED, TRAIN_SPLIT, paths
from pedsense.data.manifest import BuildInputs, StagedBuild, collect_inputs, leakage_check, now_iso
from pedsense.errors import DataError
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
    Returns None when the box has no value for ``attribute``.
    """
    value = getattr(box, attribute, None)
    if value is None:
        value = (getattr(box, "extra", None) or {}).get(attribute)
    if value is None:
        return None
    positive = ATTRIBUTE_CLASSES[attribute][1]
    if isinstance(value, str):
        return 1 if value.strip().lower() in (positive, "1") else 0
    return 1 if int(value) == 1 else 0


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
        return 0 if include_bystanders and attribute == "cross" else None

    return label


def detector_labeller(track, box) -> int | None:
    """Every individual pedestrian (behaviour or bystander) is class 0; groups are skipped."""
    return 0 if track.label in (BEHAVIOUR_LABEL, BYSTANDER_LABEL) else None


def yolo_line(class_id: int, xyxy, width: float, height: float) -> str | None:
    """``"class cx cy w h"`` normalised to [0, 1] and clipped to the image; None if nothing is left."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    x1, x2 = max(0.0, min(x1, width)), max(0.0, min(x2, width))
    y1, y2 = max(0.0, min(y1, height)), max(0.0, min(y2, height))
    if x2 - x1 < 1.0 or y2 - y1 < 1.0:
        return None
    cx, cy = (x1 + x2) / 2.0 / width, (y1 + y2) / 2.0 / height
    return f"{class_id} {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"


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
                       train_ratio: float = TRAIN_SPLIT, seed: int = RANDOM_SEED) -> dict:
    """Build the 2-class crossing-intent YOLO dataset in ``data/processed/yolo/``.

    Args:
        attribute: the box attribute giving the class (``cross``; also ``action``, ``look``).
        split: which video split (``default``, ``high_visibility``, ``all_videos``).
        frame_step: keep every n-th extracted frame.
        progress: ``progress(done_videos, total_videos, message)``.
        include_bystanders: label ``ped`` bystanders not-crossing (else drop them).
        include_empty: keep frames without any labelled box as background images.

    Returns:
        The manifest, plus ``path`` (the dataset folder) and ``reused`` (nothing was rebuilt).

    Raises:
        DataError: no annotations, frames not extracted yet, or nothing to label.
    """
    labeller = intent_labeller(attribute, include_bystanders)  # validates ``attribute``
    params = {"dataset": "yolo", "attribute": attribute, "split": split, "frame_step": frame_step,
              "include_bystanders": include_bystanders, "include_empty": include_empty,
              "train_ratio": train_ratio, "seed": seed}
    return _build(paths(home).yolo, params, list(ATTRIBUTE_CLASSES[attribute]), labeller,
                  home=home, progress=progress)


def build_detector_dataset(*, home=None, split: str = "default", frame_step: int = 1,
                           progress: Progress | None = None, include_empty: bool = False,
                           train_ratio: float = TRAIN_SPLIT, seed: int = RANDOM_SEED) -> dict:
    """Build the 1-class pedestrian detector dataset in ``data/processed/yolo_detector/``.

    Same layout, split and options as ``build_yolo_dataset``; stage 1 of the hybrid trains on it.
    """
    params = {"dataset": "yolo_detector", "split": split, "frame_step": frame_step,
              "include_empty": include_empty, "train_ratio": train_ratio, "seed": seed}
    return _build(paths(home).yolo_detector, params, list(DETECTOR_CLASS_NAMES), detector_labeller,
                  home=home, progress=progress)


def _build(out: Path, params: dict, class_names: list[str], labeller: Labeller, *, home,
           progress: Progress | None) -> dict:
    """Shared body of the two YOLO builds: reuse, or stage every video and swap in."""
    if int(params["frame_step"]) < 1:
        raise DataError(f"frame_step={params['frame_step']!r} must be 1 or more.")
    inputs = collect_inputs(home, params["split"], params["train_ratio"], params["seed"])
    staged = StagedBuild(out.parent, out.name, [out.name], out.name, params, inputs.fingerprint)
    with staged.locked():
        return _run_build(staged, out, inputs, params, class_names, labeller, home, progress)


def _run_build(staged: StagedBuild, out: Path, inputs: BuildInputs, params: dict, class_names: list[str],
               labeller: Labeller, home, progress: Progress | None) -> dict:
    existing = staged.existing()
    if existing is not None:
        relocate_data_yaml(out)
        return {**existing, "path": str(out), "reused": True}
    staged.begin()
    annotations = inputs.load_annotations()
    counts = _empty_counts(inputs, class_names)
    total = len(inputs.video_ids)
    for done, (part, video) in enumerate((part, v) for part, vs in inputs.parts.items() for v in vs):
        if progress:
            progress(done, total, f"{video}: {params['dataset']} labels")
        row = staged.finished_video(video)
        if row is None:
            row = _write_video(staged, out.name, part, video, annotations.get(video), inputs.metas[video],
                               paths(home).video_frames(video), labeller, len(class_names), params)
            staged.mark_video(video, row)
        _add_counts(counts[part], row, class_names)
    if progress:
        progress(total, total, f"{params['dataset']} dataset written")
    return _commit(staged, out, inputs, counts, class_names, params)


def _write_video(staged: StagedBuild, name: str, part: str, video: str, annotation, meta: dict,
                 frames_dir: Path, labeller: Labeller, num_classes: int, params: dict) -> list[dict]:
    """Link the frames of one video and write their label files. Returns its count row."""
    if annotation is None:
        return [{"split": part, "video_id": video, "images": 0, "boxes": [0] * num_classes,
                 "error": "annotation could not be parsed"}]
    width, height = annotation_size(annotation, meta)
    index = boxes_by_frame(annotation)
    images, labels = staged.path(name, "images", part), staged.path(name, "labels", part)
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    boxes, written = [0] * num_classes, 0
    for frame in meta["frames"][:: int(params["frame_step"])]:
        lines = []
        for track, box in index.get(frame, ()):
            class_id = labeller(track, box)
            line = None if class_id is None else yolo_line(class_id, box.xyxy, width, height)
            if line:
                lines.append(line)
                boxes[class_id] += 1
        if not lines and not params["include_empty"]:
            continue
        stem = f"{video}_{frame:06d}"
        link_or_copy(frames_dir / f"frame_{frame:06d}.jpg", images / f"{stem}.jpg")
        (labels / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        written += 1
    return [{"split": part, "video_id": video, "images": written, "boxes": boxes}]


def _empty_counts(inputs: BuildInputs, class_names: list[str]) -> dict:
    return {part: {"videos": 0, "images": 0, "boxes": {name: 0 for name in class_names}}
            for part in inputs.parts}


def _add_counts(part_counts: dict, rows: list[dict], class_names: list[str]) -> None:
    for row in rows:
        part_counts["videos"] += 1 if row["images"] else 0
        part_counts["images"] += row["images"]
        for name, n in zip(class_names, row["boxes"]):
            part_counts["boxes"][name] += n


def _commit(staged: StagedBuild, out: Path, inputs: BuildInputs, counts: dict,
            class_names: list[str], params: dict) -> dict:
    """Check the result is usable, write data.yaml and the manifest, swap the dataset in."""
    if sum(c["images"] for c in counts.values()) == 0:
        raise DataError(
            f"The {params['dataset']} dataset would be empty: no extracted frame holds a labelled "
            "box. Check the annotations match the clips, or extract all frames "
            "(`pedsense preprocess frames`) rather than a sub-sample."
        )
    parts = [part for part in inputs.parts if counts[part]["images"]]
    warnings = [f"the {part!r} part has no images" for part in ("train", "val") if part not in parts]
    _write_data_yaml(staged.path(out.name, "data.yaml"), out, parts, class_names)
    manifest = {
        "dataset": params["dataset"], "created_at": now_iso(), "synthetic": inputs.synthetic,
        "class_names": class_names, "split": inputs.split_manifest(), "counts": counts,
        "leakage": leakage_check(inputs.parts), "skipped_videos": inputs.skipped, "warnings": warnings,
    }
    manifest = staged.commit(manifest)
    return {**manifest, "path": str(out), "reused": False}


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
