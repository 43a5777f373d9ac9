"""JAAD's per-frame scene: the ego-vehicle's action and the traffic scene of each video.

``annotations_vehicle/video_XXXX_vehicle.xml``::

    <vehicle_info><frame id="0" action="moving_slow"/> ...</vehicle_info>

``annotations_traffic/video_XXXX_traffic.xml``::

    <traffic_scene><road_type>street</road_type>
      <frame id="0" ped_crossing="0" ped_sign="0" stop_sign="1" traffic_light="n/a"/> ...

Parsed with the parser's usual strictness (``pedsense.data.jaad``): a missing or unreadable file
leaves that video's scene unknown (``SceneAnnotation.vehicle_error`` / ``traffic_error`` say
why; the context build counts and shows them), never guessed. A value outside JAAD's
vocabulary (``SCENE_CODES``) is unknown on that frame and a warning names the file and frames;
a frame id beyond the video's frame count is reported (and ignored); a frame the file does not
cover is unknown.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pedsense.data.xml_read import _frames_text, _parse_small_xml
from pedsense.errors import AnnotationError

log = logging.getLogger(__name__)

# JAAD's vocabularies (jaad_data.py, ``_map_text_to_scalar``), in its code order.
VEHICLE_ACTIONS = ("stopped", "moving_slow", "moving_fast", "decelerating", "accelerating")
ROAD_TYPES = ("street", "parking_lot", "garage")
TRAFFIC_LIGHTS = ("n/a", "red", "green")
SCENE_FLAGS = ("ped_crossing", "ped_sign", "stop_sign")  # 0/1 per frame
SCENE_CODES = {"vehicle": VEHICLE_ACTIONS, "road_type": ROAD_TYPES, "traffic_light": TRAFFIC_LIGHTS}
MISSING_FILE = "missing file"


@dataclass(slots=True)
class SceneAnnotation:
    """One video's ego action and traffic scene, one entry per frame (index = frame).

    ``None`` marks an unknown value: no file, a frame the file lacks, or a value outside JAAD's
    vocabulary. ``vehicle_error`` / ``traffic_error`` say why a whole file is unknown ("" when
    it was read); ``problems`` lists what was wrong inside the files (file and frames named).
    """

    num_frames: int
    vehicle: list[str | None] = field(default_factory=list)
    road_type: str | None = None
    ped_crossing: list[int | None] = field(default_factory=list)
    ped_sign: list[int | None] = field(default_factory=list)
    stop_sign: list[int | None] = field(default_factory=list)
    traffic_light: list[str | None] = field(default_factory=list)
    vehicle_error: str = MISSING_FILE
    traffic_error: str = MISSING_FILE
    problems: list[str] = field(default_factory=list)

    @classmethod
    def unknown(cls, num_frames: int) -> "SceneAnnotation":
        none = [None] * max(num_frames, 0)
        return cls(num_frames, vehicle=list(none), ped_crossing=list(none), ped_sign=list(none),
                   stop_sign=list(none), traffic_light=list(none))

    def flag(self, name: str) -> list[int | None]:
        return getattr(self, name)


def scene_files(annotations_dir: Path, video_id: str) -> tuple[Path, Path]:
    """``(vehicle file, traffic file)`` of a video, beside its ``annotations/`` folder."""
    raw = Path(annotations_dir).parent
    return (raw / "annotations_vehicle" / f"{video_id}_vehicle.xml",
            raw / "annotations_traffic" / f"{video_id}_traffic.xml")


def parse_scene(vehicle_path: str | os.PathLike | None, traffic_path: str | os.PathLike | None,
                num_frames: int) -> SceneAnnotation:
    """The scene of one video of ``num_frames`` frames from its two files (either may be None or
    missing: that part stays unknown). Problems are logged and kept in ``problems``."""
    scene = SceneAnnotation.unknown(num_frames)
    if vehicle_path is not None and Path(vehicle_path).is_file():
        scene.vehicle_error = _read(Path(vehicle_path), scene, _read_vehicle)
    if traffic_path is not None and Path(traffic_path).is_file():
        scene.traffic_error = _read(Path(traffic_path), scene, _read_traffic)
    for problem in scene.problems:
        log.warning(problem)
    return scene


def _read(path: Path, scene: SceneAnnotation, reader) -> str:
    """Run ``reader`` on ``path``; "" when read, else the reason the whole file is unknown."""
    try:
        root = _parse_small_xml(path)
    except AnnotationError as exc:
        scene.problems.append(f"{path}: unreadable, so its values are unknown for the video ({exc})")
        return str(exc)
    reader(root, path, scene)
    return ""


def _read_vehicle(root: ET.Element, path: Path, scene: SceneAnnotation) -> None:
    unknown: dict[str, list[int]] = defaultdict(list)
    beyond: list[int] = []
    seen: set[int] = set()
    for frame, element in _frames(root, path, scene, beyond, seen):
        action = element.get("action")
        if action in VEHICLE_ACTIONS:
            scene.vehicle[frame] = action
        else:
            unknown[repr(action)].append(frame)
    _report(path, scene, "action", unknown, beyond)
    _report_uncovered(path, scene, "ego action", seen)


def _read_traffic(root: ET.Element, path: Path, scene: SceneAnnotation) -> None:
    road = (root.findtext("road_type") or "").strip()
    if road in ROAD_TYPES:
        scene.road_type = road
    else:
        scene.problems.append(f"{path}: road_type {road!r} is not one of {', '.join(ROAD_TYPES)}; "
                              "the road type is unknown for the video")
    unknown: dict[str, list[int]] = defaultdict(list)
    beyond: list[int] = []
    seen: set[int] = set()
    for frame, element in _frames(root, path, scene, beyond, seen):
        light = element.get("traffic_light")
        if light in TRAFFIC_LIGHTS:
            scene.traffic_light[frame] = light
        else:
            unknown[f"traffic_light={light!r}"].append(frame)
        for name in SCENE_FLAGS:
            value = element.get(name)
            if value in ("0", "1"):
                scene.flag(name)[frame] = int(value)
            else:
                unknown[f"{name}={value!r}"].append(frame)
    _report(path, scene, "value", unknown, beyond)
    _report_uncovered(path, scene, "traffic scene", seen)


def _frames(root: ET.Element, path: Path, scene: SceneAnnotation, beyond: list[int],
            seen: set[int]):
    """``(frame, element)`` of each ``<frame>`` within the video; ids beyond it go in ``beyond``,
    those yielded in ``seen``."""
    for element in root.iter("frame"):
        frame = _frame_id(element, path, scene)
        if frame is None:
            continue
        if frame >= scene.num_frames:
            beyond.append(frame)
            continue
        seen.add(frame)
        yield frame, element


def _frame_id(element: ET.Element, path: Path, scene: SceneAnnotation) -> int | None:
    try:
        frame = int(element.get("id", ""))
    except ValueError:
        scene.problems.append(f"{path}: a <frame> has id {element.get('id')!r}, not a frame "
                              "number; it is ignored")
        return None
    return frame if frame >= 0 else None


def _report(path: Path, scene: SceneAnnotation, what: str, unknown: dict[str, list[int]],
            beyond: list[int]) -> None:
    for value, frames in unknown.items():
        scene.problems.append(f"{path}: unknown {what} {value} on {_frames_text(frames)}; "
                              "left unknown there (not guessed)")
    if beyond:
        scene.problems.append(f"{path}: {_frames_text(beyond)} beyond the video's {scene.num_frames} "
                              "frames; ignored")


def _report_uncovered(path: Path, scene: SceneAnnotation, what: str, seen: set[int]) -> None:
    """Name the video's frames the file has no ``<frame>`` for (their values stay unknown)."""
    missing = [frame for frame in range(scene.num_frames) if frame not in seen]
    if missing:
        scene.problems.append(f"{path}: no {what} for {_frames_text(missing)} of the video's "
                              f"{scene.num_frames} frames; unknown there")
