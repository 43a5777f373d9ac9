"""Is a process still the one that started a run? Heartbeats that say so across processes.

A process is identified by its pid *and* its start token (``/proc/<pid>/stat`` field 22), so a
pid the kernel reused for another program is never taken for the run's worker. A process that
owns a run also writes a heartbeat file (``{pid, start, heartbeat_at}``, atomically, every
:data:`HEARTBEAT_EVERY_S` from one daemon thread): another process calls it alive while the pid
and start token match and the heartbeat is younger than :data:`HEARTBEAT_STALE_S`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from pedsense.io import read_json, write_json_atomic

HEARTBEAT_EVERY_S = 2.0
HEARTBEAT_STALE_S = 30.0


def process_start_token(pid: int) -> str | None:
    """When process ``pid`` started (``/proc/<pid>/stat`` field 22), so a reused pid is not
    mistaken for it; None where ``/proc`` is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) counted after the ")" that closes the command name.
    return stat.rsplit(")", 1)[1].split()[19]


def process_state(pid: int) -> tuple[str | None, str]:
    """``(state, command line)`` of process ``pid`` from ``/proc`` (state ``"T"``: stopped by a
    signal, ``"Z"``: a zombie); ``(None, "")`` where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None, ""
    return stat.rsplit(")", 1)[1].split()[0], command


def has_proc() -> bool:
    """True where start tokens can be read (Linux ``/proc``)."""
    return process_start_token(os.getpid()) is not None


def process_alive(pid: Any, start_token: str | None = None) -> bool:
    """True when process ``pid`` exists (and, when known, is the same process that started)."""
    try:
        pid = int(pid)
        os.kill(pid, 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return start_token is None or process_start_token(pid) in (None, start_token)


def me() -> dict:
    """``{"pid", "start"}`` of this process."""
    return {"pid": os.getpid(), "start": process_start_token(os.getpid())}


def same_process(record: Any) -> bool:
    """True when ``record`` (``{"pid", "start"}``) names a live process, verified by its start
    token where ``/proc`` exists: a pid recorded without one cannot be told from a reused pid,
    so it does not count as alive."""
    if not isinstance(record, dict) or record.get("pid") is None:
        return False
    start = record.get("start")
    if start is None and has_proc():
        return False
    return process_alive(record["pid"], start)


def is_me(record: Any) -> bool:
    return isinstance(record, dict) and record.get("pid") == os.getpid() and \
        record.get("start") == process_start_token(os.getpid())


# -- heartbeats ---------------------------------------------------------------------------------
def read_heartbeat(path: str | os.PathLike) -> dict | None:
    record = read_json(path, None)
    return record if isinstance(record, dict) and record.get("pid") is not None else None


def heartbeat_alive(path: str | os.PathLike, stale_s: float | None = None) -> bool:
    """True while the heartbeat file at ``path`` names a live process and is fresh."""
    record = read_heartbeat(path)
    if record is None or not same_process(record):
        return False
    try:
        age = time.time() - float(record.get("heartbeat_at"))
    except (TypeError, ValueError):
        return False
    return age < (HEARTBEAT_STALE_S if stale_s is None else stale_s)


class _Beats:
    """The heartbeat files this process keeps fresh, on one daemon thread (reference counted)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.files: dict[Path, int] = {}
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, path: Path) -> None:
        with self.lock:
            _write_beat(path)
            self.files[path] = self.files.get(path, 0) + 1
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="pedsense-heartbeat", daemon=True)
                self.thread.start()

    def stop(self, path: Path) -> None:
        with self.lock:
            count = self.files.get(path, 0) - 1
            if count > 0:
                self.files[path] = count
            else:
                self.files.pop(path, None)

    def _loop(self) -> None:
        while True:
            self.wake.wait(HEARTBEAT_EVERY_S)
            self.wake.clear()
            with self.lock:
                if not self.files:
                    self.thread = None
                    return
                for path in list(self.files):
                    try:
                        _write_beat(path)
                    except OSError:  # the run folder was deleted: nothing left to keep alive
                        self.files.pop(path, None)


def _write_beat(path: Path) -> None:
    if not path.parent.is_dir():  # never re-create a folder someone deleted
        raise FileNotFoundError(f"{path.parent} is gone")
    write_json_atomic(path, {**me(), "heartbeat_at": time.time()})


_BEATS = _Beats()


class Heartbeat:
    """Keep the heartbeat file ``path`` fresh from now until :meth:`stop` (or the ``with`` ends)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.running = False

    def start(self) -> "Heartbeat":
        if not self.running:
            _BEATS.start(self.path)
            self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            _BEATS.stop(self.path)
            self.running = False

    def __enter__(self) -> "Heartbeat":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
