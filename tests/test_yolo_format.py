"""YOLO and detector datasets built from the demo set: labels, links, splits, manifest, resuming."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter

import pytest

from pedsense.config import paths
from pedsense.data.frames import annotated_video_ids
from pedsense.data.jaad import parse_annotation
from pedsense.data.resnet_format import build_resnet_crops
from pedsense.data.yolo_format import (attribute_class, build_detector_dataset, build_yolo_dataset,
                                       yolo_line)
from pedsense.errors import DataError


def _parse(home, video):
    """The parsed annotation of ``video`` (with its attributes file when there is one)."""
    attributes = paths(home).attributes_file(video)
    return parse_annotation(paths(home).annotation(video), attributes if attributes.exists() else None)


def _read_yaml(path):
    import yaml

    return yaml.safe_load(path.read_text())


def _labels(dataset, part):
    """``{stem: [(class, cx, cy, w, h), ...]}`` for one part of a YOLO dataset."""
    out = {}
    for txt in sorted((dataset / "labels" / part).glob("*.txt")):
        rows = [line.split() for line in txt.read_text().splitlines() if line.strip()]
        out[txt.stem] = [(int(r[0]), *map(float, r[1:])) for r in rows]
    return out


def _expected_classes(home, stem):
    """The classes pedsense's rules give the boxes of one ``<video>_<frame>`` image."""
    video, frame = stem.rsplit("_", 1)
    annotation = _parse(home, video)
    classes = []
    for track in annotation.tracks:
        for box in track.boxes:
            if box.frame != int(frame) or track.label == "people":
                continue
            if yolo_line(0, box.xyxy, annotation.width, annotation.height) is None:
                continue  # wholly outside the image
            # behaviour pedestrians by their `cross` value; `ped` bystanders are not-crossing
            classes.append(attribute_class(box) or 0)
    return sorted(classes)


def test_data_yaml_and_layout(demo_home):
    dataset = paths().yolo
    data = _read_yaml(dataset / "data.yaml")
    assert data["path"] == str(dataset) and os.path.isabs(data["path"])
    assert data["names"] == {0: "not-crossing", 1: "crossing"}
    manifest = json.loads((dataset / "manifest.json").read_text())
    for part in manifest["split"]["videos"]:
        assert data[part] == f"images/{part}"
        images = sorted(p.stem for p in (dataset / "images" / part).glob("*.jpg"))
        assert images == sorted(_labels(dataset, part))
    assert {"train", "val"} <= set(data)


def test_labels_match_annotations_and_are_normalised(demo_home):
    dataset = paths().yolo
    manifest = json.loads((dataset / "manifest.json").read_text())
    for part, counts in manifest["counts"].items():
        labels = _labels(dataset, part)
        assert counts["images"] == len(labels)
        tally = Counter(row[0] for rows in labels.values() for row in rows)
        assert [tally[0], tally[1]] == [counts["boxes"]["not-crossing"], counts["boxes"]["crossing"]]
        for rows in labels.values():
            for _, *xywh in rows:
                assert all(0.0 <= v <= 1.0 for v in xywh)
    train = _labels(dataset, "train")
    for stem in list(train)[:: max(1, len(train) // 10)]:
        assert sorted(row[0] for row in train[stem]) == _expected_classes(demo_home, stem)
    assert sum(c["boxes"]["crossing"] for c in manifest["counts"].values()) > 0
    assert sum(c["boxes"]["not-crossing"] for c in manifest["counts"].values()) > 0


def test_images_are_hard_links_to_the_frames(demo_home):
    image = next((paths().yolo / "images" / "train").glob("*.jpg"))
    video, frame = image.stem.rsplit("_", 1)
    assert os.path.samefile(image, paths().frame(video, int(frame)))


def test_no_video_in_two_splits(demo_home):
    manifest = json.loads((paths().yolo / "manifest.json").read_text())
    assert manifest["leakage"]["ok"] and manifest["complete"]
    assert manifest["synthetic"] is True
    seen = {}
    for part in manifest["split"]["videos"]:
        for image in (paths().yolo / "images" / part).glob("*.jpg"):
            seen.setdefault(image.stem.rsplit("_", 1)[0], set()).add(part)
    assert seen and all(len(parts) == 1 for parts in seen.values())


def test_detector_dataset_has_one_class(demo_home):
    dataset = paths().yolo_detector
    assert _read_yaml(dataset / "data.yaml")["names"] == {0: "pedestrian"}
    manifest = json.loads((dataset / "manifest.json").read_text())
    yolo_manifest = json.loads((paths().yolo / "manifest.json").read_text())
    for part, counts in manifest["counts"].items():
        classes = {row[0] for rows in _labels(dataset, part).values() for row in rows}
        assert classes == {0}
        # the same individual pedestrians as the crossing dataset, in one class
        assert counts["boxes"]["pedestrian"] == sum(yolo_manifest["counts"][part]["boxes"].values())


def test_rebuild_reuses_and_new_parameters_rebuild(demo_home):
    again = build_yolo_dataset()
    assert again["reused"]
    sparse = build_yolo_dataset(frame_step=4)
    assert not sparse["reused"]
    before = json.loads((paths().yolo / "manifest.json").read_text())
    assert before["parameters"]["frame_step"] == 4
    images = list((paths().yolo / "images" / "train").glob("*.jpg"))
    assert len(images) == sparse["counts"]["train"]["images"]
    assert not any(p.name.endswith(".partial") for p in paths().processed.iterdir())


def test_crash_mid_build_leaves_the_old_dataset_and_resumes(demo_home):
    old = json.loads((paths().yolo / "manifest.json").read_text())

    def crash(done, total, message):
        if done == 1:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        build_yolo_dataset(frame_step=2, progress=crash)
    assert json.loads((paths().yolo / "manifest.json").read_text()) == old  # still the old, complete one
    staging = paths().processed / ".yolo.partial"
    assert len(list((staging / ".done").glob("*.json"))) == 1
    messages = []
    result = build_yolo_dataset(frame_step=2, progress=lambda d, t, m: messages.append(m))
    assert not result["reused"] and result["parameters"]["frame_step"] == 2
    assert not staging.exists()


def test_build_before_frames(demo_raw_home):
    with pytest.raises(DataError, match="preprocess frames"):
        build_yolo_dataset()
    with pytest.raises(DataError, match="preprocess frames"):
        build_detector_dataset()


def test_empty_annotation_folder(tmp_home):
    paths().annotations.mkdir(parents=True)
    with pytest.raises(DataError, match="demo-data"):
        build_yolo_dataset()


def test_official_split_with_test_part(demo_home):
    videos = annotated_video_ids()
    split_dir = paths().split_ids / "default"
    shutil.rmtree(split_dir, ignore_errors=True)
    split_dir.mkdir(parents=True)
    for part, chosen in zip(("train", "val", "test"), (videos[:-2], videos[-2:-1], videos[-1:])):
        (split_dir / f"{part}.txt").write_text("\n".join(chosen) + "\n")
    result = build_yolo_dataset()
    assert set(result["counts"]) == {"train", "val", "test"}
    data = _read_yaml(paths().yolo / "data.yaml")
    assert data["test"] == "images/test"
    assert {p.stem.rsplit("_", 1)[0] for p in (paths().yolo / "images" / "test").glob("*.jpg")} == {videos[-1]}


def test_empty_result(demo_home):
    # keep frames no box ever falls on: nothing to label
    for video in annotated_video_ids():
        meta_path = paths().video_frames(video) / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta["frames"], meta["created_at"] = [], "changed"
        meta_path.unlink()
        meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="empty"):
        build_yolo_dataset()


@pytest.mark.parametrize("xyxy, expected", [
    ((10, 20, 30, 60), "1 0.200000 0.400000 0.200000 0.400000"),
    ((-10, -10, 20, 40), "1 0.100000 0.200000 0.200000 0.400000"),   # clipped to the image
    ((90, 80, 130, 130), "1 0.950000 0.900000 0.100000 0.200000"),
    ((120, 120, 150, 150), None),                                      # wholly outside
    ((10, 10, 10.5, 40), None),                                        # no width left
])
def test_yolo_line(xyxy, expected):
    assert yolo_line(1, xyxy, 100, 100) == expected


def test_labelling_rules_on_real_jaad_annotations(jaad_dir):
    """Every box of the real JAAD files gets a class by the documented rules, inside the image."""
    from pedsense.data.yolo_format import detector_labeller, intent_labeller

    intent = intent_labeller("cross")
    seen = Counter()
    for xml in sorted((jaad_dir / "annotations").glob("*.xml")):
        annotation = parse_annotation(xml)
        for track in annotation.tracks:
            for box in track.boxes:
                label, detector = intent(track, box), detector_labeller(track, box)
                if track.label == "people":
                    assert label is None and detector is None
                    continue
                assert detector == 0
                assert label == (1 if box.cross == "crossing" else 0)
                seen[(track.is_behavioural, label)] += 1
                line = yolo_line(label, box.xyxy, annotation.width, annotation.height)
                if line:
                    assert all(0.0 <= float(v) <= 1.0 for v in line.split()[1:])
    assert seen[(True, 1)] and seen[(True, 0)] and seen[(False, 0)]


def test_a_second_build_at_the_same_time_fails_fast(demo_home):
    from pedsense.data.manifest import StagedBuild

    holder = StagedBuild(paths().processed, "yolo", ["yolo"], "yolo", {}, "")
    with holder.locked():
        with pytest.raises(DataError, match="Another build"):
            build_yolo_dataset(frame_step=3)
    assert build_yolo_dataset(frame_step=3)["parameters"]["frame_step"] == 3


# -- boxes and files no build may use --------------------------------------------------------
def _rewrite(path, change) -> None:
    """Replace (never edit) a file of a hard-link copy with ``change(text)``."""
    text = change(path.read_text())
    path.unlink()
    path.write_text(text)


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def _train_video():
    return _manifest(paths().yolo)["split"]["videos"]["train"][0]


def test_unknown_cross_values_are_left_out_and_counted_never_labelled_not_crossing(demo_home):
    before = _manifest(paths().yolo)["counts"]["train"]["boxes"]
    xml = paths().annotation(_train_video())
    n = xml.read_text().count(">crossing<")
    assert n and before["crossing"] >= n
    _rewrite(xml, lambda text: text.replace(">crossing<", ">maybe<"))
    result = build_yolo_dataset()
    after = result["counts"]["train"]["boxes"]
    assert after["not-crossing"] == before["not-crossing"]  # not one `maybe` became not-crossing
    assert after["crossing"] == before["crossing"] - n
    assert result["invalid_boxes"]["count"] == n
    assert result["invalid_boxes"]["by_reason"] == {"unknown_cross": n}
    assert any(f"{n} boxes left out as invalid ({n} unknown `cross` value)" in w for w in result["warnings"])
    assert _manifest(paths().yolo)["invalid_boxes"]["count"] == n


def _invert(text: str, k: int) -> str:
    """Swap xbr and xtl of the first ``k`` visible boxes (xtl > xbr)."""
    return re.sub(r'outside="0" xbr="([\d.]+)" xtl="([\d.]+)"',
                  lambda m: f'outside="0" xbr="{m[2]}" xtl="{m[1]}"', text, count=k)


def test_inverted_boxes_follow_one_rule_in_every_build(demo_home):
    crops_before = _manifest(paths().resnet / "crops")["counts"]["train"]
    yolo_before = _manifest(paths().yolo)["counts"]["train"]["boxes"]
    _rewrite(paths().annotation(_train_video()), lambda text: _invert(text, 5))
    crops = build_resnet_crops((32, 32))
    yolo = build_yolo_dataset()
    for result in (crops, yolo):
        assert result["invalid_boxes"]["by_reason"] == {"inverted_box": 5}
        assert any("5 boxes left out as invalid (5 inverted corners" in w for w in result["warnings"])
    assert sum(crops["counts"]["train"].values()) == sum(crops_before.values()) - 5
    assert sum(yolo["counts"]["train"]["boxes"].values()) == sum(yolo_before.values()) - 5


def test_a_non_finite_coordinate_skips_that_file_by_name_and_the_builds_go_on(demo_home):
    video = _manifest(paths().yolo)["split"]["videos"]["test"][0]
    _rewrite(paths().annotation(video), lambda text: re.sub(r'ybr="[\d.]+"', 'ybr="nan"', text, count=1))
    crops = build_resnet_crops((32, 32))  # used to crash: cannot convert float NaN to integer
    yolo = build_yolo_dataset()
    for result in (crops, yolo):
        skipped = result["skipped"]["files"]
        assert skipped["count"] == 1 and skipped["list"][0]["file"].endswith(f"{video}.xml")
        assert "not a finite number" in skipped["list"][0]["reason"]
        assert any(f"{video}.xml skipped" in w for w in result["warnings"])
        assert set(result["counts"]) == {"train", "val", "test"} and result["skipped"]["videos"]["count"] == 0
    assert yolo["counts"]["test"]["images"] == 0 and sum(crops["counts"]["test"].values()) == 0


def test_an_unreadable_attributes_file_keeps_the_video_in_the_action_builds(demo_home):
    before = _manifest(paths().yolo)["counts"]["train"]
    video = _train_video()
    _rewrite(paths().attributes_file(video), lambda text: text[: len(text) // 2])
    result = build_yolo_dataset()
    assert result["counts"]["train"] == before  # the boxes did not need the attributes
    assert list(result["attributes_missing"]) == [video]
    assert any(f"{video}: attributes missing" in w for w in result["warnings"])
