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
from typing import Any, Iterable, Mapping

from pedsense.config import RANDOM_SEED, TRAIN_SPLIT, paths
from pedsense.errors import ConfigError, DataError

# The one definition of the split names (JAAD's split_ids folders, plus a seeded random split)
# and of their parts; every other module imports them from here.
OFFICIAL_SPLITS = ("default", "high_visibility", "all_videos")
SPLITS = OFFICIAL_SPLITS + ("random",)
PARTS = ("train", "val", "test")


class LeakageError(DataError):
    """A video or pedestrian would be in two splits."""


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
        leakage_check(self)

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
        leakage_check(listed, where=str(folder))
    return listed


def leakage_check(videos_by_split: "VideoSplit | Mapping[str, Iterable[str]]",
                  pedestrians_by_split: Mapping[str, Iterable[Any]] | None = None, *,
                  where: str = "") -> dict:
    """The one leakage guard: no video, and no pedestrian, in two splits.

    Every split and every dataset build runs it (builds on what they wrote), so a broken split
    file can never put one pedestrian in train and test.

    Args:
        videos_by_split: ``{split: video ids}``, or a :class:`VideoSplit`.
        pedestrians_by_split: optional ``{split: pedestrians}``, each a ``(video_id, track_id)``
            pair or anything with ``.video_id`` and ``.track_id`` (an intent ``Window``).
        where: named in the message (e.g. the split folder).

    Returns:
        The manifest record ``{"ok": True, "checked": True, "videos": {split: n},
        "videos_in_several_splits": {}, "pedestrians": {split: n} (when given)}``.

    Raises:
        LeakageError: a video or pedestrian is in two splits, or a pedestrian is in a split
            that does not list its video.
    """
    if not isinstance(videos_by_split, Mapping):
        videos_by_split = {part: getattr(videos_by_split, part, ()) or () for part in PARTS}
    videos = {name: set(ids) for name, ids in videos_by_split.items()}
    _raise_if_shared(videos, "video", where)
    record = {"ok": True, "checked": True, "videos": {name: len(ids) for name, ids in videos.items()},
              "videos_in_several_splits": {}}
    if pedestrians_by_split is not None:
        pedestrians = {name: {_pedestrian(p) for p in members}
                       for name, members in pedestrians_by_split.items()}
        _raise_if_shared(pedestrians, "pedestrian", where)
        for name, members in pedestrians.items():
            stray = sorted({video for video, _ in members} - videos.get(name, set()))
            if stray and name in videos:
                raise LeakageError(f"Split {name!r} holds pedestrians of videos it does not list: "
                                   f"{stray[:5]}. Fix: build the samples from one VideoSplit "
                                   "(pedsense.data.splits.split_videos).")
        record["pedestrians"] = {name: len(members) for name, members in pedestrians.items()}
    return record


# The name VideoSplit and read_split_files have always used for the same guard.
assert_no_leakage = leakage_check


def _pedestrian(member) -> tuple[str, str]:
    if isinstance(member, tuple):
        return member[0], member[1]
    return member.video_id, member.track_id


def _raise_if_shared(members: Mapping[str, set], kind: str, where: str) -> None:
    seen: dict[Any, str] = {}
    shared: list[tuple[Any, str, str]] = []
    for name, items in members.items():
        for item in sorted(items, key=str):
            if item in seen:
                shared.append((item, seen[item], name))
            else:
                seen[item] = name
    if shared:
        item, first, second = shared[0]
        count = sum(1 for _, a, b in shared if (a, b) == (first, second))
        place = f" in {where}" if where else ""
        raise LeakageError(
            f"{kind.capitalize()} {_show(item)} is in both {first} and {second}{place} ({count} "
            f"{kind}{'s' if count > 1 else ''} in both {first!r} and {second!r} splits"
            f"{f', {len(shared)} in two splits in all' if len(shared) > count else ''}): its "
            "pedestrians would leak between splits. Fix: list each video in one split file only "
            "(data/raw/split_ids/<split>/{train,val,test}.txt), then build again.")


def _show(item) -> str:
    return str(item) if not isinstance(item, tuple) else "/".join(map(str, item))


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
