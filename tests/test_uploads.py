"""Viewer uploads: one size limit in one place, stored by content hash (two `clip.mp4` never
overwrite each other), listed with size and date, deletable, capped in total."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pedsense.config import REPO_ROOT, paths
from pedsense.infer.clips import (MAX_UPLOAD_MB, UploadError, delete_upload, list_uploads,
                                  save_upload, uploads_dir)

VIEWER = str(REPO_ROOT / "pages" / "viewer.py")


def clip_bytes(home: Path, n: int) -> bytes:
    return (paths(home).clips / f"video_{n:04d}.mp4").read_bytes()


def test_the_streamlit_upload_limit_is_the_library_s():
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB


def test_two_uploads_named_alike_never_overwrite_each_other(demo_raw_home):
    first, second = clip_bytes(demo_raw_home, 1), clip_bytes(demo_raw_home, 2)
    a, _ = save_upload("clip.mp4", first)
    b, _ = save_upload("clip.mp4", second)
    assert a != b and a.read_bytes() == first and b.read_bytes() == second
    assert a.name == hashlib.sha256(first).hexdigest()[:16] + ".mp4"
    again, _ = save_upload("the same clip.MP4", first)  # same content: stored once
    assert again == a
    listed = list_uploads()
    assert sorted(u.path for u in listed) == sorted([a, b])
    assert {u.name for u in listed} == {"clip.mp4"}
    assert {u.size_bytes for u in listed} == {len(first), len(second)}
    assert all(u.uploaded_at[:4].isdigit() for u in listed)
    assert not list(uploads_dir().glob(".*partial*"))


def test_the_total_upload_space_is_capped_with_a_refusal_saying_how_much_is_used(demo_raw_home):
    first = clip_bytes(demo_raw_home, 1)
    save_upload("a.mp4", first)
    cap = len(first) * 1.5 / 2**20
    with pytest.raises(UploadError, match=r"Uploads already use \d+ MB of the \d+ MB allowed.*Delete clips"):
        save_upload("b.mp4", clip_bytes(demo_raw_home, 2), max_total_mb=cap)
    assert len(list_uploads()) == 1  # nothing removed, nothing half-written


@pytest.mark.parametrize("name", ["clip\x00.mp4", "my\x00clip.mp4", "tab\there.mp4"])
def test_a_name_with_a_control_character_is_refused_with_rename_the_file(demo_raw_home, name):
    with pytest.raises(UploadError, match="holds the control character .*rename the file"):
        save_upload(name, clip_bytes(demo_raw_home, 1))
    assert list_uploads() == [] and not list(uploads_dir().glob("*"))


def test_deleting_an_upload_removes_it_and_only_it(demo_raw_home):
    a, _ = save_upload("a.mp4", clip_bytes(demo_raw_home, 1))
    b, _ = save_upload("b.mp4", clip_bytes(demo_raw_home, 2))
    delete_upload(a.name)
    assert [u.path for u in list_uploads()] == [b] and not a.exists()
    for bad in (a.name, "../../data/raw/clips/video_0003.mp4", "video_0003.mp4"):
        with pytest.raises(UploadError, match="No uploaded clip"):
            delete_upload(bad)
    assert (paths(demo_raw_home).clips / "video_0003.mp4").is_file()


def test_the_viewer_lists_uploads_and_deletes_them(demo_raw_home):
    save_upload("first.mp4", clip_bytes(demo_raw_home, 1))
    at = AppTest.from_file(VIEWER, default_timeout=60)
    at.session_state["viewer_clip"] = "Upload a clip"
    at.run()
    at.file_uploader(key="viewer_upload").upload("clip.mp4", clip_bytes(demo_raw_home, 2), "video/mp4")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(list_uploads()) == 2
    (expander,) = [e for e in at.expander if e.label.startswith("Uploaded clips")]
    assert expander.label.startswith("Uploaded clips: 2, ")
    names = " ".join(m.value for m in at.markdown)
    assert "`first.mp4`" in names and "`clip.mp4`" in names
    assert any("MB" in c.value for c in at.caption)
    first = next(u for u in list_uploads() if u.name == "first.mp4")
    at.button(key=f"upload.delete.{first.path.name}").click().run()
    assert not at.exception
    assert [u.name for u in list_uploads()] == ["clip.mp4"] and not first.path.exists()
    # uploads are offered in the clip box by the name they came with
    options = at.selectbox(key="viewer_clip").options
    assert sum("clip.mp4 (uploaded " in o for o in options) == 1 and "Upload a clip" in options
