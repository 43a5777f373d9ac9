"""A full disk during a dataset build or a frame extraction: one message saying how much to
free, the partial output removed, the finished dataset untouched."""

from __future__ import annotations

import errno
import pathlib

import pytest

from conftest import DEMO_CROP, DEMO_SEQUENCE_LENGTH
from pedsense.cli import main
from pedsense.config import paths
from pedsense.data import frames
from pedsense.data.resnet_format import build_resnet_sequences
from pedsense.errors import DiskFull

MESSAGE = r"No space left on .*: free \d+ MB and rerun"


def fill_the_disk_after(monkeypatch, writes: int) -> list:
    """``Path.write_bytes`` (how crops reach the disk) fails with ENOSPC after ``writes`` files."""
    write_bytes, done = pathlib.Path.write_bytes, []

    def fills_up(self, data):
        if len(done) >= writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        done.append(self)
        return write_bytes(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", fills_up)  # the disk, not our code
    return done


def test_a_full_disk_mid_build_removes_the_partial_build_and_keeps_the_dataset(demo_home, monkeypatch):
    resnet = paths(demo_home).resnet
    labels_before = (resnet / "labels.csv").read_text()
    written = fill_the_disk_after(monkeypatch, 20)
    with pytest.raises(DiskFull, match=MESSAGE) as raised:
        build_resnet_sequences(DEMO_SEQUENCE_LENGTH, 4, DEMO_CROP, home=demo_home)  # another stride
    assert str(resnet) in str(raised.value) and "rerun the build" in str(raised.value)
    assert len(written) == 20
    assert not (resnet / ".sequences.partial").exists()
    assert (resnet / "labels.csv").read_text() == labels_before  # the finished build is untouched
    monkeypatch.undo()
    rebuilt = build_resnet_sequences(DEMO_SEQUENCE_LENGTH, 4, DEMO_CROP, home=demo_home)
    assert rebuilt["reused"] is False and (resnet / "labels.csv").read_text() != labels_before


def test_the_cli_says_how_much_to_free_in_one_line(demo_home, monkeypatch, capsys):
    fill_the_disk_after(monkeypatch, 5)
    code = main(["preprocess", "resnet", "--stride", "4", "--crop-size", "64"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2
    assert len(errors) == 1 and errors[0].startswith("error: No space left on "), err
    assert "Traceback" not in err


def test_a_full_disk_during_frame_extraction_removes_the_half_written_video(demo_raw_home, monkeypatch):
    real_open, opened = open, []

    def fills_up(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).endswith(".jpg"):
            opened.append(path)
            if len(opened) > 30:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(frames, "open", fills_up, raising=False)  # the disk frames.py writes to
    with pytest.raises(DiskFull, match=MESSAGE) as raised:
        frames.extract_frames(home=demo_raw_home)
    assert "rerun the frame extraction" in str(raised.value)
    frames_dir = paths(demo_raw_home).frames
    assert not any(frames_dir.glob("*/frame_*.jpg"))  # the half-written video is gone
