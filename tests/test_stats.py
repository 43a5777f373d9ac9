"""Dataset statistics of the 12 real JAAD videos."""

from __future__ import annotations

import shutil

import pytest

from pedsense.data.jaad import load_annotations
from pedsense.data.stats import dataset_stats, format_stats
from pedsense.errors import DataError


@pytest.fixture
def jaad_home(jaad_dir, tmp_home):
    raw = tmp_home / "data" / "raw"
    for folder in ("annotations", "annotations_attributes", "split_ids"):
        shutil.copytree(jaad_dir / folder, raw / folder)
    return tmp_home


def test_counts_read_from_the_files(jaad_home):
    stats = dataset_stats()
    assert stats["home"] == str(jaad_home) and stats["synthetic"] is False
    assert (stats["videos"], stats["videos_without_tracks"], stats["frames"]) == (12, 2, 2190)
    assert stats["tracks"] == {"pedestrian": 14, "ped": 19, "people": 2}
    assert stats["boxes"] == {"pedestrian": 1951, "ped": 1230, "people": 166}
    # crossing = 1: 0_24_99b 0_46_213b 0_205_1488b 0_273_2159b; 0: 0_8_44b 0_69_343b 0_69_348b
    # 0_207_1496b; -1: the six pedestrians of video_0005
    assert stats["behaviour_pedestrians"] == {"crossing": 4, "not_crossing": 4, "unknown": 6}
    assert stats["cross_boxes"] == {"crossing": 537, "not-crossing": 1414, "other": 0}
    assert stats["time_of_day"] == {"daytime": 11, "nighttime": 1}
    assert stats["weather"] == {"cloudy": 4, "clear": 3, "snow": 2, "rain": 2, "n/a": 1}
    assert stats["location"] == {"street": 8, "plaza": 3, "indoor": 1}
    assert stats["split"] == {"source": "official:default", "train": 5, "val": 1, "test": 3,
                              "unassigned": 3, "missing": 314}


def test_format_stats(jaad_home):
    text = format_stats(dataset_stats(jaad_home))
    assert "Dataset: JAAD annotations in" in text
    assert "Videos: 12 (2 without tracks), 2,190 frames" in text
    assert "Tracks: 35 (pedestrian 14, ped 19, people 2)" in text
    assert "Boxes: 3,347 visible (pedestrian 1,951, ped 1,230, people 166)" in text
    assert "Behaviour pedestrians: 14 (cross 4, do not cross 4, unknown 6)" in text
    assert "crossing 537, not-crossing 1,414" in text
    assert "Split (official:default): train 5, val 1, test 3; 3 video(s) in no split file" in text


def test_stats_from_already_parsed_annotations(jaad_dir, tmp_home):
    annotations = load_annotations(jaad_dir / "annotations", video_ids=["video_0013", "video_0046"])
    stats = dataset_stats(annotations=annotations)
    assert (stats["videos"], stats["videos_without_tracks"]) == (2, 1)
    assert stats["behaviour_pedestrians"] == {"crossing": 1, "not_crossing": 0, "unknown": 0}
    assert stats["split"]["source"].startswith("random(")  # no split files in this home


def test_empty_annotations(tmp_home):
    stats = dataset_stats(annotations={})
    assert stats["videos"] == 0 and stats["split"] is None
    text = format_stats(stats)
    assert "Videos: 0 (0 without tracks), 0 frames" in text and "Weather: none" in text


def test_no_data_says_how_to_get_it(tmp_home):
    with pytest.raises(DataError, match="pedsense demo-data"):
        dataset_stats()
