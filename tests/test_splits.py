"""Video-level splits against JAAD's official split files in tests/data/jaad/split_ids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pedsense.data.splits import VideoSplit, assert_no_leakage, read_split_files, split_videos
from pedsense.errors import ConfigError, DataError

REAL_VIDEOS = ["video_0005", "video_0008", "video_0013", "video_0024", "video_0036", "video_0046",
               "video_0069", "video_0205", "video_0207", "video_0220", "video_0273", "video_0323"]


@pytest.fixture
def jaad_home(jaad_dir, tmp_home) -> Path:
    """A data home with the 12 real annotation files and JAAD's split files."""
    raw = tmp_home / "data" / "raw"
    shutil.copytree(jaad_dir / "annotations", raw / "annotations")
    shutil.copytree(jaad_dir / "split_ids", raw / "split_ids")
    return tmp_home


def _listed(jaad_dir, split) -> dict[str, set[str]]:
    return {part: set((jaad_dir / "split_ids" / split / f"{part}.txt").read_text().split())
            for part in ("train", "val", "test")}


# (split, train, val, test, unassigned) for the 12 real videos, read from the split files
OFFICIAL = [
    ("default", ["video_0008", "video_0205", "video_0207", "video_0220", "video_0323"],
     ["video_0273"], ["video_0005", "video_0036", "video_0046"],
     ["video_0013", "video_0024", "video_0069"]),
    ("high_visibility", ["video_0008", "video_0069", "video_0205", "video_0207", "video_0220",
                         "video_0323"], ["video_0273"], ["video_0005", "video_0036", "video_0046"],
     ["video_0013", "video_0024"]),
    ("all_videos", ["video_0008", "video_0013", "video_0024", "video_0069", "video_0205",
                    "video_0207", "video_0220", "video_0323"], ["video_0273"],
     ["video_0005", "video_0036", "video_0046"], []),
]


@pytest.mark.parametrize("split,train,val,test,unassigned", OFFICIAL)
def test_official_splits(jaad_home, jaad_dir, split, train, val, test, unassigned):
    result = split_videos(REAL_VIDEOS, split)
    assert (list(result.train), list(result.val), list(result.test)) == (train, val, test)
    assert list(result.unassigned) == unassigned
    assert result.source == f"official:{split}" and result.is_official
    listed = _listed(jaad_dir, split)
    assert set(result.missing) == set().union(*listed.values()) - set(REAL_VIDEOS)
    for part in ("train", "val", "test"):
        assert set(getattr(result, part)) <= listed[part]


def test_the_full_split_files_cover_all_346_videos(jaad_dir):
    listed = read_split_files(jaad_dir / "split_ids" / "all_videos")
    assert sum(len(ids) for ids in listed.values()) == 346
    assert [len(listed[p]) for p in ("train", "val", "test")] == [188, 32, 126]


def test_videos_default_to_the_annotations_of_the_home(jaad_home):
    assert split_videos() == split_videos(REAL_VIDEOS, "default", home=jaad_home)


def test_split_of_and_as_dict(jaad_home):
    result = split_videos(REAL_VIDEOS)
    assert result.split_of("video_0273") == "val" and result.split_of("video_0036") == "test"
    assert result.split_of("video_0013") is None and result.split_of("nope") is None
    record = json.loads(json.dumps(result.as_dict()))
    assert record["val"] == ["video_0273"] and record["source"] == "official:default"
    assert list(result.parts) == ["train", "val", "test"]


def test_missing_split_files_fall_back_to_random(jaad_dir, tmp_home):
    result = split_videos(REAL_VIDEOS, "default")
    assert result.source == "random(seed=42, train_ratio=0.8)" and result.requested == "default"
    assert (len(result.train), len(result.val), result.test) == (10, 2, ())
    assert sorted(result.train + result.val) == REAL_VIDEOS
    assert not result.is_official and list(result.parts) == ["train", "val"]


def test_random_split_is_seeded(tmp_home):
    ids = [f"video_{i:04d}" for i in range(1, 41)]
    first = split_videos(ids, "random", seed=7)
    assert first == split_videos(list(reversed(ids)), "random", seed=7)  # input order is irrelevant
    assert first != split_videos(ids, "random", seed=8)
    assert (len(first.train), len(first.val)) == (32, 8)


@pytest.mark.parametrize("n,ratio,sizes", [
    (1, 0.8, (1, 0)), (2, 0.8, (1, 1)), (2, 0.1, (1, 1)), (5, 0.8, (4, 1)), (10, 0.5, (5, 5)),
])
def test_random_split_sizes(tmp_home, n, ratio, sizes):
    result = split_videos([f"v{i}" for i in range(n)], "random", train_ratio=ratio)
    assert (len(result.train), len(result.val)) == sizes


def test_random_split_ignores_official_files(jaad_home):
    assert split_videos(REAL_VIDEOS, "random").source.startswith("random(")


@pytest.mark.parametrize("kwargs,error", [
    ({"split": "official"}, ConfigError), ({"train_ratio": 1.0}, ConfigError),
    ({"train_ratio": 0}, ConfigError), ({"video_ids": []}, DataError),
])
def test_bad_arguments(tmp_home, kwargs, error):
    kwargs = {"video_ids": REAL_VIDEOS, **kwargs}
    with pytest.raises(error, match="Fix:"):
        split_videos(**kwargs)


def test_no_annotations_at_all(tmp_home):
    with pytest.raises(DataError, match="pedsense demo-data"):
        split_videos()


def test_a_video_in_two_split_files_is_an_error(jaad_home):
    train = jaad_home / "data" / "raw" / "split_ids" / "default" / "train.txt"
    train.write_text(train.read_text() + "video_0273\n")
    with pytest.raises(DataError, match="video_0273 is in both"):
        split_videos(REAL_VIDEOS)


def test_split_files_with_blank_lines_and_a_missing_part(tmp_path, tmp_home):
    folder = tmp_path / "split_ids" / "default"
    folder.mkdir(parents=True)
    (folder / "train.txt").write_text("\nvideo_0001\n  video_0002  \n# a comment\n")
    result = split_videos(["video_0001", "video_0002", "video_0003"],
                          split_ids_dir=tmp_path / "split_ids")
    assert (result.train, result.val, result.test) == (("video_0001", "video_0002"), (), ())
    assert result.unassigned == ("video_0003",)


@pytest.mark.parametrize("parts", [
    {}, {"train": [], "val": []}, {"train": ["a", "b"], "val": ["c"], "test": ["d"]},
])
def test_no_leakage_passes(parts):
    assert_no_leakage(parts)


@pytest.mark.parametrize("parts", [
    {"train": ["a"], "val": ["a"]}, {"train": ["a", "b"], "val": ["c"], "test": ["b"]},
])
def test_leakage_is_caught(parts):
    with pytest.raises(DataError, match="leak"):
        assert_no_leakage(parts)


def test_a_leaking_video_split_cannot_be_built():
    with pytest.raises(DataError, match="video_1 is in both train and val"):
        VideoSplit(train=("video_1",), val=("video_1",), test=(), source="hand-made")
