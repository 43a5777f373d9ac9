"""Small file helpers: every file another process or thread reads is written atomically."""

from __future__ import annotations

import csv
import errno
import fnmatch
import json
import math
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Mapping

from pedsense.config import MODEL_TYPES, paths
from pedsense.errors import DiskFull, FileFormatError, ReadOnly


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


def write_json_atomic(path: str | os.PathLike, data: Any, *, in_place_when_full: bool = False) -> Path:
    """Write ``data`` as JSON atomically. ``in_place_when_full``: on a full disk (the temp file
    needs blocks the disk has not) rewrite the existing file in place instead, reusing its own
    blocks: how a run's ``status.json`` still records that the disk filled up."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    try:
        return write_text_atomic(path, text)
    except OSError as exc:
        if not (in_place_when_full and is_disk_full(exc) and Path(path).is_file()):
            raise
    with open(path, "r+", encoding="utf-8") as f:
        f.truncate(0)
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


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


# -- CSV tables appended row by row (metrics.csv, steps.csv) ---------------------------------
def append_row(path: Path, row: Mapping[str, Any], lock: threading.Lock) -> None:
    """Append ``row`` to the CSV at ``path`` (flushed); a new column rewrites it atomically."""
    with lock:
        row = dict(row)
        header: list[str] | None = None
        if path.exists() and path.stat().st_size > 0:
            with open(path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), None)
        if header is None:
            write_csv_atomic(path, [row], list(row))
            return
        new_cols = [k for k in row if k not in header]
        if new_cols:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            write_csv_atomic(path, rows + [row], header + new_cols)
            return
        with open(path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=header, extrasaction="ignore").writerow(row)
            f.flush()
            os.fsync(f.fileno())


def read_rows(path: Path) -> list[dict]:
    """The rows of a CSV written by :func:`append_row`, numbers parsed, empty cells None.

    Raises:
        FileFormatError: the file exists but is not UTF-8 CSV (or cannot be read at all).
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            raw = list(csv.DictReader(f))
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{Path(path).name} is not UTF-8 text, so not a CSV table") from exc
    except csv.Error as exc:
        raise FileFormatError(f"{Path(path).name} cannot be parsed as CSV ({exc})") from exc
    except OSError as exc:
        raise FileFormatError(f"{Path(path).name} cannot be read ({exc.strerror or exc})") from exc
    return [parse_row(r) for r in raw]


def parse_row(raw: Mapping[str | None, str | None]) -> dict:
    """One raw CSV row (``csv.DictReader``'s) with numbers parsed and empty cells None."""
    return {k: _parse_cell(v) for k, v in raw.items() if k is not None}


def _parse_cell(value: str | None) -> Any:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


# -- JSON records read strictly ----------------------------------------------------------------
def read_object(path: Path) -> tuple[dict | None, str | None]:
    """``(record, None)`` for a JSON object, ``(None, None)`` for a missing file, else
    ``(None, reason)``: the reason reads after the file's name ("holds 5, not a JSON object")."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if not isinstance(value, dict):
        shown = json.dumps(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return None, f"holds {shown}, not a JSON object"
    return value, None


# -- temporary files a killed writer left behind --------------------------------------------------
STALE_TEMP_S = 300.0  # a temp file untouched this long belongs to no live writer
_SWEPT: dict[str, float] = {}
_SWEPT_LOCK = threading.Lock()


def remove_stale_temp_files(folders: Iterable[str | os.PathLike], older_than_s: float = STALE_TEMP_S,
                            patterns: tuple[str, ...] = ("*.tmp",)) -> list[Path]:
    """Delete the files matching ``patterns`` directly inside ``folders`` (by default ``*.tmp``:
    ``.config.json.<random>.tmp`` from :func:`atomic_open`, a checkpoint's) untouched for
    ``older_than_s``: what a process killed mid-write leaves. Returns the files removed."""
    cutoff, removed = time.time() - older_than_s, []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if any(fnmatch.fnmatchcase(entry.name, p) for p in patterns) \
                        and entry.is_file(follow_symlinks=False) \
                        and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                continue
    return removed


def sweep_stale_temp(key: str, folders: Callable[[], Iterable[str | os.PathLike]],
                     every_s: float = 60.0) -> list[Path]:
    """:func:`remove_stale_temp_files` on ``folders()``, at most once per ``every_s`` per ``key``
    in this process (listings run every second; the sweep needs to run only now and then)."""
    now = time.monotonic()
    with _SWEPT_LOCK:
        if now - _SWEPT.get(key, -every_s) < every_s:
            return []
        _SWEPT[key] = now
    return remove_stale_temp_files(folders())


# -- a full disk ---------------------------------------------------------------------------------
def is_disk_full(exc: BaseException) -> bool:
    """True for the ``OSError`` of a full disk (or an exhausted quota)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def tree_size(path: str | os.PathLike) -> int:
    """Bytes the files under ``path`` take: each file once, leaving out files hard-linked from
    outside ``path`` (a dataset's links to the extracted frames cost no space of their own)."""
    seen: dict[tuple[int, int], list] = {}  # inode -> [size, links, links seen here]
    for root, _, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            entry = seen.setdefault((stat.st_dev, stat.st_ino), [stat.st_size, stat.st_nlink, 0])
            entry[2] += 1
    return sum(size for size, links, here in seen.values() if links <= here)


def disk_full_error(folder: str | os.PathLike, needed_bytes: float | None, then: str = "rerun") -> DiskFull:
    """``DiskFull("No space left on <folder>: free N MB and <then>. It needs about M MB; F MB are
    free.")``, N being what ``needed_bytes`` lacks beyond the space free now (at least 1 MB).
    The one wording of a full disk: builds, frame extraction, checkpoints, the run lifecycle and
    the CLI use it. ``needed_bytes`` None (a write of unknown size) says only what is free."""
    folder = Path(folder)
    try:
        free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    except OSError:
        free = 0
    if needed_bytes is None:
        return DiskFull(f"No space left on {folder}: free some space and {then} "
                        f"({free // 2**20} MB are free).")
    to_free = max(1, math.ceil((needed_bytes - free) / 2**20))
    return DiskFull(f"No space left on {folder}: free {to_free} MB and {then}. It needs about "
                    f"{max(1, math.ceil(needed_bytes / 2**20))} MB; {free // 2**20} MB are free.")


# -- a read-only data home -------------------------------------------------------------------------
def is_read_only(exc: BaseException) -> bool:
    """True for the ``OSError`` of a write the file system or the permissions refuse."""
    return isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)


def writable(folder: str | os.PathLike) -> bool:
    """False when ``folder`` is on a file system mounted read-only, or this user may not write it."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return False
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def read_only_error(home: str | os.PathLike, target: str | os.PathLike | None = None) -> ReadOnly:
    """``ReadOnly("the data home <home> is read-only: <target> cannot be written. ...")``: the
    one wording of a read-only data home (the CLI, the dashboard, the scheduler lock)."""
    home = Path(home)
    shown = ""
    if target is not None:
        try:
            shown = f": {Path(target).relative_to(home)} cannot be written"
        except ValueError:
            shown = f": {target} cannot be written"
    return ReadOnly(f"the data home {home} is read-only{shown}. Reading works; to train, build or "
                    "evaluate, make it writable (remount it read-write, or give this user write "
                    "permission), or point --home / $PEDSENSE_HOME at a writable copy.")


def run_read_only_error(run: str | os.PathLike) -> ReadOnly:
    """``ReadOnly("cannot write into <run>: read-only. ...")`` for a run folder that refuses writes."""
    return ReadOnly(f"cannot write into {run}: read-only. Make the run folder writable (remount it "
                    "read-write, or give this user write permission), or copy the run to a writable "
                    "data home and rerun there.")


def file_system_problem(exc: BaseException) -> str | None:
    """What a full disk or a read-only folder means for the user, in this module's wording, or
    None for any other error (the CLI's and the dashboard's last resort for an ``OSError``)."""
    if not isinstance(exc, OSError) or not (is_disk_full(exc) or is_read_only(exc)):
        return None
    home = paths().home
    target = Path(exc.filename) if isinstance(exc.filename, (str, Path)) else None
    if is_disk_full(exc):
        folder = target.parent if target is not None else home
        return str(disk_full_error(folder, None))
    if target is None and exc.errno != errno.EROFS:
        return None  # a permission refused that is not a file's (a signal, say): not ours to word
    try:
        parts = target.resolve().relative_to(home.resolve() / "models").parts if target is not None else ()
    except ValueError:
        parts = ()
    if len(parts) >= 3 and parts[0] in MODEL_TYPES and writable(home):
        return str(run_read_only_error(home / "models" / parts[0] / parts[1]))
    if target is None or target.resolve().is_relative_to(home.resolve()) or not writable(home):
        return str(read_only_error(home, target))
    return f"cannot write {target}: {exc.strerror or 'read-only'}. Choose a writable place, or make it writable."
