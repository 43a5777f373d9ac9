"""Dataset builds that never look complete when they are not.

Every build (YOLO, detector, ResNet sequences, ResNet crops) goes through ``StagedBuild``:

1. If the finished output carries a ``manifest.json`` with the same parameters and the same
   input fingerprint, the build is reused as it is.
2. Otherwise it writes into a hidden staging folder beside the output. Each video finished
   there leaves a small ``.done/<video>.json``, so a build that crashed resumes from the
   videos it had finished (when the parameters are unchanged) instead of starting over.
3. ``commit`` moves the outputs into place, the file readers check for last (``labels.csv``,
   say), after deleting the old one first: a crash mid-swap leaves "not built", never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent builds are then the user's care
    fcntl = None

from pedsense.config import RANDOM_SEED, TRAIN_SPLIT, paths
from pedsense.errors import DataError
from pedsense.io import read_json, write_json_atomic

MANIFEST_NAME = "manifest.json"
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


def leakage_check(videos_by_split: Mapping[str, Iterable[str]]) -> dict:
    """Which videos (if any) appear in more than one split of a built dataset.

    Returns:
        ``{"ok": bool, "videos_in_several_splits": {video: [splits]}}``.
    """
    seen: dict[str, list[str]] = {}
    for split_name, videos in videos_by_split.items():
        for video in set(videos):
            seen.setdefault(video, []).append(split_name)
    shared = {video: sorted(names) for video, names in sorted(seen.items()) if len(names) > 1}
    return {"ok": not shared, "videos_in_several_splits": shared}


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
        session, a CLI run) fails fast instead of writing into the same staging folder."""
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
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def begin(self) -> Path:
        """Open the staging folder: keep it when it was started with the same settings."""
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
    """

    home: Path
    split_name: str
    split_source: str
    parts: dict[str, list[str]]
    metas: dict[str, dict]
    skipped: dict[str, str]
    fingerprint: str
    synthetic: bool | None

    @property
    def video_ids(self) -> list[str]:
        return [video for videos in self.parts.values() for video in videos]

    def split_manifest(self) -> dict:
        return {"name": self.split_name, "source": self.split_source,
                "videos": {part: list(videos) for part, videos in self.parts.items()}}

    def load_annotations(self, progress=None) -> dict:
        """Parse the annotations (and attribute files) of the videos in ``parts``."""
        from pedsense.data.jaad import load_annotations

        p = paths(self.home)
        return load_annotations(p.annotations, p.attributes, video_ids=self.video_ids,
                                progress=progress)


def collect_inputs(home=None, split: str = "default", train_ratio: float = TRAIN_SPLIT,
                   seed: int = RANDOM_SEED) -> BuildInputs:
    """Find the annotated videos, split them, and check their frames are extracted.

    Raises:
        DataError: no annotations, or no annotated video has extracted frames yet.
    """
    from pedsense.data.frames import annotated_video_ids, frames_meta
    from pedsense.data.splits import split_videos

    p = paths(home)
    video_ids = annotated_video_ids(p.home)
    if not video_ids:
        raise DataError(
            f"No annotation XML in {p.annotations}. Put JAAD's annotations/ folder there "
            "(see README, 'JAAD data') or run `pedsense demo-data` for the synthetic set."
        )
    # Split all annotated videos, not only those with frames, so the split never depends on
    # how far frame extraction got.
    video_split = split_videos(video_ids, split, train_ratio=train_ratio, seed=seed, home=p.home)
    parts, metas, skipped = {}, {}, {}
    for part in ("train", "val", "test"):
        for video in getattr(video_split, part, None) or []:
            if video not in video_ids:
                continue  # listed by an official split file but not annotated here
            meta = frames_meta(video, p.home)
            if meta is None:
                skipped[video] = "frames not extracted (run `pedsense preprocess frames`)"
                continue
            metas[video] = meta
            parts.setdefault(part, []).append(video)
    for video in getattr(video_split, "unassigned", None) or []:
        skipped.setdefault(video, f"not in any part of the {split!r} split")
    if not metas:
        raise DataError(
            f"No extracted frames under {p.frames} for the annotated videos. "
            "Run `pedsense preprocess frames` first (or `extract_frames()`)."
        )
    stamps = [[video, part, file_stamp(p.annotation(video)), file_stamp(p.attributes_file(video)),
               metas[video].get("created_at"), len(metas[video].get("frames", []))]
              for part, videos in parts.items() for video in videos]
    return BuildInputs(home=p.home, split_name=split, split_source=str(getattr(video_split, "source", "")),
                       parts=parts, metas=metas, skipped=skipped,
                       fingerprint=fingerprint([split, stamps]), synthetic=_synthetic_flag(p.home))


def _synthetic_flag(home: Path) -> bool | None:
    try:
        from pedsense.data.synthetic import is_synthetic
    except ImportError:
        return None
    return bool(is_synthetic(home))
