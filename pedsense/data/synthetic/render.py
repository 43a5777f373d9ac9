"""One synthetic video: plan it (street, occluders, people, conditions), render its frames,
and observe what an annotator would see of each person (box, occlusion, action, cross, look)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pedsense.data.synthetic import drawing
from pedsense.data.synthetic.simulation import MIN_PRE_EVENT_FRAMES, Person, plan_person
from pedsense.data.synthetic.street import Street, make_street
from pedsense.errors import DataError


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
    street: Street
    background: np.ndarray
    occluders: list[drawing.Occluder]
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
    street = make_street(width, height, rng)
    time_of_day, weather, location = _conditions(rng)
    background = drawing.draw_background(street, _video_rng(seed, number, 1), weather)
    occluders = drawing.make_occluders(street, _video_rng(seed, number, 2))
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


def _pose(person: Person, street: Street, t: int) -> drawing.Pose:
    x, z = float(person.x[t]), float(person.z[t])
    fx, fy = street.project(x, z)
    return drawing.Pose(foot_x=fx, foot_y=fy, height=street.figure_height(z, person.style.scale),
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
    drawn: dict[int, drawing.DrawnFigure] = {}
    for _, kind, index in sorted(items, key=lambda item: (-item[0], item[1], item[2])):  # far to near
        if kind:
            plan.occluders[index].paint(frame)
            continue
        figure = drawing.draw_figure(frame, _pose(plan.people[index], street, t), plan.people[index].style)
        if figure is not None:
            drawn[index] = figure
    observations = {i: _observe(plan, i, t, figure) for i, figure in drawn.items()}
    if not clean:
        drawing.apply_weather(frame, plan.weather, plan.time_of_day, _video_rng(plan.seed, plan.number, 1000 + t))
    return frame, observations


def _observe(plan: VideoPlan, index: int, t: int, figure: drawing.DrawnFigure) -> Observation:
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
