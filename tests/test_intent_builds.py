"""Dataset builds under ``task="intent"`` (the JAAD benchmark protocol) and the leakage guard.

End to end on the synthetic demo set (``intent_home``: 3 videos of 200 frames, one per split),
and on the real annotations in tests/data/jaad with stand-in frames (the clips are not here):
window placement, labels, beh/all, split membership against the split files, the manifest,
rebuilds, and the build summary's skip reasons.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from pedsense.config import paths
from pedsense.data.intent import IntentOptions, intent_windows
from pedsense.data.intent_dataset import collect_intent_windows
from pedsense.data.jaad import load_annotations
from pedsense.data.manifest import FRAMES_NOT_EXTRACTED, task_options
from pedsense.data.resnet_format import (CROP_COLUMNS, INTENT_COLUMNS, SEQUENCE_COLUMNS,
                                         build_resnet_crops, build_resnet_sequences)
from pedsense.data.splits import LeakageError, leakage_check, split_videos
from pedsense.data.yolo_format import (build_detector_dataset, build_yolo_dataset, window_labeller,
                                       window_labels, yolo_line)
from pedsense.errors import ConfigError, DataError

from conftest import DEMO_CROP, DEMO_SEQUENCE_LENGTH, DEMO_STRIDE

PARTS = ("train", "val", "test")


def _rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _annotations(home=None) -> dict:
    p = paths(home)
    return load_annotations(p.annotations, p.attributes)


def _split_files(home, split="default") -> dict[str, set[str]]:
    folder = paths(home).split_ids / split
    return {part: set((folder / f"{part}.txt").read_text().split()) for part in PARTS}


def _expected_windows(home, options: IntentOptions, split: str = "default") -> dict:
    """``{(video, track, end_frame): window}`` the protocol gives on this home's split."""
    annotations = _annotations(home)
    video_split = split_videos(sorted(annotations), split, home=home)
    dataset = collect_intent_windows(annotations, video_split, options)
    return {(w.video_id, w.track_id, w.end_frame): (w, split)
            for split in PARTS for w in dataset.windows[split]}


# ---------------------------------------------------------------- the demo set, end to end

def test_sequences_are_exactly_the_protocol_windows(intent_home):
    columns, rows = _rows(paths().resnet / "labels.csv")
    assert columns == SEQUENCE_COLUMNS + INTENT_COLUMNS
    expected = _expected_windows(intent_home, IntentOptions())
    got = {(r["video_id"], r["track_id"], int(r["end_frame"])): r for r in rows}
    assert set(got) == set(expected) and len(got) == len(rows)
    tracks = {(vid, t.track_id): t for vid, a in _annotations().items() for t in a.tracks}
    for key, row in got.items():
        window, split = expected[key]
        track = tracks[key[:2]]
        assert int(row["end_frame"]) - int(row["start_frame"]) == DEMO_SEQUENCE_LENGTH - 1
        tte = int(row["event_frame"]) - int(row["end_frame"])
        assert 30 <= tte <= 60 and tte == int(row["tte"])              # 1-2 s before the event
        assert int(row["event_frame"]) == track.crossing_point          # the demo always has one
        assert int(row["label"]) == track.crossing and track.is_behavioural
        assert row["split"] == split and row["occlusion"] == window.occlusion
        folder = paths().sequences / row["split"] / row["sequence_id"]
        assert len(list(folder.glob("frame_*.jpg"))) == DEMO_SEQUENCE_LENGTH
    assert {r["label"] for r in rows} == {"0", "1"}
    image = cv2.imread(str(next(paths().sequences.glob("*/*/frame_00.jpg"))))
    assert image.shape == (DEMO_CROP[1], DEMO_CROP[0], 3)


def test_every_pedestrian_gets_the_benchmark_ttes(intent_home):
    _, rows = _rows(paths().resnet / "labels.csv")
    by_pedestrian = defaultdict(set)
    for row in rows:
        by_pedestrian[(row["video_id"], row["track_id"])].add(int(row["tte"]))
    assert by_pedestrian
    assert all(ttes == set(IntentOptions().ttes()) for ttes in by_pedestrian.values())


def test_crops_are_the_frames_of_the_windows(intent_home):
    columns, rows = _rows(paths().resnet / "crops.csv")
    assert columns == CROP_COLUMNS + INTENT_COLUMNS
    expected = {}
    for window, _ in _expected_windows(intent_home, IntentOptions()).values():
        for frame in window.frames:
            expected[(window.video_id, window.track_id, frame)] = window.label
    got = {(r["video_id"], r["track_id"], int(r["frame"])): int(r["label"]) for r in rows}
    assert got == expected and len(rows) == len(got)  # each (pedestrian, frame) once
    for row in rows[:: max(1, len(rows) // 40)]:
        assert 30 <= int(row["tte"]) <= 60 + DEMO_SEQUENCE_LENGTH - 1
        image = cv2.imread(str(paths().resnet / "crops" / row["split"] / f"{row['crop_id']}.jpg"))
        assert image.shape == (DEMO_CROP[1], DEMO_CROP[0], 3)


def test_yolo_labels_the_boxes_inside_the_windows(intent_home):
    dataset = paths().yolo
    manifest = _manifest(dataset)
    windows = defaultdict(list)
    for window, _ in _expected_windows(intent_home, IntentOptions()).values():
        windows[window.video_id].append(window)
    annotations = _annotations()
    unlabelled = 0
    for part in manifest["split"]["videos"]:
        for txt in (dataset / "labels" / part).glob("*.txt"):
            video, frame = txt.stem.rsplit("_", 1)
            by_frame = window_labels(windows[video])
            assert int(frame) in by_frame  # only frames of some pedestrian's window
            annotation = annotations[video]
            expected = []
            for track in annotation.tracks:
                box = track.box_at(int(frame))
                if box is None or track.label == "people":
                    continue
                label = by_frame[int(frame)].get(track.track_id)
                if label is None:
                    unlabelled += 1
                elif yolo_line(label, box.xyxy, annotation.width, annotation.height):
                    expected.append(label)
            got = [int(line.split()[0]) for line in txt.read_text().splitlines()]
            assert sorted(got) == sorted(expected)
    assert unlabelled == sum(c["unlabelled_boxes"] for c in manifest["counts"].values())
    assert any("unlabelled" in w for w in manifest["warnings"])


def test_split_membership_equals_the_split_files(intent_home):
    files = _split_files(intent_home)
    for csv_name in ("labels.csv", "crops.csv"):
        _, rows = _rows(paths().resnet / csv_name)
        for row in rows:
            assert row["video_id"] in files[row["split"]]
        assert {r["split"] for r in rows} == set(PARTS)  # the demo's 3 videos: one per part
    for folder in (paths().yolo, paths().yolo_detector, paths().sequences, paths().resnet / "crops"):
        split = _manifest(folder)["split"]
        assert split["source"] == "official:default"
        assert {part: set(v) for part, v in split["videos"].items()} == files
        assert split["missing"] == [] and split["unassigned"] == []
    for part in PARTS:
        videos = {p.stem.rsplit("_", 1)[0] for p in (paths().yolo / "images" / part).glob("*.jpg")}
        assert videos == files[part]


def test_manifests_record_task_options_skips_and_leakage(intent_home):
    options = IntentOptions().as_dict()
    for folder in (paths().yolo, paths().sequences, paths().resnet / "crops"):
        manifest = _manifest(folder)
        assert manifest["task"] == "intent" and manifest["intent_options"] == options
        assert manifest["parameters"]["task"] == "intent" and manifest["parameters"]["intent"] == options
        assert manifest["leakage"]["ok"] and manifest["leakage"]["checked"]
        assert set(manifest["leakage"]["pedestrians"]) == set(PARTS)
        intent = manifest["intent"]
        assert intent["protocol"] == options and intent["leakage"]["checked"]
        assert intent["skipped"] == {"bystander_not_in_sample": 4, "short_track": 1}
        summary = "\n".join(manifest["summary"])
        assert "task intent (obs 16, TTE 30-60, overlap 0.8, sample beh" in summary
        assert "5 pedestrians skipped: 4 `ped` bystanders" in summary
        assert "1 track shorter than observation + max TTE" in summary
        assert "leakage check passed: no video or pedestrian is in two splits" in summary
    detector = _manifest(paths().yolo_detector)
    assert detector["task"] == "intent" and detector["intent_options"] == options
    assert "only the split applies" in detector["note"] and detector["leakage"]["ok"]


def test_sequence_counts_match_the_protocol(intent_home):
    manifest = _manifest(paths().sequences)
    for part, counts in manifest["intent"]["class_counts"].items():
        assert manifest["counts"][part] == {"not-crossing": counts["not-crossing"],
                                            "crossing": counts["crossing"]}
    assert manifest["intent"]["windows_written"] == manifest["total"]


def test_detector_labels_do_not_depend_on_the_task(intent_home):
    def label_files():
        root = paths().yolo_detector / "labels"
        return {p.relative_to(root): p.read_text() for p in root.glob("*/*.txt")}

    intent = label_files()
    result = build_detector_dataset(task="action")
    assert not result["reused"] and result["task"] == "action"  # the task is recorded: rebuilt
    assert label_files() == intent


def test_beh_vs_all_adds_bystanders_as_not_crossing(intent_home):
    _, beh = _rows(paths().resnet / "labels.csv")
    result = build_resnet_sequences(DEMO_SEQUENCE_LENGTH, DEMO_STRIDE, DEMO_CROP,
                                    intent=IntentOptions(sample_type="all"), task="intent")
    assert not result["reused"] and result["intent_options"]["sample_type"] == "all"
    _, every = _rows(paths().resnet / "labels.csv")
    beh_ids = {r["sequence_id"] for r in beh}
    extra = [r for r in every if r["sequence_id"] not in beh_ids]
    assert beh_ids <= {r["sequence_id"] for r in every} and extra
    assert {r["track_label"] for r in extra} == {"ped"} and {r["label"] for r in extra} == {"0"}
    assert {r["track_label"] for r in beh} == {"pedestrian"}
    assert "bystander_not_in_sample" not in result["intent"]["skipped"]


def test_changing_task_or_options_rebuilds(intent_home):
    args = (DEMO_SEQUENCE_LENGTH, DEMO_STRIDE, DEMO_CROP)
    assert build_resnet_sequences(*args, task="intent")["reused"]
    assert build_resnet_sequences(DEMO_SEQUENCE_LENGTH, 4, DEMO_CROP, task="intent")["reused"]  # stride unused
    narrow = build_resnet_sequences(*args, task="intent", intent=IntentOptions(tte=(30, 45)))
    assert not narrow["reused"] and narrow["intent_options"]["tte"] == [30, 45]
    _, rows = _rows(paths().resnet / "labels.csv")
    assert {int(r["tte"]) for r in rows} == {45, 42, 39, 36, 33, 30}
    sparse = build_resnet_sequences(*args, task="intent", intent=IntentOptions(overlap=0.5))
    assert not sparse["reused"] and {int(r["tte"]) for r in _rows(paths().resnet / "labels.csv")[1]} \
        == {60, 52, 44, 36}
    action = build_resnet_sequences(*args)
    assert not action["reused"] and action["task"] == "action" and action["intent_options"] is None
    assert _rows(paths().resnet / "labels.csv")[0] == SEQUENCE_COLUMNS
    assert "task action" in action["summary"][0]
    assert not build_yolo_dataset(task="intent", intent=IntentOptions(sample_type="all"))["reused"]
    assert not build_resnet_crops(DEMO_CROP, task="intent", intent=IntentOptions(irrelevant="exclude"))["reused"]
    assert not build_resnet_crops(DEMO_CROP, task="intent", intent=IntentOptions(placement="frames"))["reused"]


def test_windows_over_frames_not_extracted_are_counted(intent_home):
    video = sorted(_split_files(intent_home)["train"])[0]
    meta_path = paths().video_frames(video) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["frames"], meta["created_at"] = meta["frames"][::2], "sub-sampled"
    meta_path.unlink()  # a hard link shared with the session copy: replace, never edit
    meta_path.write_text(json.dumps(meta))
    result = build_resnet_sequences(DEMO_SEQUENCE_LENGTH, DEMO_STRIDE, DEMO_CROP, task="intent")
    assert result["intent"]["skipped"][FRAMES_NOT_EXTRACTED] == result["intent"]["class_counts"]["train"]["total"]
    assert "train" not in {r["split"] for r in _rows(paths().resnet / "labels.csv")[1]}
    assert any(line.endswith("(extract every frame: `pedsense preprocess frames`)")
               and line.startswith(f"{result['intent']['skipped'][FRAMES_NOT_EXTRACTED]} windows skipped")
               for line in result["summary"])
    assert "the 'train' part has no sequences" in result["warnings"]


def test_split_file_naming_absent_videos_is_counted(intent_home):
    train = paths().split_ids / "default" / "train.txt"
    listed = train.read_text()
    train.unlink()
    train.write_text(listed + "video_9998\nvideo_9999\n")
    result = build_resnet_crops(DEMO_CROP, task="intent")
    assert result["split"]["missing"] == ["video_9998", "video_9999"]
    assert result["intent"]["missing_videos"] == ["video_9998", "video_9999"]
    assert any(line.startswith("2 videos named by the split files are absent") for line in result["summary"])


def test_no_window_at_all_is_a_clear_error(intent_home):
    with pytest.raises(DataError, match="short_track"):
        build_resnet_sequences(DEMO_SEQUENCE_LENGTH, DEMO_STRIDE, DEMO_CROP, task="intent",
                               intent=IntentOptions(tte=(30, 190)))
    assert _manifest(paths().sequences)["task"] == "intent"  # the previous build is still there


@pytest.mark.parametrize("build, kwargs", [
    (build_resnet_sequences, {"task": "predict"}),
    (build_resnet_sequences, {"task": "intent", "intent": {"sample_type": "everyone"}}),
    (build_resnet_sequences, {"task": "intent", "intent": IntentOptions(obs_length=8)}),
    (build_resnet_crops, {"task": "intent", "intent": {"tte": (60, 30)}}),
    (build_yolo_dataset, {"task": "intent", "intent": {"overlap": 1.0}}),
    (build_yolo_dataset, {"task": "intent", "attribute": "look"}),
    (build_detector_dataset, {"task": "intent", "split": "official"}),
])
def test_bad_task_options_name_the_problem(tmp_home, build, kwargs):
    # checked before any input is read: an empty data home is enough
    with pytest.raises(ConfigError):
        build(**kwargs)


def test_task_options():
    assert task_options() is None and task_options("action", IntentOptions(sample_type="all")) is None
    assert task_options("intent") == IntentOptions()
    assert task_options("intent", {"obs_length": 8, "tte": [20, 40]}) == IntentOptions(obs_length=8, tte=(20, 40))
    with pytest.raises(ConfigError, match="sample_type"):
        task_options("action", {"sample_type": "nobody"})  # checked under action too


# ---------------------------------------------------------------- the leakage guard

def test_action_builds_run_the_leakage_guard_and_record_the_task(demo_home):
    for folder in (paths().yolo, paths().yolo_detector, paths().sequences, paths().resnet / "crops"):
        manifest = _manifest(folder)
        assert manifest["task"] == "action" and manifest["intent_options"] is None
        assert manifest["leakage"]["ok"] and manifest["leakage"]["checked"]
        assert manifest["summary"][0].startswith("task action") and manifest["split"]["source"]
        assert manifest["summary"][-1].startswith("leakage check passed")


@pytest.mark.parametrize("videos, pedestrians, match", [
    ({"train": ["v1", "v2"], "test": ["v2"]}, None, "video"),
    ({"train": ["v1"], "test": ["v2"]}, {"train": [("v1", "p")], "test": [("v1", "p")]}, "pedestrian"),
])
def test_leakage_guard_raises(videos, pedestrians, match):
    with pytest.raises(LeakageError, match=match):
        leakage_check(videos, pedestrians)


def test_leakage_guard_record():
    record = leakage_check({"train": ["a", "b"], "val": ["c"]}, {"train": [("a", "1")], "val": []})
    assert record == {"ok": True, "checked": True, "videos": {"train": 2, "val": 1},
                      "videos_in_several_splits": {}, "pedestrians": {"train": 1, "val": 0}}


# ---------------------------------------------------------------- the real JAAD annotations

@pytest.fixture(scope="module")
def jaad_annotations(jaad_dir) -> dict:
    return load_annotations(jaad_dir / "annotations", jaad_dir / "annotations_attributes")


@pytest.mark.parametrize("sample_type", ["beh", "all"])
def test_window_labeller_on_real_jaad(jaad_annotations, sample_type):
    """A box is labelled iff it lies in one of its pedestrian's windows, with the track's label."""
    options = IntentOptions(sample_type=sample_type)
    labelled = 0
    for annotation in jaad_annotations.values():
        windows, _ = intent_windows(annotation, options)
        label = window_labeller(window_labels(windows))
        frames = defaultdict(set)
        for window in windows:
            frames[window.track_id].update(window.frames)
        for track in annotation.tracks:
            for box in track.boxes:
                got = label(track, box)
                if box.frame not in frames[track.track_id]:
                    assert got is None
                    continue
                labelled += 1
                assert got == (int(track.crossing > 0) if track.is_behavioural else 0)  # the benchmark's
    assert labelled > 0


def _stand_in_frames(home: Path, annotations: dict) -> None:
    """Extracted-frame folders for the real annotations: one small grey JPEG, hard-linked as
    every frame, and a finished meta.json (the clips cannot be downloaded here)."""
    p = paths(home)
    source = home / "grey.jpg"
    cv2.imwrite(str(source), np.full((36, 64, 3), 127, np.uint8))
    for video, annotation in annotations.items():
        folder = p.video_frames(video)
        folder.mkdir(parents=True)
        frames = list(range(annotation.num_frames))
        for frame in frames:
            (folder / f"frame_{frame:06d}.jpg").hardlink_to(source)
        meta = {"video_id": video, "width": 64, "height": 36, "frame_step": 1, "frames": frames,
                "created_at": "stand-in", "complete": True}
        (folder / "meta.json").write_text(json.dumps(meta))


@pytest.fixture
def jaad_home(jaad_dir, jaad_annotations, tmp_home) -> Path:
    """The 12 real annotation files, their attributes, JAAD's split files, stand-in frames."""
    raw = tmp_home / "data" / "raw"
    for name in ("annotations", "annotations_attributes", "split_ids"):
        shutil.copytree(jaad_dir / name, raw / name)
    _stand_in_frames(tmp_home, jaad_annotations)
    return tmp_home


@pytest.mark.parametrize("split", ["default", "high_visibility"])
def test_intent_sequences_on_real_jaad(jaad_home, jaad_annotations, split):
    options = IntentOptions(sample_type="all", irrelevant="exclude")
    result = build_resnet_sequences(16, 8, (16, 16), task="intent", intent=options, split=split)
    _, rows = _rows(paths().resnet / "labels.csv")
    expected = _expected_windows(jaad_home, options, split)
    assert {(r["video_id"], r["track_id"], int(r["end_frame"])) for r in rows} == set(expected)
    files = _split_files(jaad_home, split)
    tracks = {(v, t.track_id): t for v, a in jaad_annotations.items() for t in a.tracks}
    for row in rows:
        track = tracks[(row["video_id"], row["track_id"])]
        assert row["video_id"] in files[row["split"]]
        assert 30 <= int(row["tte"]) == int(row["event_frame"]) - int(row["end_frame"]) <= 60
        assert int(row["label"]) == (track.crossing if track.is_behavioural else 0)
    # the 12 videos here against split files written for all 346: the rest are absent, and said
    listed = set().union(*files.values())
    absent = sorted(listed - set(jaad_annotations))
    unlisted = sorted(set(jaad_annotations) - listed)
    assert result["split"]["missing"] == absent and result["split"]["unassigned"] == unlisted
    summary = "\n".join(result["summary"])
    assert f"{len(absent)} videos named by the split files are absent" in summary
    assert "`crossing` = -1 (irrelevant), excluded" in summary  # JAAD's -1 pedestrians
    if unlisted:
        assert "pedestrians of videos no split lists" in summary
        assert f"{len(unlisted)} videos skipped" in summary
    assert result["leakage"]["ok"]


def test_intent_yolo_and_crops_on_real_jaad(jaad_home, jaad_annotations):
    exclude = IntentOptions(irrelevant="exclude")  # the crossing=-1 pedestrians left out
    crops = build_resnet_crops((16, 16), task="intent", intent=exclude)
    _, rows = _rows(paths().resnet / "crops.csv")
    assert {(r["video_id"], r["track_id"], r["label"]) for r in rows} == {("video_0046", "0_46_213b", "1")}
    assert crops["counts"]["test"]["crossing"] == len(rows)
    yolo = build_yolo_dataset(task="intent", intent=exclude)
    labels = list((paths().yolo / "labels" / "test").glob("*.txt"))
    assert {p.stem.rsplit("_", 1)[0] for p in labels} == {"video_0046"}
    assert all(p.read_text().split()[0] == "1" for p in labels)
    assert yolo["counts"]["test"]["boxes"]["crossing"] == len(rows)
    assert yolo["intent"]["skipped"] == crops["intent"]["skipped"]
    # With the benchmark's default, video_0005's five crossing=-1 pedestrians are not-crossing windows.
    default = build_resnet_crops((16, 16), task="intent")
    _, rows = _rows(paths().resnet / "crops.csv")
    assert {r["track_id"] for r in rows if r["label"] == "0"} == {"0_5_12b", "0_5_13b", "0_5_14b",
                                                                   "0_5_16b", "0_5_18b"}
    assert default["counts"]["test"]["crossing"] == crops["counts"]["test"]["crossing"]


def test_action_build_on_real_jaad_says_what_the_split_files_miss(jaad_home):
    result = build_yolo_dataset()
    assert result["task"] == "action" and result["split"]["missing"]
    summary = "\n".join(result["summary"])
    assert f"{len(result['split']['missing'])} videos named by the split files are absent" in summary
    assert "3 videos skipped: 3 not in any part of the 'default' split" in summary
