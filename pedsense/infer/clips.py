"""Clips the viewer can open: the ones under ``data/raw/clips`` and user uploads (checked first)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pedsense.config import paths
from pedsense.data.video import VideoInfo, video_info
from pedsense.errors import DataError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm")
MAX_UPLOAD_MB = 200


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


def save_upload(name: str, data: bytes, *, max_mb: float = MAX_UPLOAD_MB,
                home: str | os.PathLike | None = None) -> tuple[Path, VideoInfo]:
    """Store an uploaded clip under ``data/uploads/`` after checking it is a decodable video.

    Raises:
        UploadError: wrong extension, too large, or not decodable (the file is then removed).
    """
    suffix = Path(name).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise UploadError(f"{name!r} is not a video this viewer reads: upload an "
                          f"{', '.join(e.lstrip('.') for e in VIDEO_EXTENSIONS)} file.")
    size_mb = len(data) / 2**20
    if size_mb > max_mb:
        raise UploadError(f"{name!r} is {size_mb:.0f} MB, over the {max_mb:.0f} MB upload limit. "
                          "Trim or re-encode it (e.g. `ffmpeg -i in.mp4 -t 20 -vf scale=1280:-2 out.mp4`).")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem).strip(".-") or "upload"
    target = uploads_dir(home) / f"{stem}{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial{suffix}")
    partial.write_bytes(data)
    try:
        info = video_info(partial)
    except DataError as exc:
        partial.unlink(missing_ok=True)
        raise UploadError(f"{name!r} will not decode as a video ({exc}). Upload an mp4, avi or webm clip.") from exc
    os.replace(partial, target)
    return target, video_info(target)


def describe_clip(path: Path) -> str:
    """``video_0001.mp4 · 300 frames · 1920×1080 · 30 fps``."""
    info = video_info(path)
    return f"{path.name} · {info.frame_count} frames · {info.width}×{info.height} · {info.fps:g} fps"


__all__ = ["MAX_UPLOAD_MB", "UploadError", "VIDEO_EXTENSIONS", "describe_clip", "list_clips",
           "save_upload", "uploads_dir"]
