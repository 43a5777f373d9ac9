"""The context features a ResNet sequence build carries, so crops and context meet on one window.

``pedsense preprocess resnet`` writes, beside the crops, each sequence's window featurised by the
context catalogue (``pedsense.data.context_features.window_features``, the function the context
build uses; nothing is featurised twice)::

    data/processed/resnet/sequences/context.npz   <split>__sequence_id (N,), <split>__<group>
                                                  (N, T - 1, D) float32, in labels.csv order
    manifest.json "context"                       format, sample_type, groups {group: columns}

Every group the build's sample type allows is stored (``default_features``: ``beh`` all five,
``all`` no behaviour); a run picks some with ``context_features``, checked by
``resolve_features`` with the build's sample type, so the leak guard is the catalogue's.
``load_sequence_context`` reads one split back for the sequences a dataset lists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from pedsense.config import paths
from pedsense.data.context_features import FEATURE_GROUPS, default_features, resolve_features, window_features
from pedsense.errors import DataError
from pedsense.io import read_json

SEQUENCE_CONTEXT_FORMAT = 2  # a build parameter: bumping it rebuilds the sequences (2: `history`)
CONTEXT_FILE = "context.npz"
REBUILD = "pedsense preprocess resnet"


def write_sequence_context(folder: Path, rows: Sequence[Mapping], annotations: Mapping,
                           frames_of: Callable[[Mapping], Sequence[int]], sample_type: str) -> dict:
    """Featurise every sequence of ``rows`` (labels.csv rows) into ``folder/context.npz``.

    Args:
        annotations: ``{video_id: VideoAnnotation}`` (with their scene: vehicle and traffic).
        frames_of: a row's window frames (``Window.frames`` of an intent sequence; the track's
            extracted frames from start to end of an action one).
        sample_type: the build's (``beh`` for action builds: behaviour pedestrians only).

    Returns:
        The manifest's ``context`` record.
    """
    groups = default_features(sample_type)
    arrays: dict[str, list] = {}
    for row in rows:
        annotation = annotations[row["video_id"]]
        features = window_features(annotation, annotation.track(row["track_id"]), frames_of(row), groups)
        split = row["split"]
        arrays.setdefault(f"{split}__sequence_id", []).append(row["sequence_id"])
        for name in groups:
            arrays.setdefault(f"{split}__{name}", []).append(features[name])
    np.savez(folder / CONTEXT_FILE, **{key: np.array(values) if key.endswith("__sequence_id")
                                       else np.stack(values).astype(np.float32)
                                       for key, values in arrays.items()})
    return {"format": SEQUENCE_CONTEXT_FORMAT, "sample_type": sample_type, "file": CONTEXT_FILE,
            "groups": {name: list(FEATURE_GROUPS[name].columns) for name in groups}}


def sequence_sample_type(manifest: Mapping) -> str:
    """The sample type a sequence build's windows follow (action builds: behaviour pedestrians)."""
    return str((manifest.get("intent_options") or {}).get("sample_type") or "beh")


def load_sequence_context(home: str | os.PathLike | None, split: str, features: str | Sequence[str] | None,
                          sequence_ids: Sequence[str]) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """The chosen context groups of ``sequence_ids`` (one split of the sequence build), in order.

    Raises:
        ContextFeatureError: a leaky or unknown group (a behaviour one on a sample type ``all`` build).
        DataError: the build carries no context features (made before them) or lacks a sequence.
    """
    folder = paths(home).sequences
    manifest = read_json(folder / "manifest.json", None)
    manifest = manifest if isinstance(manifest, dict) else {}
    names = resolve_features(features, sequence_sample_type(manifest))  # leaks refused first
    record = manifest.get("context")
    path = folder / CONTEXT_FILE
    if not isinstance(record, dict) or record.get("format") != SEQUENCE_CONTEXT_FORMAT or not path.is_file():
        raise DataError(f"The ResNet sequence build in {folder} carries no context features (it was made "
                        "before they existed). Fix: rebuild it with `pedsense preprocess resnet` (same "
                        "options), or train without context_features.")
    absent = [name for name in names if name not in record.get("groups", {})]
    if absent:
        raise DataError(f"The ResNet sequence build has no {', '.join(absent)} context features "
                        f"(it has {', '.join(record.get('groups', {}))}). Fix: rebuild it with `{REBUILD}`.")
    with np.load(path, allow_pickle=False) as stored:
        if f"{split}__sequence_id" not in stored.files:
            raise DataError(f"{path} has no {split!r} sequences. Fix: rebuild with `{REBUILD}`.")
        position = {str(s): i for i, s in enumerate(stored[f"{split}__sequence_id"])}
        missing = [s for s in sequence_ids if s not in position]
        if missing:
            raise DataError(f"{len(missing)} {split} sequences of labels.csv have no context features in "
                            f"{path} (e.g. {missing[0]}): the build is inconsistent. Fix: rebuild it with "
                            f"`{REBUILD}`.")
        order = np.array([position[s] for s in sequence_ids], dtype=np.int64)
        return {name: stored[f"{split}__{name}"][order] for name in names}, names
