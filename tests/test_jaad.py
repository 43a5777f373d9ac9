"""The JAAD parser on the 12 real annotation files in tests/data/jaad, and on broken copies."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from pedsense.data import jaad
from pedsense.data.jaad import AnnotationWarning, load_annotations, parse_annotation, parse_attributes
from pedsense.data.annotation import BEHAVIOUR_LABELS, BoundingBox, Track, VideoAnnotation
from pedsense.errors import AnnotationError, DataError


@pytest.fixture(scope="module")
def videos(jaad_dir) -> dict[str, VideoAnnotation]:
    return load_annotations(jaad_dir / "annotations")


def _copy(jaad_dir: Path, tmp_path: Path, *video_ids: str) -> Path:
    """Copy some videos' annotations and attributes; returns the annotations folder."""
    ann, attr = tmp_path / "annotations", tmp_path / "annotations_attributes"
    ann.mkdir(parents=True, exist_ok=True)
    attr.mkdir(parents=True, exist_ok=True)
    for vid in video_ids:
        shutil.copy(jaad_dir / "annotations" / f"{vid}.xml", ann)
        shutil.copy(jaad_dir / "annotations_attributes" / f"{vid}_attributes.xml", attr)
    return ann


def _tiny_xml(tracks: str, size: int = 10, meta: str | None = None) -> str:
    """A minimal CVAT annotation file holding ``tracks``."""
    meta = meta if meta is not None else (
        f"<meta><task><size>{size}</size><original_size><width>64</width><height>48</height>"
        "</original_size><video_attributes><time_of_day>daytime</time_of_day><weather>clear"
        "</weather><location>street</location></video_attributes></task></meta>")
    return f"<annotations><version>1.1</version>{meta}\n{tracks}\n</annotations>"


def _box(frame: int, ped_id: str = "0_1_1b", old_id: str = "pedestrian1", outside: int = 0,
         cross: str = "crossing", xtl: str = "1.0", occlusion: str = "part", xbr: str = "20.0",
         ytl: str = "2.0", ybr: str = "40.0") -> str:
    return (f'<box frame="{frame}" keyframe="1" occluded="0" outside="{outside}" xbr="{xbr}" '
            f'xtl="{xtl}" ybr="{ybr}" ytl="{ytl}"><attribute name="id">{ped_id}</attribute>'
            f'<attribute name="old_id">{old_id}</attribute><attribute name="cross">{cross}'
            f'</attribute><attribute name="occlusion">{occlusion}</attribute></box>')


# -- every real file -------------------------------------------------------------------------
# (video, frames, width, height, time of day, weather, location, tracks by label, visible boxes)
VIDEOS = [
    ("video_0005", 240, 1920, 1080, "daytime", "clear", "plaza", {"pedestrian": 6, "ped": 2}, 1201),
    ("video_0008", 150, 1920, 1080, "daytime", "snow", "plaza", {"pedestrian": 1, "ped": 1}, 213),
    ("video_0013", 150, 1920, 1080, "daytime", "n/a", "indoor", {}, 0),
    ("video_0024", 210, 1920, 1080, "nighttime", "rain", "street", {"pedestrian": 1}, 155),
    ("video_0036", 300, 1920, 1080, "daytime", "snow", "street", {}, 0),
    ("video_0046", 210, 1920, 1080, "daytime", "clear", "street", {"pedestrian": 1}, 200),
    ("video_0069", 120, 1280, 720, "daytime", "cloudy", "street", {"pedestrian": 2, "ped": 11},
     832),
    ("video_0205", 210, 1920, 1080, "daytime", "cloudy", "street", {"pedestrian": 1}, 112),
    ("video_0207", 60, 1920, 1080, "daytime", "clear", "street", {"pedestrian": 1}, 36),
    ("video_0220", 180, 1920, 1080, "daytime", "cloudy", "plaza", {"ped": 1}, 50),
    ("video_0273", 120, 1920, 1080, "daytime", "rain", "street", {"pedestrian": 1, "ped": 1}, 150),
    ("video_0323", 240, 1920, 1080, "daytime", "cloudy", "street", {"ped": 3, "people": 2}, 398),
]


@pytest.mark.parametrize("vid,frames,width,height,tod,weather,location,labels,n_boxes", VIDEOS)
def test_video_facts(videos, vid, frames, width, height, tod, weather, location, labels, n_boxes):
    video = videos[vid]
    assert (video.video_id, video.num_frames) == (vid, frames)
    assert (video.width, video.height) == (width, height)
    assert (video.time_of_day, video.weather, video.location) == (tod, weather, location)
    assert dict(Counter(t.label for t in video.tracks)) == labels
    assert video.num_boxes == n_boxes
    assert all(box.frame < frames for track in video.tracks for box in track.boxes)


def test_all_twelve_videos_load(videos):
    assert sorted(videos) == [row[0] for row in VIDEOS]


def _read_with_full_tree(xml: Path) -> list[tuple]:
    """(label, id and old_id of the first box, visible boxes) per track, read with ET.parse."""
    tracks = []
    for track in ET.parse(xml).getroot().iter("track"):
        boxes = track.findall("box")
        first = {a.get("name"): a.text for a in boxes[0]}
        visible = [(int(b.get("frame")), *(float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")),
                    b.find("attribute[@name='occlusion']").text, b.get("occluded") == "1",
                    b.findtext("attribute[@name='cross']"))
                   for b in boxes if b.get("outside") != "1"]
        tracks.append((track.get("label"), first["id"], first["old_id"], visible))
    return tracks


def test_agrees_with_a_full_tree_reading_of_every_file(jaad_dir, videos):
    """Every track, in file order: ids, frames, corners, occlusion, cross labels."""
    for xml in sorted((jaad_dir / "annotations").glob("*.xml")):
        got = [(t.label, t.track_id, t.old_id,
                [(b.frame, *b.xyxy, b.occlusion, b.occluded, b.cross) for b in t.boxes])
               for t in videos[xml.stem].tracks]
        assert got == _read_with_full_tree(xml), xml.name


def test_a_box_read_from_the_file(videos):
    track = videos["video_0005"].track("0_5_19b")
    assert (track.label, track.old_id, track.is_behavioural) == ("pedestrian", "pedestrian1", True)
    first = track.boxes[0]
    assert first == BoundingBox(0, 974.0, 681.0, 1025.0, 800.0, occluded=False, occlusion="none",
                                action="walking", cross="not-crossing", look="not-looking",
                                extra={"id": "0_5_19b", "old_id": "pedestrian1",
                                       "reaction": "__undefined__", "hand_gesture": "__undefined__",
                                       "nod": "__undefined__", "keyframe": "1"})
    assert first.xyxy == (974.0, 681.0, 1025.0, 800.0)
    assert track.box_at(2).look == "looking"
    assert Counter(b.occlusion for b in track.boxes) == {"none": 158, "part": 21, "full": 1}
    assert sum(b.occluded for b in track.boxes) == 22


def test_the_track_with_a_gap(videos):
    track = videos["video_0205"].track("0_205_1488b")
    assert track.frames == list(range(8, 43)) + list(range(133, 210))
    assert track.box_at(42) is not None and track.box_at(43) is None and track.box_at(132) is None
    assert track.box_at(133).frame == 133


@pytest.mark.parametrize("vid,ped,bystander,ped_boxes,bystander_boxes", [
    ("video_0005", "0_5_16b", "0_5_16", 158, 96),
    ("video_0273", "0_273_2159b", "0_273_2159", 106, 44),
    ("video_0069", "0_69_348b", "0_69_348", 120, 94),
])
def test_ids_differing_only_by_the_b_suffix_are_two_tracks(videos, vid, ped, bystander,
                                                          ped_boxes, bystander_boxes):
    behaviour, other = videos[vid].track(ped), videos[vid].track(bystander)
    assert (behaviour.label, len(behaviour.boxes)) == ("pedestrian", ped_boxes)
    assert behaviour.is_behavioural
    assert (other.label, len(other.boxes), other.is_behavioural) == ("ped", bystander_boxes, False)
    assert other.attributes == {} and other.crossing is None
    assert all(b.cross is None and b.action is None and b.look is None for b in other.boxes)
    assert behaviour.attributes["old_id"].startswith("pedestrian")


@pytest.mark.parametrize("vid,ped", [("video_0008", "0_8_44b"), ("video_0024", "0_24_99b"),
                                     ("video_0205", "0_205_1488b"), ("video_0273", "0_273_2159b")])
def test_old_id_without_a_number_still_gets_behaviour_labels(videos, vid, ped):
    track = videos[vid].track(ped)
    assert track.old_id == "pedestrian" and track.is_behavioural
    assert all(b.cross in ("crossing", "not-crossing") and b.action in ("standing", "walking")
               for b in track.boxes)


# (video, pedestrian, crossing, crossing_point, boxes labelled crossing)
ATTRIBUTES = [
    ("video_0005", "0_5_19b", -1, 0, 0),
    ("video_0008", "0_8_44b", 0, 0, 0),
    ("video_0024", "0_24_99b", 1, 76, 117),
    ("video_0046", "0_46_213b", 1, -1, 200),       # crosses, yet crossing_point -1
    ("video_0069", "0_69_348b", 0, 67, 53),        # crossing 0 but 53 boxes say crossing
    ("video_0069", "0_69_343b", 0, 107, 13),
    ("video_0205", "0_205_1488b", 1, 133, 77),
    ("video_0207", "0_207_1496b", 0, -1, 0),
    ("video_0273", "0_273_2159b", 1, 14, 77),      # crossing_point = the track's first frame
]


@pytest.mark.parametrize("vid,ped,crossing,crossing_point,n_crossing", ATTRIBUTES)
def test_attributes_are_matched_by_pedestrian_id(videos, vid, ped, crossing, crossing_point,
                                                n_crossing):
    track = videos[vid].track(ped)
    assert (track.crossing, track.crossing_point) == (crossing, crossing_point)
    assert sum(b.cross == "crossing" for b in track.boxes) == n_crossing
    assert "id" not in track.attributes


def test_attribute_values_are_ints_where_numeric(videos):
    assert videos["video_0024"].track("0_24_99b").attributes == {
        "age": "adult", "crossing": 1, "crossing_point": 76, "decision_point": -1,
        "designated": "D", "gender": "male", "group_size": 1, "intersection": "no",
        "motion_direction": "LAT", "num_lanes": 2, "old_id": "pedestrian", "signalized": "NS",
        "traffic_direction": "TW"}


def test_every_behaviour_track_of_the_real_files_has_attributes(videos):
    behaviour = [t for v in videos.values() for t in v.tracks if t.is_behavioural]
    assert len(behaviour) == 14
    assert all(t.track_id.endswith("b") and t.attributes for t in behaviour)
    assert not any(t.attributes for v in videos.values() for t in v.tracks if not t.is_behavioural)


@pytest.mark.parametrize("vid", ["video_0013", "video_0036"])
def test_videos_without_tracks(videos, vid):
    assert videos[vid].tracks == [] and videos[vid].boxes_by_frame() == {}


def test_the_1280x720_video_keeps_the_box_past_the_edge(videos):
    video = videos["video_0069"]
    assert (video.width, video.height) == (1280, 720)
    box = video.track("0_69_341").box_at(80)
    assert box.xyxy == (1249.0, 344.0, 1281.0, 499.0) and box.occluded


def test_boxes_by_frame(videos):
    by_frame = videos["video_0069"].boxes_by_frame()
    assert list(by_frame) == sorted(by_frame) and set(by_frame) == set(range(120))
    assert "0_69_341" in {track.track_id for track, _ in by_frame[80]}
    assert sum(len(pairs) for pairs in by_frame.values()) == 832


def test_to_jaad_dict_uses_jaad_codes(videos):
    entry = videos["video_0005"].to_jaad_dict()
    assert (entry["num_frames"], entry["width"], entry["height"]) == (240, 1920, 1080)
    ped = entry["ped_annotations"]["0_5_19b"]
    assert ped["old_id"] == "pedestrian1" and ped["frames"] == list(range(180))
    assert ped["bbox"][0] == [974.0, 681.0, 1025.0, 800.0]
    assert Counter(ped["occlusion"]) == {0: 158, 1: 21, 2: 1}
    assert sorted(ped["behavior"]) == sorted(BEHAVIOUR_LABELS)
    assert ped["behavior"]["cross"] == [0] * 180 and ped["behavior"]["look"][:3] == [0, 0, 1]
    attributes = ped["attributes"]
    assert (attributes["old_id"], attributes["gender"], attributes["age"]) == ("pedestrian1", 2, 2)
    assert (attributes["crossing"], attributes["crossing_point"]) == (-1, 0)
    assert attributes["designated"] == 0  # ND
    assert entry["ped_annotations"]["0_5_16"]["behavior"] == {}
    assert entry["ped_annotations"]["0_5_16"]["attributes"] == {}


# -- pure pieces, with the empty case --------------------------------------------------------
@pytest.mark.parametrize("boxes,frames", [
    ([], []),
    ([BoundingBox(3, 0, 0, 1, 1)], [3]),
    ([BoundingBox(5, 0, 0, 1, 1), BoundingBox(7, 0, 0, 1, 1)], [5, 7]),
])
def test_track_frames_and_box_at(boxes, frames):
    track = Track("ped", "t", boxes)
    assert track.frames == frames
    assert track.box_at(4) is None
    assert [track.box_at(f) for f in frames] == boxes
    assert track.crossing is None and track.crossing_point is None


@pytest.mark.parametrize("label,old_id,behavioural", [
    ("pedestrian", "pedestrian", True), ("pedestrian", "pedestrian12", True),
    ("ped", "ped1", False), ("people", "people2", False),
    ("pedestrian", "", True), ("ped", "", False),  # no old_id: the label decides
])
def test_which_tracks_get_behaviour_labels(label, old_id, behavioural):
    assert Track(label, "t", old_id=old_id).is_behavioural is behavioural


# -- hand-written files ----------------------------------------------------------------------
def test_outside_boxes_are_dropped_and_the_first_box_still_names_the_track(tmp_path):
    xml = tmp_path / "video_9001.xml"
    xml.write_text(_tiny_xml("<track label=\"pedestrian\">" + _box(0, outside=1) + _box(1)
                             + _box(2, outside=1) + _box(3) + "</track>"))
    track, = parse_annotation(xml).tracks
    assert (track.track_id, track.frames) == ("0_1_1b", [1, 3])
    assert track.boxes[0].occlusion == "part" and track.boxes[0].cross == "crossing"


def test_a_later_track_with_the_same_id_replaces_the_earlier(tmp_path):
    xml = tmp_path / "video_9002.xml"
    xml.write_text(_tiny_xml('<track label="pedestrian">' + _box(0) + '</track>'
                             '<track label="pedestrian">' + _box(5) + _box(6) + '</track>'))
    track, = parse_annotation(xml).tracks
    assert track.frames == [5, 6]


def test_empty_track_and_missing_attributes(tmp_path):
    xml = tmp_path / "video_9003.xml"
    xml.write_text(_tiny_xml('<track label="ped"></track>'
                             '<track label="ped"><box frame="2" occluded="1" outside="0" xtl="1" '
                             'ytl="2" xbr="3" ybr="4" /></track>'))
    video = parse_annotation(xml)
    assert [len(t.boxes) for t in video.tracks] == [0, 1]
    box = video.tracks[1].boxes[0]
    assert (box.occlusion, box.occluded, box.cross, box.extra) == ("none", True, None, {})
    assert len({t.track_id for t in video.tracks}) == 2


def test_parse_annotation_with_an_attributes_file(jaad_dir):
    xml = jaad_dir / "annotations" / "video_0024.xml"
    assert parse_annotation(xml).track("0_24_99b").attributes == {}
    attributes = jaad_dir / "annotations_attributes" / "video_0024_attributes.xml"
    with_attributes = parse_annotation(xml, attributes)
    assert with_attributes.track("0_24_99b").crossing_point == 76


# -- bad input -------------------------------------------------------------------------------
def test_truncated_file_names_file_and_line(jaad_dir, tmp_path):
    xml = tmp_path / "video_0005.xml"
    xml.write_bytes((jaad_dir / "annotations" / "video_0005.xml").read_bytes()[:50_000])
    message = r"video_0005\.xml is not well-formed XML \(truncated or corrupted\): line 1, column"
    with pytest.raises(AnnotationError, match=message):
        parse_annotation(xml)


@pytest.mark.parametrize("text,line", [
    ("", 1),
    ("<annotations>\n<meta>\n<task><size>3</size>\n</meta></annotations>", 4),
    (_tiny_xml('<track label="ped">\n<box frame="0" xtl="1" ytl="1" xbr="2" ybr="2"></track>'), 3),
    ("<annotations>&bogus;</annotations>", 1),
])
def test_malformed_file_names_file_and_line(tmp_path, text, line):
    xml = tmp_path / "video_9100.xml"
    xml.write_text(text)
    message = rf"video_9100\.xml is not well-formed XML .*: line {line},"
    with pytest.raises(AnnotationError, match=message):
        parse_annotation(xml)


@pytest.mark.parametrize("text,message", [
    (_tiny_xml("", meta=""), "no <meta><task><size>"),
    (_tiny_xml("", meta="<meta><task><size>5</size></task></meta>"),
     "no <meta><task><original_size>"),
    (_tiny_xml("", meta="<meta><task><size>five</size><original_size /></task></meta>"),
     "bad frame count"),
    (_tiny_xml('<track label="ped">' + _box(0, xtl="left") + "</track>"),
     r"box \(id 0_1_1b, frame 0\)"),
])
def test_well_formed_but_wrong_content(tmp_path, text, message):
    xml = tmp_path / "video_9200.xml"
    xml.write_text(text)
    with pytest.raises(AnnotationError, match=message) as error:
        parse_annotation(xml)
    assert "video_9200.xml" in str(error.value) and "Fix:" in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(AnnotationError, match="nothing.xml"):
        parse_annotation(tmp_path / "nothing.xml")


def test_malformed_attributes_file_names_that_file(jaad_dir, tmp_path):
    bad = tmp_path / "video_0024_attributes.xml"
    bad.write_text('<ped_attributes><pedestrian id="0_24_99b"')
    with pytest.raises(AnnotationError, match="video_0024_attributes.xml is not well-formed"):
        parse_annotation(jaad_dir / "annotations" / "video_0024.xml", bad)


# -- load_annotations ------------------------------------------------------------------------
def test_load_annotations_reports_progress_and_filters_videos(jaad_dir):
    calls = []
    loaded = load_annotations(jaad_dir / "annotations", video_ids=["video_0273", "video_0024"],
                              progress=lambda *args: calls.append(args))
    assert list(loaded) == ["video_0024", "video_0273"]
    assert calls == [(1, 2, "video_0024"), (2, 2, "video_0273")]
    assert loaded["video_0273"].track("0_273_2159b").crossing == 1  # attributes found beside


def test_load_annotations_defaults_to_the_data_home(jaad_dir, tmp_home):
    _copy(jaad_dir, tmp_home / "data" / "raw", "video_0046")
    loaded = load_annotations()
    assert list(loaded) == ["video_0046"] and loaded["video_0046"].tracks[0].crossing == 1


def test_load_annotations_without_attributes_folder(jaad_dir, tmp_path):
    ann = tmp_path / "annotations"
    ann.mkdir()
    shutil.copy(jaad_dir / "annotations" / "video_0046.xml", ann)
    assert load_annotations(ann)["video_0046"].tracks[0].attributes == {}


def test_load_annotations_skips_bad_files_with_a_warning(jaad_dir, tmp_path):
    ann = _copy(jaad_dir, tmp_path, "video_0008", "video_0024", "video_0046")
    (ann / "video_0024.xml").write_text("<annotations><meta>")
    (ann / "video_0046.xml").write_text("")
    with pytest.warns(AnnotationWarning, match="Skipped 2 unreadable") as caught:
        loaded = load_annotations(ann)
    assert list(loaded) == ["video_0008"]
    skipped = caught[0].message.skipped
    assert sorted(Path(p).name for p in skipped) == ["video_0024.xml", "video_0046.xml"]
    assert "line 1" in str(caught[0].message)


def test_load_annotations_all_bad_is_an_error(tmp_path):
    (tmp_path / "video_0001.xml").write_text("<annotations>")
    with pytest.raises(DataError, match="None of the 1 annotation files"):
        load_annotations(tmp_path)


@pytest.mark.parametrize("make", [lambda p: p, lambda p: p.mkdir() or p])
def test_missing_or_empty_folder_says_how_to_get_data(tmp_path, make):
    folder = make(tmp_path / "annotations")
    with pytest.raises(DataError, match="pedsense demo-data") as error:
        load_annotations(folder)
    assert str(folder) in str(error.value)


def test_unknown_video_id_is_an_error(jaad_dir):
    with pytest.raises(DataError, match="video_9999"):
        load_annotations(jaad_dir / "annotations", video_ids=["video_0005", "video_9999"])


# -- boxes no build may label ------------------------------------------------------------------
@pytest.mark.parametrize("box, reason, detail", [
    (dict(cross="maybe"), "unknown_cross", "cross='maybe'"),
    (dict(occlusion="partial"), "unknown_occlusion", "occlusion='partial'"),
    (dict(xtl="30.0"), "inverted_box", "xtl 30.0 > xbr 20.0"),
    (dict(ytl="50.0"), "inverted_box", "ytl 50.0 > ybr 40.0"),
    (dict(xtl="20.0"), "empty_box", "zero width"),
    (dict(xtl="70.0", xbr="90.0"), "outside_image", "64x48"),
])
def test_a_box_no_build_may_label_is_left_out_with_a_warning(tmp_path, caplog, box, reason, detail):
    """Unknown label values and impossible corners: never coerced to a class, never silent."""
    xml = tmp_path / "video_9300.xml"
    xml.write_text(_tiny_xml('<track label="pedestrian">' + _box(0) + _box(1, **box) + _box(2)
                             + "</track>"))
    video = parse_annotation(xml)
    assert video.tracks[0].frames == [0, 2]
    rejected, = video.rejected_boxes
    assert (rejected.track_id, rejected.frame, rejected.reason) == ("0_1_1b", 1, reason)
    assert detail in rejected.detail
    warning = caplog.text
    assert "video_9300.xml" in warning and "0_1_1b" in warning and "frame 1" in warning


def test_irrelevant_is_a_known_cross_value(tmp_path):
    xml = tmp_path / "video_9301.xml"
    xml.write_text(_tiny_xml('<track label="pedestrian">' + _box(0, cross="irrelevant") + "</track>"))
    video = parse_annotation(xml)
    assert video.tracks[0].boxes[0].cross == "irrelevant" and video.rejected_boxes == []


def test_the_real_files_have_no_box_to_leave_out(videos):
    assert all(video.rejected_boxes == [] for video in videos.values())


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_non_finite_coordinates_are_an_error_naming_file_line_and_track(tmp_path, value):
    xml = tmp_path / "video_9302.xml"
    xml.write_text(_tiny_xml('<track label="ped">' + _box(0, ped_id="0_1_1")
                             + "</track>\n" + '<track label="pedestrian">' + _box(0) + _box(1, ybr=value)
                             + "</track>"))
    with pytest.raises(AnnotationError) as error:
        parse_annotation(xml)
    message = str(error.value)
    assert "video_9302.xml" in message and "line 3" in message and "track 0_1_1b" in message
    assert "frame 1" in message and "not a finite number" in message and "Fix:" in message


def test_an_unreadable_attributes_file_keeps_the_video_s_boxes(jaad_dir, tmp_path, caplog):
    ann = _copy(jaad_dir, tmp_path, "video_0024", "video_0046")
    broken = tmp_path / "annotations_attributes" / "video_0024_attributes.xml"
    broken.write_text('<ped_attributes><pedestrian id="0_24_99b"')
    with pytest.warns(AnnotationWarning, match="video_0024_attributes.xml"):
        loaded = load_annotations(ann)
    assert list(loaded) == ["video_0024", "video_0046"]
    video = loaded["video_0024"]
    assert video.num_boxes == 155 and video.tracks[0].attributes == {}
    assert video.attributes_error and "video_0024_attributes.xml" in video.attributes_error
    assert loaded["video_0046"].tracks[0].crossing == 1
    assert "video_0024_attributes.xml" in caplog.text and "missing" in caplog.text


BOMB = """<?xml version="1.0"?>
<!DOCTYPE annotations [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
]>
<annotations><meta><task><size>&e;</size></task></meta></annotations>
"""


@pytest.mark.parametrize("name", ["video_9400.xml", "video_9400_attributes.xml"])
def test_an_entity_bomb_is_refused_for_safety(tmp_path, name):
    path = tmp_path / name
    path.write_text(BOMB)
    with pytest.raises(AnnotationError) as error:
        parse_attributes(path) if "attributes" in name else parse_annotation(path)
    message = str(error.value)
    assert name in message and "DTD" in message and "entity expansion" in message
    assert "refused for safety" in message and "truncated" not in message and "Fix:" in message
