"""The synthetic JAAD-format demo set: formats, labels, determinism, safety.

Most tests share one tiny set (2 videos x 90 frames at 160x96); one test draws a single
default-size video to check the intent-protocol timing the benchmark needs.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from pedsense.config import paths
from pedsense.data import jaad, synthetic
from pedsense.data.synthetic import is_synthetic, make_demo_dataset
from pedsense.errors import ConfigError, DataError

TINY = dict(n_videos=2, seed=3, num_frames=90, width=160, height=96)

# The value sets JAAD's official interface maps to numbers (jaad_data.py, _map_text_to_scalar).
JAAD_VALUES = {
    "occlusion": {"none", "part", "full"}, "action": {"standing", "walking"}, "nod": {"__undefined__", "nodding"},
    "look": {"not-looking", "looking"}, "hand_gesture": {"__undefined__", "greet", "yield", "rightofway", "other"},
    "reaction": {"__undefined__", "clear_path", "speed_up", "slow_down"}, "cross": {"not-crossing", "crossing"},
    "age": {"child", "young", "adult", "senior"}, "designated": {"ND", "D"}, "gender": {"n/a", "female", "male"},
    "intersection": {"no", "yes"}, "motion_direction": {"n/a", "LAT", "LONG"}, "traffic_direction": {"OW", "TW"},
    "signalized": {"n/a", "NS", "S"},
    "vehicle": {"stopped", "moving_slow", "moving_fast", "decelerating", "accelerating"},
    "road_type": {"street", "parking_lot", "garage"}, "traffic_light": {"n/a", "red", "green"},
}
BEHAVIOUR = ("look", "reaction", "action", "cross", "hand_gesture", "occlusion", "nod")


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("demo")
    make_demo_dataset(home, **TINY)
    return home


def _videos(home: Path) -> list[str]:
    return sorted(f.stem for f in paths(home).annotations.glob("*.xml"))


def _tracks(xml: Path) -> list[tuple[str, str, list[ET.Element]]]:
    """(label, id, boxes) per track."""
    out = []
    for track in ET.parse(xml).getroot().findall("track"):
        boxes = track.findall("box")
        out.append((track.get("label"), boxes[0].find("attribute[@name='id']").text, boxes))
    return out


def _attr(box: ET.Element, name: str) -> str | None:
    element = box.find(f"attribute[@name='{name}']")
    return None if element is None else element.text


def _decode(clip: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


# --------------------------------------------------------------------------------------------
# Files and formats
# --------------------------------------------------------------------------------------------


def test_writes_every_file_jaad_reads(tiny_home):
    raw = paths(tiny_home).raw
    assert _videos(tiny_home) == ["video_0001", "video_0002"]
    for video in _videos(tiny_home):
        for path in (raw / "clips" / f"{video}.mp4", raw / "annotations_attributes" / f"{video}_attributes.xml",
                     raw / "annotations_appearance" / f"{video}_appearance.xml",
                     raw / "annotations_traffic" / f"{video}_traffic.xml",
                     raw / "annotations_vehicle" / f"{video}_vehicle.xml"):
            assert path.is_file(), path
    for subset in ("default", "high_visibility", "all_videos"):
        for part in ("train", "val", "test"):
            assert (raw / "split_ids" / subset / f"{part}.txt").is_file()


def test_clip_frame_count_and_size_match_the_xml(tiny_home):
    p = paths(tiny_home)
    for video in _videos(tiny_home):
        task = ET.parse(p.annotation(video)).getroot().find("meta/task")
        size = int(task.find("size").text)
        capture = cv2.VideoCapture(str(p.clip(video)))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == size == TINY["num_frames"]
        capture.release()
        frames = _decode(p.clip(video))
        assert len(frames) == size
        assert frames[0].shape == (int(task.find("original_size/height").text),
                                   int(task.find("original_size/width").text), 3)


def test_annotation_xml_follows_the_real_jaad_schema(tiny_home, jaad_dir):
    real = ET.parse(jaad_dir / "annotations" / "video_0005.xml").getroot()
    ours = ET.parse(paths(tiny_home).annotation("video_0001")).getroot()
    assert [e.tag for e in ours] == ["version", "meta", *(["track"] * len(ours.findall("track")))]
    assert [e.tag for e in ours.find("meta/task")] == [e.tag for e in real.find("meta/task")]
    assert ET.tostring(ours.find("meta/task/labels")) == ET.tostring(real.find("meta/task/labels"))
    assert ours.find("meta/task/source").text.startswith("synthetic/")
    for path in ("original_size/width", "original_size/height", "size", "segments/segment/stop"):
        assert ours.find(f"meta/task/{path}").text.isdigit()
    real_boxes = {t.get("label"): t.find("box") for t in real.findall("track")}
    for label, _, boxes in _tracks(paths(tiny_home).annotation("video_0001")):
        reference = real_boxes[label]
        for box in boxes:
            assert sorted(box.keys()) == sorted(reference.keys())
            assert [a.get("name") for a in box] == [a.get("name") for a in reference]


def test_tracks_have_jaad_ids_and_behaviour_labels(tiny_home):
    labels = {"pedestrian": 0, "ped": 0}
    for video in _videos(tiny_home):
        for label, track_id, boxes in _tracks(paths(tiny_home).annotation(video)):
            labels[label] += 1
            # JAAD's interface: 'b' marks behaviour pedestrians, 'p' groups of people
            assert track_id.endswith("b") == (label == "pedestrian") and "p" not in track_id
            old_id = _attr(boxes[0], "old_id")
            assert ("pedestrian" in old_id) == (label == "pedestrian")
            for box in boxes:
                assert _attr(box, "occlusion") in JAAD_VALUES["occlusion"]
                assert box.get("occluded") == ("0" if _attr(box, "occlusion") == "none" else "1")
                if label == "pedestrian":
                    assert all(_attr(box, name) in JAAD_VALUES[name] for name in BEHAVIOUR)
    assert labels["pedestrian"] >= 4 and labels["ped"] >= 1


def test_crossing_attribute_agrees_with_the_per_frame_labels(tiny_home):
    p = paths(tiny_home)
    crossing_values = set()
    for video in _videos(tiny_home):
        rows = {r.get("id"): r.attrib for r in ET.parse(p.attributes_file(video)).getroot()}
        for label, track_id, boxes in _tracks(p.annotation(video)):
            if label != "pedestrian":
                assert track_id not in rows
                continue
            row = rows[track_id]
            frames = [int(b.get("frame")) for b in boxes]
            crossing_frames = [int(b.get("frame")) for b in boxes if _attr(b, "cross") == "crossing"]
            crossing_values.add(row["crossing"])
            assert (row["crossing"] == "1") == bool(crossing_frames)
            if crossing_frames:
                assert int(row["crossing_point"]) == crossing_frames[0]
            for key in ("crossing_point", "decision_point"):
                assert int(row[key]) == -1 or int(row[key]) in frames
    assert crossing_values == {"0", "1"}


def test_attribute_rows_have_the_real_fields(tiny_home, jaad_dir):
    real = ET.parse(jaad_dir / "annotations_attributes" / "video_0005_attributes.xml").getroot()[0]
    for video in _videos(tiny_home):
        for row in ET.parse(paths(tiny_home).attributes_file(video)).getroot():
            assert row.tag == "pedestrian" and sorted(row.keys()) == sorted(real.keys())
            for key, value in row.items():
                if key not in ("id", "old_id"):
                    assert value.lstrip("-").isdigit() or value in JAAD_VALUES[key], (key, value)


def test_boxes_lie_inside_the_frame(tiny_home):
    outside = 0
    for video in _videos(tiny_home):
        for _, _, boxes in _tracks(paths(tiny_home).annotation(video)):
            for box in boxes:
                x1, y1, x2, y2 = (float(box.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
                assert 0 <= x1 < x2 <= TINY["width"] and 0 <= y1 < y2 <= TINY["height"]
                outside += box.get("outside") == "1"
            assert all(b.get("outside") == "0" for b in boxes[:-1])  # only a track's last box may close it


def test_official_interface_contract(tiny_home):
    """Everything JAAD's jaad_data.py reads exists with the types it converts them to."""
    raw = paths(tiny_home).raw
    videos = [f.name.split(".")[0] for f in (raw / "annotations").iterdir()]  # how the interface lists videos
    assert sorted(videos) == _videos(tiny_home)
    for video in videos:
        root = ET.parse(raw / "annotations" / f"{video}.xml")
        size = int(root.find("./meta/task/size").text)
        int(root.find("./meta/task/original_size/width").text), int(root.find("./meta/task/original_size/height").text)
        attributes_xml = ET.parse(raw / "annotations_attributes" / f"{video}_attributes.xml")
        attributes = {p.get("id"): p.attrib for p in attributes_xml.findall("./pedestrian")}
        vehicle_xml = ET.parse(raw / "annotations_vehicle" / f"{video}_vehicle.xml")
        vehicle = {int(f.get("id")): f.get("action") for f in vehicle_xml.findall("./frame")}
        assert set(vehicle) == set(range(size)) and set(vehicle.values()) <= JAAD_VALUES["vehicle"]
        traffic = ET.parse(raw / "annotations_traffic" / f"{video}_traffic.xml")
        assert traffic.find("./road_type").text in JAAD_VALUES["road_type"]
        for f in traffic.findall("./frame"):
            int(f.get("ped_crossing")), int(f.get("ped_sign")), int(f.get("stop_sign"))
            assert f.get("traffic_light") in JAAD_VALUES["traffic_light"]
        appearance = {t.get("id"): [int(b.get("frame")) for b in t.findall("./box")]
                      for t in ET.parse(raw / "annotations_appearance" / f"{video}_appearance.xml").findall("./track")}
        for track in root.findall("./track"):
            boxes = track.findall("./box")
            track_id = boxes[0].find('./attribute[@name="id"]').text
            frames = [int(b.get("frame")) for b in boxes]
            [float(b.get(k)) for b in boxes for k in ("xtl", "ytl", "xbr", "ybr")]
            assert track_id in appearance
            if "b" in track_id:  # the crossing/intention generators index frames by these points
                for key in ("crossing_point", "decision_point"):
                    point = int(attributes[track_id][key])
                    assert point == -1 or point in frames
    for subset in ("default", "high_visibility", "all_videos"):
        listed = [line.strip() for part in ("train", "val", "test")
                  for line in (raw / "split_ids" / subset / f"{part}.txt").read_text().splitlines()]
        assert sorted(listed) == sorted(videos) and len(set(listed)) == len(listed)


# --------------------------------------------------------------------------------------------
# Pixels: boxes fit the drawn figures, clips hold what was drawn
# --------------------------------------------------------------------------------------------


def _empty_street(plan) -> np.ndarray:
    image = plan.background.copy()
    for occluder in plan.occluders:
        occluder.paint(image)
    return image


@pytest.mark.parametrize("t", [0, 45, 89])
def test_boxes_fit_the_drawn_figures_tightly(t):
    plan = synthetic.plan_video(3, 1, 90, 160, 96, 30)
    frame, seen = synthetic.render_frame(plan, t, clean=True)
    drawn = (frame != _empty_street(plan)).any(axis=2)
    inside = np.zeros_like(drawn)
    for obs in seen.values():
        x1, y1, x2, y2 = obs.box
        inside[y1:y2, x1:x2] = True
    assert seen and not (drawn & ~inside).any()  # every figure pixel lies in some box
    for obs in seen.values():
        x1, y1, x2, y2 = obs.box
        if obs.occlusion != "none":
            continue
        # each edge of an unhidden figure's box touches a drawn pixel (allow 1 px for colour ties)
        assert drawn[y1:y1 + 2, x1:x2].any() and drawn[y2 - 2:y2, x1:x2].any()
        assert drawn[y1:y2, x1:x1 + 2].any() and drawn[y1:y2, x2 - 2:x2].any()


def test_clip_frames_are_the_rendered_frames(tiny_home):
    plan = synthetic.plan_video(TINY["seed"], 2, TINY["num_frames"], TINY["width"], TINY["height"], 30)
    frames = _decode(paths(tiny_home).clip("video_0002"))
    for t in (0, 60):
        rendered, _ = synthetic.render_frame(plan, t)
        mse = np.mean((frames[t].astype(float) - rendered.astype(float)) ** 2)
        assert 10 * np.log10(255 ** 2 / max(mse, 1e-6)) > 24


# --------------------------------------------------------------------------------------------
# Determinism, marker, splits
# --------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_other_seed_differs(tiny_home, tmp_path):
    make_demo_dataset(tmp_path / "again", **TINY)
    raw_a, raw_b = paths(tiny_home).raw, paths(tmp_path / "again").raw
    xmls = sorted(f.relative_to(raw_a) for f in raw_a.rglob("*.xml"))
    assert xmls and xmls == sorted(f.relative_to(raw_b) for f in raw_b.rglob("*.xml"))
    assert all((raw_a / f).read_bytes() == (raw_b / f).read_bytes() for f in xmls)
    for video in _videos(tiny_home):
        a, b = _decode(raw_a / "clips" / f"{video}.mp4"), _decode(raw_b / "clips" / f"{video}.mp4")
        assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    make_demo_dataset(tmp_path / "other", **{**TINY, "seed": 4, "n_videos": 1})
    other = paths(tmp_path / "other").annotation("video_0001").read_bytes()
    assert other != paths(tiny_home).annotation("video_0001").read_bytes()


def test_marker_labels_the_set_synthetic(tiny_home, tmp_path):
    assert is_synthetic(tiny_home)
    assert not is_synthetic(tmp_path)
    marker = synthetic.read_marker(tiny_home)
    assert marker["status"] == "complete" and "synthetic" in marker["note"].lower()
    assert marker["parameters"]["seed"] == TINY["seed"] and marker["videos"] == _videos(tiny_home)
    assert synthetic.synthetic_video_ids(tiny_home) == _videos(tiny_home)
    owner = ET.parse(paths(tiny_home).annotation("video_0001")).getroot().find("meta/task/owner/username").text
    assert "synthetic" in owner


@pytest.mark.parametrize("n, sizes", [(1, (1, 0, 0)), (2, (1, 1, 0)), (3, (1, 1, 1)), (8, (5, 1, 2))])
def test_split_sizes(n, sizes):
    videos = [f"video_{i:04d}" for i in range(1, n + 1)]
    splits = synthetic.assign_splits(videos, seed=0)
    assert tuple(len(splits[p]) for p in ("train", "val", "test")) == sizes
    assert sorted(sum(splits.values(), [])) == videos


def test_default_video_meets_the_intent_protocol(tmp_path):
    """At the default size every crosser is seen >= 80 frames before stepping onto the road."""
    summary = make_demo_dataset(tmp_path, n_videos=1, seed=0)
    assert summary["parameters"]["num_frames"] == 300 and summary["stats"]["max_people_in_a_frame"] >= 4
    p = paths(tmp_path)
    rows = {r.get("id"): r.attrib for r in ET.parse(p.attributes_file("video_0001")).getroot()}
    labels = set()
    for label, track_id, boxes in _tracks(p.annotation("video_0001")):
        if label != "pedestrian":
            continue
        frames = [int(b.get("frame")) for b in boxes]
        point = int(rows[track_id]["crossing_point"])
        labels.add(rows[track_id]["crossing"])
        assert point - frames[0] >= synthetic.MIN_PRE_EVENT_FRAMES and point <= frames[-1]
    assert labels == {"0", "1"}


# --------------------------------------------------------------------------------------------
# Safety and options
# --------------------------------------------------------------------------------------------


def test_refuses_to_write_over_real_annotations(tmp_path, jaad_dir):
    annotations = paths(tmp_path).annotations
    annotations.mkdir(parents=True)
    shutil.copy(jaad_dir / "annotations" / "video_0008.xml", annotations)
    with pytest.raises(DataError, match="overwrite"):
        make_demo_dataset(tmp_path, **{**TINY, "n_videos": 1})
    assert not is_synthetic(tmp_path)
    make_demo_dataset(tmp_path, **{**TINY, "n_videos": 1}, overwrite=True)
    assert is_synthetic(tmp_path) and (annotations / "video_0008.xml").exists()  # real files are left alone


def test_rerun_reuses_a_complete_set_and_shrinks_cleanly(tmp_path):
    calls = []
    make_demo_dataset(tmp_path, **TINY, progress=lambda *args: calls.append(args))
    assert [c[:2] for c in calls] == [(0, 2), (1, 2), (2, 2)]
    assert make_demo_dataset(tmp_path, **TINY)["reused"] is True
    make_demo_dataset(tmp_path, **{**TINY, "n_videos": 1})
    assert _videos(tmp_path) == ["video_0001"] and not paths(tmp_path).clip("video_0002").exists()
    assert synthetic.synthetic_video_ids(tmp_path) == ["video_0001"]


@pytest.mark.parametrize("bad", [{"n_videos": 0}, {"num_frames": 5}, {"width": 10}, {"fps": 0}])
def test_bad_options_raise_config_error(tmp_path, bad):
    with pytest.raises(ConfigError):
        make_demo_dataset(tmp_path, **{**TINY, **bad})


# --------------------------------------------------------------------------------------------
# Round trip through pedsense's own parser
# --------------------------------------------------------------------------------------------


def test_round_trip_through_the_jaad_parser(tiny_home):
    p = paths(tiny_home)
    for video in _videos(tiny_home):
        parsed = jaad.parse_annotation(p.annotation(video), p.attributes_file(video))
        assert (parsed.num_frames, parsed.width, parsed.height) == (TINY["num_frames"], TINY["width"], TINY["height"])
        raw_tracks = {track_id: (label, boxes) for label, track_id, boxes in _tracks(p.annotation(video))}
        assert {t.track_id for t in parsed.tracks} == set(raw_tracks)
        for track in parsed.tracks:
            label, boxes = raw_tracks[track.track_id]
            visible = [b for b in boxes if b.get("outside") == "0"]
            assert track.label == label and [b.frame for b in track.boxes] == [int(b.get("frame")) for b in visible]
            assert [b.cross for b in track.boxes] == [_attr(b, "cross") for b in visible]
            if label == "pedestrian":
                crossing = any(b.cross == "crossing" for b in track.boxes)
                assert str(track.attributes["crossing"]) == ("1" if crossing else "0")


def test_is_synthetic_imports_no_opencv(tiny_home):
    import subprocess
    import sys

    from pedsense.config import REPO_ROOT

    code = ("import sys; from pedsense.data.synthetic import is_synthetic; "
            f"print(is_synthetic({str(tiny_home)!r}), 'cv2' in sys.modules, 'numpy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "False"]
