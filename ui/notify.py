"""Hearing when a run ends: a toast in every open tab, whoever launched the run.

Each session remembers when it opened and which ends it has told. When the data home's status
version moves (``RunManager.status_version``: a run started, ended, was stopped — from this
tab, another one, another dashboard or the ``pedsense`` command), the runs that ended since the
session opened and were not told yet each get one toast naming the run, how it ended, and a
link to its view (``runs?run=<id>``). The sidebar's watcher reruns the page when that version
moves (``ui.sidebar.watch_ui``), and every page run calls :func:`notify_ends_ui` first, so the
toast is raised within a second of the end, in a full run (a toast raised in the watcher's own
run would be lost to the page rerun that follows it).
"""

from __future__ import annotations

import time
from urllib.parse import quote

import streamlit as st

from pedsense.runfolder import describe_best
from pedsense.runsummary import RunSummary, ended_since
from pedsense.runs import RunManager
from ui.feedback import STATUS_ICONS, hide_paths

NOTIFY = "notify.ends"   # {"since": when the session opened, "version": last seen, "told": {(run, end)}}
LINK_PARAM = "run"       # runs?run=<run id> opens that run's view
LINKED = "notify.linked"  # the last ?run= this session followed


def run_link(run_id: str) -> str:
    """A link to a run's view, relative to the page (works under any base URL)."""
    return f"runs?{LINK_PARAM}={quote(run_id, safe='')}"


def end_message(summary: RunSummary) -> str:
    """The toast's text: the run, how it ended (best metric, or why), and the link to its view."""
    what = {"completed": f"completed · {describe_best(summary.best_metric)}",
            "failed": "failed", "stopped": "stopped", "interrupted": "was interrupted"}[summary.status]
    why = ""
    if summary.status != "completed" and summary.error:
        error = hide_paths(summary.error).splitlines()[0]
        why = ": " + (error if len(error) <= 140 else error[:139] + "…")
    return f"`{summary.run_id}` {what}{why}  \n[Open its view]({run_link(summary.run_id)})"


def notify_ends_ui(manager: RunManager, version: object = None) -> None:
    """Toast each run that ended since this session opened, once (``version``: the data home's
    status version when the caller has it; nothing more is read while it has not moved).

    ``manager`` is the page's run manager (``ui.state.run_manager()``), passed in so that
    ``ui.state`` can call this without an import cycle."""
    version = manager.status_version() if version is None else version
    state = st.session_state.get(NOTIFY)
    if state is None:
        st.session_state[NOTIFY] = {"since": time.time(), "version": version, "told": set()}
        return
    if state["version"] == version:
        return
    state["version"] = version
    for summary in ended_since(manager.runs(), state["since"]):
        told = (summary.run_id, summary.finished_at)
        if told in state["told"]:
            continue
        state["told"].add(told)
        st.toast(end_message(summary), icon=STATUS_ICONS.get(summary.status), duration="long")


def follow_link(run_ids: list[str]) -> str | None:
    """The run a ``?run=`` link names (once per link), when it is one of ``run_ids``."""
    linked = st.query_params.get(LINK_PARAM)
    if not linked or linked == st.session_state.get(LINKED):
        return None
    st.session_state[LINKED] = linked
    return linked if linked in run_ids else None
