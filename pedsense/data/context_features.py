"""The context family's feature catalogue: what a model may learn from JAAD's annotations alone.

Interface (the context build and the context trainer rely on it)::

    FEATURE_GROUPS            ordered {name: FeatureGroup}: box, vehicle, traffic, history, behaviour;
                              each with .columns (one per feature), .needs, .behaviour_only ...
    resolve_features(names, sample_type) -> tuple[str, ...]
                              None -> every group the sample type allows (beh: all five;
                              all: box, vehicle, traffic, history); raises ContextFeatureError naming
                              unknown names (with the valid ones), label leaks, and on
                              sample type "all" behaviour features ("presence leak")
    window_features(annotation, track, frames, groups) -> {group: (T, D) float32}
                              T = len(frames) - 1: the window's first frame is the reference
                              the box offsets start from, and is dropped (the benchmark's
                              normalisation), for every group alike

    pedsense.data.context_format: build_context(home, *, intent=IntentOptions(...)) -> Path,
        load_context_split(home, split, *, sample_type=None) -> ContextWindows (groups (N, T, D),
        labels (N,), windows table, columns, sample_type, intent, frames, boxes_xyxy;
        .select(features) drops windows whose selected features are all unknown),
        context_path(home, sample_type) (the build's folder), context_manifest_path(home,
        sample_type=None), context_manifest(home, sample_type) (checked: not built / older build)

One declaration per feature group (as ``pedsense.train.params`` declares parameters): what it
reads, the file it needs, the column that says "unknown", and what it may never be combined
with. Two guards live here and nowhere else:

- **Label leaks** (:data:`FORBIDDEN_INPUTS`): the ``crossing`` attribute (the label),
  ``crossing_point`` and ``decision_point`` (where the windows count back from), the per-frame
  ``cross`` and ``reaction``, and anything after the window's last frame (``tte``, the event)
  are never inputs. :func:`window_features` reads the window's own frames, and for ``history``
  the track's boxes before them: never a frame after the window's last.
- **Presence leak**: the benchmark labels every ``ped`` bystander "not crossing" on JAAD_all,
  and only behaviour pedestrians have tags and attributes, so on sample type ``all`` "has tags"
  alone predicts the label. Behaviour features (and attributes) are refused there.

Unknown values are never guessed: each group has explicit ``*_unknown`` columns (1 on a frame
whose value is unknown: no file, a frame the file lacks, a value outside JAAD's vocabulary).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pedsense.data.intent import SAMPLE_TYPES
from pedsense.data.scene import ROAD_TYPES, SCENE_FLAGS, TRAFFIC_LIGHTS, VEHICLE_ACTIONS
from pedsense.errors import ConfigError


class ContextFeatureError(ConfigError):
    """A feature the context family may not use (unknown, a label leak, a presence leak)."""


@dataclass(frozen=True)
class FeatureGroup:
    """One feature group: its columns, what it reads and needs, and where it is refused."""

    name: str
    columns: tuple[str, ...]
    summary: str
    reads: tuple[str, ...]            # annotation fields, all within the window's frames
    needs: str                        # the annotation folder it comes from
    unknown_columns: tuple[str, ...]  # a frame is unknown when all of these are 1 (() never)
    behaviour_only: bool = False      # exists only for behaviour pedestrians
    refused_on: tuple[str, ...] = ()  # sample types it may never be used with

    def allowed(self, sample_type: str) -> bool:
        return sample_type not in self.refused_on


_GESTURES = ("greet", "yield", "rightofway", "other")
HISTORY_STEPS = (15, 30, 60)  # frames back (JAAD: 30 fps) the `history` group looks, from each frame
JAAD_FPS = 30.0
FEATURE_GROUPS: dict[str, FeatureGroup] = {group.name: group for group in (
    FeatureGroup(
        "box", ("dx1", "dy1", "dx2", "dy2", "x1", "y1", "x2", "y2", "height"),
        "the pedestrian's box: corners' offsets from the window's first box (the benchmark's "
        "normalisation), the box itself and its height, all in fractions of the frame size",
        reads=("box",), needs="annotations/", unknown_columns=()),
    FeatureGroup(
        "vehicle", tuple(f"vehicle_{a}" for a in VEHICLE_ACTIONS) + ("vehicle_unknown",),
        "the ego-vehicle's action per frame (one-hot)",
        reads=("vehicle action",), needs="annotations_vehicle/",
        unknown_columns=("vehicle_unknown",)),
    FeatureGroup(
        "traffic", SCENE_FLAGS + ("flags_unknown",)
        + tuple(f"light_{'na' if v == 'n/a' else v}" for v in TRAFFIC_LIGHTS) + ("light_unknown",)
        + tuple(f"road_{v}" for v in ROAD_TYPES) + ("road_unknown",),
        "the traffic scene per frame: crosswalk, pedestrian sign, stop sign (0/1), traffic "
        "light and road type (one-hot)",
        reads=("road_type",) + SCENE_FLAGS + ("traffic_light",), needs="annotations_traffic/",
        unknown_columns=("flags_unknown", "light_unknown", "road_unknown")),
    FeatureGroup(
        "history", ("seen_s", "first_dx", "first_dy", "first_dh")
        + tuple(f"back{k}_{c}" for k in HISTORY_STEPS for c in ("dx", "dy", "dh", "seen")),
        "the track before each frame: seconds since the pedestrian was first seen (log), and the "
        f"first box and the boxes {', '.join(map(str, HISTORY_STEPS))} frames earlier relative to the "
        "frame's box (centre and bottom moves in frame fractions, log height ratio; `seen` 0 where "
        "the track had not started)",
        reads=("box",), needs="annotations/", unknown_columns=()),
    FeatureGroup(
        "behaviour", ("look_looking", "look_not_looking", "look_unknown", "action_walking",
                      "action_standing", "action_unknown", "nod_nodding", "nod_unknown")
        + tuple(f"gesture_{g}" for g in _GESTURES) + ("gesture_unknown",),
        "the pedestrian's observed behaviour per frame: looking, walking/standing, nodding, "
        "hand gesture (one-hot)",
        reads=("look", "action", "nod", "hand_gesture"), needs="annotations/ (behaviour tracks)",
        unknown_columns=("look_unknown", "action_unknown"), behaviour_only=True,
        refused_on=("all",)),
)}

# Never an input, whatever the sample type: each leaks the label or the future.
FORBIDDEN_INPUTS: dict[str, str] = {
    "crossing": "it is the label itself (the track-level `crossing` attribute)",
    "crossing_point": "it is the event frame the windows count back from",
    "decision_point": "it marks when the pedestrian decided, which comes with the label",
    "cross": "the per-frame `cross` tag says whether the pedestrian is crossing",
    "reaction": "it describes the pedestrian's reaction during the crossing event",
    "tte": "it is measured from the event, after the window's last frame",
    "event_frame": "it is after the window's last frame",
    "future": "frames after the window's last frame are never inputs",
}
# Annotated only for behaviour pedestrians: on sample type "all", their presence is the label.
BEHAVIOUR_ONLY_INPUTS = ("look", "action", "nod", "hand_gesture", "age", "gender", "designated",
                         "intersection", "motion_direction", "traffic_direction", "signalized",
                         "num_lanes", "group_size", "attributes", "tags")
PRESENCE_LEAK = ("presence leak: on sample type 'all' the benchmark labels every `ped` bystander "
                 "not-crossing, and only behaviour pedestrians have tags and attributes, so "
                 "whether they exist predicts the label (a rule doing only that scores about 0.90 "
                 "accuracy on JAAD_all test)")


def default_features(sample_type: str) -> tuple[str, ...]:
    """Every group the sample type allows (beh: all five; all: box, vehicle, traffic, history)."""
    _check_sample_type(sample_type)
    return tuple(name for name, group in FEATURE_GROUPS.items() if group.allowed(sample_type))


def resolve_features(names: str | Sequence[str] | None, sample_type: str) -> tuple[str, ...]:
    """The feature groups to use, in catalogue order.

    Args:
        names: group names, as a sequence or comma-separated text; None (or empty) for
            :func:`default_features`.
        sample_type: the build's ``beh`` or ``all``.

    Raises:
        ContextFeatureError: an unknown name (the valid ones listed), a forbidden input (why it
            leaks the label), or a behaviour feature on sample type ``all`` ("presence leak").
    """
    defaults = default_features(sample_type)
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",")]
    wanted = [name for name in (names or ()) if name]
    if not wanted:
        return defaults
    valid = ", ".join(FEATURE_GROUPS)
    for name in wanted:
        if name in FORBIDDEN_INPUTS:
            raise ContextFeatureError(f"`{name}` can never be a context feature: "
                                      f"{FORBIDDEN_INPUTS[name]}. Use some of: {valid}.")
        behavioural = name in BEHAVIOUR_ONLY_INPUTS or (
            name in FEATURE_GROUPS and FEATURE_GROUPS[name].behaviour_only)
        if behavioural and sample_type == "all":
            raise ContextFeatureError(
                f"`{name}` is refused on sample type 'all': {PRESENCE_LEAK}. Use "
                f"{', '.join(defaults)} on 'all', or build with --sample-type beh.")
        if name not in FEATURE_GROUPS:
            where = " (it is part of the `behaviour` group)" if name in BEHAVIOUR_ONLY_INPUTS[:4] else ""
            raise ContextFeatureError(f"Unknown context feature `{name}`{where}. Valid feature "
                                      f"groups: {valid}.")
    return tuple(name for name in FEATURE_GROUPS if name in wanted)


def _check_sample_type(sample_type: str) -> None:
    if sample_type not in SAMPLE_TYPES:
        raise ContextFeatureError(f"sample_type must be one of {', '.join(SAMPLE_TYPES)}; "
                                  f"got {sample_type!r}.")


# -- one window's features --------------------------------------------------------------------
def window_features(annotation, track, frames: Sequence[int],
                    groups: Sequence[str]) -> dict[str, np.ndarray]:
    """The features of one window, per group.

    Args:
        annotation: a ``VideoAnnotation`` (its ``scene`` may be None: vehicle and traffic unknown).
        track: the pedestrian's ``Track``; it must have a box in every one of ``frames``.
        frames: the window's frames (``Window.frames``); nothing after the last is read (``history``
            reads the track's boxes before the first).
        groups: names from :data:`FEATURE_GROUPS`.

    Returns:
        ``{group: array (len(frames) - 1, len(columns)) float32}``: the first frame is the
        reference of the box offsets and is dropped from every group.
    """
    frames = list(frames)
    boxes = [track.box_at(frame) for frame in frames]
    if any(box is None for box in boxes):
        missing = [f for f, b in zip(frames, boxes) if b is None]
        raise ValueError(f"track {track.track_id} has no box in frames {missing[:5]}")
    builders = {"box": _box, "vehicle": _vehicle, "traffic": _traffic, "behaviour": _behaviour,
                "history": lambda a, b, f: _history(a, track, b, f)}
    return {name: builders[name](annotation, boxes, frames)[1:] for name in groups}


def _box(annotation, boxes, frames) -> np.ndarray:
    size = np.array([annotation.width, annotation.height] * 2, dtype=np.float64)
    xyxy = np.array([box.xyxy for box in boxes], dtype=np.float64) / size
    offsets = xyxy - xyxy[0]
    height = (xyxy[:, 3] - xyxy[:, 1])[:, None]
    return np.hstack([offsets, xyxy, height]).astype(np.float32)


def _history(annotation, track, boxes, frames) -> np.ndarray:
    """Per frame: log seconds since the track's first box; the first box and the boxes
    ``HISTORY_STEPS`` frames back, each relative to the frame's own box. Only boxes at or before
    the frame are read."""
    first = track.boxes[0]
    rows = []
    for frame, box in zip(frames, boxes):
        row = [np.log1p(max(0, frame - first.frame) / JAAD_FPS), *_relative(first, box, annotation)]
        for k in HISTORY_STEPS:
            then = track.box_at(frame - k)
            row += [*_relative(then, box, annotation), 1.0] if then is not None else [0.0] * 4
        rows.append(row)
    return np.array(rows, dtype=np.float32)


def _relative(then, now, annotation) -> list[float]:
    """``then``'s centre-x and bottom moves to ``now`` (frame fractions), and log height ratio."""
    centre = ((then.xtl + then.xbr) - (now.xtl + now.xbr)) / 2 / annotation.width
    bottom = (then.ybr - now.ybr) / annotation.height
    ratio = max(then.ybr - then.ytl, 1.0) / max(now.ybr - now.ytl, 1.0)
    return [float(centre), float(bottom), float(np.clip(np.log(ratio), -3.0, 3.0))]


def _one_hot(values: Sequence, vocabulary: Sequence) -> np.ndarray:
    """(len(values), len(vocabulary) + 1): the last column is "unknown" (a value outside it)."""
    index = {value: i for i, value in enumerate(vocabulary)}
    out = np.zeros((len(values), len(vocabulary) + 1), dtype=np.float32)
    out[np.arange(len(values)), [index.get(v, len(vocabulary)) for v in values]] = 1.0
    return out


def _at(values: list, frames: Sequence[int]) -> list:
    return [values[f] if 0 <= f < len(values) else None for f in frames]


def _vehicle(annotation, boxes, frames) -> np.ndarray:
    scene = annotation.scene
    actions = _at(scene.vehicle, frames) if scene is not None else [None] * len(frames)
    return _one_hot(actions, VEHICLE_ACTIONS)


def _traffic(annotation, boxes, frames) -> np.ndarray:
    scene = annotation.scene
    n = len(frames)
    if scene is None:
        flags = np.zeros((n, len(SCENE_FLAGS) + 1), dtype=np.float32)
        flags[:, -1] = 1.0
        return np.hstack([flags, _one_hot([None] * n, TRAFFIC_LIGHTS), _one_hot([None] * n, ROAD_TYPES)])
    values = np.array([_at(scene.flag(name), frames) for name in SCENE_FLAGS], dtype=object).T
    known = np.array([[v is not None for v in row] for row in values]).all(axis=1)
    flags = np.where(known[:, None], np.where(values == 1, 1.0, 0.0), 0.0).astype(np.float32)
    flags = np.hstack([flags, (~known)[:, None].astype(np.float32)])
    lights = _one_hot(_at(scene.traffic_light, frames), TRAFFIC_LIGHTS)
    road = _one_hot([scene.road_type] * n, ROAD_TYPES)
    return np.hstack([flags, lights, road])


def _behaviour(annotation, boxes, frames) -> np.ndarray:
    look = _one_hot([box.look for box in boxes], ("looking", "not-looking"))
    action = _one_hot([box.action for box in boxes], ("walking", "standing"))
    nods = [box.extra.get("nod") for box in boxes]
    nod = np.array([[v == "nodding", v not in ("nodding", "__undefined__")] for v in nods],
                   dtype=np.float32)
    gesture = _one_hot([_gesture(box.extra.get("hand_gesture")) for box in boxes], _GESTURES)
    gesture[[i for i, box in enumerate(boxes) if box.extra.get("hand_gesture") == "__undefined__"],
            -1] = 0.0  # "__undefined__" is JAAD's "no gesture": known, every gesture column 0
    return np.hstack([look, action, nod, gesture])


def _gesture(value):
    return value if value in _GESTURES else None
