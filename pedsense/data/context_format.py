"""The context dataset: the benchmark's windows as feature arrays, built from annotations alone.

``build_context()`` (``pedsense preprocess context [--sample-type beh|all]``), no clips needed::

    data/processed/context/<sample_type>/{train,val,test}.npz   per feature group (N, T, D)
                                                                 float32, labels (N,), frames
                                                                 (N, obs), boxes_xyxy (N, obs, 4)
    data/processed/context/<sample_type>/windows.csv            one row per window, split order
    data/processed/context/<sample_type>/manifest.json          protocol, counts, what was unknown

The windows are exactly the intent task's (``pedsense.data.intent.intent_windows`` through
``collect_intent_windows``, on the official split when its files exist); each group is the
catalogue's (``pedsense.data.context_features``), every group the sample type allows. The
build is deterministic (same inputs, same bytes in the arrays) and goes through
``StagedBuild`` like every other build: a crash never leaves it half written, an unchanged
build is reused. ``load_context_split(home, split)`` reads one split back as
:class:`ContextWindows`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from pedsense.config import paths
from pedsense.data.context_features import (FEATURE_GROUPS, default_features, resolve_features,
                                            window_features)
from pedsense.data.intent import SPLIT_NAMES, IntentOptions
from pedsense.data.intent_dataset import collect_intent_windows
from pedsense.data.jaad import load_annotation_folder
from pedsense.data.manifest import (StagedBuild, annotated_video_ids, file_stamp, fingerprint,
                                    no_annotations_error, now_iso)
from pedsense.data.scene import MISSING_FILE, scene_files
from pedsense.data.splits import split_videos
from pedsense.data.synthetic import is_synthetic
from pedsense.errors import DataError
from pedsense.io import read_json, write_csv_atomic

CONTEXT_FORMAT = 3  # bumped when the build changes meaning: older builds get a rebuild message (3: `history`)
WINDOW_COLUMNS = ["window_id", "split", "video", "ped_id", "video_id", "track_id", "track_label",
                  "behavioural", "label", "start_frame", "end_frame", "frames", "tte", "tte_bin", "event_frame",
                  "occlusion", "time_of_day", "weather", "width", "height"]
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ContextWindows:
    """One split of a context build.

    ``groups[name]`` is (N, T, D) float32 (T = obs_length - 1, D = ``len(columns[name])``),
    ``labels`` (N,) int64 (1 crossing), ``windows`` one row per window in the same order
    (``WINDOW_COLUMNS``), ``frames`` (N, obs_length) and ``boxes_xyxy`` (N, obs_length, 4) the
    window's frames and boxes in pixels (for drawing; never inputs). ``dropped_unknown`` counts
    the windows :meth:`select` left out because every selected feature was unknown.
    """

    groups: dict[str, np.ndarray]
    labels: np.ndarray
    windows: pd.DataFrame
    columns: dict[str, tuple[str, ...]]
    sample_type: str
    intent: IntentOptions
    frames: np.ndarray | None = None
    boxes_xyxy: np.ndarray | None = None
    dropped_unknown: int = 0

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def known(self, features: Sequence[str] | None = None) -> np.ndarray:
        """(N,) bool: windows where some selected group has at least one known frame."""
        names = list(features or self.groups)
        mask = np.zeros(len(self), dtype=bool)
        for name in names:
            mask |= _known_frames(self, name).any(axis=1)
        return mask

    def select(self, features: str | Sequence[str] | None = None) -> "ContextWindows":
        """Only the ``features`` groups (checked by ``resolve_features``: leaks refused), and only
        the windows with something known in them (``dropped_unknown`` counts the others)."""
        names = resolve_features(features, self.sample_type)
        absent = [name for name in names if name not in self.groups]
        if absent:
            raise DataError(f"The context build has no {', '.join(absent)} features. Fix: rebuild "
                            f"it with `pedsense preprocess context --sample-type {self.sample_type}`.")
        keep = self.known(names)
        index = np.flatnonzero(keep)
        take = (lambda a: a[index]) if not keep.all() else (lambda a: a)
        return replace(self, groups={n: take(self.groups[n]) for n in names},
                       labels=take(self.labels), windows=self.windows.iloc[index].reset_index(drop=True),
                       columns={n: self.columns[n] for n in names},
                       frames=None if self.frames is None else take(self.frames),
                       boxes_xyxy=None if self.boxes_xyxy is None else take(self.boxes_xyxy),
                       dropped_unknown=self.dropped_unknown + int((~keep).sum()))

    def behavioural(self) -> np.ndarray:
        """(N,) float32: 1 where JAAD annotated the pedestrian's behaviour (a training target of
        the context trainer on ``all`` builds, never an input)."""
        return self.windows["behavioural"].to_numpy(np.float32)

    def unknown_note(self) -> str:
        """A sentence for the log when :meth:`select` dropped windows; "" when none."""
        if not self.dropped_unknown:
            return ""
        return (f"{self.dropped_unknown} windows left out: every selected feature is unknown in "
                "them (no vehicle/traffic file for their video)")


def _known_frames(data: ContextWindows, name: str) -> np.ndarray:
    """(N, T) bool: frames whose ``name`` features are known."""
    group = FEATURE_GROUPS[name]
    array = data.groups[name]
    if not group.unknown_columns:
        return np.ones(array.shape[:2], dtype=bool)
    columns = data.columns[name]
    unknown = np.ones(array.shape[:2], dtype=bool)
    for column in group.unknown_columns:
        unknown &= array[:, :, columns.index(column)] > 0.5
    return ~unknown


# -- where the build lives --------------------------------------------------------------------
def context_root(home=None) -> Path:
    return paths(home).processed / "context"


def context_path(home=None, sample_type: str = "beh") -> Path:
    """The folder of the context build of ``sample_type`` (whether or not it is built)."""
    return context_root(home) / sample_type


def context_manifest_path(home=None, sample_type: str | None = None) -> Path:
    """The ``manifest.json`` of the context build of ``sample_type`` (None: the one
    :func:`load_context_split` reads by default) — what a run records as its dataset."""
    return context_path(home, sample_type or _default_sample_type(home)) / "manifest.json"


def _default_sample_type(home) -> str:
    """The one built, ``beh`` when both are (or neither)."""
    built = built_sample_types(home)
    return built[0] if built else "beh"


def built_sample_types(home=None) -> list[str]:
    """The sample types with a finished context build, in ``beh, all`` order."""
    return [st for st in ("beh", "all")
            if isinstance(m := read_json(context_path(home, st) / "manifest.json"), dict)
            and m.get("complete")]


def context_manifest(home=None, sample_type: str = "beh") -> dict:
    """The build's manifest, checked: DataError when not built or built by an older pedsense."""
    folder = context_path(home, sample_type)
    manifest = read_json(folder / "manifest.json")
    command = f"pedsense preprocess context --sample-type {sample_type}"
    if not isinstance(manifest, dict) or not manifest.get("complete"):
        raise DataError(f"No context dataset for sample type {sample_type!r} yet ({folder} is not "
                        f"built). Fix: run `{command}` (annotations only, no clips needed).")
    if manifest.get("format") != CONTEXT_FORMAT or "scene" not in manifest:
        raise DataError(f"The context dataset in {folder} was built by an older pedsense (format "
                        f"{manifest.get('format', 0)}; this one reads format {CONTEXT_FORMAT}). Fix: rebuild "
                        f"it with `{command}`.")
    return manifest


# -- reading ------------------------------------------------------------------------------------
def load_context_split(home=None, split: str = "train", *,
                       sample_type: str | None = None) -> ContextWindows:
    """One split of the context build.

    ``sample_type`` None means the one built (beh when both are: pass it to choose).

    Raises:
        DataError: not built, built by an older pedsense, or no such split in it.
    """
    sample_type = sample_type or _default_sample_type(home)
    manifest = context_manifest(home, sample_type)
    folder = context_path(home, sample_type)
    if split not in manifest.get("splits", {}):
        raise DataError(f"The context dataset in {folder} has no {split!r} windows (it has "
                        f"{', '.join(manifest.get('splits', {})) or 'none'}).")
    with np.load(folder / f"{split}.npz") as arrays:
        data = {key: arrays[key] for key in arrays.files}
    table = pd.read_csv(folder / "windows.csv", dtype={"frames": str})
    table = table[table["split"] == split].reset_index(drop=True)
    columns = {name: tuple(cols) for name, cols in manifest["groups"].items()}
    return ContextWindows(groups={name: data[name] for name in columns},
                          labels=data["labels"].astype(np.int64), windows=table, columns=columns,
                          sample_type=sample_type,
                          intent=IntentOptions.from_dict(manifest["protocol"]),
                          frames=data.get("frames"), boxes_xyxy=data.get("boxes_xyxy"))


# -- building -----------------------------------------------------------------------------------
def build_context(home=None, *, intent: IntentOptions | None = None, split: str = "default",
                  on_progress: Progress | None = None) -> Path:
    """Build (or reuse) the context dataset of ``intent.sample_type``; returns its folder.

    Raises:
        DataError: no annotations, nothing readable, or no window at all.
    """
    return _build(home, intent or IntentOptions(), split, on_progress)[0]


def build_context_dataset(home=None, *, sample_type: str = "beh", split: str = "default",
                          intent: IntentOptions | None = None,
                          progress: Progress | None = None) -> dict:
    """:func:`build_context` as a data job (CLI, Data page): a summary like the other builds'
    (``path``, ``counts``, ``summary`` lines, ``reused``)."""
    intent = intent or IntentOptions(sample_type=sample_type)
    if intent.sample_type != sample_type:
        intent = replace(intent, sample_type=sample_type)
    folder, reused = _build(home, intent, split, progress)
    manifest = context_manifest(home, intent.sample_type)
    return {"path": str(folder), "reused": reused, "sample_type": intent.sample_type,
            "counts": {s: {"windows": c["windows"], "crossing": c["crossing"]}
                       for s, c in manifest["splits"].items()},
            "summary": manifest.get("summary", [])}


def _build(home, intent: IntentOptions, split: str, on_progress: Progress | None) -> tuple[Path, bool]:
    p = paths(home)
    video_ids = annotated_video_ids(p.home)
    if not video_ids:
        raise no_annotations_error(p)
    video_split = split_videos(video_ids, split, home=p.home)
    groups = default_features(intent.sample_type)
    stamps = [[v, file_stamp(p.annotation(v)), file_stamp(p.attributes_file(v)),
               *(file_stamp(f) for f in scene_files(p.annotations, v))] for v in video_ids]
    build = StagedBuild(context_root(p.home), f"context_{intent.sample_type}",
                        outputs=[intent.sample_type], manifest_dir=intent.sample_type,
                        params={"format": CONTEXT_FORMAT, "intent": intent.as_dict(),
                                "split": split, "groups": list(groups)},
                        inputs=fingerprint([split, video_split.as_dict(), stamps]))
    folder = context_path(p.home, intent.sample_type)
    if build.existing() is not None:
        return folder, True
    with build.locked():
        if build.existing() is not None:
            return folder, True
        annotations, skipped = load_annotation_folder(p.annotations, p.attributes, video_ids,
                                                      progress=_parsing(on_progress))
        dataset = collect_intent_windows(annotations, video_split, intent)
        build.begin(len(annotations))
        out = build.path(intent.sample_type)
        out.mkdir(parents=True, exist_ok=True)
        counts, rows = _write_splits(out, dataset, annotations, groups, on_progress)
        if not rows:
            raise DataError(f"No benchmark window in the {len(annotations)} annotated videos "
                            f"(sample type {intent.sample_type!r}): "
                            + "; ".join(dataset.summary_lines()))
        write_csv_atomic(out / "windows.csv", rows, WINDOW_COLUMNS)
        build.commit(_manifest(p.home, dataset, annotations, skipped, groups, counts, intent))
    return folder, False


def _parsing(on_progress: Progress | None) -> Progress | None:
    if on_progress is None:
        return None
    return lambda done, total, video: on_progress(done, total, f"parsing {video}")


def _write_splits(out: Path, dataset, annotations: Mapping, groups: Sequence[str],
                  on_progress: Progress | None) -> tuple[dict, list[dict]]:
    """One ``<split>.npz`` per split with windows; the window rows; unknown counts per group."""
    rows: list[dict] = []
    counts: dict[str, dict] = {}
    tracks = {vid: {t.track_id: t for t in a.tracks} for vid, a in annotations.items()}
    total = sum(len(ws) for ws in dataset.windows.values())
    done = 0
    for split in SPLIT_NAMES:
        windows = dataset.windows.get(split, [])
        if not windows:
            continue
        arrays: dict[str, list] = {name: [] for name in groups}
        for window in windows:
            annotation = annotations[window.video_id]
            features = window_features(annotation, tracks[window.video_id][window.track_id],
                                       window.frames, groups)
            for name in groups:
                arrays[name].append(features[name])
            rows.append(_row(window, split, annotation))
            done += 1
            if on_progress is not None and done % 500 == 0:
                on_progress(done, total, f"features: {done}/{total} windows")
        stacked = {name: np.stack(values).astype(np.float32) for name, values in arrays.items()}
        np.savez(out / f"{split}.npz", **stacked,
                 labels=np.array([w.label for w in windows], dtype=np.int64),
                 frames=np.array([w.frames for w in windows], dtype=np.int64),
                 boxes_xyxy=np.array([w.boxes_xyxy for w in windows], dtype=np.float32))
        view = ContextWindows(groups=stacked, labels=np.zeros(len(windows)), windows=pd.DataFrame(),
                              columns={n: FEATURE_GROUPS[n].columns for n in groups},
                              sample_type=dataset.options.sample_type, intent=dataset.options)
        counts[split] = {"windows": len(windows),
                         "crossing": sum(w.label for w in windows),
                         "unknown_windows": {n: int((~_known_frames(view, n).any(axis=1)).sum())
                                             for n in groups},
                         "all_unknown": int((~view.known(groups)).sum())}
    if on_progress is not None:
        on_progress(total, total, f"features: {total} windows")
    return counts, rows


def _row(window, split: str, annotation) -> dict:
    row = window.as_row()
    return {"window_id": row["window_id"], "split": split, "video": window.video_id,
            "ped_id": window.track_id, "video_id": window.video_id, "track_id": window.track_id,
            "track_label": window.track_label, "behavioural": int(window.behavioural), "label": window.label,
            "start_frame": window.start_frame, "end_frame": window.end_frame,
            "frames": " ".join(map(str, window.frames)), "tte": window.tte,
            "tte_bin": row["tte_bin"], "event_frame": window.event_frame,
            "occlusion": window.occlusion, "time_of_day": window.time_of_day,
            "weather": window.weather, "width": annotation.width, "height": annotation.height}


def _manifest(home: Path, dataset, annotations: Mapping, skipped: Mapping[str, str],
              groups: Sequence[str], counts: dict, intent: IntentOptions) -> dict:
    scenes = {vid: a.scene for vid, a in annotations.items()}
    vehicle_missing = {vid: s.vehicle_error for vid, s in scenes.items() if s and s.vehicle_error}
    traffic_missing = {vid: s.traffic_error for vid, s in scenes.items() if s and s.traffic_error}
    problems = [problem for s in scenes.values() if s for problem in s.problems]
    return {"format": CONTEXT_FORMAT, "created_at": now_iso(), "sample_type": intent.sample_type,
            **dataset.manifest(),
            "groups": {name: list(FEATURE_GROUPS[name].columns) for name in groups},
            "intent_options": intent.as_dict(),  # what the catalogue's describe_task reads
            "counts": {s: {"crossing": c["crossing"], "not-crossing": c["windows"] - c["crossing"]}
                       for s, c in counts.items()},
            "splits": counts, "synthetic": bool(is_synthetic(home)),
            "videos": len(annotations),
            "skipped_files": [{"file": f, "reason": r} for f, r in skipped.items()],
            "scene": {"vehicle_missing": vehicle_missing, "traffic_missing": traffic_missing,
                      "problems": {"count": len(problems), "examples": problems[:20]}},
            "summary": summary_lines(dataset, counts, vehicle_missing, traffic_missing, problems)
            + [f"{Path(f).name} skipped: {r.split('. Fix:')[0]}" for f, r in skipped.items()]}


def summary_lines(dataset, counts: Mapping[str, dict], vehicle_missing: Mapping,
                  traffic_missing: Mapping, problems: Sequence[str]) -> list[str]:
    """What the build made and everything unknown in it, one line each."""
    lines = [f"{split}: {c['windows']} windows ({c['crossing']} crossing)"
             for split, c in counts.items()]
    lines += [line for line in dataset.summary_lines() if line.split(":")[0] not in SPLIT_NAMES]
    for what, missing in (("vehicle", vehicle_missing), ("traffic", traffic_missing)):
        if missing:
            reasons = Counter("no file" if r == MISSING_FILE else "unreadable" for r in missing.values())
            lines.append(f"{_n(len(missing), 'video')} without {what} data ("
                         + ", ".join(f"{n} {r}" for r, n in reasons.items())
                         + f"): their {what} features are 'unknown', never guessed")
    if problems:
        lines.append(f"{_n(len(problems), 'problem')} in the vehicle/traffic files (values left unknown), "
                     f"e.g. {problems[0]}")
    unknown = Counter()
    for c in counts.values():
        unknown.update(c["unknown_windows"])
        unknown["all"] += c["all_unknown"]
    for name, n in unknown.items():
        if n and name != "all":
            lines.append(f"{_n(n, 'window')} with no known {name} feature (unknown columns set)")
    if unknown["all"]:
        lines.append(f"{_n(unknown['all'], 'window')} with every feature unknown: training skips them")
    return lines


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
