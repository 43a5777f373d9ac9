"""What a JAAD annotation is, once parsed: boxes, tracks, videos, and the rule for unusable boxes.

The vocabulary of JAAD's labels (``LABEL_CODES``), the data model the parser
(``pedsense.data.jaad``) fills in, :func:`box_problem` (the one rule for boxes no build may
label) and the conversion to the dict layout of JAAD's own interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pedsense.data.scene import SceneAnnotation

TRACK_LABELS = ("pedestrian", "ped", "people")
# The per-box behaviour labels of a behaviour track, as JAAD's interface collects them.
BEHAVIOUR_LABELS = ("action", "cross", "look", "nod", "hand_gesture", "reaction")

# JAAD's numeric codes for its text labels (the vocabularies in the XML ``<labels>`` block and
# in the attributes files). Only :meth:`VideoAnnotation.to_jaad_dict` uses them; everything else
# keeps the readable text.
LABEL_CODES: dict[str, dict[str, int]] = {
    "occlusion": {"none": 0, "part": 1, "full": 2},
    "action": {"standing": 0, "walking": 1},
    "nod": {"__undefined__": 0, "nodding": 1},
    "look": {"not-looking": 0, "looking": 1},
    "hand_gesture": {"__undefined__": 0, "greet": 1, "yield": 2, "rightofway": 3, "other": 4},
    "reaction": {"__undefined__": 0, "clear_path": 1, "speed_up": 2, "slow_down": 3},
    "cross": {"not-crossing": 0, "crossing": 1, "irrelevant": -1},
    "age": {"child": 0, "young": 1, "adult": 2, "senior": 3},
    "designated": {"ND": 0, "D": 1},
    "gender": {"n/a": 0, "female": 1, "male": 2},
    "intersection": {"no": 0, "yes": 1},
    "motion_direction": {"n/a": 0, "LAT": 1, "LONG": 2},
    "traffic_direction": {"OW": 0, "TW": 1},
    "signalized": {"n/a": 0, "NS": 1, "S": 2},
}

# The per-box labels pedsense's builds read; a value outside JAAD's vocabulary (LABEL_CODES)
# leaves the box out rather than being coerced to a class.
CHECKED_LABELS = ("cross", "occlusion", "action", "look")
# Why a box is left out (besides ``unknown_<label>``, one per CHECKED_LABELS entry).
INVERTED_BOX = "inverted_box"      # xtl > xbr or ytl > ybr
EMPTY_BOX = "empty_box"            # zero width or height
OUTSIDE_IMAGE = "outside_image"    # no pixel inside the frame
REJECT_REASON_TEXT = {
    INVERTED_BOX: "inverted corners (xtl > xbr or ytl > ybr)",
    EMPTY_BOX: "zero width or height",
    OUTSIDE_IMAGE: "wholly outside the image",
    **{f"unknown_{name}": f"unknown `{name}` value" for name in CHECKED_LABELS},
}


@dataclass(slots=True)
class BoundingBox:
    """One visible box of one track in one frame, in pixels of the original frame."""

    frame: int
    xtl: float
    ytl: float
    xbr: float
    ybr: float
    occluded: bool = False        # CVAT ``occluded`` flag
    occlusion: str = "none"       # JAAD ``occlusion`` attribute: none | part | full
    action: str | None = None     # standing | walking (behaviour tracks only)
    cross: str | None = None      # crossing | not-crossing (behaviour tracks only)
    look: str | None = None       # looking | not-looking (behaviour tracks only)
    extra: dict = field(default_factory=dict)  # every other attribute: id, old_id, nod, keyframe...

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2): top-left and bottom-right corners."""
        return (self.xtl, self.ytl, self.xbr, self.ybr)


@dataclass(slots=True)
class Track:
    """One pedestrian (``pedestrian`` / ``ped``) or group (``people``) through the video."""

    label: str
    track_id: str
    boxes: list[BoundingBox] = field(default_factory=list)
    attributes: dict = field(default_factory=dict)  # from the attributes file; {} when none
    old_id: str = ""
    _by_frame: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def frames(self) -> list[int]:
        return [box.frame for box in self.boxes]

    @property
    def is_behavioural(self) -> bool:
        """Whether the boxes carry behaviour labels (JAAD's rule: ``pedestrian`` in ``old_id``)."""
        return _has_behaviour(self.label, self.old_id)

    @property
    def crossing(self) -> int | None:
        """Track-level ``crossing``: 1 crosses, 0 not, -1 irrelevant; None without attributes."""
        return _int_or_none(self.attributes.get("crossing"))

    @property
    def crossing_point(self) -> int | None:
        """Frame where the pedestrian starts crossing (or -1); None without attributes."""
        return _int_or_none(self.attributes.get("crossing_point"))

    def box_at(self, frame: int) -> BoundingBox | None:
        """The visible box in ``frame``, or None."""
        if self._by_frame is None:
            self._by_frame = {box.frame: box for box in self.boxes}
        return self._by_frame.get(frame)


@dataclass(frozen=True, slots=True)
class RejectedBox:
    """A box the parser left out of its track because no build may label it (:func:`box_problem`)."""

    track_id: str
    frame: int
    reason: str  # a key of REJECT_REASON_TEXT
    detail: str  # what is wrong, e.g. "cross='maybe' is not one of ..."


@dataclass(slots=True)
class VideoAnnotation:
    """A parsed ``video_XXXX.xml``."""

    video_id: str
    num_frames: int
    width: int
    height: int
    time_of_day: str = ""
    weather: str = ""
    location: str = ""
    tracks: list[Track] = field(default_factory=list)
    source: str = ""  # the XML file it came from
    rejected_boxes: list[RejectedBox] = field(default_factory=list)
    attributes_error: str = ""  # why the attributes file could not be read ("" when it could)
    # ego action and traffic scene per frame (``pedsense.data.scene``); None when not loaded
    scene: SceneAnnotation | None = None

    @property
    def num_boxes(self) -> int:
        return sum(len(track.boxes) for track in self.tracks)

    def track(self, track_id: str) -> Track | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)

    def boxes_by_frame(self) -> dict[int, list[tuple[Track, BoundingBox]]]:
        """``{frame: [(track, box), ...]}`` for every frame with at least one visible box."""
        index: dict[int, list[tuple[Track, BoundingBox]]] = {}
        for track in self.tracks:
            for box in track.boxes:
                index.setdefault(box.frame, []).append((track, box))
        return dict(sorted(index.items()))

    def to_jaad_dict(self) -> dict:
        """This video in the layout of the official interface's ``generate_database()`` entry.

        ``ped_annotations[id]`` holds ``old_id, frames, bbox, occlusion`` (codes), ``behavior``
        (per-box codes, ``{}`` for non-behaviour tracks) and ``attributes`` (codes, ``{}`` when
        none). Vehicle, traffic and appearance annotations are not part of it.
        """
        return {"num_frames": self.num_frames, "width": self.width, "height": self.height,
                "ped_annotations": {t.track_id: _track_to_jaad(t) for t in self.tracks}}


def box_problem(box: BoundingBox, width: float, height: float) -> tuple[str, str] | None:
    """Why no build may label ``box``, as ``(reason, detail)``; None for a usable box.

    The one rule every build follows (the parser applies it): a ``cross``, ``occlusion``,
    ``action`` or ``look`` value outside JAAD's vocabulary (``unknown_<label>``; never coerced
    to a class), inverted corners, zero width or height, or no pixel inside the
    ``width`` x ``height`` image (not checked when the size is unknown, <= 0). A box that only
    sticks out of the image is fine: the builds clip it.
    """
    for name in CHECKED_LABELS:
        value = getattr(box, name)
        if value is not None and value not in LABEL_CODES[name]:
            return f"unknown_{name}", f"{name}={value!r} is not one of {', '.join(LABEL_CODES[name])}"
    if box.xtl > box.xbr or box.ytl > box.ybr:
        detail = (f"xtl {box.xtl} > xbr {box.xbr}" if box.xtl > box.xbr
                  else f"ytl {box.ytl} > ybr {box.ybr}")
        return INVERTED_BOX, detail
    if box.xtl == box.xbr or box.ytl == box.ybr:
        return EMPTY_BOX, "zero width" if box.xtl == box.xbr else "zero height"
    if width > 0 and height > 0 and (box.xbr <= 0 or box.ybr <= 0 or box.xtl >= width
                                     or box.ytl >= height):
        return OUTSIDE_IMAGE, (f"corners {box.xyxy} lie outside the {width:g}x{height:g} image")
    return None


# -- small helpers --------------------------------------------------------------------------
def _has_behaviour(label: str, old_id: str) -> bool:
    if old_id:
        return "pedestrian" in old_id
    return label == "pedestrian"  # no old_id at all: fall back on the label


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _int_or_text(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def _code(name: str, value) -> int | str:
    """JAAD's numeric code for a label text; ints and unknown texts are returned unchanged."""
    if isinstance(value, int):
        return value
    return LABEL_CODES.get(name, {}).get(value, value)


def _track_to_jaad(track: Track) -> dict:
    behaviour: dict[str, list] = {}
    if track.is_behavioural:
        for name in BEHAVIOUR_LABELS:
            behaviour[name] = [_code(name, _box_label(box, name)) for box in track.boxes]
    attributes = {}
    if track.attributes:
        attributes = {k: (v if k == "old_id" else _code(k, v)) for k, v in track.attributes.items()}
    return {"old_id": track.old_id, "frames": track.frames,
            "bbox": [list(box.xyxy) for box in track.boxes],
            "occlusion": [_code("occlusion", box.occlusion) for box in track.boxes],
            "behavior": behaviour, "attributes": attributes}


def _box_label(box: BoundingBox, name: str):
    if name in ("action", "cross", "look"):
        return getattr(box, name)
    return box.extra.get(name)
