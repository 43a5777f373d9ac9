"""Dataset builds that never look complete when they are not.

Every build (YOLO, detector, ResNet sequences, ResNet crops) goes through ``StagedBuild``:

1. If the finished output carries a ``manifest.json`` with the same parameters and the same
   input fingerprint, the build is reused as it is.
2. Otherwise it writes into a hidden staging folder beside the output. Each video finished
   there leaves a small ``.done/<video>.json``, so a build that crashed resumes from the
   videos it had finished (when the parameters are unchanged) instead of starting over.
3. ``commit`` moves the outputs into place, the file readers check for last (``labels.csv``,
   say), after deleting the old one first: a crash mid-swap leaves "not built", never a mix.

It also holds what every build reads and shares: which videos are annotated and which have
finished frames (the frames' ``meta.json``, written by ``pedsense.data.frames``), the inputs of a
build and everything they lacked (skipped videos and files, boxes left out as invalid, clips
shorter than their annotation), the ``task`` (``action``: the per-frame ``cross`` label, the
seed's; ``intent``: the JAAD benchmark protocol of ``pedsense.data.intent``), and the build
summary that names everything left out. The leakage guard every build runs is
``pedsense.data.splits.leakage_check``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent builds are then the user's care
    fcntl = None

from pedsense.config import RANDOM_SEED, TRAIN_SPLIT, Paths, paths
from pedsense.data.intent import GAP_IN_WINDOW, SKIP_REASON_TEXT, TASKS, IntentOptions, Window
from pedsense.data.intent_dataset import IntentDataset, collect_intent_windows
from pedsense.data.jaad import load_annotation_folder
from pedsense.data.annotation import REJECT_REASON_TEXT
from pedsense.data.splits import PARTS, SPLITS, split_videos
from pedsense.data.synthetic import is_synthetic
from pedsense.errors import ConfigError, DataError
from pedsense.io import disk_full_error, is_disk_full, read_json, tree_size, write_json_atomic

MANIFEST_NAME = "manifest.json"
FRAMES_META_NAME = "meta.json"  # a video's frame-extraction marker (pedsense.data.frames)
_STAGING_INFO = ".build.json"
_DONE_DIR = ".done"
_COMMITTING = ".committing"


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def fingerprint(items: Iterable[Any]) -> str:
    """A short, stable hash of JSON-serialisable ``items`` (parameters, input file stats)."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(item, sort_keys=True, default=str).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def file_stamp(path: Path) -> list:
    """``[name, size, mtime_ns]`` of a file, or ``[name, None, None]`` when it is missing."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return [path.name, None, None]
    return [path.name, stat.st_size, stat.st_mtime_ns]


# -- what the data home holds ---------------------------------------------------------------
def annotated_video_ids(home=None) -> list[str]:
    """Ids of the videos with an annotation XML in ``data/raw/annotations`` (sorted)."""
    folder = paths(home).annotations
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.xml") if not p.name.startswith("."))


def frames_meta(video_id: str, home=None) -> dict | None:
    """The ``meta.json`` of a video whose frame extraction finished, else None."""
    meta = read_json(paths(home).video_frames(video_id) / FRAMES_META_NAME)
    return meta if isinstance(meta, dict) and meta.get("complete") else None


def no_annotations_error(p: Paths) -> DataError:
    return DataError(
        f"No annotation XML in {p.annotations}. Put JAAD's annotations/ folder there "
        "(see README, 'JAAD data') or run `pedsense demo-data` for the synthetic set."
    )


def missing_clips(video_ids: Iterable[str], home=None) -> list[str]:
    """The videos of ``video_ids`` that have no clip in ``data/raw/clips``."""
    p = paths(home)
    return [video for video in video_ids if not p.clip(video).exists()]


def list_videos(video_ids: Sequence[str], limit: int = 10) -> str:
    """``"video_0001, video_0002, ... and 336 more"``: each id once, at most ``limit`` of them."""
    shown = ", ".join(video_ids[:limit])
    return shown + (f" ... and {len(video_ids) - limit} more" if len(video_ids) > limit else "")


def no_clips_message(p: Paths, n_videos: int) -> str:
    """The one answer to "annotations but no clip at all": where the clips go."""
    return (f"None of the {n_videos} annotated videos has a clip: {p.clips} holds no video_XXXX.mp4. "
            "JAAD's clips are downloaded separately from its annotations; put them in that folder "
            "(see README, 'JAAD data'), then run `pedsense preprocess frames` (or `pedsense "
            "preprocess all`). Without JAAD, use another data home and `pedsense demo-data`.")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class StagedBuild:
    """One dataset build staged in ``<root>/.<key>.partial`` and swapped into ``root``.

    Args:
        root: the folder the outputs live in (``data/processed`` or ``data/processed/resnet``).
        key: the build's name (``"yolo"``, ``"sequences"``); names the staging folder.
        outputs: names inside ``root`` this build owns, in commit order; the last one is the
            file or folder readers treat as "the dataset is there".
        manifest_dir: name (inside ``root``, one of ``outputs``' folders) holding ``manifest.json``.
        params: the build parameters; any change rebuilds from scratch.
        inputs: the input fingerprint (annotations, frames, split); any change rebuilds too.
    """

    def __init__(self, root: Path, key: str, outputs: Sequence[str], manifest_dir: str,
                 params: Mapping[str, Any], inputs: str):
        self.root = Path(root)
        self.key = key
        self.outputs = list(outputs)
        self.manifest_dir = manifest_dir
        self.params = json.loads(json.dumps(dict(params), default=str))
        self.inputs = inputs
        self.staging = self.root / f".{key}.partial"
        self.videos = 0  # how many videos this build writes (set by begin; sizes a full disk's message)

    # -- the finished build -----------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / self.manifest_dir / MANIFEST_NAME

    def existing(self) -> dict | None:
        """The finished build's manifest when it matches these parameters and inputs, else None."""
        manifest = read_json(self.manifest_path)
        if not isinstance(manifest, dict) or not manifest.get("complete"):
            return None
        if manifest.get("parameters") != self.params or manifest.get("inputs") != self.inputs:
            return None
        if not all((self.root / name).exists() for name in self.outputs):
            return None
        return manifest

    # -- staging ----------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator["StagedBuild"]:
        """Hold this build's lock: a second build of the same dataset (another dashboard
        session, a CLI run) fails fast instead of writing into the same staging folder.

        A full disk inside the block removes the staging folder (the finished dataset, if any,
        is untouched) and raises :class:`~pedsense.errors.DiskFull`: "No space left on <root>:
        free N MB and rerun", N estimated from what the build had written per finished video.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{self.key}.lock", "a+") as handle:
            try:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataError(f"Another build of {self.root / self.key} is running. Wait for it "
                                "to finish, then run this one again (it will reuse the result).") from None
            try:
                yield self
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                raise self._disk_full() from exc
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _disk_full(self) -> Exception:
        """Remove the partial build; the error says how much room the whole build needs."""
        written = tree_size(self.staging)
        done = len(list((self.staging / _DONE_DIR).glob("*.json"))) if self.staging.is_dir() else 0
        _remove(self.staging)
        # What was written for the videos finished so far, scaled to every video of the build.
        needed = written * self.videos / max(done, 1) if self.videos else written
        return disk_full_error(self.root, max(needed, written), "rerun the build")

    def begin(self, videos: int = 0) -> Path:
        """Open the staging folder: keep it when it was started with the same settings.

        ``videos``: how many videos the build writes (sizes the message of a full disk)."""
        self.videos = int(videos)
        info = read_json(self.staging / _STAGING_INFO)
        same = isinstance(info, dict) and info.get("parameters") == self.params \
            and info.get("inputs") == self.inputs
        # A crash during commit may have moved some outputs out already: start over.
        same = same and not (self.staging / _COMMITTING).exists()
        if not same:
            _remove(self.staging)
            self.staging.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.staging / _STAGING_INFO,
                              {"parameters": self.params, "inputs": self.inputs, "started_at": now_iso()})
        return self.staging

    def path(self, *parts: str) -> Path:
        """A path inside the staging folder."""
        return self.staging.joinpath(*parts)

    def finished_video(self, video_id: str) -> list[dict] | None:
        """The rows a previous, interrupted attempt recorded for ``video_id``, or None."""
        record = read_json(self.staging / _DONE_DIR / f"{video_id}.json")
        return record.get("rows") if isinstance(record, dict) else None

    def mark_video(self, video_id: str, rows: list[dict]) -> None:
        """Record that every file of ``video_id`` is written (its rows go in the final CSV)."""
        write_json_atomic(self.staging / _DONE_DIR / f"{video_id}.json", {"rows": rows})

    def commit(self, manifest: Mapping[str, Any]) -> dict:
        """Write the manifest into the staged output and move every output into ``root``.

        The staging folder must hold each name in ``outputs``. Returns the manifest written.
        """
        manifest = {**manifest, "parameters": self.params, "inputs": self.inputs,
                    "complete": True}
        write_json_atomic(self.staging / self.manifest_dir / MANIFEST_NAME, manifest)
        (self.staging / _COMMITTING).touch()
        # Readers check the last output; take it away first so a half swap reads as "not built".
        for name in reversed(self.outputs):
            _remove(self.root / name)
        for name in self.outputs:
            os.replace(self.staging / name, self.root / name)
        _remove(self.staging)
        return manifest


# -- what every build reads -------------------------------------------------------------------
@dataclass
class BuildInputs:
    """Annotated videos with finished frames, assigned to splits, plus a fingerprint of them.

    ``parts`` maps split name (``train``, ``val``, and ``test`` when the split has one) to the
    video ids in it that have extracted frames; ``metas`` holds their frame ``meta.json``.
    ``skipped`` gives the reason for each annotated video left out (no clip, frames not
    extracted, in no part of the split); ``skipped_files`` each annotation file that could not be
    parsed (filled by :meth:`load_annotations`). ``missing`` are ids the split files name that
    have no annotation here; ``unassigned`` are annotated videos no split file lists;
    ``video_split`` is the ``VideoSplit`` they come from.
    """

    home: Path
    split_name: str
    split_source: str
    parts: dict[str, list[str]]
    metas: dict[str, dict]
    skipped: dict[str, str]
    fingerprint: str
    synthetic: bool | None
    missing: tuple[str, ...] = ()
    unassigned: tuple[str, ...] = ()
    video_split: Any = None
    skipped_files: dict[str, str] = field(default_factory=dict)

    @property
    def video_ids(self) -> list[str]:
        return [video for videos in self.parts.values() for video in videos]

    def split_manifest(self) -> dict:
        return {"name": self.split_name, "source": self.split_source,
                "videos": {part: list(videos) for part, videos in self.parts.items()},
                "missing": list(self.missing), "unassigned": list(self.unassigned)}

    def load_annotations(self, progress=None, *, include_unassigned: bool = False) -> dict:
        """Parse the annotations (and attribute files) of the videos in ``parts``.

        ``include_unassigned`` also parses the videos no split lists, so an ``intent`` build can
        count their pedestrians as skipped. Unreadable files go in ``skipped_files``.
        """
        p = paths(self.home)
        video_ids = self.video_ids + (list(self.unassigned) if include_unassigned else [])
        loaded, skipped = load_annotation_folder(p.annotations, p.attributes, video_ids=video_ids,
                                                 progress=progress)
        self.skipped_files = skipped
        return loaded

    def report(self, annotations: Mapping[str, Any]) -> tuple[dict, list[str]]:
        """What the build's inputs lacked: ``(manifest fields, warning lines)``.

        The fields: ``skipped`` (``videos`` and ``files``, each ``{"count", "list"}``),
        ``invalid_boxes`` (boxes of the build's videos the parser left out, ``pedsense.data.jaad
        .box_problem``: ``{"count", "by_reason", "examples"}``), ``short_clips`` (``{video:
        {"clip_frames", "annotation_frames"}}``) and ``attributes_missing`` (``{video: reason}``).
        """
        videos = [annotations[v] for v in self.video_ids if v in annotations]
        rejected = [(video.video_id, box) for video in videos for box in video.rejected_boxes]
        by_reason = Counter(box.reason for _, box in rejected)
        short = {}
        for video, meta in self.metas.items():
            # the parsed annotation when there is one: frames extracted before meta.json kept
            # the annotation's count are checked too
            annotated = (annotations[video].num_frames if video in annotations
                         else meta.get("annotation_frame_count")) or 0
            decoded = meta.get("frame_count")
            if decoded is not None and annotated > decoded:
                short[video] = {"clip_frames": decoded, "annotation_frames": annotated}
        attributes = {video.video_id: video.attributes_error for video in videos
                      if video.attributes_error}
        fields = {
            "skipped": {"videos": {"count": len(self.skipped),
                                   "list": [{"video": v, "reason": r} for v, r in self.skipped.items()]},
                        "files": {"count": len(self.skipped_files),
                                  "list": [{"file": f, "reason": r}
                                           for f, r in self.skipped_files.items()]}},
            "invalid_boxes": {"count": len(rejected), "by_reason": dict(by_reason.most_common()),
                              "examples": [f"{video} track {box.track_id} frame {box.frame}: "
                                           f"{box.detail}" for video, box in rejected[:10]]},
            "short_clips": short, "attributes_missing": attributes,
        }
        warnings = [f"{Path(f).name} skipped: {reason}" for f, reason in self.skipped_files.items()]
        if rejected:
            reasons = ", ".join(f"{n} {REJECT_REASON_TEXT.get(r, r)}" for r, n in by_reason.most_common())
            warnings.append(f"{len(rejected)} boxes left out as invalid ({reasons}); e.g. "
                            + "; ".join(fields["invalid_boxes"]["examples"][:3]))
        warnings += [f"{video}: the clip has {c['clip_frames']} frames but its annotation "
                     f"{c['annotation_frames']}; boxes on frames {c['clip_frames']}-"
                     f"{c['annotation_frames'] - 1} have no image and are left out"
                     for video, c in short.items()]
        warnings += [f"{video}: attributes missing, so samples that need them are left out "
                     f"({reason.split('. Fix:')[0]})" for video, reason in attributes.items()]
        return fields, warnings


def with_input_problems(message: str, warnings: list[str]) -> str:
    """A build's error, led by what its inputs lacked (which may be the whole story)."""
    if not warnings:
        return message
    return "Problems with the inputs: " + "; ".join(warnings[:5]) + ". " + message


def collect_inputs(home=None, split: str = "default", train_ratio: float = TRAIN_SPLIT,
                   seed: int = RANDOM_SEED) -> BuildInputs:
    """Find the annotated videos, split them, and check their frames are extracted.

    Raises:
        DataError: no annotations, or no annotated video has extracted frames yet (the message
            names the cause: no clip at all, or frames not extracted).
    """
    p = paths(home)
    video_ids = annotated_video_ids(p.home)
    if not video_ids:
        raise no_annotations_error(p)
    # Split all annotated videos, not only those with frames, so the split never depends on
    # how far frame extraction got.
    video_split = split_videos(video_ids, split, train_ratio=train_ratio, seed=seed, home=p.home)
    parts, metas, skipped = {}, {}, {}
    for part in PARTS:
        for video in getattr(video_split, part, None) or []:
            if video not in video_ids:
                continue  # listed by an official split file but not annotated here
            meta = frames_meta(video, p.home)
            if meta is None:
                skipped[video] = ("no clip in data/raw/clips (see README, 'JAAD data')"
                                  if not p.clip(video).exists()
                                  else "frames not extracted (run `pedsense preprocess frames`)")
                continue
            metas[video] = meta
            parts.setdefault(part, []).append(video)
    for video in getattr(video_split, "unassigned", None) or []:
        skipped.setdefault(video, f"not in any part of the {split!r} split")
    if not metas:
        if len(missing_clips(video_ids, p.home)) == len(video_ids):
            raise DataError(no_clips_message(p, len(video_ids)))
        raise DataError(
            f"No extracted frames under {p.frames} for the annotated videos. "
            "Run `pedsense preprocess frames` first (or `extract_frames()`)."
        )
    stamps = [[video, part, file_stamp(p.annotation(video)), file_stamp(p.attributes_file(video)),
               metas[video].get("created_at"), len(metas[video].get("frames", []))]
              for part, videos in parts.items() for video in videos]
    return BuildInputs(home=p.home, split_name=split, split_source=str(getattr(video_split, "source", "")),
                       parts=parts, metas=metas, skipped=skipped,
                       # what the split files name but are absent is part of the record too
                       fingerprint=fingerprint([split, stamps, video_split.missing, video_split.unassigned]),
                       synthetic=bool(is_synthetic(p.home)),
                       missing=tuple(video_split.missing), unassigned=tuple(video_split.unassigned),
                       video_split=video_split)


# -- the task: which question the labels answer --------------------------------------------------
# Window-level drops a build adds to the protocol's own skip reasons.
FRAMES_NOT_EXTRACTED = "frames_not_extracted"
BUILD_SKIP_TEXT = {FRAMES_NOT_EXTRACTED: "windows with a frame that was not extracted "
                                         "(extract every frame: `pedsense preprocess frames`)"}
# Reasons that drop one window, not a whole pedestrian.
WINDOW_REASONS = (GAP_IN_WINDOW, FRAMES_NOT_EXTRACTED)


def task_options(task: str = "action", intent: IntentOptions | Mapping[str, Any] | None = None,
                 split: str = "default") -> IntentOptions | None:
    """The benchmark protocol of an ``intent`` build; None for ``action``.

    ``intent`` is an ``IntentOptions`` (or its ``as_dict()``; None: the benchmark's). It and the
    ``split`` are checked under both tasks, so a typo fails before any work.

    Raises:
        ConfigError: an unknown task or split, or an option the protocol does not allow.
    """
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}. Fix: use one of {', '.join(SPLITS)}.")
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}. Fix: use 'action' (is the pedestrian crossing "
                          "now, the default) or 'intent' (will they cross: the JAAD benchmark).")
    options = intent if isinstance(intent, IntentOptions) else IntentOptions.from_dict(intent)
    return options if task == "intent" else None


def task_parameters(task: str, options: IntentOptions | None) -> dict:
    """The task entries of a build's parameters (so changing any of them rebuilds)."""
    return {"task": task, "intent": options.as_dict() if options is not None else None}


@dataclass
class IntentSelection:
    """The benchmark windows of a build: the protocol's dataset, windows per video, and the
    windows the build itself had to drop (``{reason: n}``, e.g. frames not extracted)."""

    dataset: IntentDataset
    by_video: dict[str, list[Window]]
    dropped: Counter = field(default_factory=Counter)

    def drop_windows_without_frames(self, metas: Mapping[str, dict]) -> None:
        """Keep only windows whose every frame was extracted (a sequence needs each one)."""
        for video, windows in self.by_video.items():
            available = set(metas.get(video, {}).get("frames", ()))
            kept = [w for w in windows if available.issuperset(w.frames)]
            self.dropped[FRAMES_NOT_EXTRACTED] += len(windows) - len(kept)
            self.by_video[video] = kept

    def manifest(self) -> dict:
        """The protocol's record (skips, classes, leakage) plus the build's own drops."""
        record = self.dataset.manifest()
        record["skipped"] = {**record["skipped"], **{k: v for k, v in self.dropped.items() if v}}
        record["windows_written"] = sum(len(ws) for ws in self.by_video.values())
        return record


def select_intent_windows(inputs: BuildInputs, annotations: Mapping[str, Any],
                          options: IntentOptions) -> IntentSelection:
    """Cut the annotated videos into benchmark windows on the build's video split.

    Args:
        annotations: ``{video_id: VideoAnnotation}`` of the videos in ``inputs.parts`` (and,
            to count their pedestrians as skipped, of ``inputs.unassigned``).

    Raises:
        LeakageError: a video or pedestrian would be in two splits.
    """
    dataset = collect_intent_windows(annotations, inputs.video_split, options)
    by_video: dict[str, list[Window]] = {video: [] for video in inputs.video_ids}
    for window in dataset.all_windows():
        by_video.setdefault(window.video_id, []).append(window)
    return IntentSelection(dataset=dataset, by_video=by_video)


def build_summary(inputs: BuildInputs, task: str, options: IntentOptions | None,
                  selection: IntentSelection | None, leakage: dict) -> list[str]:
    """The lines a build prints after its counts: the task, everything left out and why, and
    the leakage check. Nothing a build drops goes unsaid."""
    lines = [describe_task(task, options, inputs.split_source)]
    if selection is not None:
        lines += _skip_lines(selection)
    if inputs.skipped:
        reasons = Counter(inputs.skipped.values())
        lines.append(f"{len(inputs.skipped)} videos skipped: "
                     + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common()))
    if inputs.missing:
        shown = ", ".join(inputs.missing[:5]) + (", ..." if len(inputs.missing) > 5 else "")
        lines.append(f"{len(inputs.missing)} videos named by the split files are absent "
                     f"(no annotation here): {shown}")
    what = "video or pedestrian" if "pedestrians" in leakage else "video"
    lines.append(f"leakage check passed: no {what} is in two splits")
    return lines


def describe_task(task: str, options: IntentOptions | None, split_source: str) -> str:
    if options is None:
        return f"task action (per-frame `cross` label), split {split_source}"
    return (f"task intent (obs {options.obs_length}, TTE {options.tte[0]}-{options.tte[1]}, overlap "
            f"{options.overlap}, sample {options.sample_type}, crossing=-1 {options.irrelevant}, "
            f"placement by {options.placement}), split {split_source}")


def _skip_lines(selection: IntentSelection) -> list[str]:
    skipped = selection.manifest()["skipped"]
    text = {**SKIP_REASON_TEXT, **BUILD_SKIP_TEXT}
    lines = []
    for kind, reasons in (("pedestrians", [r for r in skipped if r not in WINDOW_REASONS]),
                          ("windows", [r for r in skipped if r in WINDOW_REASONS])):
        total = sum(skipped[r] for r in reasons)
        if total:
            lines.append(f"{total} {kind} skipped: "
                         + ", ".join(f"{skipped[r]} {text.get(r, r)}" for r in reasons))
    return lines
