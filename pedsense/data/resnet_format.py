"""Pedestrian crop datasets for the ResNet models, cut from extracted frames.

``build_resnet_sequences()`` (ResNet-50 + LSTM)::

    data/processed/resnet/sequences/{train,val[,test]}/<seq_id>/frame_00.jpg … frame_15.jpg
    data/processed/resnet/sequences/manifest.json
    data/processed/resnet/labels.csv   sequence_id,label,video_id,track_id,start_frame,end_frame,split

A sequence is ``sequence_length`` consecutive visible frames of one behaviour pedestrian
(windows every ``stride`` frames); its label is the ``cross`` value at its LAST frame
(1 crossing, 0 not-crossing), i.e. "is this pedestrian crossing now, given what led up to it".
With sub-sampled frames, "consecutive" means consecutive extracted frames.

``build_resnet_crops()`` (stage 2 of the hybrid)::

    data/processed/resnet/crops/{train,val[,test]}/<crop_id>.jpg
    data/processed/resnet/crops/manifest.json
    data/processed/resnet/crops.csv    crop_id,label,video_id,track_id,frame,split

one ground-truth crop per visible box, labelled like the YOLO dataset (behaviour pedestrians
by ``cross``, ``ped`` bystanders 0, ``people`` groups skipped).

Under ``task="intent"`` (the JAAD benchmark protocol, ``pedsense.data.intent``) the sequences are
exactly the protocol's observation windows (``sequence_length`` = the observation length; the
window step comes from ``overlap``, ``stride`` is unused), each labelled with the pedestrian's
track-level ``crossing``; ``labels.csv`` gains the columns ``tte,event_frame,occlusion,
time_of_day,weather,track_label`` after the usual ones, for the test-split breakdown. The crops
are every frame of those windows (each (pedestrian, frame) once), with the same label, and
``crops.csv`` gains the same columns (``tte`` there is frames from the crop to the event).

Every crop is ``pedsense.data.crops.crop_pedestrian`` of the frame, the rule the predictors use.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Mapping, Sequence

import cv2

from pedsense.config import (CLASS_NAMES, CROP_SIZE, RANDOM_SEED, SEQUENCE_LENGTH, SEQUENCE_STRIDE,
                             TRAIN_SPLIT, paths)
from pedsense.data.crops import crop_pedestrian
# one occlusion rule for windows and crops: the protocol's (worst level in a window, per box here)
from pedsense.data.intent import OCCLUSION_LEVELS, IntentOptions, Window, _occlusion_level
from pedsense.data.manifest import (BuildInputs, IntentSelection, StagedBuild, build_summary,
                                    collect_inputs, file_stamp, fingerprint, now_iso, select_intent_windows,
                                    task_options, task_parameters, with_input_problems)
from pedsense.data.scene import scene_files
from pedsense.data.sequence_context import SEQUENCE_CONTEXT_FORMAT, write_sequence_context
from pedsense.data.splits import leakage_check
from pedsense.data.yolo_format import (BEHAVIOUR_LABEL, annotation_size, attribute_class,
                                       intent_labeller)
from pedsense.errors import ConfigError, DataError
from pedsense.io import write_csv_atomic

SEQUENCE_COLUMNS = ["sequence_id", "label", "video_id", "track_id", "start_frame", "end_frame", "split"]
CROP_COLUMNS = ["crop_id", "label", "video_id", "track_id", "frame", "split"]
# Extra columns of ``intent`` builds, after the ones above (the test-split breakdown reads them).
INTENT_COLUMNS = ["tte", "event_frame", "occlusion", "time_of_day", "weather", "track_label"]
JPEG_QUALITY = 95

Progress = Callable[[int, int, str], None]
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_id(text: str) -> str:
    """A track id usable in a file name (``"0_5_19b"`` stays; ``"a/b"`` → ``"a-b"``)."""
    return _UNSAFE.sub("-", str(text)).strip("-") or "track"


def _check_crop_size(crop_size: Sequence[int]) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in crop_size)
    except (TypeError, ValueError):
        raise DataError(f"crop_size={crop_size!r} must be two integers (width, height).") from None
    if width < 8 or height < 8:
        raise DataError(f"crop_size={crop_size!r} is too small; use at least 8x8 (the models expect 224x224).")
    return width, height


def _scale(annotation, meta: dict) -> tuple[float, float]:
    """Pixels of the extracted frames per annotation pixel (1.0 unless the clip was resized)."""
    width, height = annotation_size(annotation, meta)
    return (meta.get("width") or width) / width, (meta.get("height") or height) / height


def _scaled_xyxy(xyxy, scale: tuple[float, float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = xyxy
    return x1 * scale[0], y1 * scale[1], x2 * scale[0], y2 * scale[1]


# -- sequences ------------------------------------------------------------------------------
def sequence_windows(frames: Sequence[int], sequence_length: int, stride: int,
                     max_gap: int = 1) -> list[list[int]]:
    """Windows of ``sequence_length`` consecutive frames, one every ``stride`` frames.

    Args:
        frames: sorted frame indices where the pedestrian is visible (and extracted).
        max_gap: the largest step between two frames that still counts as consecutive.

    Returns:
        Lists of frame indices; empty when no run of consecutive frames is long enough.
    """
    windows, run = [], []
    for frame in list(frames) + [None]:
        if run and (frame is None or frame - run[-1] > max_gap):
            windows += [run[s:s + sequence_length]
                        for s in range(0, len(run) - sequence_length + 1, stride)]
            run = []
        if frame is not None:
            run.append(frame)
    return windows


def _observed(intent: IntentOptions | Mapping | None, sequence_length: int) -> IntentOptions:
    """The protocol of a sequence build: its windows are the sequences, so the observation
    length is ``sequence_length`` (an ``intent`` that says otherwise is refused)."""
    if intent is None:
        return IntentOptions(obs_length=sequence_length)
    if not isinstance(intent, IntentOptions):
        intent = IntentOptions.from_dict({"obs_length": sequence_length, **dict(intent)})
    if intent.obs_length != sequence_length:
        raise ConfigError(f"sequence_length={sequence_length} and intent.obs_length={intent.obs_length} "
                          "disagree: under task 'intent' each sequence is one observation window. "
                          "Give the same length to both (the benchmark uses 16).")
    return intent


def build_resnet_sequences(sequence_length: int = SEQUENCE_LENGTH, stride: int = SEQUENCE_STRIDE,
                           crop_size: Sequence[int] = CROP_SIZE, *, home=None, split: str = "default",
                           progress: Progress | None = None, train_ratio: float = TRAIN_SPLIT,
                           seed: int = RANDOM_SEED, task: str = "action",
                           intent: IntentOptions | None = None) -> dict:
    """Build the crop-sequence dataset for ResNet-50 + LSTM (layout in the module docstring).

    Args:
        sequence_length: frames per sequence (under ``intent``: the observation length).
        stride: ``action``: frames between window starts (unused under ``intent``).
        split: ``default``, ``high_visibility``, ``all_videos`` (JAAD's split files) or ``random``.
        task: ``action`` (label = ``cross`` at the last frame) or ``intent`` (benchmark windows).
        intent: the ``intent`` protocol (``pedsense.data.intent.IntentOptions``; None: the JAAD
            benchmark's with ``obs_length=sequence_length``); checked, but unused, under
            ``action``. Its ``obs_length`` must equal ``sequence_length``.

    Returns:
        The manifest, plus ``path``, ``labels_csv`` and ``reused``.

    Raises:
        DataError: bad parameters, no annotations, frames not extracted, or no track long
            enough for one sequence.
        ConfigError: an unknown task or intent option.
    """
    if int(sequence_length) < 1 or int(stride) < 1:
        raise DataError(f"sequence_length={sequence_length!r} and stride={stride!r} must be 1 or more.")
    width, height = _check_crop_size(crop_size)
    options = task_options(task, _observed(intent, int(sequence_length)) if task == "intent" else intent,
                           split)
    params = {"dataset": "resnet_sequences", "sequence_length": int(sequence_length), "stride": int(stride),
              "crop_size": [width, height], "split": split, "train_ratio": train_ratio, "seed": seed,
              "context_features": SEQUENCE_CONTEXT_FORMAT, **task_parameters(task, options)}
    if options is not None:
        del params["stride"]  # the protocol's overlap sets the step: a stride change rebuilds nothing
    p = paths(home)
    inputs = collect_inputs(home, split, train_ratio, seed)
    # the context features read the vehicle/traffic files too: a changed one rebuilds
    scenes = [[file_stamp(f) for f in scene_files(p.annotations, v)] for v in inputs.video_ids]
    staged = StagedBuild(p.resnet, "sequences", ["sequences", "labels.csv"], "sequences", params,
                         fingerprint([inputs.fingerprint, scenes]))
    with staged.locked():
        return _run_sequences(staged, inputs, params, p, progress, options)


def _run_sequences(staged: StagedBuild, inputs: BuildInputs, params: dict, p, progress, options) -> dict:
    existing = staged.existing()
    if existing is not None:
        return {**existing, "path": str(p.sequences), "labels_csv": str(p.resnet / "labels.csv"), "reused": True}
    staged.begin(videos=len(inputs.video_ids))
    annotations = inputs.load_annotations(include_unassigned=options is not None)
    selection = None
    if options is None:
        def write(part, video, annotation):
            return _write_sequences(staged, part, video, annotation, inputs.metas[video],
                                    p.video_frames(video), params)
    else:
        selection = select_intent_windows(inputs, annotations, options)
        selection.drop_windows_without_frames(inputs.metas)  # a sequence needs every frame

        def write(part, video, annotation):
            return _write_intent_sequences(staged, part, video, selection.by_video.get(video, []),
                                           annotation, inputs.metas[video], p.video_frames(video), params)
    rows = _stage_videos(staged, inputs, annotations, progress, "sequences", write)
    report = inputs.report(annotations)
    if not rows:
        raise DataError(with_input_problems(_no_sequences_message(params, selection), report[1]))
    columns = SEQUENCE_COLUMNS + (INTENT_COLUMNS if selection is not None else [])
    write_csv_atomic(staged.path("labels.csv"), rows, columns)
    context = write_sequence_context(staged.path("sequences"), rows, annotations,
                                     _window_frames(selection, inputs.metas, annotations),
                                     options.sample_type if options is not None else "beh")
    manifest = staged.commit({**_manifest(params, inputs, rows, "sequences", options, selection, report),
                              "context": context})
    return {**manifest, "path": str(p.sequences), "labels_csv": str(p.resnet / "labels.csv"), "reused": False}


def _window_frames(selection: IntentSelection | None, metas: Mapping[str, dict], annotations: Mapping):
    """A labels.csv row -> its window's frames: the protocol's window (intent), else the track's
    extracted frames from its first to its last (an action window is a run of them)."""
    if selection is not None:
        windows = {(w.video_id, str(w.track_id), w.start_frame): w
                   for ws in selection.by_video.values() for w in ws}
        return lambda row: windows[(row["video_id"], str(row["track_id"]), int(row["start_frame"]))].frames

    def frames(row):
        available = set(metas[row["video_id"]]["frames"])
        track = annotations[row["video_id"]].track(row["track_id"])
        return [b.frame for b in track.boxes
                if int(row["start_frame"]) <= b.frame <= int(row["end_frame"]) and b.frame in available]
    return frames


def _no_sequences_message(params: dict, selection: IntentSelection | None) -> str:
    if selection is None:
        return (f"No pedestrian track has {params['sequence_length']} consecutive extracted frames, so there "
                "is no sequence to write. Lower --sequence-length, or extract every frame "
                "(`pedsense preprocess frames` without --fps/--annotated-only).")
    skipped = selection.manifest()["skipped"]
    reasons = ", ".join(f"{n} {r}" for r, n in skipped.items()) or "none"
    return ("No pedestrian yields an intent window, so there is no sequence to write (skipped: "
            f"{reasons}). A track needs --sequence-length + max --tte visible frames up to its event: "
            "lower them, use --sample-type all, or extract every frame (`pedsense preprocess frames`).")


def _write_sequences(staged: StagedBuild, part: str, video: str, annotation, meta: dict,
                     frames_dir: Path, params: dict) -> list[dict]:
    """Cut every ``action`` window of one video. Each crop is encoded once and hard-linked into
    the other windows that share its frame (windows overlap when stride < sequence_length)."""
    length, stride = params["sequence_length"], params["stride"]
    available = set(meta["frames"])
    scale = _scale(annotation, meta)
    digits = max(2, len(str(length - 1)))
    rows, wanted = [], defaultdict(list)  # frame -> [(key, xyxy, target path)]
    for track in annotation.tracks:
        if not getattr(track, "is_behavioural", track.label == BEHAVIOUR_LABEL):
            continue
        boxes = {box.frame: box for box in track.boxes if box.frame in available}
        for window in sequence_windows(sorted(boxes), length, stride, int(meta.get("frame_step", 1))):
            label = attribute_class(boxes[window[-1]], "cross")
            if label is None:
                continue
            seq_id = f"{video}_{safe_id(track.track_id)}_{window[0]:06d}"
            folder = staged.path("sequences", part, seq_id)
            for position, frame in enumerate(window):
                wanted[frame].append(((track.track_id, frame), boxes[frame].xyxy,
                                      folder / f"frame_{position:0{digits}d}.jpg"))
            rows.append({"sequence_id": seq_id, "label": label, "video_id": video,
                         "track_id": track.track_id, "start_frame": window[0], "end_frame": window[-1],
                         "split": part})
    _write_crops(frames_dir, wanted, scale, params["crop_size"])
    return rows


def _write_intent_sequences(staged: StagedBuild, part: str, video: str, windows: list[Window],
                            annotation, meta: dict, frames_dir: Path, params: dict) -> list[dict]:
    """Write the benchmark windows of one video as sequences (crops shared across windows)."""
    scale = _scale(annotation, meta)
    digits = max(2, len(str(params["sequence_length"] - 1)))
    rows, wanted = [], defaultdict(list)
    for window in windows:
        seq_id = f"{video}_{safe_id(window.track_id)}_{window.start_frame:06d}"
        folder = staged.path("sequences", part, seq_id)
        for position, (frame, xyxy) in enumerate(zip(window.frames, window.boxes_xyxy)):
            wanted[frame].append(((window.track_id, frame), xyxy, folder / f"frame_{position:0{digits}d}.jpg"))
        rows.append({"sequence_id": seq_id, "label": window.label, "video_id": video,
                     "track_id": window.track_id, "start_frame": window.start_frame,
                     "end_frame": window.end_frame, "split": part, **_intent_columns(window)})
    _write_crops(frames_dir, wanted, scale, params["crop_size"])
    return rows


def _intent_columns(window: Window, frame: int | None = None, box=None) -> dict:
    """The ``INTENT_COLUMNS`` of a window (or of one frame of it, for a crop)."""
    return {"tte": window.tte if frame is None else window.event_frame - frame,
            "event_frame": window.event_frame,
            "occlusion": window.occlusion if box is None else OCCLUSION_LEVELS[_occlusion_level(box)],
            "time_of_day": window.time_of_day, "weather": window.weather,
            "track_label": window.track_label}


def _write_crops(frames_dir: Path, wanted: dict, scale, crop_size) -> None:
    """Read each needed frame once and write its crops; identical crops become hard links.

    Args:
        wanted: ``{frame: [(key, xyxy, target path), ...]}``; entries of one frame with the same
            ``key`` (a pedestrian) are the same crop, written once and hard-linked.
    """
    for folder in {target.parent for entries in wanted.values() for _, _, target in entries}:
        folder.mkdir(parents=True, exist_ok=True)  # before the threads, so they never race on it
    # JPEG decode, resize and encode release the GIL: frames in parallel use every core.
    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        for _ in pool.map(lambda frame: _crop_frame(frames_dir, frame, wanted[frame], scale, crop_size),
                          sorted(wanted)):
            pass


def _crop_frame(frames_dir: Path, frame: int, entries: list, scale, crop_size) -> None:
    path = frames_dir / f"frame_{frame:06d}.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"Frame {path} is missing or unreadable. "
                        "Run `pedsense preprocess frames` again to re-extract it.")
    encode = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    first_target: dict = {}
    for key, xyxy, target in entries:
        source = first_target.get(key)
        if source is not None and _try_link(source, target):
            continue
        crop = crop_pedestrian(image, _scaled_xyxy(xyxy, scale), crop_size)
        ok, buffer = cv2.imencode(".jpg", crop, encode)
        target.write_bytes(buffer.tobytes())
        first_target[key] = target


def _try_link(source: Path, target: Path) -> bool:
    try:
        target.unlink(missing_ok=True)
        os.link(source, target)
        return True
    except OSError:
        return False


# -- single crops ---------------------------------------------------------------------------
def build_resnet_crops(crop_size: Sequence[int] = CROP_SIZE, *, home=None, split: str = "default",
                       frame_step: int = 1, progress: Progress | None = None,
                       include_bystanders: bool = True, train_ratio: float = TRAIN_SPLIT,
                       seed: int = RANDOM_SEED, task: str = "action",
                       intent: IntentOptions | None = None) -> dict:
    """Build single ground-truth pedestrian crops for the hybrid's classifier.

    Args:
        frame_step: keep every n-th extracted frame.
        include_bystanders: ``action``: add ``ped`` bystanders as not-crossing (as the YOLO
            dataset does); under ``intent`` the sample type decides.
        task: ``action`` (every labelled box) or ``intent`` (the frames of the benchmark windows,
            labelled with the track-level ``crossing``).
        intent: the ``intent`` protocol (``pedsense.data.intent.IntentOptions``; None: the JAAD
            benchmark's); checked, but unused, under ``action``.

    Returns:
        The manifest, plus ``path``, ``crops_csv`` and ``reused``.
    """
    if int(frame_step) < 1:
        raise DataError(f"frame_step={frame_step!r} must be 1 or more.")
    width, height = _check_crop_size(crop_size)
    options = task_options(task, intent, split)
    params = {"dataset": "resnet_crops", "crop_size": [width, height], "split": split,
              "frame_step": int(frame_step), "include_bystanders": include_bystanders,
              "train_ratio": train_ratio, "seed": seed, **task_parameters(task, options)}
    p = paths(home)
    inputs = collect_inputs(home, split, train_ratio, seed)
    staged = StagedBuild(p.resnet, "crops", ["crops", "crops.csv"], "crops", params, inputs.fingerprint)
    with staged.locked():
        return _run_crops(staged, inputs, params, p, progress, options)


def _run_crops(staged: StagedBuild, inputs: BuildInputs, params: dict, p, progress, options) -> dict:
    crops_dir, crops_csv = p.resnet / "crops", p.resnet / "crops.csv"
    existing = staged.existing()
    if existing is not None:
        return {**existing, "path": str(crops_dir), "crops_csv": str(crops_csv), "reused": True}
    staged.begin(videos=len(inputs.video_ids))
    annotations = inputs.load_annotations(include_unassigned=options is not None)
    selection = None
    if options is None:
        labeller = intent_labeller("cross", params["include_bystanders"])

        def write(part, video, annotation):
            return _write_single_crops(staged, part, video, annotation, inputs.metas[video],
                                       p.video_frames(video), labeller, params)
    else:
        selection = select_intent_windows(inputs, annotations, options)

        def write(part, video, annotation):
            return _write_intent_crops(staged, part, video, selection.by_video.get(video, []),
                                       annotation, inputs.metas[video], p.video_frames(video), params)
    rows = _stage_videos(staged, inputs, annotations, progress, "crops", write)
    report = inputs.report(annotations)
    if not rows:
        raise DataError(with_input_problems("No labelled pedestrian box falls on an extracted frame, so there is no crop to "
                        "write. Run `pedsense preprocess frames` (all frames) and check the annotations."
                        + (" Under task intent, tracks also need obs_length + max TTE visible frames "
                           "before their event." if selection is not None else ""), report[1]))
    columns = CROP_COLUMNS + (INTENT_COLUMNS if selection is not None else [])
    write_csv_atomic(staged.path("crops.csv"), rows, columns)
    manifest = staged.commit(_manifest(params, inputs, rows, "crops", options, selection, report))
    return {**manifest, "path": str(crops_dir), "crops_csv": str(crops_csv), "reused": False}


def _write_single_crops(staged: StagedBuild, part: str, video: str, annotation, meta: dict,
                        frames_dir: Path, labeller, params: dict) -> list[dict]:
    frames = set(meta["frames"][:: params["frame_step"]])
    scale = _scale(annotation, meta)
    rows, wanted = [], defaultdict(list)
    for track in annotation.tracks:
        for box in track.boxes:
            label = labeller(track, box) if box.frame in frames else None
            if label is None:
                continue
            crop_id = f"{video}_{safe_id(track.track_id)}_{box.frame:06d}"
            wanted[box.frame].append(((track.track_id, box.frame), box.xyxy,
                                      staged.path("crops", part, f"{crop_id}.jpg")))
            rows.append({"crop_id": crop_id, "label": label, "video_id": video,
                         "track_id": track.track_id, "frame": box.frame, "split": part})
    _write_crops(frames_dir, wanted, scale, params["crop_size"])
    return rows


def _write_intent_crops(staged: StagedBuild, part: str, video: str, windows: list[Window],
                        annotation, meta: dict, frames_dir: Path, params: dict) -> list[dict]:
    """One crop per (pedestrian, frame) of the video's benchmark windows (windows overlap)."""
    frames = set(meta["frames"][:: params["frame_step"]])
    scale = _scale(annotation, meta)
    rows, wanted, seen = [], defaultdict(list), set()
    for window in windows:
        track = annotation.track(window.track_id)
        for frame, xyxy in zip(window.frames, window.boxes_xyxy):
            if frame not in frames or (window.track_id, frame) in seen:
                continue
            seen.add((window.track_id, frame))
            crop_id = f"{video}_{safe_id(window.track_id)}_{frame:06d}"
            wanted[frame].append(((window.track_id, frame), xyxy,
                                  staged.path("crops", part, f"{crop_id}.jpg")))
            rows.append({"crop_id": crop_id, "label": window.label, "video_id": video,
                         "track_id": window.track_id, "frame": frame, "split": part,
                         **_intent_columns(window, frame, track.box_at(frame))})
    _write_crops(frames_dir, wanted, scale, params["crop_size"])
    return rows


# -- shared ---------------------------------------------------------------------------------
def _stage_videos(staged: StagedBuild, inputs: BuildInputs, annotations: dict, progress: Progress | None,
                  what: str, write_video: Callable[[str, str, object], list[dict]]) -> list[dict]:
    """Run ``write_video(part, video, annotation)`` for each video not already staged.

    Videos whose annotation could not be parsed have none (``inputs.skipped_files`` says why).
    """
    jobs = [(part, video) for part, videos in inputs.parts.items() for video in videos]
    rows: list[dict] = []
    for done, (part, video) in enumerate(jobs):
        if progress:
            progress(done, len(jobs), f"{video}: {what}")
        annotation = annotations.get(video)
        video_rows = staged.finished_video(video)
        if video_rows is None:
            video_rows = write_video(part, video, annotation) if annotation is not None else []
            staged.mark_video(video, video_rows)
        rows += video_rows
    if progress:
        progress(len(jobs), len(jobs), f"{what} written")
    return rows


def _manifest(params: dict, inputs: BuildInputs, rows: list[dict], what: str, options,
              selection: IntentSelection | None, report: tuple[dict, list[str]]) -> dict:
    """Counts per split and class, the split, the task, skips and the leakage check of a build."""
    counts: dict[str, dict] = {part: {name: 0 for name in CLASS_NAMES} for part in inputs.parts}
    videos: dict[str, set] = {part: set() for part in inputs.parts}
    pedestrians: dict[str, set] = {part: set() for part in inputs.parts}
    for row in rows:
        counts[row["split"]][CLASS_NAMES[int(row["label"])]] += 1
        videos[row["split"]].add(row["video_id"])
        pedestrians[row["split"]].add((row["video_id"], row["track_id"]))
    warnings = [f"the {part!r} part has no {what}" for part in ("train", "val")
                if not sum(counts.get(part, {}).values())]
    fields, report_warnings = report
    warnings += report_warnings  # names each video skipped because its annotation is unreadable
    leakage = leakage_check(videos, pedestrians)
    return {"dataset": params["dataset"], "created_at": now_iso(), "synthetic": inputs.synthetic,
            "class_names": list(CLASS_NAMES), "task": params["task"],
            "intent_options": options.as_dict() if options is not None else None,
            "split": inputs.split_manifest(), "counts": counts, "total": len(rows),
            "columns": (SEQUENCE_COLUMNS if what == "sequences" else CROP_COLUMNS)
            + (INTENT_COLUMNS if selection is not None else []),
            "leakage": leakage, "intent": selection.manifest() if selection is not None else None,
            "skipped_videos": inputs.skipped, **fields, "warnings": warnings,
            "summary": build_summary(inputs, params["task"], options, selection, leakage)}
