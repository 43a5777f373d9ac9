"""The synthetic demo set: JAAD-format clips and annotations of stick figures on a drawn street.

``make_demo_dataset()`` writes, under ``<home>/data/raw/``, everything JAAD's official python
interface (``jaad_data.py``) reads, in JAAD's own formats:

- ``clips/video_XXXX.mp4`` (OpenCV ``mp4v``; its frame count equals the XML's ``size``),
- ``annotations/video_XXXX.xml`` (CVAT XML: ``pedestrian`` tracks with every behaviour attribute,
  ``ped`` bystander tracks, occlusion, ``outside="1"`` boxes where a bystander leaves the frame),
- ``annotations_attributes/``, ``annotations_appearance/``, ``annotations_traffic/``,
  ``annotations_vehicle/`` (one file per video) and ``split_ids/{default,high_visibility,all_videos}/``,
- ``SYNTHETIC_DEMO.json``: the marker that labels the set as synthetic (``is_synthetic()``).

Each video is planned in metres (``pedsense.data.synthetic_scene`` draws it): *crossers* walk
along a sidewalk, may wait at the curb, then cross the road; *waiters* walk to the curb and stay
or turn away; *walkers* and ``ped`` *bystanders* keep to the sidewalks. ``cross="crossing"``
holds exactly while a person's feet are on the asphalt. Every crosser is in view for at least
``MIN_PRE_EVENT_FRAMES`` frames before its ``crossing_point`` (the frame it steps onto the road),
and every non-crosser has a reference ``crossing_point`` as deep into its track, so the JAAD
intent protocol (16 observed frames ending 30-60 frames before the event) has windows of both
classes. Everything is drawn from ``numpy`` generators seeded by ``(seed, video)``: the same
seed gives byte-identical XML and identical frames.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from pedsense.config import Paths, paths
from pedsense.data import synthetic_scene as scene
from pedsense.errors import ConfigError, DataError
from pedsense.io import read_json, write_json_atomic, write_text_atomic

MARKER_NAME = "SYNTHETIC_DEMO.json"
FORMAT_VERSION = 1
DEFAULT_NUM_FRAMES = 300
DEFAULT_WIDTH, DEFAULT_HEIGHT = 640, 360
# The intent protocol observes 16 frames ending up to 60 frames before the crossing point;
# 80 leaves a small margin.
MIN_PRE_EVENT_FRAMES = 80
SPLIT_SETS = ("default", "high_visibility", "all_videos")
SYNTHETIC_NOTE = ("Synthetic JAAD-format demo set drawn by pedsense (stick figures on a drawn street). "
                  "It is NOT JAAD data: results on it say nothing about real pedestrians.")
# Fixed, so the same seed gives byte-identical XML.
TIMESTAMP = "2025-01-01 00:00:00.000000+00:00"

ProgressFn = Callable[[int, int, str], None]


# ============================================================================================
# Motion scripts: who walks where
# ============================================================================================


@dataclass(frozen=True)
class Leg:
    """One piece of a route: walk to ``to`` = (X, Z) metres, or stand there, for ``frames``.

    ``look``: share of the leg spent looking at the ego vehicle; ``face``: image facing while
    standing (+1 right, -1 left, 0 keep the walking direction).
    """

    kind: str
    to: tuple[float, float]
    frames: int
    look: float
    face: int = 0


class Route:
    """A person's legs, built in order; ``marks`` records the frame at which named moments start."""

    def __init__(self, start: tuple[float, float], start_frame: int, speed: float):
        self.start, self.start_frame, self.speed = start, start_frame, speed
        self.legs: list[Leg] = []
        self.pos = start
        self.length = 0
        self.marks: dict[str, int] = {}

    def walk(self, x: float, z: float, look: float = 0.15) -> "Route":
        frames = max(1, int(math.ceil(math.hypot(x - self.pos[0], z - self.pos[1]) / self.speed)))
        return self._add(Leg("walk", (x, z), frames, look))

    def stand(self, frames: int, look: float, face: int = 0) -> "Route":
        return self._add(Leg("stand", self.pos, max(1, int(frames)), look, face))

    def mark(self, name: str) -> "Route":
        self.marks[name] = self.start_frame + self.length
        return self

    def _add(self, leg: Leg) -> "Route":
        self.legs.append(leg)
        self.pos = leg.to
        self.length += leg.frames
        return self


@dataclass
class Person:
    """One planned person and their per-frame state (arrays over the video's frames)."""

    role: str  # crosser | waiter | walker | bystander
    child: bool
    style: scene.FigureStyle
    route: Route
    designated: bool = False
    present: np.ndarray = field(default=None)  # (N,) bool
    x: np.ndarray = field(default=None)  # (N,) metres
    z: np.ndarray = field(default=None)  # (N,) metres
    moving: np.ndarray = field(default=None)  # (N,) bool
    facing: np.ndarray = field(default=None)  # (N,) int8
    away: np.ndarray = field(default=None)  # (N,) bool
    phase: np.ndarray = field(default=None)  # (N,) radians
    looking: np.ndarray = field(default=None)  # (N,) bool
    event: int = -1  # planned crossing_point of a non-crosser

    @property
    def behaviour(self) -> bool:
        return self.role != "bystander"


def _look_track(rng: np.random.Generator, frames: int, share: float, state: bool) -> tuple[list[bool], bool]:
    """Glances in bursts (mean ~20 frames) that fill about ``share`` of ``frames``."""
    out = []
    share = min(max(share, 0.0), 0.95)
    on_rate = share / max(1e-6, 1 - share) / 20.0
    for _ in range(frames):
        state = (rng.random() >= 1 / 20.0) if state else (rng.random() < on_rate)
        out.append(state)
    return out, state


def _walk_step(start, leg: Leg, k: int, pos) -> tuple[tuple[float, float], float, int, bool]:
    """Position after step ``k`` of a walk leg, the distance walked, and the facing it gives."""
    new = (start[0] + (leg.to[0] - start[0]) * k / leg.frames, start[1] + (leg.to[1] - start[1]) * k / leg.frames)
    dx, dz = new[0] - pos[0], new[1] - pos[1]
    if abs(dx) >= 0.5 * abs(dz):  # mostly sideways in the image: seen from the side
        return new, math.hypot(dx, dz), (1 if dx > 0 else -1), False
    return new, math.hypot(dx, dz), 0, dz > 0


def simulate(person: Person, num_frames: int, rng: np.random.Generator) -> None:
    """Fill the person's per-frame arrays by walking the route frame by frame."""
    n = num_frames
    person.present = np.zeros(n, bool)
    person.x, person.z, person.phase = np.zeros(n), np.zeros(n), np.zeros(n)
    person.moving, person.away, person.looking = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    person.facing = np.zeros(n, np.int8)
    route = person.route
    t, pos, phase, facing, away, look_state = route.start_frame, route.start, 0.0, 1, False, False
    for leg in route.legs:
        looks, look_state = _look_track(rng, leg.frames, leg.look, look_state)
        start = pos
        for k in range(1, leg.frames + 1):
            if leg.kind == "walk":
                pos, walked, facing, away = _walk_step(start, leg, k, pos)
                phase += 2 * math.pi * walked / 1.4  # one stride cycle per 1.4 m
            elif leg.face:
                facing, away = leg.face, False
            t += 1
            if 0 <= t < n:
                person.present[t] = True
                person.x[t], person.z[t] = pos
                person.phase[t] = phase
                person.moving[t], person.facing[t], person.away[t] = leg.kind == "walk", facing, away
                person.looking[t] = looks[k - 1]
    _fill_start_frame(person, route, n)


def _fill_start_frame(person: Person, route: Route, n: int) -> None:
    """The route's first position is on stage too (when inside the video)."""
    t = route.start_frame
    if 0 <= t < n and not person.present[t]:
        person.present[t] = True
        person.x[t], person.z[t] = route.start
        nxt = min(t + 1, n - 1)
        person.moving[t], person.facing[t], person.away[t] = person.moving[nxt], person.facing[nxt], person.away[nxt]


def _in_view(person: Person, street: scene.Street) -> np.ndarray:
    """(N,) bool: the feet are inside the image (a conservative 'visible' before drawing)."""
    z = np.where(person.present, person.z, 1.0)
    fx = street.centre_x + street.focal * (person.x - street.camera_x) / z
    fy = street.horizon + street.focal * street.camera_height / z
    return person.present & (fx >= 0) & (fx < street.width) & (fy < street.height) & (z > 1.0)


# --------------------------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------------------------


def _speed(rng: np.random.Generator, fps: float, child: bool) -> float:
    """Walking speed in metres per frame (1.1-1.6 m/s; children a little slower)."""
    return float(rng.uniform(1.1, 1.6)) * (0.85 if child else 1.0) / fps


def _cross_z(street: scene.Street, rng: np.random.Generator, designated: bool) -> float:
    z0, z1 = street.crosswalk
    if designated:
        return float(rng.uniform(z0 + 0.4, z1 - 0.4))
    lo, hi = (9.0, z0 - 2.0) if rng.random() < 0.5 else (z1 + 2.0, 26.0)
    return float(rng.uniform(lo, max(lo + 0.5, hi)))


def plan_crosser(street, rng, num_frames, fps, min_pre, child=False) -> Person:
    """Walk along a sidewalk, turn to the curb, maybe wait, cross, walk on along the other side."""
    side = 1 if rng.random() < 0.5 else -1
    designated = rng.random() < 0.8
    z_cross = _cross_z(street, rng, designated)
    speed = _speed(rng, fps, child)
    lane = street.lane_x(side, float(rng.uniform(0.2, 0.9)))
    wait = 0 if rng.random() < 0.35 else int(rng.integers(8, 50))
    cross_frames = int(2 * street.road_half / speed)
    latest = max(min_pre + 5, num_frames - cross_frames // 2 - 10)
    pre = int(rng.integers(min_pre + 4, max(min_pre + 5, min(min_pre + 110, latest))))
    turn = abs(lane - street.curb_x(side)) / speed
    walk_frames = max(8, pre - wait - int(turn))
    towards_camera = rng.random() < 0.6
    z_start = z_cross + (1 if towards_camera else -1) * walk_frames * speed
    route = Route((lane, z_start), -int(rng.integers(0, 4)), speed)
    route.walk(lane, z_cross, look=0.12).mark("decision")
    route.walk(street.curb_x(side), z_cross, look=0.5)
    if wait:
        route.stand(wait, look=0.85, face=-side)
    drift = float(rng.uniform(-0.6, 0.6))
    if rng.random() < 0.2:  # a pause on the centre line, still on the road
        route.walk(0.0, z_cross + drift / 2, look=0.3).stand(int(rng.integers(8, 25)), look=0.7, face=-side)
    route.walk(street.curb_x(-side), z_cross + drift, look=0.3)
    other_lane = street.lane_x(-side, float(rng.uniform(0.2, 0.9)))
    onward = 1 if rng.random() < 0.5 else -1
    route.walk(other_lane, z_cross + drift + onward * 0.8, look=0.1)
    route.walk(other_lane, z_cross + drift + onward * 25.0, look=0.08)
    return Person("crosser", child, scene.random_style(rng, child), route, designated=designated)


def plan_waiter(street, rng, num_frames, fps, min_pre, child=False) -> Person:
    """Walk to the curb and stand there looking at traffic; then stay, or turn away along the sidewalk."""
    side = 1 if rng.random() < 0.5 else -1
    z_wait = _cross_z(street, rng, rng.random() < 0.6)
    speed = _speed(rng, fps, child)
    lane = street.lane_x(side, float(rng.uniform(0.2, 0.9)))
    approach = int(rng.integers(20, max(21, min(110, num_frames // 3))))
    z_start = z_wait + (1 if rng.random() < 0.6 else -1) * approach * speed
    route = Route((lane, z_start), -int(rng.integers(0, 4)), speed)
    route.walk(lane, z_wait, look=0.15).mark("decision")
    route.walk(street.curb_x(side), z_wait, look=0.5).mark("arrive")
    if rng.random() < 0.45:
        route.stand(num_frames, look=0.6, face=-side)
    else:
        route.stand(int(rng.integers(max(40, min_pre), max(41, min_pre + 100))), look=0.7, face=-side)
        onward = 1 if rng.random() < 0.5 else -1
        route.walk(lane, z_wait + onward * 0.8, look=0.1).walk(lane, z_wait + onward * 25.0, look=0.05)
    return Person("waiter", child, scene.random_style(rng, child), route)


def plan_walker(street, rng, num_frames, fps, min_pre, child=False, role="walker") -> Person:
    """Walk along a sidewalk, perhaps stopping for a while, never stepping onto the road."""
    side = 1 if rng.random() < 0.5 else -1
    speed = _speed(rng, fps, child)
    lane = street.lane_x(side, float(rng.uniform(0.1, 0.95)))
    towards_camera = rng.random() < 0.5
    if role == "bystander" and rng.random() < 0.5:  # arrives later, from the edge or the distance
        start_frame = int(rng.integers(0, max(1, num_frames // 2)))
        z_start = float(rng.uniform(30.0, 38.0)) if towards_camera else street.visible_z(lane) - 1.0
    elif role == "bystander":  # already near, walking out of view (their track ends outside="1")
        start_frame, towards_camera = -int(rng.integers(0, 4)), True
        z_start = street.visible_z(lane) + float(rng.uniform(2.0, 8.0))
    else:
        start_frame = -int(rng.integers(0, 4))
        z_start = float(rng.uniform(20.0, 30.0)) if towards_camera else float(rng.uniform(street.visible_z(lane), 14.0))
    step = -1.0 if towards_camera else 1.0
    route = Route((lane, z_start), start_frame, speed)
    if rng.random() < 0.4:
        z_stop = z_start + step * float(rng.uniform(1.0, 5.0))
        route.walk(lane, z_stop, look=0.1).stand(int(rng.integers(20, 70)), look=0.15)
    route.walk(lane, z_start + step * 40.0, look=0.1)
    return Person(role, child, scene.random_style(rng, child), route)


ROLE_PLANNERS = {"crosser": plan_crosser, "waiter": plan_waiter, "walker": plan_walker}


def _event_ok(person: Person, street: scene.Street, num_frames: int, min_pre: int,
              rng: np.random.Generator) -> bool:
    """Check the timing the intent protocol needs; set a non-crosser's reference ``event``."""
    seen = np.flatnonzero(_in_view(person, street))
    if seen.size < 15:
        return False
    first, last = int(seen[0]), int(seen[-1])
    if person.role == "crosser":
        on_road = np.flatnonzero(person.present & (np.abs(person.x) < street.road_half))
        return on_road.size > 0 and int(on_road[0]) - first >= min_pre and int(on_road[0]) <= num_frames - 5
    if person.role == "bystander":
        return True
    anchor = person.route.marks.get("arrive", first) + int(rng.integers(0, 25))
    event = max(anchor, first + min_pre + int(rng.integers(0, 30)))
    if event > last - 5:
        return False
    person.event = event
    return True


def plan_person(role: str, street: scene.Street, rng: np.random.Generator, num_frames: int, fps: float,
                min_pre: int) -> Person:
    """Draw routes for ``role`` until one meets the timing rules (the last try is kept anyway)."""
    child = rng.random() < 0.12
    person = None
    for _ in range(40):
        if role in ("crosser", "waiter"):
            person = ROLE_PLANNERS[role](street, rng, num_frames, fps, min_pre, child=child)
        else:
            person = plan_walker(street, rng, num_frames, fps, min_pre, child=child, role=role)
        simulate(person, num_frames, rng)
        if _event_ok(person, street, num_frames, min_pre, rng):
            return person
    return person  # type: ignore[return-value]


# ============================================================================================
# One video: plan, render, label
# ============================================================================================


@dataclass
class VideoPlan:
    """Everything needed to render one video and annotate it."""

    video_id: str
    number: int
    num_frames: int
    fps: float
    street: scene.Street
    background: np.ndarray
    occluders: list[scene.Occluder]
    people: list[Person]
    time_of_day: str
    weather: str
    location: str
    seed: int


def _video_rng(seed: int, number: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(number), int(stream)])


def _conditions(rng: np.random.Generator) -> tuple[str, str, str]:
    time_of_day = "nighttime" if rng.random() < 0.12 else "daytime"
    weather = str(rng.choice(["clear", "cloudy", "rain", "snow"], p=[0.45, 0.3, 0.15, 0.1]))
    location = "plaza" if rng.random() < 0.15 else "street"
    return time_of_day, weather, location


def _role_list(rng: np.random.Generator, num_frames: int) -> list[str]:
    """Three crossers, a waiter, a walker and one or two bystanders (fewer in very short clips)."""
    roles = ["crosser", "crosser", "crosser", "waiter", "walker"] + ["bystander"] * int(rng.integers(1, 3))
    return roles if num_frames >= 60 else roles[:1] + roles[3:5]


def plan_video(seed: int, number: int, num_frames: int, width: int, height: int, fps: float) -> VideoPlan:
    """Plan video ``number`` (1-based) of the set made with ``seed``: street, people, conditions."""
    rng = _video_rng(seed, number, 0)
    street = scene.make_street(width, height, rng)
    time_of_day, weather, location = _conditions(rng)
    background = scene.draw_background(street, _video_rng(seed, number, 1), weather)
    occluders = scene.make_occluders(street, _video_rng(seed, number, 2))
    min_pre = min(MIN_PRE_EVENT_FRAMES, num_frames // 3)
    people_rng = _video_rng(seed, number, 3)
    people = [plan_person(role, street, people_rng, num_frames, fps, min_pre)
              for role in _role_list(people_rng, num_frames)]
    return VideoPlan(video_id=f"video_{number:04d}", number=number, num_frames=num_frames, fps=fps, street=street,
                     background=background, occluders=occluders, people=people, time_of_day=time_of_day,
                     weather=weather, location=location, seed=seed)


@dataclass(frozen=True)
class Observation:
    """What the annotator sees of one person in one frame."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2 (x2/y2 exclusive), inside the frame
    occlusion: str  # none | part | full
    action: str  # walking | standing
    cross: str  # crossing | not-crossing
    look: str  # looking | not-looking


def _occlusion_level(hidden: int, total: int) -> str:
    share = hidden / max(1, total)
    return "none" if share < 0.25 else ("part" if share < 0.75 else "full")


def _pose(person: Person, street: scene.Street, t: int) -> scene.Pose:
    x, z = float(person.x[t]), float(person.z[t])
    fx, fy = street.project(x, z)
    return scene.Pose(foot_x=fx, foot_y=fy, height=street.figure_height(z, person.style.scale),
                      phase=float(person.phase[t]), swing=1.0 if person.moving[t] else 0.0,
                      facing=int(person.facing[t]), away=bool(person.away[t]), looking=bool(person.looking[t]))


def render_frame(plan: VideoPlan, t: int, clean: bool = False) -> tuple[np.ndarray, dict[int, Observation]]:
    """Draw frame ``t`` and observe everyone in it.

    Args:
        clean: skip rain, snow and night (tests compare against the plain background).

    Returns:
        the (H, W, 3) uint8 BGR frame, and ``{person index: Observation}`` for people in view.
    """
    frame = plan.background.copy()
    street = plan.street
    items = [(float(p.z[t]), 0, i) for i, p in enumerate(plan.people) if p.present[t] and p.z[t] > 1.0]
    items += [(o.z, 1, j) for j, o in enumerate(plan.occluders)]
    drawn: dict[int, scene.DrawnFigure] = {}
    for _, kind, index in sorted(items, key=lambda item: (-item[0], item[1], item[2])):  # far to near
        if kind:
            plan.occluders[index].paint(frame)
            continue
        figure = scene.draw_figure(frame, _pose(plan.people[index], street, t), plan.people[index].style)
        if figure is not None:
            drawn[index] = figure
    observations = {i: _observe(plan, i, t, figure) for i, figure in drawn.items()}
    if not clean:
        scene.apply_weather(frame, plan.weather, plan.time_of_day, _video_rng(plan.seed, plan.number, 1000 + t))
    return frame, observations


def _observe(plan: VideoPlan, index: int, t: int, figure: scene.DrawnFigure) -> Observation:
    person = plan.people[index]
    hidden = sum(o.covered(figure.roi, figure.mask) for o in plan.occluders if o.z < person.z[t])
    return Observation(box=figure.box, occlusion=_occlusion_level(hidden, int(np.count_nonzero(figure.mask))),
                       action="walking" if person.moving[t] else "standing",
                       cross="crossing" if plan.street.on_road(float(person.x[t])) else "not-crossing",
                       look="looking" if person.looking[t] else "not-looking")


def write_clip(plan: VideoPlan, clip_path: Path) -> list[dict[int, Observation]]:
    """Render every frame into an ``mp4v`` clip (written beside, then renamed). Returns the observations."""
    clip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = clip_path.with_name(f".{clip_path.stem}.partial.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), float(plan.fps),
                             (plan.street.width, plan.street.height))
    if not writer.isOpened():
        raise DataError(f"OpenCV cannot write an mp4v clip at {tmp}. Check that the folder is writable "
                        "and that opencv-python (not a headless build without video I/O) is installed.")
    observations = []
    try:
        for t in range(plan.num_frames):
            frame, seen = render_frame(plan, t)
            writer.write(frame)
            observations.append(seen)
    except BaseException:
        writer.release()
        tmp.unlink(missing_ok=True)
        raise
    writer.release()
    os.replace(tmp, clip_path)
    return observations


# ============================================================================================
# Annotation records
# ============================================================================================


@dataclass
class TrackRecord:
    """One annotated track: its boxes and, for behaviour pedestrians, the attributes row."""

    label: str  # pedestrian | ped
    track_id: str
    old_id: str
    person: Person
    frames: list[int]
    observations: list[Observation]
    outside_frame: int = -1  # frame of the closing outside="1" box, -1 when none
    attributes: dict[str, str] = field(default_factory=dict)


def _first_run(frames: Sequence[int]) -> list[int]:
    """The first run of consecutive frames (a person never comes back into view)."""
    run: list[int] = []
    for f in frames:
        if run and f != run[-1] + 1:
            break
        run.append(f)
    return run


def build_tracks(plan: VideoPlan, observations: list[dict[int, Observation]],
                 next_serial: int) -> list[TrackRecord]:
    """Turn per-frame observations into JAAD tracks: ids, boxes, outside boxes, attributes."""
    tracks: list[TrackRecord] = []
    counters = {"pedestrian": 0, "ped": 0}
    order = sorted(range(len(plan.people)), key=lambda i: not plan.people[i].behaviour)
    for index in order:
        person = plan.people[index]
        frames = _first_run([t for t, seen in enumerate(observations) if index in seen])
        if len(frames) < 2:
            continue
        label = "pedestrian" if person.behaviour else "ped"
        counters[label] += 1
        track_id = f"0_{plan.number}_{next_serial}" + ("b" if person.behaviour else "")
        next_serial += 1
        record = TrackRecord(label=label, track_id=track_id, old_id=f"{label}{counters[label]}", person=person,
                             frames=frames, observations=[observations[t][index] for t in frames])
        if not person.behaviour and frames[-1] < plan.num_frames - 1:
            record.outside_frame = frames[-1] + 1  # CVAT closes a track that leaves the view this way
        if person.behaviour:
            record.attributes = _pedestrian_attributes(record, plan)
        tracks.append(record)
    return tracks


def _pedestrian_attributes(record: TrackRecord, plan: VideoPlan) -> dict[str, str]:
    """The ``annotations_attributes`` row of one behaviour pedestrian (JAAD's field names)."""
    person, frames = record.person, record.frames
    crossing_frames = [f for f, o in zip(frames, record.observations) if o.cross == "crossing"]
    crossing = 1 if crossing_frames else 0
    if crossing_frames:
        crossing_point = crossing_frames[0]
    else:
        crossing_point = person.event if frames[0] <= person.event <= frames[-1] else -1
    decision = person.route.marks.get("decision", -1)
    decision_point = min(max(decision, frames[0]), frames[-1]) if decision >= 0 and person.role != "walker" else -1
    serial = int(record.track_id.rstrip("b").rsplit("_", 1)[1])
    rng = _video_rng(plan.seed, plan.number, 5000 + serial)
    age = "child" if person.child else str(rng.choice(["young", "adult", "adult", "adult", "senior"]))
    gender = "n/a" if person.child else str(rng.choice(["female", "male"]))
    return {"age": age, "crossing": str(crossing), "crossing_point": str(crossing_point),
            "decision_point": str(decision_point), "designated": "D" if person.designated else "ND",
            "gender": gender, "group_size": "1", "id": record.track_id, "intersection": "no",
            "motion_direction": {"crosser": "LAT", "walker": "LONG"}.get(person.role, "n/a"),
            "num_lanes": "2", "old_id": record.old_id, "signalized": "NS" if person.designated else "n/a",
            "traffic_direction": "TW"}


# ============================================================================================
# XML writers (JAAD's exact layout: one line, attributes in JAAD's order)
# ============================================================================================

_PEDESTRIAN_LABEL = ("<label><name>pedestrian</name><attributes><attribute>@text=id:</attribute>"
                     "<attribute>@text=old_id:</attribute><attribute>~select=action:standing,walking</attribute>"
                     "<attribute>~select=nod:__undefined__,nodding</attribute>"
                     "<attribute>~select=look:not-looking,looking</attribute>"
                     "<attribute>~select=hand_gesture:__undefined__,greet,yield,rightofway,other</attribute>"
                     "<attribute>~select=reaction:__undefined__,clear_path,speed_up,slow_down</attribute>"
                     "<attribute>~select=cross:not-crossing,crossing</attribute>"
                     "<attribute>~select=occlusion:none,part,full</attribute></attributes></label>")
_SIMPLE_LABEL = ("<label><name>{name}</name><attributes><attribute>@text=id:</attribute>"
                 "<attribute>@text=old_id:</attribute><attribute>~select=occlusion:none,part,full</attribute>"
                 "</attributes></label>")


def _meta_xml(plan: VideoPlan) -> str:
    last = plan.num_frames - 1
    labels = _PEDESTRIAN_LABEL + _SIMPLE_LABEL.format(name="ped") + _SIMPLE_LABEL.format(name="people")
    return (f"<meta><task><id>{plan.number}</id><name>{plan.video_id}</name><size>{plan.num_frames}</size>"
            f"<mode>interpolation</mode><overlap>5</overlap><bugtracker /><flipped>False</flipped>"
            f"<created>{TIMESTAMP}</created><updated>{TIMESTAMP}</updated>"
            f"<source>synthetic/{plan.video_id}.mp4</source><labels>{labels}</labels>"
            f"<segments><segment><id>{plan.number}</id><start>0</start><stop>{last}</stop>"
            f"<url>synthetic://pedsense/demo?seed={plan.seed}</url></segment></segments>"
            f"<owner><username>pedsense-synthetic</username>"
            f"<email>synthetic-demo@pedsense.invalid</email></owner>"
            f"<original_size><width>{plan.street.width}</width>"
            f"<height>{plan.street.height}</height></original_size>"
            f"<video_attributes><time_of_day>{plan.time_of_day}</time_of_day><weather>{plan.weather}</weather>"
            f"<location>{plan.location}</location></video_attributes></task><dumped>{TIMESTAMP}</dumped></meta>")


def _box_xml(record: TrackRecord, frame: int, obs: Observation, outside: bool) -> str:
    x1, y1, x2, y2 = obs.box
    occluded = "1" if obs.occlusion != "none" else "0"
    head = (f'<box frame="{frame}" keyframe="1" occluded="{occluded}" outside="{1 if outside else 0}" '
            f'xbr="{x2:.1f}" xtl="{x1:.1f}" ybr="{y2:.1f}" ytl="{y1:.1f}">')
    attrs = [("id", record.track_id), ("old_id", record.old_id)]
    if record.label == "pedestrian":
        attrs += [("look", obs.look), ("reaction", "__undefined__"), ("action", obs.action), ("cross", obs.cross),
                  ("hand_gesture", "__undefined__"), ("occlusion", obs.occlusion), ("nod", "__undefined__")]
    else:
        attrs.append(("occlusion", obs.occlusion))
    return head + "".join(f'<attribute name="{k}">{v}</attribute>' for k, v in attrs) + "</box>"


def annotation_xml(plan: VideoPlan, tracks: Sequence[TrackRecord]) -> str:
    """The CVAT XML of one video, in JAAD's layout."""
    parts = ["<annotations><version>1.1</version>", _meta_xml(plan)]
    for record in tracks:
        parts.append(f'<track label="{record.label}">')
        parts += [_box_xml(record, f, o, False) for f, o in zip(record.frames, record.observations)]
        if record.outside_frame >= 0:
            parts.append(_box_xml(record, record.outside_frame, record.observations[-1], True))
        parts.append("</track>")
    parts.append("</annotations>")
    return "".join(parts)


def attributes_xml(tracks: Sequence[TrackRecord]) -> str:
    rows = ["<pedestrian " + " ".join(f'{k}="{v}"' for k, v in sorted(t.attributes.items())) + " />"
            for t in tracks if t.label == "pedestrian"]
    return "<ped_attributes>" + "".join(rows) + "</ped_attributes>"


APPEARANCE_LABELS = ("baby", "backpack", "bag_elbow", "bag_hand", "bag_left_side", "bag_right_side", "bag_shoulder",
                     "bicycle_motorcycle", "cap", "clothes_below_knee", "clothes_lower_dark", "clothes_lower_light",
                     "clothes_upper_dark", "clothes_upper_light", "frame", "hood", "object", "phone", "pose_back",
                     "pose_front", "pose_left", "pose_right", "stroller_cart", "sunglasses", "umbrella")


def _appearance_box(person: Person, frame: int) -> str:
    def dark(colour):
        return int(sum(colour) / 3 < 110)
    facing, away = int(person.facing[frame]), bool(person.away[frame])
    values = dict.fromkeys(APPEARANCE_LABELS, 0)
    shirt, trousers = dark(person.style.shirt), dark(person.style.trousers)
    values.update(frame=frame, clothes_upper_dark=shirt, clothes_upper_light=1 - shirt,
                  clothes_lower_dark=trousers, clothes_lower_light=1 - trousers,
                  pose_left=int(facing < 0), pose_right=int(facing > 0), pose_back=int(facing == 0 and away),
                  pose_front=int(facing == 0 and not away))
    return "<box " + " ".join(f'{k}="{values[k]}"' for k in APPEARANCE_LABELS) + " />"


def appearance_xml(tracks: Sequence[TrackRecord]) -> str:
    parts = ["<pedestrian_appearance>"]
    for t in tracks:
        parts.append(f'<track id="{t.track_id}" label="{t.label}" old_id="{t.old_id}">')
        parts += [_appearance_box(t.person, f) for f in t.frames]
        parts.append("</track>")
    return "".join(parts) + "</pedestrian_appearance>"


def vehicle_xml(num_frames: int) -> str:
    """The ego vehicle waits at the crossing for the whole clip."""
    frames = "".join(f'<frame action="stopped" id="{i}" />' for i in range(num_frames))
    return f"<vehicle_info>{frames}</vehicle_info>"


def traffic_xml(num_frames: int) -> str:
    frames = "".join(f'<frame id="{i}" ped_crossing="1" ped_sign="0" stop_sign="0" traffic_light="n/a" />'
                     for i in range(num_frames))
    return f"<traffic_scene><road_type>street</road_type>{frames}</traffic_scene>"


# ============================================================================================
# Files on disk
# ============================================================================================


def _video_files(p: Paths, video_id: str) -> list[Path]:
    raw = p.raw
    return [p.clips / f"{video_id}.mp4", p.annotation(video_id), p.attributes_file(video_id),
            raw / "annotations_appearance" / f"{video_id}_appearance.xml",
            raw / "annotations_traffic" / f"{video_id}_traffic.xml",
            raw / "annotations_vehicle" / f"{video_id}_vehicle.xml"]


def write_video_annotations(p: Paths, plan: VideoPlan, tracks: Sequence[TrackRecord]) -> None:
    _, annotation, attributes, appearance, traffic, vehicle = _video_files(p, plan.video_id)
    write_text_atomic(annotation, annotation_xml(plan, tracks))
    write_text_atomic(attributes, attributes_xml(tracks))
    write_text_atomic(appearance, appearance_xml(tracks))
    write_text_atomic(traffic, traffic_xml(plan.num_frames))
    write_text_atomic(vehicle, vehicle_xml(plan.num_frames))


def assign_splits(video_ids: Sequence[str], seed: int) -> dict[str, list[str]]:
    """Video-level train/val/test (8 videos: 5/1/2); every video holds both classes."""
    n = len(video_ids)
    order = [video_ids[i] for i in np.random.default_rng([int(seed), 99]).permutation(n)]
    n_val = max(1, n // 8) if n >= 2 else 0
    n_test = max(1, n // 4) if n >= 3 else 0
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def write_splits(p: Paths, splits: dict[str, list[str]]) -> None:
    for subset in SPLIT_SETS:
        for part, videos in splits.items():
            write_text_atomic(p.split_ids / subset / f"{part}.txt", "".join(f"{v}\n" for v in videos))


def marker_path(home=None) -> Path:
    return paths(home).raw / MARKER_NAME


def read_marker(home=None) -> dict | None:
    """The synthetic-set marker, or None when this data home holds no synthetic set."""
    marker = read_json(marker_path(home))
    return marker if isinstance(marker, dict) and marker.get("synthetic") is True else None


def is_synthetic(home=None) -> bool:
    """True when ``data/raw`` holds (or is being filled with) the synthetic demo set."""
    return read_marker(home) is not None


def synthetic_video_ids(home=None) -> list[str]:
    """The videos written by the demo generator (empty when the set is not synthetic)."""
    marker = read_marker(home)
    return list(marker.get("videos", [])) if marker else []


def _foreign_files(p: Paths, ours: set[str], new_ids: Sequence[str]) -> list[Path]:
    """Annotation files (and clips we would overwrite) that the demo generator did not write."""
    foreign = []
    for folder in (p.annotations, p.attributes):
        if folder.is_dir():
            foreign += [f for f in sorted(folder.glob("*.xml"))
                        if f.stem.replace("_attributes", "") not in ours]
    foreign += [p.clips / f"{v}.mp4" for v in new_ids if v not in ours and (p.clips / f"{v}.mp4").exists()]
    return foreign


def _check_target(p: Paths, video_ids: Sequence[str], overwrite: bool) -> dict | None:
    """Refuse to write over real data unless ``overwrite``; return the previous marker, if any."""
    old = read_marker(p.home)
    if overwrite:
        return old
    ours = set(old.get("videos", [])) if old else set()
    foreign = _foreign_files(p, ours, video_ids)
    if foreign:
        examples = ", ".join(str(f.relative_to(p.home)) for f in foreign[:3])
        raise DataError(
            f"{p.raw} already holds real data not written by the demo generator ({len(foreign)} files, "
            f"e.g. {examples}); the synthetic demo set would mix with or overwrite it. Use another data home "
            "(set PEDSENSE_HOME or pass root=...), or pass overwrite=True (CLI: `pedsense demo-data --overwrite`) "
            "to write it there anyway."
        )
    return old


def _remove_stale(p: Paths, old: dict | None, video_ids: Sequence[str]) -> None:
    """Delete the files of synthetic videos from a previous, larger set."""
    for video in (old or {}).get("videos", []):
        if video not in video_ids:
            for f in _video_files(p, video):
                f.unlink(missing_ok=True)


def _parameters(seed, n_videos, num_frames, width, height, fps) -> dict:
    return {"seed": int(seed), "n_videos": int(n_videos), "num_frames": int(num_frames), "width": int(width),
            "height": int(height), "fps": float(fps), "format_version": FORMAT_VERSION}


def _fingerprint(parameters: dict) -> str:
    return hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:16]


def _check_options(n_videos, num_frames, width, height, fps) -> None:
    problems = []
    if not isinstance(n_videos, int) or n_videos < 1:
        problems.append(f"n_videos={n_videos!r} must be a whole number >= 1")
    if not isinstance(num_frames, int) or num_frames < 30:
        problems.append(f"num_frames={num_frames!r} must be a whole number >= 30")
    if not isinstance(width, int) or not isinstance(height, int) or width < 64 or height < 48:
        problems.append(f"width x height = {width!r} x {height!r} must be at least 64 x 48 pixels")
    if not isinstance(fps, (int, float)) or not 1 <= fps <= 120:
        problems.append(f"fps={fps!r} must be between 1 and 120")
    if problems:
        raise ConfigError("Invalid demo-set options: " + "; ".join(problems) + ".")


def _complete_and_present(p: Paths, old: dict | None, parameters: dict, video_ids: Sequence[str]) -> bool:
    if not old or old.get("status") != "complete" or old.get("parameters") != parameters:
        return False
    return all(f.exists() for v in video_ids for f in _video_files(p, v))


def make_demo_dataset(root=None, n_videos: int = 8, seed: int = 0, *, num_frames: int = DEFAULT_NUM_FRAMES,
                      width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT, fps: float = 30,
                      progress: ProgressFn | None = None, overwrite: bool = False) -> dict:
    """Write the synthetic JAAD-format demo set under ``<root>/data/raw/``.

    Args:
        root: the data home (default: the configured one, ``$PEDSENSE_HOME`` or the repository).
        n_videos, seed, num_frames, width, height, fps: what to draw; the same values give the same files.
        progress: called as ``progress(done, total, message)`` after each video.
        overwrite: write even where real (non-synthetic) annotations or clips are present.

    Returns:
        a summary dict: ``home``, ``raw``, ``videos``, ``splits``, ``parameters``, ``stats``,
        ``seconds`` and ``reused`` (True when an identical complete set was already there).

    Raises:
        ConfigError: invalid options. DataError: real data present and ``overwrite`` is False.
    """
    _check_options(n_videos, num_frames, width, height, fps)
    started = time.perf_counter()
    p = paths(root)
    video_ids = [f"video_{i:04d}" for i in range(1, n_videos + 1)]
    old = _check_target(p, video_ids, overwrite)
    parameters = _parameters(seed, n_videos, num_frames, width, height, fps)
    splits = assign_splits(video_ids, seed)
    if not overwrite and _complete_and_present(p, old, parameters, video_ids):
        _report(progress, n_videos, n_videos, "The synthetic demo set is already there")
        return _summary(p, old["videos"], splits, parameters, old.get("stats", {}), started, reused=True)
    marker = {"synthetic": True, "note": SYNTHETIC_NOTE,
              "generator": "pedsense.data.synthetic.make_demo_dataset",
              "status": "writing", "parameters": parameters, "fingerprint": _fingerprint(parameters),
              "videos": sorted(set(video_ids) | set((old or {}).get("videos", []))), "splits": splits}
    # The marker goes first, so a crash part-way leaves files that are still known to be ours.
    write_json_atomic(marker_path(p.home), marker)
    _remove_stale(p, old, video_ids)
    stats = _write_videos(p, video_ids, seed, num_frames, width, height, fps, progress)
    write_splits(p, splits)
    marker.update(status="complete", videos=video_ids, stats=stats,
                  written_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json_atomic(marker_path(p.home), marker)
    return _summary(p, video_ids, splits, parameters, stats, started, reused=False)


def _write_videos(p: Paths, video_ids, seed, num_frames, width, height, fps, progress) -> dict:
    stats = {"tracks": {"pedestrian": 0, "ped": 0}, "crossing_pedestrians": 0, "not_crossing_pedestrians": 0,
             "boxes": {"crossing": 0, "not-crossing": 0, "ped": 0}, "max_people_in_a_frame": 0}
    _report(progress, 0, len(video_ids), "Drawing the synthetic demo set")
    serial = 1
    for number, video_id in enumerate(video_ids, start=1):
        plan = plan_video(seed, number, num_frames, width, height, fps)
        observations = write_clip(plan, p.clips / f"{video_id}.mp4")
        tracks = build_tracks(plan, observations, serial)
        serial += len(plan.people)
        write_video_annotations(p, plan, tracks)
        _add_stats(stats, tracks, observations)
        _report(progress, number, len(video_ids), f"Wrote {video_id} ({len(tracks)} tracks, {num_frames} frames)")
    return stats


def _add_stats(stats: dict, tracks: Sequence[TrackRecord], observations) -> None:
    for t in tracks:
        stats["tracks"][t.label] += 1
        if t.label == "ped":
            stats["boxes"]["ped"] += len(t.frames)
            continue
        key = "crossing_pedestrians" if t.attributes["crossing"] == "1" else "not_crossing_pedestrians"
        stats[key] += 1
        for o in t.observations:
            stats["boxes"][o.cross] += 1
    stats["max_people_in_a_frame"] = max([stats["max_people_in_a_frame"]] + [len(seen) for seen in observations])


def _report(progress: ProgressFn | None, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(done, total, message)


def _summary(p: Paths, video_ids, splits, parameters, stats, started, reused: bool) -> dict:
    return {"home": str(p.home), "raw": str(p.raw), "videos": list(video_ids), "splits": splits,
            "parameters": parameters, "stats": stats, "synthetic": True, "marker": str(marker_path(p.home)),
            "seconds": round(time.perf_counter() - started, 2), "reused": reused}
