"""A whole data home cut into the benchmark's windows, per split, with what was skipped and why.

The protocol and one video's windows are ``pedsense.data.intent``; this module groups every
video's windows by the split its video belongs to, counts the skips per reason and runs the
leakage guard (``pedsense.data.splits.leakage_check``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pedsense.data.intent import (SKIP_REASON_TEXT, SPLIT_NAMES, VIDEO_NOT_IN_SPLIT, IntentOptions, Skip,
                                  Window, intent_windows)
from pedsense.data.splits import leakage_check


@dataclass
class IntentDataset:
    """Benchmark windows per split, with what was skipped and the leakage check's result."""

    options: IntentOptions
    windows: dict[str, list[Window]]
    skips: list[Skip]
    split_source: str = ""
    missing_videos: tuple[str, ...] = ()
    unassigned_videos: tuple[str, ...] = ()
    leakage: dict[str, Any] = field(default_factory=dict)

    def all_windows(self) -> list[Window]:
        return [w for name in SPLIT_NAMES for w in self.windows.get(name, [])]

    def skip_counts(self) -> dict[str, int]:
        """How many skips each reason caused, most frequent first."""
        return dict(Counter(skip.reason for skip in self.skips).most_common())

    def class_counts(self) -> dict[str, dict[str, int]]:
        """``{split: {"not-crossing": n0, "crossing": n1, "total": n}}``."""
        counts = {}
        for name in SPLIT_NAMES:
            labels = [w.label for w in self.windows.get(name, [])]
            counts[name] = {"not-crossing": labels.count(0), "crossing": labels.count(1),
                            "total": len(labels)}
        return counts

    def pedestrian_counts(self) -> dict[str, int]:
        """Distinct pedestrians with at least one window, per split."""
        return {name: len({(w.video_id, w.track_id) for w in self.windows.get(name, [])})
                for name in SPLIT_NAMES}

    def rows(self, split: str | None = None) -> list[dict[str, Any]]:
        """DataFrame-ready window metadata (``Window.as_row`` plus ``split``)."""
        names = SPLIT_NAMES if split is None else (split,)
        return [{**w.as_row(), "split": name} for name in names for w in self.windows.get(name, [])]

    def summary_lines(self) -> list[str]:
        """Human-readable build summary: windows per split, and every skip reason with a count."""
        lines = []
        for name, c in self.class_counts().items():
            lines.append(f"{name}: {c['total']} windows ({c['crossing']} crossing, "
                         f"{c['not-crossing']} not-crossing)")
        for reason, count in self.skip_counts().items():
            lines.append(f"skipped {count}: {SKIP_REASON_TEXT.get(reason, reason)}")
        if self.missing_videos:
            lines.append(f"{len(self.missing_videos)} videos named by the split files are absent")
        if self.leakage.get("checked"):
            lines.append("leakage check passed: no video or pedestrian is in two splits")
        return lines

    def manifest(self) -> dict[str, Any]:
        """JSON-ready record of the protocol, counts, skips and leakage check."""
        return {"task": "intent", "protocol": self.options.as_dict(),
                "split_source": self.split_source, "class_counts": self.class_counts(),
                "pedestrians": self.pedestrian_counts(), "skipped": self.skip_counts(),
                "missing_videos": list(self.missing_videos),
                "unassigned_videos": list(self.unassigned_videos), "leakage": self.leakage}


def collect_intent_windows(annotations: Mapping[str, Any], video_split,
                           options: IntentOptions | None = None, *,
                           progress: Callable[[int, int, str], None] | None = None) -> IntentDataset:
    """Cut every video into benchmark windows, grouped by the split its video belongs to.

    Args:
        annotations: ``{video_id: VideoAnnotation}`` (e.g. from ``load_annotations``).
        video_split: a ``pedsense.data.splits.VideoSplit`` (``.train .val .test .split_of(vid)``).
        options: the protocol (default: the JAAD benchmark's).
        progress: ``progress(done, total, message)`` after each video.

    Returns:
        An :class:`IntentDataset`; the leakage check has run (it raises :class:`LeakageError`).
    """
    options = options or IntentOptions()
    windows: dict[str, list[Window]] = {name: [] for name in SPLIT_NAMES}
    skips: list[Skip] = []
    unassigned = []
    total = len(annotations)
    for done, video_id in enumerate(sorted(annotations), start=1):
        annotation = annotations[video_id]
        split = video_split.split_of(video_id)
        if split not in windows:
            unassigned.append(video_id)
            skips.extend(Skip(video_id, t.track_id, VIDEO_NOT_IN_SPLIT) for t in annotation.tracks)
        else:
            video_windows, video_skips = intent_windows(annotation, options)
            windows[split].extend(video_windows)
            skips.extend(video_skips)
        if progress:
            progress(done, total, f"intent windows: {video_id}")
    leakage = leakage_check(_split_members(video_split), windows)
    return IntentDataset(options=options, windows=windows, skips=skips,
                         split_source=str(getattr(video_split, "source", "")),
                         missing_videos=tuple(getattr(video_split, "missing", ()) or ()),
                         unassigned_videos=tuple(unassigned), leakage=leakage)


def _split_members(video_split) -> dict[str, list[str]]:
    if isinstance(video_split, Mapping):
        return {name: list(video_split.get(name, ())) for name in SPLIT_NAMES}
    return {name: list(getattr(video_split, name, ()) or ()) for name in SPLIT_NAMES}
