"""``pedsense get-annotations``: JAAD's annotation repository, downloaded at a pinned commit.

JAAD's annotations (github.com/ykotseruba/JAAD, MIT licence) are a small download (a few MB
packed) and all the ``context`` family needs; the clips (3 GB) come separately. The archive of
the pinned commit is fetched with ``urllib``, unpacked into a hidden folder under ``data/raw``,
checked (``annotations/`` must hold JAAD's 346 XML files), and only then moved into place
folder by folder (``annotations``, ``annotations_attributes``, ``annotations_vehicle``,
``annotations_traffic``, ``annotations_appearance``, ``split_ids``); files already there that
the archive does not hold are kept. Offline, the error says where to get the archive and where
to unpack it.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from pedsense.config import paths
from pedsense.data.synthetic.marker import is_synthetic
from pedsense.errors import DataError

JAAD_COMMIT = "7712f55"  # the JAAD 2.0 annotations the tests' and benchmarks' copies come from
JAAD_ANNOTATIONS_URL = f"https://github.com/ykotseruba/JAAD/archive/{JAAD_COMMIT}.tar.gz"
JAAD_VIDEOS = 346
FOLDERS = ("annotations", "annotations_attributes", "annotations_vehicle", "annotations_traffic",
           "annotations_appearance", "split_ids")
Progress = Callable[[int, int, str], None]
_CHUNK = 1 << 16


def offline_help(url: str, raw: Path) -> str:
    return (f"Fix: on a machine that is online, download {url} (or `git clone "
            f"https://github.com/ykotseruba/JAAD` and check out {JAAD_COMMIT}), copy it here and "
            f"unpack its folders ({', '.join(FOLDERS[:4])}, split_ids) into {raw}; or run "
            f"`pedsense get-annotations --url file:///path/to/archive.tar.gz`.")


def download_annotations(home=None, *, url: str = JAAD_ANNOTATIONS_URL,
                         expected_videos: int = JAAD_VIDEOS, timeout: float = 60.0,
                         progress: Progress | None = None) -> dict:
    """Download JAAD's annotation repository at ``url`` and unpack it into ``data/raw``.

    Args:
        url: the archive (``.tar.gz``, ``.tar`` or ``.zip``; ``file://`` works too).
        expected_videos: how many ``annotations/*.xml`` the archive must hold.

    Returns:
        ``{"path", "videos", "folders", "url"}``.

    Raises:
        DataError: the data home holds the synthetic demo set, the download failed (offline:
            what to do instead), the archive is damaged or
            unsafe, or it does not hold JAAD's annotations; nothing in ``data/raw`` is changed.
    """
    raw = paths(home).raw
    if is_synthetic(home):
        # JAAD's video_0001.xml … would replace the demo's files of the same names while the
        # demo's clips stay: every clip would be paired with another video's annotations.
        raise DataError(f"{raw} holds the synthetic demo set, whose videos are named like JAAD's "
                        "(video_0001 …): JAAD's annotations would replace the demo's while its clips "
                        "stay, pairing each clip with the wrong annotations. Nothing was changed. Fix: "
                        "download into another data home (`pedsense --home DIR get-annotations`), or "
                        f"move {raw} aside first.")
    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".jaad-download-", dir=raw) as tmp:
        archive = Path(tmp) / ("archive.zip" if url.lower().endswith(".zip") else "archive.tar.gz")
        _fetch(url, archive, timeout, progress, raw)
        unpacked = Path(tmp) / "unpacked"
        _unpack(archive, unpacked, url)
        root = _repository_root(unpacked, url)
        n_xml = len(list((root / "annotations").glob("*.xml")))
        if n_xml != expected_videos:
            raise DataError(f"The archive from {url} holds {n_xml} annotation XML files in "
                            f"annotations/, but JAAD has {expected_videos}: it is not JAAD's "
                            f"annotation repository at {JAAD_COMMIT}. Nothing was changed in {raw}. "
                            + offline_help(JAAD_ANNOTATIONS_URL, raw))
        folders = [name for name in FOLDERS if (root / name).is_dir()]
        for name in folders:
            _merge(root / name, raw / name)
    if progress is not None:
        progress(1, 1, f"{n_xml} annotation files in {raw / 'annotations'}")
    return {"path": str(raw), "videos": n_xml, "folders": folders, "url": url}


def _fetch(url: str, target: Path, timeout: float, progress: Progress | None, raw: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total or done, f"downloading {done / 1e6:.1f} MB")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"Could not download JAAD's annotations from {url}: {reason}. "
                        + offline_help(url, raw)) from None


def _unpack(archive: Path, target: Path, url: str) -> None:
    """Unpack a tar or zip archive, refusing members that would land outside ``target``."""
    target.mkdir()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    _check_member(name, target, url)
                zf.extractall(target)
            return
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_member(member.name, target, url)
                if not (member.isfile() or member.isdir()):
                    raise DataError(f"The archive from {url} holds a link or device "
                                    f"({member.name}); refused.")
            tf.extractall(target, members=members)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"The archive from {url} is damaged or not a tar/zip archive ({exc}). "
                        "Fix: download it again.") from None


def _check_member(name: str, target: Path, url: str) -> None:
    path = (target / name).resolve()
    if not path.is_relative_to(target.resolve()):
        raise DataError(f"The archive from {url} holds a path outside its folder ({name!r}); refused.")


def _repository_root(unpacked: Path, url: str) -> Path:
    """The folder holding ``annotations/``: the archive's root or its one top folder."""
    for candidate in (unpacked, *sorted(p for p in unpacked.iterdir() if p.is_dir())):
        if (candidate / "annotations").is_dir():
            return candidate
    raise DataError(f"The archive from {url} has no annotations/ folder: it is not JAAD's "
                    "annotation repository. Fix: check the URL (JAAD's is "
                    f"{JAAD_ANNOTATIONS_URL}).")


def _merge(source: Path, target: Path) -> None:
    """Move every file of ``source`` into ``target`` (same names replaced, others kept)."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)
    shutil.rmtree(source, ignore_errors=True)
