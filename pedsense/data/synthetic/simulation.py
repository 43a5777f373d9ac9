"""Who walks where in the synthetic demo set: routes, roles and per-frame states, in metres.

*Crossers* walk along a sidewalk, may wait at the curb, then cross the road; *waiters* walk to
the curb and stay or turn away; *walkers* and ``ped`` *bystanders* keep to the sidewalks. Every
crosser is in view for at least ``MIN_PRE_EVENT_FRAMES`` frames before the frame it steps onto
the road, and every non-crosser gets a reference event as deep into its track, so the JAAD intent
protocol (16 observed frames ending 30-60 frames before the event) has windows of both classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pedsense.data.synthetic.drawing import FigureStyle, random_style
from pedsense.data.synthetic.street import Street

# The intent protocol observes 16 frames ending up to 60 frames before the crossing point;
# 80 leaves a small margin.
MIN_PRE_EVENT_FRAMES = 80


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
    style: FigureStyle
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


def _in_view(person: Person, street: Street) -> np.ndarray:
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


def _cross_z(street: Street, rng: np.random.Generator, designated: bool) -> float:
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
    return Person("crosser", child, random_style(rng, child), route, designated=designated)


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
    return Person("waiter", child, random_style(rng, child), route)


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
    return Person(role, child, random_style(rng, child), route)


ROLE_PLANNERS = {"crosser": plan_crosser, "waiter": plan_waiter, "walker": plan_walker}


def _event_ok(person: Person, street: Street, num_frames: int, min_pre: int,
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


def plan_person(role: str, street: Street, rng: np.random.Generator, num_frames: int, fps: float,
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
