"""The JAAD benchmark protocol on the real annotations in tests/data/jaad (and the demo set)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from pedsense.data import jaad, splits, synthetic
from pedsense.data.intent import (CROSSING_IRRELEVANT, EVENT_OUTSIDE_TRACK, GROUP_TRACK,
                                  NO_ATTRIBUTES, NOT_IN_SAMPLE, SHORT_TRACK, VIDEO_NOT_IN_SPLIT,
                                  IntentOptions, Skip, intent_windows, tte_bin, visible_frames)
from pedsense.data.intent_dataset import collect_intent_windows
from pedsense.data.splits import LeakageError
from pedsense.data.splits import leakage_check as check_no_leakage
from pedsense.errors import ConfigError

ALL = IntentOptions(sample_type="all", irrelevant="not-crossing")  # the most windows


@pytest.fixture(scope="module")
def annotations(jaad_dir) -> dict:
    """All 12 real videos, parsed with their attributes files."""
    out = {}
    for xml in sorted((jaad_dir / "annotations").glob("video_*.xml")):
        attributes = jaad_dir / "annotations_attributes" / f"{xml.stem}_attributes.xml"
        out[xml.stem] = jaad.parse_annotation(xml, attributes if attributes.exists() else None)
    return out


def _windows(annotations, options):
    windows, skips = [], []
    for annotation in annotations.values():
        w, s = intent_windows(annotation, options)
        windows += w
        skips += s
    return windows, skips


def _track(annotations, video_id, track_id):
    return next(t for t in annotations[video_id].tracks if t.track_id == track_id)


def _reasons(skips) -> dict:
    return {(s.video_id, s.track_id): s.reason for s in skips}


# ---------------------------------------------------------------- options

def test_default_options_are_the_benchmark_protocol():
    options = IntentOptions()
    assert (options.obs_length, options.tte, options.overlap) == (16, (30, 60), 0.8)
    assert (options.sample_type, options.irrelevant, options.placement) == ("beh", "not-crossing", "boxes")
    assert options.step == 3 and options.min_track_frames == 76
    assert options.ttes() == (60, 57, 54, 51, 48, 45, 42, 39, 36, 33, 30)
    assert IntentOptions.from_dict(json.loads(json.dumps(options.as_dict()))) == options
    assert IntentOptions(tte=45).ttes() == (45,)


@pytest.mark.parametrize("kwargs", [
    {"obs_length": 0}, {"tte": (60, 30)}, {"tte": (-1, 5)}, {"overlap": 1.0},
    {"sample_type": "everyone"}, {"placement": "seconds"}, {"irrelevant": "drop"},
])
def test_bad_options_name_the_problem(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        IntentOptions(**kwargs)


@pytest.mark.parametrize("tte, expected", [(30, "30-39"), (39, "30-39"), (40, "40-49"),
                                           (50, "50-60"), (60, "50-60"), (29, "<30"), (61, ">60")])
def test_tte_bins(tte, expected):
    assert tte_bin(tte) == expected


# ---------------------------------------------------------------- window placement

def test_every_window_ends_30_to_60_frames_before_its_event(annotations):
    windows, _ = _windows(annotations, ALL)
    assert len(windows) > 50
    for w in windows:
        assert 30 <= w.event_frame - w.end_frame <= 60 and w.tte == w.event_frame - w.end_frame
        assert (w.event_frame - w.end_frame - 30) % 3 == 0  # overlap 0.8 -> a window every 3 frames
        assert w.frames == tuple(range(w.start_frame, w.start_frame + 16))
        track = _track(annotations, w.video_id, w.track_id)
        assert set(w.frames) <= set(visible_frames(track))
        assert [tuple(track.box_at(f).xyxy) for f in w.frames] == [tuple(b) for b in w.boxes_xyxy]


def test_event_is_the_crossing_point_else_the_third_to_last_frame(annotations):
    windows, _ = _windows(annotations, ALL)
    for w in windows:
        track = _track(annotations, w.video_id, w.track_id)
        if track.is_behavioural and track.crossing_point >= 0:
            assert (w.event_frame, w.event_source) == (track.crossing_point, "crossing_point")
        else:
            assert (w.event_frame, w.event_source) == (visible_frames(track)[-3], "track_end")
    # A non-crosser with a crossing_point, and a crosser without one (cut at frame 199 - 2).
    by_track = Counter((w.track_id, w.event_frame, w.label) for w in windows)
    assert by_track[("0_69_343b", 107, 0)] == 11
    assert by_track[("0_46_213b", 197, 1)] == 11


def test_labels_equal_the_crossing_attribute(annotations):
    windows, _ = _windows(annotations, IntentOptions(irrelevant="exclude"))
    assert windows
    for w in windows:
        assert w.label == _track(annotations, w.video_id, w.track_id).crossing
        assert w.label in (0, 1)
    # The benchmark's default labels every window int(crossing > 0): -1 reads not-crossing.
    windows, _ = _windows(annotations, IntentOptions())
    assert {_track(annotations, w.video_id, w.track_id).crossing for w in windows} == {-1, 0, 1}
    for w in windows:
        assert w.label == int(_track(annotations, w.video_id, w.track_id).crossing > 0)


def test_beh_vs_all_adds_only_bystanders_labelled_not_crossing(annotations):
    beh, beh_skips = _windows(annotations, IntentOptions())
    everyone, _ = _windows(annotations, IntentOptions(sample_type="all"))
    assert {w.track_label for w in beh} == {"pedestrian"}
    assert set(beh) <= set(everyone)
    extra = [w for w in everyone if w not in set(beh)]
    assert extra and {w.track_label for w in extra} == {"ped"} and {w.label for w in extra} == {0}
    assert _reasons(beh_skips)[("video_0005", "0_5_16")] == NOT_IN_SAMPLE


# ---------------------------------------------------------------- skips

def test_real_quirks_are_skipped_with_reasons(annotations):
    _, skips = _windows(annotations, IntentOptions(sample_type="all", irrelevant="exclude"))
    reasons = _reasons(skips)
    assert reasons[("video_0005", "0_5_16b")] == CROSSING_IRRELEVANT    # crossing = -1
    assert reasons[("video_0273", "0_273_2159b")] == SHORT_TRACK        # crossing_point = 1st frame
    assert reasons[("video_0205", "0_205_1488b")] == SHORT_TRACK        # 36 visible frames to event
    assert reasons[("video_0207", "0_207_1496b")] == SHORT_TRACK        # 36-frame track
    assert reasons[("video_0323", "0_323_70p")] == GROUP_TRACK
    assert all(isinstance(s, Skip) and s.reason for s in skips)


def test_crossing_minus_one_can_count_as_not_crossing(annotations):
    windows, _ = _windows({"video_0005": annotations["video_0005"]},
                          IntentOptions(irrelevant="not-crossing"))
    labels = {(w.track_id, w.label) for w in windows}
    assert ("0_5_16b", 0) in labels


def _copy_video(jaad_dir: Path, tmp_path: Path, video_id: str) -> tuple[Path, Path]:
    xml = shutil.copy(jaad_dir / "annotations" / f"{video_id}.xml", tmp_path / f"{video_id}.xml")
    attributes = shutil.copy(jaad_dir / "annotations_attributes" / f"{video_id}_attributes.xml",
                             tmp_path / f"{video_id}_attributes.xml")
    return Path(xml), Path(attributes)


def test_crossing_point_outside_the_track_is_skipped(jaad_dir, tmp_path):
    xml, attributes = _copy_video(jaad_dir, tmp_path, "video_0046")
    text = attributes.read_text()
    assert 'crossing_point="-1"' in text
    attributes.write_text(text.replace('crossing_point="-1"', 'crossing_point="999"'))
    windows, skips = intent_windows(jaad.parse_annotation(xml, attributes))
    assert windows == [] and _reasons(skips)[("video_0046", "0_46_213b")] == EVENT_OUTSIDE_TRACK
    assert "999" in skips[0].detail


def test_behaviour_pedestrian_without_attributes_file_is_skipped(jaad_dir):
    annotation = jaad.parse_annotation(jaad_dir / "annotations" / "video_0046.xml", None)
    windows, skips = intent_windows(annotation)
    assert windows == [] and _reasons(skips)[("video_0046", "0_46_213b")] == NO_ATTRIBUTES


# ---------------------------------------------------------------- splits and leakage

@pytest.fixture
def split_home(jaad_dir, tmp_home) -> Path:
    """A data home holding JAAD's official split files."""
    shutil.copytree(jaad_dir / "split_ids", tmp_home / "data" / "raw" / "split_ids")
    return tmp_home


def _split_file(jaad_dir, split, name) -> set[str]:
    return set((jaad_dir / "split_ids" / split / f"{name}.txt").read_text().split())


@pytest.mark.parametrize("split", ["default", "high_visibility", "all_videos"])
def test_windows_follow_the_official_split_files(annotations, jaad_dir, split_home, split):
    options = IntentOptions(sample_type="all")
    video_split = splits.split_videos(sorted(annotations), split=split, home=split_home)
    dataset = collect_intent_windows(annotations, video_split, options)
    for name in ("train", "val", "test"):
        assert {w.video_id for w in dataset.windows[name]} <= _split_file(jaad_dir, split, name)
    listed = set().union(*(_split_file(jaad_dir, split, n) for n in ("train", "val", "test")))
    unlisted = {vid for vid in annotations if vid not in listed}
    assert set(dataset.unassigned_videos) == unlisted
    assert {s.video_id for s in dataset.skips if s.reason == VIDEO_NOT_IN_SPLIT} == \
        {vid for vid in unlisted if annotations[vid].tracks}
    assert dataset.leakage["checked"] is True


def test_default_split_dataset_counts_and_manifest(annotations, split_home):
    video_split = splits.split_videos(sorted(annotations), split="default", home=split_home)
    options = IntentOptions(irrelevant="exclude")
    dataset = collect_intent_windows(annotations, video_split, options)
    counts = dataset.class_counts()
    assert counts["test"] == {"not-crossing": 0, "crossing": 11, "total": 11}  # 0_46_213b
    assert counts["val"]["total"] == 0
    skipped = dataset.skip_counts()
    assert skipped[VIDEO_NOT_IN_SPLIT] >= 1 and skipped[SHORT_TRACK] >= 1
    assert sum(skipped.values()) == len(dataset.skips)
    manifest = json.loads(json.dumps(dataset.manifest()))
    assert manifest["task"] == "intent" and manifest["protocol"] == options.as_dict()
    assert manifest["leakage"]["checked"] is True and manifest["skipped"] == skipped
    assert any("leakage check passed" in line for line in dataset.summary_lines())
    rows = dataset.rows("test")
    assert len(rows) == 11 and {r["split"] for r in rows} == {"test"}


def test_leakage_guard_raises_on_an_overlapping_split(annotations):
    with pytest.raises(LeakageError, match="video_0046"):
        check_no_leakage({"train": ["video_0046", "video_0005"], "val": [], "test": ["video_0046"]})

    class Overlapping:  # a split that lists one video twice, as a broken split file would
        train, val, test, source, missing = ["video_0046"], [], ["video_0046"], "broken", []

        def split_of(self, video_id):
            return "train" if video_id == "video_0046" else None

    with pytest.raises(LeakageError, match="both 'train' and 'test'"):
        collect_intent_windows(annotations, Overlapping(), IntentOptions())


def test_leakage_guard_raises_when_a_pedestrian_is_in_two_splits(annotations):
    windows, _ = intent_windows(annotations["video_0046"])
    with pytest.raises(LeakageError, match="pedestrian"):
        check_no_leakage({"train": ["video_0046"], "test": ["video_0046x"]},
                         {"train": windows, "test": windows})


# ---------------------------------------------------------------- the synthetic demo set

def test_demo_set_gives_intent_windows_of_both_classes(tmp_path):
    from pedsense.config import paths

    home = tmp_path / "demo"
    synthetic.make_demo_dataset(home, n_videos=4, width=160, height=96)
    p = paths(home)
    annotations = jaad.load_annotations(p.annotations, p.attributes)
    video_split = splits.split_videos(sorted(annotations), split="default", home=home)
    dataset = collect_intent_windows(annotations, video_split, IntentOptions())
    assert dataset.class_counts()["train"]["crossing"] > 0
    assert dataset.class_counts()["train"]["not-crossing"] > 0
    for w in dataset.all_windows():
        assert 30 <= w.tte <= 60 and w.tte == w.event_frame - w.end_frame
        assert w.label == _track(annotations, w.video_id, w.track_id).crossing
    assert dataset.leakage["checked"] is True
