"""One queue for background work in memory: data jobs and in-thread training runs.

(Runs launched as worker processes queue on disk: ``pedsense.runqueue``.)

A :class:`WorkQueue` runs :class:`WorkItem` s in FIFO order on one background thread (the
dashboard's design: the pages never do long work themselves), one at a time. An item is
``queued``, then ``running``, then ``completed``, ``failed`` or ``stopped`` (the status words of
``pedsense.runfolder.STATUSES``). A queued item can be cancelled; a running one gets its
``stop_event`` set and is expected to finish its current step and return. Every change bumps
the item's ``version``, so a page can ask "did anything move?" for the price of an int.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from pedsense.errors import PedsenseError
from pedsense.runfolder import LIVE_STATUSES

_VERSIONS = itertools.count(1)


@dataclass
class WorkItem:
    """One unit of background work; its fields are guarded by the queue's lock."""

    item_id: str
    kind: str
    status: str = "queued"
    error: str | None = None
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    version: int = field(default_factory=lambda: next(_VERSIONS))

    def touch(self) -> None:
        """Mark a change (call under the queue's lock)."""
        self.version = next(_VERSIONS)


# ``execute(item)`` returns the final status (``completed``, ``failed`` or ``stopped``) and the
# error text; an exception it lets through is recorded as ``failed`` with the message.
Execute = Callable[[WorkItem], "tuple[str, str | None]"]


class WorkQueue:
    """Run items one at a time, in submission order, on one daemon thread."""

    def __init__(self, name: str, execute: Execute):
        self.name = name
        self._execute = execute
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._items: dict[str, WorkItem] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- submitting and controlling -------------------------------------------------------
    def submit(self, item: WorkItem) -> str:
        with self.changed:
            self._items[item.item_id] = item
            self._queue.append(item.item_id)
            self._closed = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name=f"pedsense-{self.name}",
                                                daemon=True)
                self._thread.start()
            self.changed.notify_all()
        return item.item_id

    def cancel(self, item_id: str, reason: str = "cancelled before it started") -> bool:
        """Take a queued item off the queue (``stopped``); False when it is not queued."""
        with self.changed:
            item = self._items.get(item_id)
            if item is None or item.status != "queued":
                return False
            self._queue.remove(item_id)
            item.status, item.error, item.finished_at = "stopped", reason, time.time()
            item.touch()
            self.changed.notify_all()
            return True

    def request_stop(self, item_id: str) -> bool:
        """Ask a running item to stop; False when it is not running."""
        with self.changed:
            item = self._items.get(item_id)
            if item is None or item.status != "running":
                return False
            item.stop_event.set()
            item.touch()
            return True

    def forget(self, item_id: str) -> None:
        with self.lock:
            self._items.pop(item_id, None)

    # -- reading ---------------------------------------------------------------------------
    def get(self, item_id: str) -> WorkItem | None:
        with self.lock:
            return self._items.get(item_id)

    def items(self) -> list[WorkItem]:
        with self.lock:
            return list(self._items.values())

    def position(self, item_id: str) -> int | None:
        """1-based place in the queue of a queued item, else None."""
        with self.lock:
            return self._queue.index(item_id) + 1 if item_id in self._queue else None

    def active(self) -> list[WorkItem]:
        """The running item(s), then the queued ones in the order they will run."""
        with self.lock:
            running = [i for i in self._items.values() if i.status == "running"]
            return running + [self._items[i] for i in self._queue]

    def busy(self) -> bool:
        with self.lock:
            return any(i.status in LIVE_STATUSES for i in self._items.values())

    def wait(self, item_id: str, timeout: float = 60.0) -> WorkItem:
        """Block until ``item_id`` is no longer queued or running (tests, scripts)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                item = self._items.get(item_id)
                if item is None or item.status not in LIVE_STATUSES:
                    return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{item_id} still {item.status} after {timeout:.0f} s")
                self.changed.wait(min(remaining, 0.5))

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until nothing is queued or running."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.busy():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.name} still busy after {timeout:.0f} s")
                self.changed.wait(min(remaining, 0.5))

    def shutdown(self, stop_running: bool = True, timeout: float = 30.0) -> None:
        """Cancel queued items, ask the running one to stop and wait for the thread."""
        with self.changed:
            for item_id in list(self._queue):
                self.cancel(item_id)
            self._closed = True
            if stop_running:
                for item in self._items.values():
                    if item.status == "running":
                        item.stop_event.set()
            self.changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the thread --------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self.changed:
                while not self._queue and not self._closed:
                    if not self.changed.wait(1.0) and not self._queue:
                        self._thread = None  # idle: the next submit starts a fresh thread
                        return
                if not self._queue:
                    return
                item = self._items[self._queue.popleft()]
                item.status, item.started_at = "running", time.time()
                item.touch()
                self.changed.notify_all()
            status, error = self._run(item)
            with self.changed:
                item.status, item.error, item.finished_at = status, error, time.time()
                item.touch()
                self.changed.notify_all()

    def _run(self, item: WorkItem) -> tuple[str, str | None]:
        try:
            return self._execute(item)
        except PedsenseError as exc:
            return "failed", str(exc)
        except Exception as exc:  # a bug in one item must not kill the queue or the app
            traceback.print_exc()
            return "failed", f"{type(exc).__name__}: {exc}"
