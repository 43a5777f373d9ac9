"""The datasets of a data home: what each one is, whether it is built, and what to do next.

One catalogue for the CLI (``pedsense setup``/``info``) and the dashboard (Overview, Data and
Train pages): every processed dataset with its label, the file whose presence says "built",
the folder of its ``manifest.json`` and the command that builds it; ``next_step`` names the
one thing to do now, from what the home holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pedsense.config import paths
from pedsense.data.manifest import annotated_video_ids, frames_meta, missing_clips
from pedsense.io import read_json, sweep_stale_temp


@dataclass(frozen=True)
class Dataset:
    """One processed dataset of the layout (paths relative to the data home)."""

    kind: str          # the data job / preprocess step that builds it
    label: str
    marker: str        # the file (or folder) whose presence says "built"
    manifest_dir: str | None
    command: str

    def built(self, home: Path) -> bool:
        path = home / self.marker
        return path.exists() and (path.is_file() or any(path.iterdir()))

    def manifest(self, home: Path) -> dict:
        if self.manifest_dir is None:
            return {}
        manifest = read_json(home / self.manifest_dir / "manifest.json", {})
        return manifest if isinstance(manifest, dict) else {}


DATASETS = (
    Dataset("frames", "Extracted frames", "data/raw/frames", None, "pedsense preprocess frames"),
    Dataset("yolo", "YOLO dataset (2 classes)", "data/processed/yolo/data.yaml", "data/processed/yolo",
            "pedsense preprocess yolo"),
    Dataset("detector", "Detector dataset (1 class)", "data/processed/yolo_detector/data.yaml",
            "data/processed/yolo_detector", "pedsense preprocess detector"),
    Dataset("resnet", "ResNet-LSTM sequences", "data/processed/resnet/labels.csv",
            "data/processed/resnet/sequences", "pedsense preprocess resnet"),
    Dataset("crops", "Hybrid intent crops", "data/processed/resnet/crops.csv", "data/processed/resnet/crops",
            "pedsense preprocess crops"),
    Dataset("context", "Context features (JAAD_beh; annotations only)",
            "data/processed/context/beh/windows.csv", "data/processed/context/beh",
            "pedsense preprocess context --sample-type beh"),
    Dataset("context-all", "Context features (JAAD_all; annotations only)",
            "data/processed/context/all/windows.csv", "data/processed/context/all",
            "pedsense preprocess context --sample-type all"),
)
PROCESSED = tuple(d for d in DATASETS if d.kind != "frames")
# What `pedsense preprocess all` builds (from clips); the context datasets need annotations only.
CLIP_DATASETS = tuple(d for d in PROCESSED if not d.kind.startswith("context"))
# What each model family trains on: the clip families need frames, the context family annotations.
FAMILY_INPUTS = {"yolo": "clips", "resnet-lstm": "clips", "hybrid": "clips", "context": "annotations"}


def dataset_folders(home: str | os.PathLike | None = None) -> list[Path]:
    """The folders the builds and the frame extraction write files into atomically."""
    p = paths(home)
    folders = [p.raw, p.annotations, p.attributes, p.processed, p.yolo, p.yolo_detector, p.resnet,
               p.sequences, p.resnet / "crops"]
    if p.frames.is_dir():
        folders += [entry for entry in p.frames.iterdir() if entry.is_dir()]
    return folders


def sweep_dataset_temp(home: str | os.PathLike | None = None) -> list[Path]:
    """Remove the stale temporary files killed builds left in the dataset folders (once a
    minute at most; see ``pedsense.io.sweep_stale_temp``)."""
    return sweep_stale_temp(f"datasets:{paths(home).home}", lambda: dataset_folders(home))


def datasets_status(home: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One dict per dataset: ``kind, label, built, path, command, manifest`` (counts, split, ...).
    Listing them also sweeps stale temporary files (:func:`sweep_dataset_temp`)."""
    root = paths(home).home
    sweep_dataset_temp(root)
    rows = []
    for dataset in DATASETS:
        built = dataset.built(root)
        rows.append({"kind": dataset.kind, "label": dataset.label, "built": built, "path": dataset.marker,
                     "command": dataset.command, "manifest": dataset.manifest(root) if built else {}})
    return rows


def need_manifest(marker: str, home: str | os.PathLike | None = None) -> dict:
    """The build manifest of the dataset whose "built" file is ``marker`` ({} when unknown)."""
    root = paths(home).home
    for dataset in DATASETS:
        if dataset.marker == marker and (root / marker).exists():
            return dataset.manifest(root)
    return {}


def describe_task(manifest: dict) -> str:
    """``"intent (obs 16, TTE 30-60, beh, split default)"``, ``"action"``, or "" without a manifest."""
    if not manifest:
        return ""
    task = manifest.get("task") or "action"
    options = manifest.get("intent_options") or {}
    if task != "intent" or not options:
        return task
    tte = "-".join(str(t) for t in options.get("tte") or ())
    split = (manifest.get("split") or {}).get("name") if isinstance(manifest.get("split"), dict) else None
    return (f"intent (obs {options.get('obs_length')}, TTE {tte}, {options.get('sample_type')}"
            + (f", split {split}" if split else "") + ")")


def class_counts(manifest: dict) -> list[dict]:
    """``[{"split", "class", "count"}]`` from a build manifest's ``counts`` (boxes or samples)."""
    rows = []
    for split, counts in (manifest.get("counts") or {}).items():
        if not isinstance(counts, dict):
            continue
        per_class = counts.get("boxes") if isinstance(counts.get("boxes"), dict) else counts
        for name, count in per_class.items():
            if isinstance(count, (int, float)) and name not in ("videos", "images"):
                rows.append({"split": split, "class": name, "count": count})
    return rows


def family_readiness(home: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per model family: ``family``, ``needs`` (clips / annotations), ``ready`` and
    ``why``. With annotations and no clips, the context family is ready and the others are not."""
    p = paths(home)
    videos = annotated_video_ids(p.home)
    with_clips = len(videos) - len(missing_clips(videos, p.home)) if videos else 0
    rows = []
    for family, needs in FAMILY_INPUTS.items():
        if not videos:
            ready, why = False, "no annotations: `pedsense get-annotations` or `pedsense demo-data`"
        elif needs == "annotations":
            ready, why = True, f"{len(videos)} annotated videos: `pedsense preprocess context`"
        elif with_clips:
            ready, why = True, f"{with_clips} of {len(videos)} annotated videos have a clip"
        else:
            ready, why = False, f"no clips in {p.clips} (JAAD's clips are a separate download)"
        rows.append({"family": family, "needs": needs, "ready": ready, "why": why})
    return rows


def next_step(home: str | os.PathLike | None = None) -> str:
    """The command a user should run next, from what the data home holds (the real cause first)."""
    p = paths(home)
    videos = annotated_video_ids(p.home)
    if not videos:
        return ("`pedsense get-annotations` (JAAD's annotations, no clips: enough for the context "
                "family), or put JAAD in data/raw/ (see README, 'JAAD data'), or run `pedsense "
                "demo-data` for the synthetic set")
    if not any(frames_meta(v, p.home) for v in videos):
        missing = missing_clips(videos, p.home)
        if len(missing) == len(videos):
            return ("the context family is ready (annotations only): `pedsense preprocess context`, "
                    f"then `pedsense train context`; for the others put JAAD's clips (video_XXXX.mp4) "
                    f"in {p.clips} (see README, 'JAAD data'), then `pedsense preprocess all`")
        if missing:
            return (f"`pedsense preprocess all` ({len(missing)} videos without a clip will be skipped: "
                    f"put their clips in {p.clips} first to include them)")
        return "`pedsense preprocess frames` (or `pedsense preprocess all`)"
    if not all(d.built(p.home) for d in CLIP_DATASETS):
        return "`pedsense preprocess all` builds the missing datasets"
    return "train: `make run` and open the dashboard, or `pedsense train ...`"
