"""ResNet crop sequences and single crops built from the demo set."""

from __future__ import annotations

import csv
import json

import cv2
import pytest

from pedsense.config import paths
from pedsense.data.jaad import parse_annotation
from pedsense.data.resnet_format import (CROP_COLUMNS, SEQUENCE_COLUMNS, build_resnet_crops,
                                         build_resnet_sequences, safe_id, sequence_windows)
from pedsense.data.yolo_format import attribute_class
from pedsense.errors import DataError

from conftest import DEMO_CROP, DEMO_SEQUENCE_LENGTH, DEMO_STRIDE


def _parse(home, video):
    """The parsed annotation of ``video`` (with its attributes file when there is one)."""
    attributes = paths(home).attributes_file(video)
    return parse_annotation(paths(home).annotation(video), attributes if attributes.exists() else None)


def _rows(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _tracks(home, video):
    annotation = _parse(home, video)
    return {track.track_id: track for track in annotation.tracks}


def test_sequences_match_labels_csv_and_annotations(demo_home):
    columns, rows = _rows(paths().resnet / "labels.csv")
    assert columns == SEQUENCE_COLUMNS and rows
    assert {row["label"] for row in rows} == {"0", "1"}
    tracks = {}
    for row in rows:
        folder = paths().sequences / row["split"] / row["sequence_id"]
        frames = sorted(folder.glob("frame_*.jpg"))
        assert [f.name for f in frames] == [f"frame_{i:02d}.jpg" for i in range(DEMO_SEQUENCE_LENGTH)]
        assert int(row["end_frame"]) - int(row["start_frame"]) == DEMO_SEQUENCE_LENGTH - 1
        if row["video_id"] not in tracks:
            tracks[row["video_id"]] = _tracks(demo_home, row["video_id"])
        track = tracks[row["video_id"]][row["track_id"]]
        assert track.is_behavioural
        boxes = {box.frame: box for box in track.boxes}
        window = range(int(row["start_frame"]), int(row["end_frame"]) + 1)
        assert all(frame in boxes for frame in window)  # consecutive visible frames
        assert int(row["label"]) == attribute_class(boxes[int(row["end_frame"])], "cross")
    image = cv2.imread(str(frames[0]))
    assert image.shape == (DEMO_CROP[1], DEMO_CROP[0], 3)


def test_sequence_manifest_counts_and_leakage(demo_home):
    manifest = json.loads((paths().sequences / "manifest.json").read_text())
    _, rows = _rows(paths().resnet / "labels.csv")
    assert manifest["total"] == len(rows) and manifest["complete"] and manifest["leakage"]["ok"]
    for part, counts in manifest["counts"].items():
        in_part = [r for r in rows if r["split"] == part]
        assert counts["crossing"] == sum(r["label"] == "1" for r in in_part)
        assert counts["not-crossing"] == sum(r["label"] == "0" for r in in_part)
    video_parts = {}
    for row in rows:
        video_parts.setdefault(row["video_id"], set()).add(row["split"])
    assert all(len(parts) == 1 for parts in video_parts.values())
    assert manifest["parameters"]["crop_size"] == list(DEMO_CROP)
    assert manifest["parameters"]["stride"] == DEMO_STRIDE


def test_single_crops_match_annotations(demo_home):
    columns, rows = _rows(paths().resnet / "crops.csv")
    assert columns == CROP_COLUMNS and {row["label"] for row in rows} == {"0", "1"}
    tracks = {}
    for row in rows[:: max(1, len(rows) // 50)]:
        image = cv2.imread(str(paths().resnet / "crops" / row["split"] / f"{row['crop_id']}.jpg"))
        assert image.shape == (DEMO_CROP[1], DEMO_CROP[0], 3)
        if row["video_id"] not in tracks:
            tracks[row["video_id"]] = _tracks(demo_home, row["video_id"])
        track = tracks[row["video_id"]][row["track_id"]]
        box = next(b for b in track.boxes if b.frame == int(row["frame"]))
        expected = attribute_class(box, "cross") or 0  # bystanders (no `cross`) are not-crossing
        assert track.label != "people" and int(row["label"]) == expected


def test_new_parameters_rebuild_cleanly(demo_home):
    assert build_resnet_sequences(DEMO_SEQUENCE_LENGTH, DEMO_STRIDE, DEMO_CROP)["reused"]
    result = build_resnet_sequences(8, 8, (32, 32))
    assert not result["reused"]
    _, rows = _rows(paths().resnet / "labels.csv")
    folders = {p.name for part in result["counts"] for p in (paths().sequences / part).iterdir()}
    assert folders == {row["sequence_id"] for row in rows}  # nothing left from the 16-frame build
    first = next(paths().sequences.glob("*/*/frame_00.jpg"))
    assert cv2.imread(str(first)).shape == (32, 32, 3)
    assert len(list(first.parent.glob("*.jpg"))) == 8


def test_overlapping_windows_share_crops_as_links(demo_home):
    _, rows = _rows(paths().resnet / "labels.csv")
    by_track = {}
    for row in rows:
        by_track.setdefault((row["video_id"], row["track_id"]), []).append(row)
    pair = next(r for r in by_track.values() if len(r) > 1
                and int(r[1]["start_frame"]) - int(r[0]["start_frame"]) == DEMO_STRIDE)
    first = paths().sequences / pair[0]["split"] / pair[0]["sequence_id"] / f"frame_{DEMO_STRIDE:02d}.jpg"
    second = paths().sequences / pair[1]["split"] / pair[1]["sequence_id"] / "frame_00.jpg"
    assert first.stat().st_ino == second.stat().st_ino  # the same frame of the same pedestrian


def test_too_long_sequences_is_an_error(demo_home):
    with pytest.raises(DataError, match="sequence-length"):
        build_resnet_sequences(10_000, 8, DEMO_CROP)
    assert (paths().resnet / "labels.csv").exists()  # the previous build is still there


def test_build_before_frames(demo_raw_home):
    with pytest.raises(DataError, match="preprocess frames"):
        build_resnet_sequences()
    with pytest.raises(DataError, match="preprocess frames"):
        build_resnet_crops()


@pytest.mark.parametrize("kwargs", [{"crop_size": (4, 4)}, {"crop_size": "big"}, {"stride": 0}])
def test_bad_parameters(demo_home, kwargs):
    with pytest.raises(DataError):
        build_resnet_sequences(**kwargs)


@pytest.mark.parametrize("frames, length, stride, gap, expected", [
    ([], 3, 1, 1, []),
    ([0, 1], 3, 1, 1, []),
    ([0, 1, 2, 3], 3, 1, 1, [[0, 1, 2], [1, 2, 3]]),
    ([0, 1, 2, 3, 4, 5], 3, 3, 1, [[0, 1, 2], [3, 4, 5]]),
    ([0, 1, 2, 10, 11, 12], 3, 1, 1, [[0, 1, 2], [10, 11, 12]]),   # a gap splits the track
    ([0, 1, 3, 4], 2, 1, 1, [[0, 1], [3, 4]]),
    ([0, 3, 6, 9], 3, 1, 3, [[0, 3, 6], [3, 6, 9]]),                # sub-sampled frames
])
def test_sequence_windows(frames, length, stride, gap, expected):
    assert sequence_windows(frames, length, stride, gap) == expected


@pytest.mark.parametrize("raw, expected", [("0_5_19b", "0_5_19b"), ("a/b", "a-b"), ("../x", "x"), ("", "track")])
def test_safe_id(raw, expected):
    assert safe_id(raw) == expected
