"""pedsense's default intent windows are the JAAD benchmark's, one for one.

The expectations are worked out here from the real annotation files themselves, not from
pedsense's code: ``benchmark_windows`` reads the XML with ElementTree and applies the arithmetic
of JAAD's interface (``jaad_data.py``: ``_get_annotations`` + ``_get_crossing``) and of the
benchmark (``action_predict.py``: ``get_data_sequence``) as those files state it:

- every ``<track>``; its id from its first box; boxes in file order; ``'p' in id`` (groups) and,
  for sample type ``beh``, ids without ``'b'`` are left out;
- a ``'b'`` pedestrian's event is its ``crossing_point`` (looked up by frame among its boxes),
  anyone else's (and ``-1``) cuts the track at ``boxes[:-2]``;
- a track needs ``obs + tte_max`` boxes up to and including its event;
- windows ``seq[i:i + obs]`` for ``i`` in ``range(L - obs - 60, L - obs - 30 + 1, 3)``, TTE
  ``L - (i + obs)``, label ``int(crossing > 0)`` (bystanders 0).
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pedsense.data.intent import GAP_IN_WINDOW, SHORT_TRACK, IntentOptions, intent_windows
from pedsense.data.intent_dataset import collect_intent_windows
from pedsense.data.jaad import parse_annotation
from pedsense.data.splits import split_videos

OBS, TTE, STEP = 16, (30, 60), 3  # the benchmark's obs_length, time_to_event, int((1 - 0.8) * 16)
PARTS = ("train", "val", "test")


def benchmark_windows(jaad_dir: Path, sample_type: str) -> dict[str, dict]:
    """``{part: {(video, pid, frames): (label, tte)}}`` by the benchmark's own arithmetic."""
    found: dict[str, dict] = {part: {} for part in PARTS}
    for part in PARTS:
        listed = (jaad_dir / "split_ids" / "default" / f"{part}.txt").read_text().split()
        for video in sorted(v for v in listed if (jaad_dir / "annotations" / f"{v}.xml").exists()):
            attributes = _attributes(jaad_dir, video)
            for pid, frames in sorted(_tracks(jaad_dir, video).items()):
                if "p" in pid or (sample_type == "beh" and "b" not in pid):
                    continue
                event = attributes[pid]["crossing_point"] if "b" in pid else -1
                end_idx = -3 if event == -1 else frames.index(event)
                seq = frames[:end_idx + 1]
                if len(seq) < OBS + TTE[1]:
                    continue
                label = int(attributes[pid]["crossing"] > 0) if "b" in pid else 0
                for i in range(len(seq) - OBS - TTE[1], len(seq) - OBS - TTE[0] + 1, STEP):
                    found[part][(video, pid, tuple(seq[i:i + OBS]))] = (label, len(seq) - (i + OBS))
    return found


def _tracks(jaad_dir: Path, video: str) -> dict[str, list[int]]:
    tree = ET.parse(jaad_dir / "annotations" / f"{video}.xml")
    tracks = {}
    for track in tree.findall("./track"):
        boxes = track.findall("./box")
        pid = boxes[0].find("./attribute[@name='id']").text
        tracks[pid] = [int(box.get("frame")) for box in boxes]
    return tracks


def _attributes(jaad_dir: Path, video: str) -> dict[str, dict]:
    path = jaad_dir / "annotations_attributes" / f"{video}_attributes.xml"
    if not path.exists():
        return {}
    return {p.get("id"): {"crossing": int(p.get("crossing")), "crossing_point": int(p.get("crossing_point"))}
            for p in ET.parse(path).findall("./pedestrian")}


@pytest.fixture(scope="module")
def real_annotations(jaad_dir):
    out = {}
    for xml in sorted((jaad_dir / "annotations").glob("video_*.xml")):
        attributes = jaad_dir / "annotations_attributes" / f"{xml.stem}_attributes.xml"
        out[xml.stem] = parse_annotation(xml, attributes if attributes.exists() else None)
    return out


def _pedsense_windows(annotations, home: Path, options: IntentOptions) -> dict[str, dict]:
    video_split = split_videos(sorted(annotations), split="default", home=home)
    dataset = collect_intent_windows(annotations, video_split, options)
    return {part: {(w.video_id, w.track_id, w.frames): (w.label, w.tte) for w in dataset.windows[part]}
            for part in PARTS}


@pytest.fixture
def split_home(jaad_dir, tmp_path) -> Path:
    shutil.copytree(jaad_dir / "split_ids", tmp_path / "data" / "raw" / "split_ids")
    return tmp_path


@pytest.mark.parametrize("sample_type", ["beh", "all"])
def test_default_windows_equal_the_benchmarks_one_for_one(jaad_dir, real_annotations, split_home,
                                                          sample_type):
    expected = benchmark_windows(jaad_dir, sample_type)
    got = _pedsense_windows(real_annotations, split_home,
                            IntentOptions(sample_type=sample_type))  # defaults otherwise
    for part in PARTS:
        assert got[part] == expected[part], part  # same frames, label and TTE, window by window
    assert sum(len(w) for w in expected.values()) > 50


def test_the_default_test_split_worked_out_by_hand(real_annotations, split_home):
    """video_0005 and video_0046 are the default test videos here with tracks. From their files:
    0_5_12b/13b/14b/16b/18b have crossing=-1 and crossing_point=-1 (cut at their third-to-last
    box) and 124-194 boxes: 11 not-crossing windows each; 0_5_19b's crossing_point is frame 0 (one
    box up to the event: too short); 0_46_213b crosses (crossing=1, crossing_point=-1): 11."""
    test = _pedsense_windows(real_annotations, split_home, IntentOptions())["test"]
    per_track = {}
    for (video, pid, _), (label, _) in test.items():
        per_track.setdefault(pid, []).append(label)
    assert {pid: len(labels) for pid, labels in per_track.items()} == {
        "0_5_12b": 11, "0_5_13b": 11, "0_5_14b": 11, "0_5_16b": 11, "0_5_18b": 11, "0_46_213b": 11}
    assert sum(label for labels in per_track.values() for label in labels) == 11  # 66 windows, 11 crossing
    # 0_5_12b: 194 boxes at frames 12-205, event = third-to-last box = frame 203, 192 boxes up to it:
    # the first window is boxes 116-131 (frames 128-143, TTE 60), the last boxes 146-161 (158-173, TTE 30).
    ends = sorted((frames[-1], tte, label) for (_, pid, frames), (label, tte) in test.items() if pid == "0_5_12b")
    assert ends[0] == (143, 60, 0) and ends[-1] == (173, 30, 0)
    assert (("video_0005", "0_5_12b", tuple(range(128, 144))) in test)


@pytest.fixture
def gap_track(jaad_dir, tmp_path):
    """video_0046's crossing pedestrian with its boxes of frames 150-159 removed: 190 boxes,
    frames 0-149 and 160-199, event at the third-to-last box (frame 197)."""
    text = (jaad_dir / "annotations" / "video_0046.xml").read_text()
    text, removed = re.subn(r'<box frame="15\d" .*?</box>', "", text)
    assert removed == 10
    xml = tmp_path / "video_0046.xml"
    xml.write_text(text)
    attributes = shutil.copy(jaad_dir / "annotations_attributes" / "video_0046_attributes.xml", tmp_path)
    return parse_annotation(xml, Path(attributes))


def test_a_gap_track_is_windowed_by_box_index_as_the_benchmark_does(gap_track):
    windows, skips = intent_windows(gap_track)
    assert skips == [] and len(windows) == 11
    by_tte = {w.tte: w for w in windows}
    # 188 boxes up to the event; box i is frame i below the gap and i + 10 above it.
    assert by_tte[60].frames == tuple(range(112, 128))                  # boxes 112-127
    assert by_tte[39].frames == tuple(range(133, 149))                  # boxes 133-148
    assert by_tte[36].frames == tuple(range(136, 150)) + (160, 161)     # boxes 136-151: bridges the gap
    assert by_tte[30].frames == tuple(range(142, 150)) + tuple(range(160, 168))
    assert {w.label for w in windows} == {1} and {w.event_frame for w in windows} == {197}


def test_frame_placement_drops_windows_over_the_gap(gap_track):
    windows, skips = intent_windows(gap_track, IntentOptions(placement="frames"))
    # windows end 197 - TTE: 137, 140, 143, 146, 149 are clear; 152 ... 167 reach into 150-159
    assert sorted(w.end_frame for w in windows) == [137, 140, 143, 146, 149]
    assert all(w.frames == tuple(range(w.end_frame - 15, w.end_frame + 1)) for w in windows)
    assert [s.reason for s in skips] == [GAP_IN_WINDOW] * 6


def test_the_only_real_gap_track_is_too_short_either_way(real_annotations):
    """0_205_1488b: boxes at frames 8-42 and 133-209, crossing_point 133: 36 boxes up to it."""
    for placement in ("boxes", "frames"):
        _, skips = intent_windows(real_annotations["video_0205"], IntentOptions(placement=placement))
        skip = next(s for s in skips if s.track_id == "0_205_1488b")
        assert skip.reason == SHORT_TRACK and "36 visible boxes" in skip.detail


def test_crossing_minus_one_is_not_crossing_by_default_and_excluded_on_request(real_annotations):
    video = {"video_0005": real_annotations["video_0005"]}
    default, _ = intent_windows(video["video_0005"])
    assert {w.label for w in default if w.track_id == "0_5_16b"} == {0}
    excluded, skips = intent_windows(video["video_0005"], IntentOptions(irrelevant="exclude"))
    assert not [w for w in excluded if w.track_id == "0_5_16b"]
    assert ("0_5_16b", "crossing_irrelevant") in {(s.track_id, s.reason) for s in skips}


def test_windows_command_prints_the_benchmark_table(jaad_dir, tmp_home, capsys):
    from pedsense.cli import main

    raw = tmp_home / "data" / "raw"
    for name in ("annotations", "annotations_attributes", "split_ids"):
        shutil.copytree(jaad_dir / name, raw / name)
    assert main(["windows"]) == 0
    out = capsys.readouterr().out
    assert "split official:default, crossing=-1 not-crossing, windows by boxes" in out
    lines = {" ".join(line.split()[:2]): line.split()[2:] for line in out.splitlines()[2:]}
    assert lines["beh test"] == ["6", "66", "11", "55"]  # tracks, windows, crossing, not
    assert lines["all test"] == ["8", "88", "11", "77"]
    assert main(["windows", "--irrelevant", "exclude"]) == 0
    assert "beh test         1       11" in capsys.readouterr().out
