"""Small file helpers: every file another process or thread reads is written atomically."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping


@contextmanager
def atomic_open(path: str | os.PathLike, newline: str | None = None) -> Iterator[IO[str]]:
    """Open a temp file beside ``path`` for writing; on success fsync it and rename it over ``path``.

    Readers see either the old file or the whole new one, never a half-written file; on an error
    the temp file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside ``path`` for a library that writes the file itself (``DataFrame.to_parquet``);
    on success it is fsynced and renamed over ``path``, on an error removed (``path`` left as it was)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path) as f:
        f.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """Read JSON, or return ``default`` when the file is missing or not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return default


def write_csv_atomic(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]],
                     fieldnames: list[str]) -> Path:
    """Write ``rows`` as CSV with ``fieldnames`` as the header, atomically."""
    with atomic_open(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return Path(path)


def filter_csv_rows(path: str | os.PathLike, keep) -> int:
    """Rewrite the CSV at ``path`` atomically with only the rows ``keep(row)`` accepts.

    Rows are dicts of the raw cells; header and kept rows are written back as they were.
    Returns how many rows were dropped (0 leaves the file untouched; a missing file is 0).
    """
    path = Path(path)
    if not path.is_file():
        return 0
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    kept = [row for row in rows if keep(row)]
    if len(kept) != len(rows):
        write_csv_atomic(path, kept, header)
    return len(rows) - len(kept)


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Hard-link ``src`` to ``dst`` (replacing it), copying when the file system will not link."""
    import shutil

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst
