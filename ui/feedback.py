"""Messages and formatting: errors as messages (never tracebacks), paths as the data home sees
them (never the server's absolute paths), durations, status badges."""

from __future__ import annotations

import json
import logging
import math
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import streamlit as st

from pedsense.config import data_home
from pedsense.errors import PedsenseError
from pedsense.io import file_system_problem
from pedsense.runfolder import describe_best
from pedsense.runsummary import RunSummary

log = logging.getLogger("pedsense.app")

STATUS_COLOURS = {"queued": "gray", "running": "blue", "stopping": "orange", "completed": "green",
                  "failed": "red", "stopped": "orange", "interrupted": "violet", "unreadable": "red",
                  "unknown": "gray"}
STATUS_ICONS = {"queued": ":material/hourglass_top:", "running": ":material/play_circle:",
                "stopping": ":material/pending:", "completed": ":material/check_circle:",
                "failed": ":material/error:", "stopped": ":material/stop_circle:",
                "interrupted": ":material/warning:", "unreadable": ":material/broken_image:",
                "unknown": ":material/help:"}
SOURCE_BADGES = {"none": ":gray-badge[:material/inbox: No data yet]",
                 "JAAD": ":blue-badge[:material/videocam: JAAD]",
                 "synthetic demo": ":violet-badge[:material/science: Synthetic demo set]"}


_SQLITE_URL = re.compile(r"(sqlite:///)(/[^\s`'\"()\[\]{}<>,;|*]+)")  # an absolute database file
# An absolute POSIX path inside a message: starts after a space, quote, bracket or the start.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/\\-])/[^\s`'\"()\[\]{}<>,;|*]+")


def shown_path(path: str | os.PathLike) -> str:
    """A path as a page shows it: relative to the data home (``data/raw/clips/x.mp4``), the data
    home itself as ``<data home>``, anything else as ``…/<name>``: never the server's own layout."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    home = data_home()
    if path == home:
        return "<data home>"
    try:
        return path.relative_to(home).as_posix()
    except ValueError:
        return f"…/{path.name}" if path.name else "…"


def hide_paths(text: object) -> str:
    """``text`` with every absolute path in it shown as :func:`shown_path` shows it."""
    def replace(match: re.Match) -> str:
        found = match.group(0)
        trail = found[len(found.rstrip(".")):]  # a sentence's full stop is not part of the path
        return shown_path(found[: len(found) - len(trail)] or found) + trail

    text = _SQLITE_URL.sub(lambda m: m.group(1) + shown_path(m.group(2)), str(text))
    return _ABSOLUTE_PATH.sub(replace, text)


def without_paths(record: object) -> object:
    """A JSON-like record (a manifest, a run's config) with :func:`hide_paths` applied to every
    string in it, for ``st.json``."""
    return json.loads(hide_paths(json.dumps(record, default=str)))


def show_error(exc: BaseException, doing: str = "") -> None:
    """A clear message in the page instead of a traceback (paths shown relative to the data home)."""
    where = f" while {doing}" if doing else ""
    problem = file_system_problem(exc)  # a full disk, a read-only data home: said, not a bug
    if isinstance(exc, PedsenseError) or problem is not None:
        st.error(f"Could not finish{where}: {hide_paths(problem or exc)}", icon=":material/block:")
    else:
        log.exception("unexpected error%s", where, exc_info=exc)
        st.error(f"Unexpected error{where}: {type(exc).__name__}: {hide_paths(exc)}. The app keeps "
                 "running; the terminal running `streamlit` has the details.", icon=":material/block:")


@contextmanager
def error_box(doing: str = "") -> Iterator[None]:
    """Run a block; any error becomes an ``st.error`` (Streamlit's own reruns pass through)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page must keep serving
        show_error(exc, doing)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


fmt_best = describe_best


def shown_status(summary: RunSummary) -> str:
    """The status word to show: ``stopping`` while a stop request is being honoured."""
    return "stopping" if summary.status == "running" and summary.stop_requested else summary.status


def fmt_status(status: str) -> str:
    """Status as a coloured markdown badge."""
    colour = STATUS_COLOURS.get(status, "gray")
    text = "stopping…" if status == "stopping" else status
    return f":{colour}-badge[{STATUS_ICONS.get(status, '')} {text}]"


def progress_of(summary: RunSummary) -> tuple[float, str]:
    """(fraction done, caption) of a run, counting batches within the epoch."""
    total, done = summary.epochs_total or 0, summary.epochs_done or 0
    if summary.status == "queued":
        position = summary.queue_position
        return 0.0, f"queued{f' #{position}' if position else ''}"
    fraction = done / total if total else 0.0
    if total and summary.total_batches:
        fraction += summary.batch / summary.total_batches / total
    # people count epochs from 1: the first epoch is "epoch 1" while it trains, not "epoch 0"
    current = done + 1 if summary.status == "running" else done
    text = f"epoch {min(current, total) if total else current}/{total or '?'}"
    if summary.stage and summary.model_type == "hybrid":
        text += f" · {summary.stage}"
    if summary.total_batches and summary.status == "running":
        text += f" · batch {summary.batch}/{summary.total_batches}"
    if summary.stop_requested and summary.status == "running":
        text += " · stopping after this batch…"
    elif summary.eta_s is not None:
        text += f" · ETA {fmt_duration(summary.eta_s)}"
    return min(max(fraction, 0.0), 1.0), text


def source_badge(kind: str) -> str:
    """The data source as a markdown badge (the demo set is always labelled synthetic)."""
    return f"**Dataset** {SOURCE_BADGES.get(kind, kind)}"


def weights_badge(weights_source) -> str:
    """``:orange-badge[offline: from scratch]`` when a run (or a stage) started from random
    weights; "" when every part started from pretrained or reused weights."""
    sources = weights_source.values() if isinstance(weights_source, dict) else [weights_source]
    scratch = [str(s) for s in sources if s and str(s).startswith("scratch")]
    if not scratch:
        return ""
    return ":orange-badge[:material/cloud_off: offline: from scratch]"
