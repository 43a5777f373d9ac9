"""Drawing for the synthetic demo set: a street seen from a stopped car, and stick-figure people.

The scene is laid out in metres on the ground plane (``street.Street``) and seen through a
pinhole dash camera, as in JAAD: the road runs away from the camera towards the horizon, with a
sidewalk and a row of buildings on each side and a zebra crosswalk across the road ahead. People
cross the road along ``X`` at the crosswalk (they move sideways in the image, like JAAD's
crossers) and walk along the sidewalks along ``Z``. A parked car, an advertising panel and a
lamp post hide people who walk behind them.

Nothing here decides who walks where (``simulation`` does); this module turns poses into pixels
and reports, for each figure, the tight box of the pixels it drew.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import cv2
import numpy as np

from pedsense.data.synthetic.street import Z_FAR, Z_NEAR, Street

BGR = tuple[int, int, int]


# --------------------------------------------------------------------------------------------
# Background: ground, markings, buildings
# --------------------------------------------------------------------------------------------


def _grey(value: float) -> BGR:
    v = int(np.clip(value, 0, 255))
    return (v, v, v)


def _jitter(colour: Sequence[float], rng: np.random.Generator, amount: float) -> BGR:
    return tuple(int(np.clip(c + rng.uniform(-amount, amount), 0, 255)) for c in colour)  # type: ignore[return-value]


def _ground_quad(street: Street, x0: float, x1: float, z0: float, z1: float, up: float = 0.0) -> np.ndarray:
    corners = [(x0, z0), (x1, z0), (x1, z1), (x0, z1)]
    return np.array([[street.project(x, z, up) for x, z in corners]], dtype=np.float64).round().astype(np.int32)


def _fill(image: np.ndarray, polygon: np.ndarray, colour: BGR) -> None:
    cv2.fillPoly(image, [polygon.reshape(-1, 2)], colour)


def _wall_quad(street: Street, x: float, z0: float, z1: float, y0: float, y1: float) -> np.ndarray:
    """A vertical rectangle in the plane ``X = x`` from ``z0`` to ``z1``, ``y0``..``y1`` m high."""
    corners = [(z0, y0), (z1, y0), (z1, y1), (z0, y1)]
    return np.array([[street.project(x, z, up) for z, up in corners]], dtype=np.float64).round().astype(np.int32)


def _add_grain(image: np.ndarray, rng: np.random.Generator, sigma: float) -> None:
    """Fixed grain so asphalt and concrete read as surfaces, not flat fills."""
    grain = rng.normal(0.0, sigma, size=image.shape[:2]).astype(np.int16)[..., None]
    image[:] = np.clip(image.astype(np.int16) + grain, 0, 255).astype(np.uint8)


def _draw_ground(image: np.ndarray, street: Street, rng: np.random.Generator) -> None:
    r, s = street.road_half, street.sidewalk
    asphalt = _grey(rng.uniform(55, 80))
    concrete = _grey(rng.uniform(165, 195))
    _fill(image, _ground_quad(street, -r, r, Z_NEAR, Z_FAR), asphalt)
    for side in (-1, 1):
        _fill(image, _ground_quad(street, side * r, side * (r + s), Z_NEAR, Z_FAR), concrete)
        _fill(image, _ground_quad(street, side * r, side * (r + 0.15), Z_NEAR, Z_FAR), _grey(215))  # curb stones
        seam = _grey(concrete[0] - 35)
        for z in np.arange(3.0, Z_FAR, 1.5):
            a, b = street.project(side * (r + 0.15), z), street.project(side * (r + s), z)
            cv2.line(image, _px(a), _px(b), seam, 1)
    _add_grain(image, rng, 5.0)


def _draw_markings(image: np.ndarray, street: Street, rng: np.random.Generator) -> None:
    line_colour = (40, 200, 230) if rng.random() < 0.5 else (235, 235, 235)
    for z in np.arange(Z_NEAR, Z_FAR, 6.0):
        if not (street.crosswalk[0] - 1 < z + 3 and z < street.crosswalk[1] + 1):
            _fill(image, _ground_quad(street, -0.07, 0.07, z, z + 3.0), line_colour)
    z0, z1 = street.crosswalk
    stripe = 0.5
    for x in np.arange(-street.road_half + 0.25, street.road_half - 0.25, 2 * stripe):
        _fill(image, _ground_quad(street, x, x + stripe, z0, z1), (228, 228, 228))
    _fill(image, _ground_quad(street, 0.0, street.road_half, z0 - 0.9, z0 - 0.6), (228, 228, 228))  # stop line


def _draw_sky_and_buildings(image: np.ndarray, street: Street, rng: np.random.Generator, weather: str) -> None:
    top = {"clear": (235, 200, 150), "cloudy": (200, 195, 190), "rain": (150, 145, 140),
           "snow": (225, 225, 220)}.get(weather, (235, 200, 150))
    horizon = int(math.ceil(street.horizon)) + 1
    for y in range(min(horizon, image.shape[0])):
        fade = y / max(1, horizon)
        image[y, :] = [int(c * (1 - 0.25 * fade)) for c in top]
    wall_x = street.road_half + street.sidewalk
    for side in (-1, 1):
        z = Z_NEAR
        while z < Z_FAR:
            length = float(rng.uniform(6.0, 16.0))
            storeys = int(rng.integers(2, 6))
            colour = _jitter(rng.choice([(90, 110, 160), (120, 130, 140), (70, 90, 120), (150, 160, 170),
                                         (60, 70, 90), (110, 150, 190)]), rng, 20)
            _fill(image, _wall_quad(street, side * wall_x, z, z + length, 0.0, 3.2 * storeys), colour)
            _draw_windows(image, street, side * wall_x, z, length, storeys, rng)
            z += length


def _draw_windows(image: np.ndarray, street: Street, x: float, z0: float, length: float, storeys: int,
                  rng: np.random.Generator) -> None:
    glass = _jitter((120, 90, 60), rng, 25)
    door = rng.uniform(1.0, max(1.5, length - 2.0))
    _fill(image, _wall_quad(street, x, z0 + door, z0 + door + 1.2, 0.0, 2.2), _grey(40))
    for storey in range(1, storeys):
        for dz in np.arange(1.0, length - 1.0, 2.5):
            _fill(image, _wall_quad(street, x, z0 + dz, z0 + dz + 1.2, 3.2 * storey + 0.8, 3.2 * storey + 2.2), glass)


def draw_background(street: Street, rng: np.random.Generator, weather: str) -> np.ndarray:
    """The empty street (occluders excluded: they are painted per frame in depth order)."""
    image = np.zeros((street.height, street.width, 3), np.uint8)
    _draw_ground(image, street, rng)
    _draw_markings(image, street, rng)
    _draw_sky_and_buildings(image, street, rng, weather)
    return image


def _px(point: tuple[float, float]) -> tuple[int, int]:
    return int(round(point[0])), int(round(point[1]))


# --------------------------------------------------------------------------------------------
# Occluders: street objects that hide the people behind them
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occluder:
    """A static object ``z`` metres ahead, painted over anyone farther away than it.

    ``mask`` is (y1-y0, x1-x0) bool over ``roi`` = (x0, y0, x1, y1); ``pixels`` holds its colours.
    """

    name: str
    z: float
    roi: tuple[int, int, int, int]
    mask: np.ndarray
    pixels: np.ndarray

    def paint(self, frame: np.ndarray) -> None:
        x0, y0, x1, y1 = self.roi
        np.copyto(frame[y0:y1, x0:x1], self.pixels, where=self.mask[..., None])

    def covered(self, roi: tuple[int, int, int, int], mask: np.ndarray) -> int:
        """How many pixels of a figure ``mask`` (placed at ``roi``) this object hides."""
        ax0, ay0, ax1, ay1 = roi
        bx0, by0, bx1, by1 = self.roi
        x0, y0, x1, y1 = max(ax0, bx0), max(ay0, by0), min(ax1, bx1), min(ay1, by1)
        if x0 >= x1 or y0 >= y1:
            return 0
        mine = self.mask[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
        theirs = mask[y0 - ay0:y1 - ay0, x0 - ax0:x1 - ax0]
        return int(np.count_nonzero(mine & theirs))


def _occluder(street: Street, name: str, z: float, polygons: list[tuple[np.ndarray, BGR]]) -> Occluder | None:
    """Rasterise coloured polygons (image coordinates) into an occluder clipped to the frame."""
    points = np.concatenate([p.reshape(-1, 2) for p, _ in polygons])
    x0, y0 = max(0, int(points[:, 0].min())), max(0, int(points[:, 1].min()))
    x1, y1 = min(street.width, int(points[:, 0].max()) + 1), min(street.height, int(points[:, 1].max()) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    pixels = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for polygon, colour in polygons:
        shifted = polygon.reshape(-1, 2) - np.array([x0, y0], dtype=np.int32)
        cv2.fillPoly(pixels, [shifted], colour)
        cv2.fillPoly(mask, [shifted], 255)
    return Occluder(name=name, z=z, roi=(x0, y0, x1, y1), mask=mask > 0, pixels=pixels)


def _free_z(street: Street, rng: np.random.Generator, lo: float, hi: float, length: float) -> float:
    """A ``Z`` for an object ``length`` m long that keeps the crosswalk (and 1.5 m around it) clear."""
    z0, z1 = street.crosswalk
    options = [(lo, z0 - 1.5 - length), (z1 + 1.5, hi)]
    options = [(a, b) for a, b in options if b > a] or [(z1 + 1.5, z1 + 1.5 + length)]
    a, b = options[int(rng.integers(len(options)))]
    return float(rng.uniform(a, b))


def _parked_car(street: Street, rng: np.random.Generator, side: int) -> Occluder | None:
    z = _free_z(street, rng, 9.0, 24.0, 4.5)
    x_in, x_out = side * (street.road_half - 1.9), side * (street.road_half - 0.2)
    body = _jitter(rng.choice([(40, 40, 160), (150, 150, 150), (30, 30, 30), (160, 90, 30), (230, 230, 230)]), rng, 20)
    polygons = [(_wall_quad(street, x_in, z, z + 4.5, 0.25, 1.0), _shade(body, 0.7)),  # side facing the road
                (_ground_quad(street, x_in, x_out, z, z + 4.5, up=1.0), _shade(body, 1.1))]  # bonnet and boot
    back = np.array([[street.project(x, z, up)
                      for x, up in ((x_in, 0.25), (x_out, 0.25), (x_out, 1.45), (x_in, 1.45))]])
    polygons.append((back.round().astype(np.int32), body))  # rear face, towards the camera
    cabin = np.array([[street.project(x, z + 1.2, up) for x, up in
                       ((x_in + 0.2 * side, 1.0), (x_out - 0.2 * side, 1.0), (x_out - 0.3 * side, 1.45),
                        (x_in + 0.3 * side, 1.45))]])
    polygons.append((cabin.round().astype(np.int32), (60, 50, 40)))
    return _occluder(street, "parked_car", z, polygons)


def _ad_panel(street: Street, rng: np.random.Generator, side: int) -> Occluder | None:
    z = _free_z(street, rng, 12.0, 26.0, 0.3)
    x0, x1 = street.lane_x(side, 0.1), street.lane_x(side, 0.75)
    face = np.array([[street.project(x, z, up) for x, up in ((x0, 0.1), (x1, 0.1), (x1, 2.3), (x0, 2.3))]])
    legs = [np.array([[street.project(x, z, up) for x, up in ((x - 0.05, 0.0), (x + 0.05, 0.0), (x + 0.05, 0.2),
                                                          (x - 0.05, 0.2))]]) for x in (x0 + 0.1, x1 - 0.1)]
    colour = _jitter((60, 140, 200), rng, 40)
    polygons = [(face.round().astype(np.int32), colour)]
    polygons += [(leg.round().astype(np.int32), (40, 40, 40)) for leg in legs]
    return _occluder(street, "ad_panel", z, polygons)


def _lamp_post(street: Street, rng: np.random.Generator, side: int) -> Occluder | None:
    z = _free_z(street, rng, 9.0, 22.0, 0.2)
    x = side * (street.road_half + 0.4)
    pole = np.array([[street.project(px, z, up) for px, up in ((x - 0.07, 0.0), (x + 0.07, 0.0), (x + 0.07, 5.0),
                                                              (x - 0.07, 5.0))]])
    arm = np.array([[street.project(px, z, up) for px, up in ((x, 4.9), (x - side * 1.2, 4.9), (x - side * 1.2, 5.0),
                                                             (x, 5.0))]])
    return _occluder(street, "lamp_post", z, [(pole.round().astype(np.int32), (50, 55, 60)),
                                               (arm.round().astype(np.int32), (50, 55, 60))])


def make_occluders(street: Street, rng: np.random.Generator) -> list[Occluder]:
    """A parked car on one side of the road, an advertising panel and a lamp post on the sidewalks."""
    car_side = 1 if rng.random() < 0.5 else -1
    made = [_parked_car(street, rng, car_side), _ad_panel(street, rng, -car_side if rng.random() < 0.6 else car_side),
            _lamp_post(street, rng, 1 if rng.random() < 0.5 else -1)]
    return [o for o in made if o is not None]


# --------------------------------------------------------------------------------------------
# Stick figures
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureStyle:
    """How one person looks; ``scale`` is their height relative to 1.7 m (children ~0.7)."""

    shirt: BGR
    trousers: BGR
    skin: BGR
    hair: BGR
    scale: float = 1.0


@dataclass(frozen=True)
class Pose:
    """One person in one image.

    ``facing``: +1 walking right in the image, -1 left, 0 towards or away from the camera
    (``away`` tells which); ``phase``: walking-cycle angle; ``swing``: 0 still .. 1 full stride.
    """

    foot_x: float
    foot_y: float
    height: float
    phase: float
    swing: float
    facing: int
    away: bool
    looking: bool


SHIRTS: tuple[BGR, ...] = ((40, 40, 200), (200, 80, 30), (30, 160, 30), (20, 200, 230), (160, 40, 160),
                           (230, 230, 230), (30, 30, 30), (0, 120, 255), (140, 90, 60), (90, 200, 120))
TROUSERS: tuple[BGR, ...] = ((120, 60, 20), (40, 40, 40), (90, 90, 90), (60, 100, 140), (20, 30, 90),
                             (150, 140, 120))
SKINS: tuple[BGR, ...] = ((140, 180, 230), (100, 150, 200), (70, 110, 160), (50, 80, 120))
HAIRS: tuple[BGR, ...] = ((20, 20, 20), (30, 60, 100), (40, 130, 200), (180, 180, 180))


def random_style(rng: np.random.Generator, child: bool = False) -> FigureStyle:
    """Clothes and colours for one person."""
    def pick(options):
        return tuple(int(c) for c in options[int(rng.integers(len(options)))])
    return FigureStyle(shirt=pick(SHIRTS), trousers=pick(TROUSERS), skin=pick(SKINS), hair=pick(HAIRS),
                       scale=0.68 if child else float(rng.uniform(0.94, 1.06)))


def _side_limbs(pose: Pose, sign: float, hip, shoulder, h: float):
    """Knee, foot, elbow and hand of one leg/arm pair seen from the side."""
    angle = sign * 0.5 * pose.swing * math.sin(pose.phase)
    bend = pose.swing * 0.7 * max(0.0, math.cos(pose.phase + (0.0 if sign > 0 else math.pi)))
    f = pose.facing
    knee = (hip[0] + f * 0.245 * h * math.sin(angle), hip[1] + 0.245 * h * math.cos(angle))
    foot = (knee[0] + f * 0.235 * h * math.sin(angle - bend), knee[1] + 0.235 * h * math.cos(angle - bend))
    arm = -0.8 * angle
    elbow = (shoulder[0] + f * 0.16 * h * math.sin(arm), shoulder[1] + 0.16 * h * math.cos(arm))
    hand = (elbow[0] + f * 0.15 * h * math.sin(arm + 0.35), elbow[1] + 0.15 * h * math.cos(arm + 0.35))
    return knee, foot, elbow, hand


def _front_limbs(pose: Pose, sign: float, hip, shoulder, h: float):
    """The same seen from the front or back: legs apart, the stepping foot lifted."""
    lift = 0.06 * h * pose.swing * max(0.0, sign * math.sin(pose.phase))
    knee = (sign * 0.05 * h, hip[1] + 0.245 * h - 0.5 * lift)
    foot = (sign * 0.055 * h, hip[1] + 0.48 * h - lift)
    reach = 0.31 * h - 0.04 * h * pose.swing * max(0.0, -sign * math.sin(pose.phase))
    elbow = (sign * 0.09 * h, shoulder[1] + 0.16 * h)
    hand = (sign * 0.1 * h, shoulder[1] + reach)
    return knee, foot, elbow, hand


def _joints(pose: Pose) -> dict[str, list[tuple[float, float]]]:
    """Joint positions relative to the ground point (x right, y down), feet on the ground."""
    h = pose.height
    hip = (0.0, -0.47 * h)
    neck = (0.0, -0.77 * h)
    shoulder = (0.0, neck[1] + 0.04 * h)
    limbs = _side_limbs if pose.facing else _front_limbs
    joints = {side: [hip, *limbs(pose, sign, hip, shoulder, h)] for side, sign in (("a", 1.0), ("b", -1.0))}
    ground = max(joints["a"][2][1], joints["b"][2][1])  # the lower foot touches the ground
    shift = lambda p: (p[0], p[1] - ground)  # noqa: E731
    out = {side: [shift(p) for p in (points[0], points[1], points[2], shoulder, points[3], points[4])]
           for side, points in joints.items()}
    out["torso"] = [shift(hip), shift(neck)]
    return out


def _shade(colour: Sequence[int], factor: float) -> BGR:
    return tuple(int(min(255, c * factor)) for c in colour)  # type: ignore[return-value]


def figure_ops(pose: Pose, style: FigureStyle) -> list[tuple]:
    """The drawing operations of one figure in absolute image coordinates (floats).

    Each op is ``("line", p, q, colour, thickness)`` or ``("circle", centre, radius, colour)``.
    """
    h = pose.height
    joints = _joints(pose)
    place = lambda p: (pose.foot_x + p[0], pose.foot_y + p[1])  # noqa: E731
    limb = max(1, int(round(0.05 * h)))
    ops: list[tuple] = []
    for side, factor in (("b", 0.72), ("a", 1.0)):  # the far leg is darker and drawn first
        hip, knee, foot = (place(p) for p in joints[side][:3])
        ops += [("line", hip, knee, _shade(style.trousers, factor), limb + 1),
                ("line", knee, foot, _shade(style.trousers, factor), limb)]
    ops += _arm_ops(joints["b"], place, style, 0.72, limb)
    hip, neck = (place(p) for p in joints["torso"])
    ops.append(("line", hip, neck, style.shirt, max(2, int(round(0.11 * h)))))
    ops += _arm_ops(joints["a"], place, style, 1.0, limb)
    ops += _head_ops(neck, pose, style, h)
    return ops


def _arm_ops(joints, place, style: FigureStyle, factor: float, limb: int) -> list[tuple]:
    shoulder, elbow, hand = (place(p) for p in joints[3:])
    return [("line", shoulder, elbow, _shade(style.shirt, factor), limb),
            ("line", elbow, hand, _shade(style.skin, factor), max(1, limb - 1))]


def _head_ops(neck, pose: Pose, style: FigureStyle, h: float) -> list[tuple]:
    r = max(1.0, 0.075 * h)
    centre = (neck[0], neck[1] - 1.1 * r)
    ops: list[tuple] = [("circle", centre, r, style.skin)]
    eye = max(0.5, 0.18 * r)
    if pose.looking:  # face turned to the camera (the ego vehicle): two eyes, hair on top
        ops += [("circle", (centre[0], centre[1] - 0.75 * r), 0.55 * r, style.hair),
                ("circle", (centre[0] - 0.4 * r, centre[1]), eye, (20, 20, 20)),
                ("circle", (centre[0] + 0.4 * r, centre[1]), eye, (20, 20, 20))]
    elif pose.facing == 0 and pose.away:  # back of the head
        ops.append(("circle", centre, 0.85 * r, style.hair))
    else:  # profile, looking where they walk
        facing = pose.facing or 1
        ops += [("circle", (centre[0] - 0.45 * facing * r, centre[1] - 0.3 * r), 0.65 * r, style.hair),
                ("circle", (centre[0] + 0.5 * facing * r, centre[1]), eye, (20, 20, 20))]
    return ops


def _ops_extent(ops: Iterable[tuple]) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []
    for op in ops:
        pad = (op[4] / 2 + 2) if op[0] == "line" else (op[2] + 2)
        for p in ((op[1], op[2]) if op[0] == "line" else (op[1],)):
            xs += [p[0] - pad, p[0] + pad]
            ys += [p[1] - pad, p[1] + pad]
    return min(xs), min(ys), max(xs), max(ys)


def _run_ops(ops: Iterable[tuple], canvas: np.ndarray, mask: np.ndarray, origin: tuple[int, int]) -> None:
    """Draw ``ops`` on ``canvas`` and, in 255, on ``mask`` (both start at ``origin``)."""
    ox, oy = origin
    to_px = lambda p: (int(round(p[0] - ox)), int(round(p[1] - oy)))  # noqa: E731
    for op in ops:
        if op[0] == "line":
            a, b = to_px(op[1]), to_px(op[2])
            cv2.line(canvas, a, b, op[3], op[4])
            cv2.line(mask, a, b, 255, op[4])
        else:
            centre, radius = to_px(op[1]), max(1, int(round(op[2])))
            cv2.circle(canvas, centre, radius, op[3], -1)
            cv2.circle(mask, centre, radius, 255, -1)


@dataclass(frozen=True)
class DrawnFigure:
    """What drawing one figure produced.

    ``box``: (x1, y1, x2, y2) tight around the drawn pixels, x2/y2 exclusive, inside the image.
    ``roi``/``mask``: where the figure's pixels are, for occlusion bookkeeping.
    """

    box: tuple[int, int, int, int]
    roi: tuple[int, int, int, int]
    mask: np.ndarray


def draw_figure(frame: np.ndarray, pose: Pose, style: FigureStyle) -> DrawnFigure | None:
    """Draw one stick figure into ``frame`` (in place). None when none of it is in view."""
    ops = figure_ops(pose, style)
    height, width = frame.shape[:2]
    ex0, ey0, ex1, ey1 = _ops_extent(ops)
    x0, y0 = max(0, int(math.floor(ex0))), max(0, int(math.floor(ey0)))
    x1, y1 = min(width, int(math.ceil(ex1)) + 1), min(height, int(math.ceil(ey1)) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    view = frame[y0:y1, x0:x1]
    mask = np.zeros(view.shape[:2], np.uint8)
    _run_ops(ops, view, mask, (x0, y0))
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    box = (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)
    return DrawnFigure(box=box, roi=(x0, y0, x1, y1), mask=mask > 0)


# --------------------------------------------------------------------------------------------
# Weather and light
# --------------------------------------------------------------------------------------------


def apply_weather(frame: np.ndarray, weather: str, time_of_day: str, rng: np.random.Generator) -> None:
    """Rain streaks or snow flakes for one frame, then darken for night (in place)."""
    height, width = frame.shape[:2]
    if weather in ("rain", "snow"):
        count = max(4, width * height // (4000 if weather == "rain" else 3000))
        xs, ys = rng.integers(0, width, count).tolist(), rng.integers(0, height, count).tolist()
        for x, y in zip(xs, ys):
            if weather == "rain":
                length = max(2, height // 30)
                cv2.line(frame, (x, y), (x - length // 4, y + length), (200, 200, 200), 1)
            else:
                cv2.circle(frame, (x, y), max(1, height // 240), (250, 250, 250), -1)
    if time_of_day == "nighttime":
        cv2.convertScaleAbs(frame, dst=frame, alpha=0.55, beta=0)
