"""Frame extraction on the synthetic demo set: names, meta, sub-sampling, resuming, bad clips."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from pedsense.config import paths
from pedsense.data.frames import (META_NAME, annotated_video_ids, extract_frames, frames_meta,
                                  load_frame)
from pedsense.data.jaad import parse_annotation
from pedsense.data.video import video_info
from pedsense.errors import DataError


def _frame_files(home, video):
    return sorted(p.name for p in paths(home).video_frames(video).glob("frame_*.jpg"))


def _replace_file(path, data: bytes) -> None:
    """Replace (not edit) a file: in a hard-link copy, editing would corrupt the shared original."""
    path.unlink()
    path.write_bytes(data)


def test_extracts_every_frame_of_every_annotated_video(demo_raw_home):
    videos = annotated_video_ids(demo_raw_home)
    progress = []
    summary = extract_frames(progress=lambda done, total, message: progress.append((done, total)))
    assert summary["extracted"] == videos and not summary["failed"] and not summary["skipped"]
    assert progress[-1] == (len(videos), len(videos))
    for video in videos:
        annotation = parse_annotation(paths(demo_raw_home).annotation(video))
        meta = frames_meta(video)
        assert meta["frame_count"] == annotation.num_frames == len(meta["frames"])
        assert (meta["width"], meta["height"]) == (annotation.width, annotation.height)
        assert _frame_files(demo_raw_home, video) == [f"frame_{i:06d}.jpg" for i in range(annotation.num_frames)]
    assert summary["frames_total"] == sum(frames_meta(v)["frame_count"] for v in videos)


def test_load_frame_matches_the_clip_and_names_the_range(demo_raw_home):
    video = annotated_video_ids(demo_raw_home)[0]
    from_clip = load_frame(video, 7)  # nothing extracted yet: decoded from the clip
    extract_frames(video)
    from_jpeg = load_frame(video, 7)
    assert from_jpeg.shape == from_clip.shape and from_jpeg.dtype == np.uint8
    assert np.abs(from_jpeg.astype(int) - from_clip.astype(int)).mean() < 4  # JPEG q95 only
    count = frames_meta(video)["frame_count"]
    with pytest.raises(DataError, match=f"0-{count - 1}"):
        load_frame(video, count)
    with pytest.raises(DataError, match="out of range"):
        load_frame(video, -1)


def test_fps_subsampling_keeps_original_frame_indices(demo_raw_home):
    video = annotated_video_ids(demo_raw_home)[0]
    source_fps = video_info(paths().clip(video)).fps
    extract_frames(video, fps=source_fps / 3)
    meta = frames_meta(video)
    assert meta["frames"] == list(range(0, meta["frame_count"], 3))
    assert meta["frame_step"] == 3
    assert _frame_files(demo_raw_home, video) == [f"frame_{i:06d}.jpg" for i in meta["frames"]]


def test_annotated_only_keeps_frames_with_a_visible_box(demo_raw_home):
    video = annotated_video_ids(demo_raw_home)[0]
    annotation = parse_annotation(paths().annotation(video))
    expected = sorted({box.frame for track in annotation.tracks for box in track.boxes})
    extract_frames(video, annotated_only=True)
    assert frames_meta(video)["frames"] == expected


def test_finished_videos_are_skipped_and_a_crash_is_redone(demo_raw_home):
    first, second, *_ = annotated_video_ids(demo_raw_home)
    extract_frames()
    kept_inode = paths().frame(second, 0).stat().st_ino
    # Simulate a crash mid-video: the marker is written last, so it is missing; one JPEG is cut short.
    (paths().video_frames(first) / META_NAME).unlink()
    half = paths().frame(first, 5)
    _replace_file(half, half.read_bytes()[:100])
    summary = extract_frames()
    assert summary["extracted"] == [first]
    assert second in summary["skipped"]
    assert cv2.imread(str(half)) is not None
    assert paths().frame(second, 0).stat().st_ino == kept_inode  # untouched


def test_other_settings_redo_the_video(demo_raw_home):
    video = annotated_video_ids(demo_raw_home)[0]
    extract_frames(video)
    fps = video_info(paths().clip(video)).fps
    summary = extract_frames(video, fps=fps / 2)
    assert summary["extracted"] == [video]
    assert len(_frame_files(demo_raw_home, video)) == len(frames_meta(video)["frames"])  # old frames gone


def test_annotation_without_clip(demo_raw_home):
    missing, *others = annotated_video_ids(demo_raw_home)
    paths().clip(missing).unlink()
    summary = extract_frames()
    assert list(summary["failed"]) == [missing] and "no clip" in summary["failed"][missing]
    assert summary["extracted"] == others
    with pytest.raises(DataError, match="no clip"):
        extract_frames(missing)


def test_clip_that_will_not_open(demo_raw_home):
    broken, *others = annotated_video_ids(demo_raw_home)
    _replace_file(paths().clip(broken), b"this is not an mp4 file" * 10)
    summary = extract_frames()
    assert "will not open" in summary["failed"][broken] or "no decodable" in summary["failed"][broken]
    assert summary["extracted"] == others
    with pytest.raises(DataError, match=broken):
        extract_frames(broken)


def test_empty_annotation_folder(tmp_home):
    paths().annotations.mkdir(parents=True)
    with pytest.raises(DataError, match="demo-data"):
        extract_frames()


@pytest.mark.parametrize("kwargs", [{"fps": 0}, {"fps": -5}, {"quality": 0}, {"quality": 101}])
def test_bad_options(demo_raw_home, kwargs):
    with pytest.raises(DataError):
        extract_frames(**kwargs)


def test_meta_records_the_settings(demo_raw_home):
    video = annotated_video_ids(demo_raw_home)[-1]
    extract_frames(video, quality=80)
    meta = json.loads((paths().video_frames(video) / META_NAME).read_text())
    assert meta["complete"] and meta["quality"] == 80 and meta["fps"] is None
    assert meta["annotated_only"] is False and meta["video_id"] == video
    assert os.path.getsize(paths().frame(video, 0)) > 0


def test_a_clip_shorter_than_its_annotation_is_a_warning_kept_in_meta_and_manifests(demo_raw_home):
    from pedsense.data.yolo_format import build_yolo_dataset

    video = annotated_video_ids(demo_raw_home)[0]
    xml = paths().annotation(video)
    frames = parse_annotation(xml).num_frames
    _replace_file(xml, xml.read_bytes().replace(f"<size>{frames}</size>".encode(),
                                                f"<size>{frames + 80}</size>".encode()))
    summary = extract_frames()
    expected = f"{video}: the clip has {frames} frames but its annotation {frames + 80}"
    assert [w for w in summary["warnings"] if expected in w]
    meta = frames_meta(video)
    assert meta["annotation_frame_count"] == frames + 80 and expected in meta["warnings"][0]
    assert summary["skipped"] == [] and extract_frames()["warnings"] == summary["warnings"]  # said again
    result = build_yolo_dataset()
    assert result["short_clips"] == {video: {"clip_frames": frames, "annotation_frames": frames + 80}}
    assert any(expected in w for w in result["warnings"])


def test_extraction_where_every_video_failed_raises(demo_raw_home):
    for video in annotated_video_ids(demo_raw_home):
        _replace_file(paths().clip(video), b"not a video" * 10)
    with pytest.raises(DataError, match="failed for every one of the 3 videos"):
        extract_frames()


def test_no_clip_at_all_stops_before_any_work(demo_raw_home):
    for video in annotated_video_ids(demo_raw_home):
        paths().clip(video).unlink()
    calls = []
    with pytest.raises(DataError, match=r"None of the 3 annotated videos has a clip.*README, 'JAAD data'"):
        extract_frames(progress=lambda *args: calls.append(args))
    assert calls == []
