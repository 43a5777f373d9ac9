"""Video-level train / val / test splits: every pedestrian of a video lands in one split.

``split_videos`` is the one function every dataset build (YOLO, detector, ResNet sequences and
crops) calls, so all of them see the same split. JAAD ships three official splits in
``data/raw/split_ids/<split>/{train,val,test}.txt``; when the asked one is absent we fall back
on a seeded random split and say so in ``VideoSplit.source``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from pedsense.config import RANDOM_SEED, TRAIN_SPLIT, paths
from pedsense.errors import ConfigError, DataError

OFFICIAL_SPLITS = ("default", "high_visibility", "all_videos")
SPLITS = OFFICIAL_SPLITS + ("random",)
PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class VideoSplit:
    """Which videos train, validate and test; ids sorted within each part."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    source: str                          # "official:default" or "random(seed=42, train_ratio=0.8)"
    unassigned: tuple[str, ...] = ()     # videos present but in no split file
    missing: tuple[str, ...] = ()        # ids in the split files with no annotation here
    requested: str = ""                  # the split asked for (differs from source on fallback)

    def __post_init__(self) -> None:
        assert_no_leakage(self)

    @property
    def is_official(self) -> bool:
        return self.source.startswith("official:")

    @property
    def parts(self) -> dict[str, tuple[str, ...]]:
        """``{part: ids}`` for the non-empty parts, in train, val, test order."""
        return {part: getattr(self, part) for part in PARTS if getattr(self, part)}

    def split_of(self, video_id: str) -> str | None:
        """``"train"``, ``"val"``, ``"test"``, or None for a video in no part."""
        return next((part for part in PARTS if video_id in getattr(self, part)), None)

    def as_dict(self) -> dict:
        """A JSON-ready record (for manifests and the dashboard)."""
        return {"source": self.source, "requested": self.requested,
                **{part: list(getattr(self, part)) for part in PARTS},
                "unassigned": list(self.unassigned), "missing": list(self.missing)}


def split_videos(video_ids: Iterable[str] | None = None, split: str = "default", *,
                 train_ratio: float = TRAIN_SPLIT, seed: int = RANDOM_SEED,
                 home: str | os.PathLike | None = None,
                 split_ids_dir: str | os.PathLike | None = None) -> VideoSplit:
    """Split the videos present into train / val (/ test).

    Args:
        video_ids: the videos present; default every ``data/raw/annotations/*.xml``.
        split: ``default``, ``high_visibility`` or ``all_videos`` (JAAD's split files, used
            when present, else the random split) or ``random`` (``train_ratio`` of the videos
            train, the rest val, no test; seeded).
        split_ids_dir: the folder holding ``<split>/{train,val,test}.txt``; default
            ``data/raw/split_ids`` of ``home``.

    Raises:
        ConfigError: unknown ``split`` or ``train_ratio`` not in (0, 1).
        DataError: no videos, or a video listed in two split files.
    """
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}. Fix: use one of {', '.join(SPLITS)}.")
    if not 0.0 < float(train_ratio) < 1.0:
        raise ConfigError(f"train_ratio must be between 0 and 1 (exclusive), got {train_ratio}. "
                          "Fix: use e.g. 0.8 for 80% train, 20% val.")
    p = paths(home)
    present = _present_videos(video_ids, p.annotations)
    folder = Path(split_ids_dir) if split_ids_dir is not None else p.split_ids
    if split != "random":
        listed = read_split_files(folder / split)
        if listed:
            return _official_split(present, listed, split)
    return _random_split(present, train_ratio, seed, requested=split)


def read_split_files(folder: str | os.PathLike) -> dict[str, list[str]]:
    """``{part: ids}`` from ``folder/{train,val,test}.txt`` (parts whose file exists); {} when none.

    Raises:
        DataError: a video is listed in two of the files.
    """
    folder = Path(folder)
    listed = {}
    for part in PARTS:
        path = folder / f"{part}.txt"
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            listed[part] = [line.strip() for line in lines
                            if line.strip() and not line.strip().startswith("#")]
    if listed:
        assert_no_leakage(listed, where=str(folder))
    return listed


def assert_no_leakage(split: VideoSplit | Mapping[str, Iterable[str]], where: str = "") -> None:
    """Raise DataError when one video is in two parts (train / val / test)."""
    parts = split if isinstance(split, Mapping) else {part: getattr(split, part) for part in PARTS}
    seen: dict[str, str] = {}
    for part, ids in parts.items():
        for video_id in ids:
            if seen.get(video_id, part) != part:
                place = f" in {where}" if where else ""
                raise DataError(f"Video {video_id} is in both {seen[video_id]} and {part}{place}: "
                                "its pedestrians would leak between splits. Fix: list each video "
                                "in one split file only.")
            seen[video_id] = part


def _present_videos(video_ids: Iterable[str] | None, annotations: Path) -> list[str]:
    if video_ids is None:
        video_ids = [p.stem for p in annotations.glob("*.xml")] if annotations.is_dir() else []
    present = sorted(set(video_ids))
    if not present:
        raise DataError(f"No videos to split: no annotation XML in {annotations}. Fix: run "
                        "`pedsense demo-data`, or download JAAD's annotations into that folder.")
    return present


def _official_split(present: list[str], listed: dict[str, list[str]], split: str) -> VideoSplit:
    here = set(present)
    parts = {part: tuple(sorted(v for v in listed.get(part, []) if v in here)) for part in PARTS}
    in_files = {v for ids in listed.values() for v in ids}
    return VideoSplit(**parts, source=f"official:{split}", requested=split,
                      unassigned=tuple(v for v in present if v not in in_files),
                      missing=tuple(sorted(in_files - here)))


def _random_split(present: list[str], train_ratio: float, seed: int, requested: str) -> VideoSplit:
    shuffled = list(present)
    random.Random(seed).shuffle(shuffled)
    n_train = round(len(shuffled) * train_ratio)
    if len(shuffled) >= 2:
        n_train = min(max(n_train, 1), len(shuffled) - 1)  # both parts non-empty when possible
    return VideoSplit(train=tuple(sorted(shuffled[:n_train])),
                      val=tuple(sorted(shuffled[n_train:])), test=(), source=f"random(seed={seed}, train_ratio={train_ratio})",
                      requested=requested)
