"""What a researcher writes on a run: tags, a note, and whether it is archived (``labels.json``).

The one home of that file's format. It sits in the run folder beside what the trainer writes,
so the trainer's ``config.json`` and a person's labels never race for the same file::

    {"tags": ["baseline", "lr-sweep"], "note": "free text", "archived": false,
     "updated_at": "2026-12-07T14:02:11+00:00"}

Every change is a read-modify-write under an ``flock`` of the run folder, written atomically
(``pedsense.io``), so the dashboard and ``pedsense tag|note|archive`` can edit the same run at
once without losing either edit. An archived run is hidden from the Runs table by default and
kept on disk; a queued or running run is never archived (checked under the scheduler lock, so a
run cannot start between the check and the write).
"""

from __future__ import annotations

import fcntl
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

from pedsense.errors import ConfigError
from pedsense.io import read_object, write_json_atomic
from pedsense.runfolder import RunFolder, now_iso
from pedsense.runqueue import home_of, is_live, scheduler_lock

LABELS_FILE = "labels.json"
TAG_MAX = 40
NOTE_MAX = 5000
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]*")


@dataclass(frozen=True)
class RunLabels:
    """A run's tags (sorted, distinct), note and archive flag."""

    tags: tuple[str, ...] = ()
    note: str = ""
    archived: bool = False


def labels_path(folder: RunFolder):
    return folder.path / LABELS_FILE


def check_tag(tag: str) -> str:
    """``tag`` when it is one: a word of letters, digits and ``. _ - : / +``, at most
    :data:`TAG_MAX` characters. Raises ConfigError naming the tag and the fix."""
    text = str(tag).strip()
    shown = text if len(text) <= 60 else text[:40] + "…"
    if not text:
        raise ConfigError("An empty tag: a tag is one word, e.g. `baseline`.")
    if len(text) > TAG_MAX:
        raise ConfigError(f"Tag {shown!r} is {len(text)} characters long: keep a tag to {TAG_MAX} "
                          "(put longer text in the run's note).")
    if any(c.isspace() for c in text):
        joined = re.sub(r"\s+", "-", text)
        raise ConfigError(f"Tag {shown!r} has a space: a tag is one word; write it as {joined!r}.")
    if not _TAG.fullmatch(text):
        raise ConfigError(f"Tag {shown!r} has characters a tag cannot hold: use letters, digits and "
                          ". _ - : / + (starting with a letter or digit).")
    return text


def parse_changes(words: Iterable[str]) -> tuple[list[str], list[str]]:
    """``["+a", "-b", "c"]`` → ``(["a", "c"], ["b"])``: what to add and what to remove
    (a bare word adds). Every tag is checked first: a bad one changes nothing."""
    add, remove = [], []
    for word in words:
        word = str(word)
        if word.startswith("-"):
            remove.append(check_tag(word[1:]))
        else:
            add.append(check_tag(word[1:] if word.startswith("+") else word))
    return add, remove


_CACHE: dict[str, tuple[tuple, RunLabels]] = {}


def read_labels(folder: RunFolder) -> RunLabels:
    """The run's labels; none when ``labels.json`` is missing (or not a labels record).
    Read again only when the file's size or mtime moved (a live run's view asks every second)."""
    path = labels_path(folder)
    try:
        stat = path.stat()
    except OSError:
        return RunLabels()
    stamp = (stat.st_size, stat.st_mtime_ns)
    cached = _CACHE.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    record, _problem = read_object(path)
    labels = _labels_of(record or {})
    _CACHE[str(path)] = (stamp, labels)
    return labels


def _labels_of(record: dict) -> RunLabels:
    tags = record.get("tags") if isinstance(record.get("tags"), list) else []
    note = record.get("note") if isinstance(record.get("note"), str) else ""
    return RunLabels(tags=tuple(sorted({str(t) for t in tags})), note=note,
                     archived=record.get("archived") is True)


@contextmanager
def _folder_locked(folder: RunFolder) -> Iterator[None]:
    """An ``flock`` on the run folder itself (no lock file left in it)."""
    handle = os.open(folder.path, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _change(folder: RunFolder, **changes) -> RunLabels:
    if not folder.path.is_dir():
        raise ConfigError(f"No run folder {folder.run_id}: it was deleted.")
    with _folder_locked(folder):
        record, _problem = read_object(labels_path(folder))
        record = dict(record or {})
        for key, value in changes.items():
            record[key] = value(record) if callable(value) else value
        record["updated_at"] = now_iso()
        write_json_atomic(labels_path(folder), record)
        return _labels_of(record)


def change_tags(folder: RunFolder, add: Iterable[str] = (), remove: Iterable[str] = ()) -> RunLabels:
    """Add and remove tags (each checked with :func:`check_tag`); returns the labels after."""
    add, remove = {check_tag(t) for t in add}, {check_tag(t) for t in remove}
    return _change(folder, tags=lambda record: sorted((set(_labels_of(record).tags) | add) - remove))


def set_note(folder: RunFolder, note: str) -> RunLabels:
    """Replace the note (plain text, shown as text: markup is never rendered)."""
    note = str(note or "").strip()
    if len(note) > NOTE_MAX:
        raise ConfigError(f"The note is {len(note)} characters long: keep it to {NOTE_MAX} "
                          "(link a document for more).")
    return _change(folder, note=note)


def set_archived(folder: RunFolder, archived: bool = True) -> RunLabels:
    """Archive a finished run (hidden by default, kept on disk) or bring it back.

    Raises:
        ConfigError: the run is queued or running: stop it first (nothing is changed).
    """
    with scheduler_lock(home_of(folder)):
        status = folder.read_status()
        if archived and is_live(status):
            raise ConfigError(f"Run {folder.run_id} is {status.get('status')}: a live run cannot be "
                              "archived. Stop it first, then archive it.")
        return _change(folder, archived=bool(archived))
