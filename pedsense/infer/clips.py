"""Clips the viewer can open: the ones under ``data/raw/clips`` and user uploads (checked first,
named by content, listed, deletable, capped in total)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pedsense.config import paths
from pedsense.data.video import VideoInfo, video_info
from pedsense.errors import DataError
from pedsense.io import read_json, remove_stale_temp_files, write_json_atomic

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm")
# The one upload limit: .streamlit/config.toml's server.maxUploadSize is written to match it
# (tests/test_uploads.py checks that they agree), and the Viewer's label says it.
MAX_UPLOAD_MB = 200
MAX_UPLOADS_TOTAL_MB = 2048  # all stored uploads together; beyond it an upload is refused
HASH_CHARS = 16  # sha256 prefix naming an upload (64 bits)
_UPLOAD_NAME = re.compile(r"^[0-9a-f]{%d}(%s)$" % (HASH_CHARS, "|".join(re.escape(e) for e in VIDEO_EXTENSIONS)))


class UploadError(DataError):
    """An uploaded file that is not a usable video."""


def list_clips(home: str | os.PathLike | None = None) -> list[Path]:
    """Every clip under ``data/raw/clips`` with a video extension, sorted by name."""
    folder = paths(home).clips
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def uploads_dir(home: str | os.PathLike | None = None) -> Path:
    return paths(home).data / "uploads"


@dataclass(frozen=True)
class Upload:
    """One stored upload: ``path`` (``data/uploads/<sha256 prefix><suffix>``), the name it was
    uploaded as, its size and when it was first stored."""

    path: Path
    name: str
    size_bytes: int
    uploaded_at: str


def save_upload(name: str, data: bytes, *, max_mb: float = MAX_UPLOAD_MB,
                max_total_mb: float = MAX_UPLOADS_TOTAL_MB,
                home: str | os.PathLike | None = None) -> tuple[Path, VideoInfo]:
    """Store an uploaded clip as ``data/uploads/<sha256 prefix><suffix>`` after checking it is a
    decodable video. Named by content: two people uploading ``clip.mp4`` never overwrite each
    other's, and the same clip uploaded twice is stored once. The name it came with is kept in
    ``<file>.json`` beside it.

    Raises:
        UploadError: a control character (NUL, say) in ``name``, wrong extension, over ``max_mb``, the uploads would pass ``max_total_mb``
            (the message says how much is used), or not decodable (the file is then removed).
    """
    control = sorted({repr(c) for c in name if ord(c) < 32 or ord(c) == 127})
    if control:  # a NUL in a name breaks every page that shows it, and most file systems refuse it
        raise UploadError(f"The file name {name!r} holds the control character {', '.join(control)}: "
                          "rename the file (letters, digits, spaces, dots) and upload it again.")
    suffix = Path(name).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise UploadError(f"{name!r} is not a video this viewer reads: upload an "
                          f"{', '.join(e.lstrip('.') for e in VIDEO_EXTENSIONS)} file.")
    size_mb = len(data) / 2**20
    if size_mb > max_mb:
        raise UploadError(f"{name!r} is {size_mb:.0f} MB, over the {max_mb:.0f} MB upload limit. "
                          "Trim or re-encode it (e.g. `ffmpeg -i in.mp4 -t 20 -vf scale=1280:-2 out.mp4`).")
    folder = uploads_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files([folder], patterns=(".*.partial*",))  # what killed uploads left
    target = folder / f"{hashlib.sha256(data).hexdigest()[:HASH_CHARS]}{suffix}"
    if target.is_file():  # the same clip, uploaded before
        return target, video_info(target)
    used = sum(u.size_bytes for u in list_uploads(home))
    if (used + len(data)) / 2**20 > max_total_mb:
        raise UploadError(f"Uploads already use {used / 2**20:.0f} MB of the {max_total_mb:.0f} MB "
                          f"allowed, and {name!r} needs {size_mb:.0f} MB more. Delete clips you no longer "
                          "need (Viewer, \"Uploaded clips\"), then upload it again.")
    fd, partial = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{suffix}", dir=folder)
    partial = Path(partial)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        info = video_info(partial)
    except DataError as exc:
        partial.unlink(missing_ok=True)
        raise UploadError(f"{name!r} will not decode as a video ({exc}). Upload an mp4, avi or webm clip.") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    write_json_atomic(_record(target), {"name": Path(name).name, "size_bytes": len(data),
                                        "uploaded_at": now_iso()})
    os.replace(partial, target)
    return target, info


def list_uploads(home: str | os.PathLike | None = None) -> list[Upload]:
    """The stored uploads, newest first."""
    folder = uploads_dir(home)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if not _UPLOAD_NAME.match(path.name) or not path.is_file():
            continue
        record = read_json(_record(path), {})
        record = record if isinstance(record, dict) else {}
        stat = path.stat()
        found.append(Upload(path, str(record.get("name") or path.name), stat.st_size,
                            str(record.get("uploaded_at") or iso(stat.st_mtime))))
    return sorted(found, key=lambda u: (u.uploaded_at, u.path.name), reverse=True)


def find_upload(file_name: str, home: str | os.PathLike | None = None) -> Path:
    """The stored upload called ``file_name`` (``<hash><suffix>``); nothing outside the folder."""
    path = uploads_dir(home) / Path(str(file_name)).name
    if not _UPLOAD_NAME.match(path.name) or not path.is_file():
        raise UploadError(f"No uploaded clip {file_name!r}: it was deleted, or never uploaded here.")
    return path


def delete_upload(file_name: str, home: str | os.PathLike | None = None) -> None:
    """Delete one stored upload and the record of its name."""
    path = find_upload(file_name, home)
    path.unlink(missing_ok=True)
    _record(path).unlink(missing_ok=True)


def _record(path: Path) -> Path:
    return path.with_name(f"{path.name}.json")


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).astimezone().isoformat(timespec="seconds")


def describe_clip(path: Path) -> str:
    """``video_0001.mp4 · 300 frames · 1920×1080 · 30 fps``."""
    info = video_info(path)
    return f"{path.name} · {info.frame_count} frames · {info.width}×{info.height} · {info.fps:g} fps"


__all__ = ["MAX_UPLOAD_MB", "MAX_UPLOADS_TOTAL_MB", "Upload", "UploadError", "VIDEO_EXTENSIONS",
           "delete_upload", "describe_clip", "find_upload", "list_clips", "list_uploads", "save_upload",
           "uploads_dir"]
