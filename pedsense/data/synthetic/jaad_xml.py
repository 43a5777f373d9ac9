"""The synthetic demo set in JAAD's files: tracks with ids, boxes and attributes, written as
JAAD's CVAT XML and its attributes, appearance, traffic and vehicle files (JAAD's exact layout:
one line, attributes in JAAD's order)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from pedsense.data.synthetic.render import Observation, VideoPlan, _video_rng
from pedsense.data.synthetic.simulation import Person

# Fixed, so the same seed gives byte-identical XML.
TIMESTAMP = "2025-01-01 00:00:00.000000+00:00"


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
