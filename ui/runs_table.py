"""The Runs page's table, for finding a run among hundreds: filters (type, status, tag, dataset,
sweep; archived runs hidden unless asked), every column sortable (click its header), and a
selection of rows to act on: compare, archive or restore, delete (confirmed; live runs refused).

The filters are drawn in the page's run (the run picker below follows them); the table and its
actions are a fragment, refreshed every two seconds while a run is live.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pedsense.runfilter import FACETS, RunFilter, facet_options
from pedsense.runfolder import LIVE_STATUSES, parse_iso
from pedsense.runsummary import RunSummary
from ui.compare import COMPARE_RUNS
from ui.feedback import hide_paths, shown_status
from ui.state import MODEL_LABELS, SELECTED_RUN, run_manager

FILTER = "runs.filter."            # + facet, or "archived"
TABLE = "runs.table"
CONFIRM_DELETE = "runs.table.confirm_delete"  # the run ids awaiting "Yes, delete"
NOTICES = "runs.table.notices"     # what the last action did (shown once, after its rerun)
RERUN_APP = "runs.table.rerun_app"  # a callback asks the fragment for a whole-page rerun
FACET_LABELS = {"type": "Type", "status": "Status", "tag": "Tag", "dataset": "Dataset", "sweep": "Sweep"}
COLUMNS = {
    "tags": st.column_config.ListColumn("tags"),
    "best": st.column_config.NumberColumn("best", format="%.4g", help="The best epoch's value of the metric"),
    "started": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
    "minutes": st.column_config.NumberColumn("minutes", format="%.1f", help="How long it trained"),
    "note": st.column_config.TextColumn("note", width="medium"),
}


def run_filter_ui(runs: list[RunSummary]) -> RunFilter:
    """The filters over ``runs``' facets (each offers the values some run has); the filter."""
    options = facet_options(runs)
    columns = st.columns([1, 1, 1, 2, 1, 1], vertical_alignment="bottom")
    picked = {}
    for column, facet in zip(columns, FACETS):
        key = FILTER + facet
        if key in st.session_state:  # a value no run has any more (deleted, untagged) is dropped
            st.session_state[key] = [v for v in st.session_state[key] if v in options[facet]]
        picked[facet] = column.multiselect(
            FACET_LABELS[facet], options[facet], key=key, placeholder="any",
            format_func=(lambda v: MODEL_LABELS.get(v, v)) if facet == "type" else str)
    archived = columns[-1].toggle("Archived", key=FILTER + "archived",
                                  help="Show archived runs too (kept on disk, hidden by default).")
    return RunFilter(picked, archived=archived)


def table_frame(runs: list[RunSummary]) -> pd.DataFrame:
    """One row per run, typed so that every column sorts as its values do."""
    return pd.DataFrame([{
        "type": MODEL_LABELS.get(s.model_type, s.model_type), "name": s.name, "status": shown_status(s),
        "tags": list(s.labels.tags) + (["archived"] if s.labels.archived else []),
        "epochs": s.epochs_done, "of": s.epochs_total or None,
        "metric": (s.best_metric or {}).get("name"), "best": (s.best_metric or {}).get("value"),
        "dataset": s.dataset, "sweep": s.sweep,
        "started": pd.to_datetime(parse_iso(s.started_at), unit="s") if parse_iso(s.started_at) else None,
        "minutes": round(s.duration_s / 60, 1) if s.duration_s is not None else None,
        "note": (s.labels.note.splitlines() or [""])[0][:120],
    } for s in runs], columns=["type", "name", "status", "tags", "epochs", "of", "metric", "best",
                               "dataset", "sweep", "started", "minutes", "note"])


def runs_table_ui(wanted: RunFilter, live: bool) -> None:
    """The filtered table and the actions on its selection."""
    st.fragment(_table, run_every=2.0 if live else None)(wanted)


def _table(wanted: RunFilter) -> None:
    if st.session_state.pop(RERUN_APP, False):
        st.rerun(scope="app")
    for kind, text in st.session_state.pop(NOTICES, []):
        getattr(st, kind)(text)
    every = run_manager().runs()
    runs = wanted.apply(every)
    hidden = len(every) - len(runs)
    if not runs:
        st.info(f"No run matches the filters ({hidden} hidden).", icon=":material/filter_alt_off:")
        return
    event = st.dataframe(table_frame(runs), key=TABLE, on_select="rerun", selection_mode="multi-row",
                         hide_index=True, width="stretch", column_config=COLUMNS)
    ids = [s.run_id for s in runs]
    picked = [runs[i] for i in event.selection.rows if i < len(runs)]
    st.caption(f"{len(runs)} run(s)" + (f", {hidden} hidden by the filters" if hidden else "")
               + (f" · {len(picked)} selected" if picked else " · select rows to compare, archive or delete them")
               + " · click a column's header to sort by it.")
    if picked:
        actions_ui(picked, ids)


def actions_ui(picked: list[RunSummary], shown_ids: list[str]) -> None:
    """Compare, open, archive/restore and delete the selected runs."""
    ids = [s.run_id for s in picked]
    charted = [s.run_id for s in picked if s.metrics]
    restore = all(s.labels.archived for s in picked)
    cols = st.columns(4)
    cols[0].button(":material/compare_arrows: Compare", key="runs.table.compare", width="stretch",
                   disabled=not charted, on_click=_compare, args=(charted,),
                   help="Overlay their curves and configs below (runs with at least one epoch).")
    cols[1].button(":material/open_in_full: Open", key="runs.table.open", width="stretch",
                   disabled=len(ids) != 1, on_click=_open, args=(ids[0],), help="Show this run's view below.")
    if cols[2].button(":material/unarchive: Restore" if restore else ":material/archive: Archive",
                      key="runs.table.archive", width="stretch",
                      help="Archived runs are hidden from this table (the Archived toggle shows them) "
                           "and kept on disk. A queued or running run is not archived."):
        _archive(ids, not restore)
    if cols[3].button(":material/delete: Delete…", key="runs.table.delete", width="stretch"):
        st.session_state[CONFIRM_DELETE] = ids
    pending = [r for r in st.session_state.get(CONFIRM_DELETE) or [] if r in shown_ids]
    if pending:
        confirm_delete_ui(pending, {s.run_id: s for s in picked})


def _compare(run_ids: list[str]) -> None:
    st.session_state[COMPARE_RUNS] = run_ids  # a callback: before the picker below is drawn
    st.session_state[RERUN_APP] = True


def _open(run_id: str) -> None:
    st.session_state[SELECTED_RUN] = run_id
    st.session_state[RERUN_APP] = True


def _archive(run_ids: list[str], archived: bool) -> None:
    notices = []
    for run_id in run_ids:
        try:
            run_manager().archive(run_id, archived)
        except Exception as exc:  # noqa: BLE001 - a live run is refused; the others go on
            notices.append(("error", hide_paths(exc)))
    done = len(run_ids) - len(notices)
    if done:
        notices.insert(0, ("success", f"{'Archived' if archived else 'Restored'} {done} run(s)."
                           + (" The Archived toggle shows them." if archived else "")))
    st.session_state[NOTICES] = notices
    st.rerun(scope="app")


def confirm_delete_ui(run_ids: list[str], summaries: dict[str, RunSummary]) -> None:
    """The runs a delete would remove (live ones refused), and the confirmation."""
    live = [r for r in run_ids if r in summaries and summaries[r].status in LIVE_STATUSES]
    doomed = [r for r in run_ids if r not in live]
    if live:
        st.error("Not deleted while queued or running (stop them first): "
                 + ", ".join(f"`{r}`" for r in live), icon=":material/block:")
    if not doomed:
        st.session_state.pop(CONFIRM_DELETE, None)
        return
    st.warning(f"Delete {len(doomed)} run(s) and all their files (weights, metrics, logs)? This cannot "
               "be undone: " + ", ".join(f"`{r}`" for r in doomed), icon=":material/delete:")
    yes, no = st.columns(2)
    if yes.button(f"Yes, delete {len(doomed)} run(s)", type="primary", key="runs.table.delete.yes"):
        st.session_state.pop(CONFIRM_DELETE, None)
        notices = []
        for run_id in doomed:
            try:
                run_manager().delete(run_id)
                notices.append(("success", f"Deleted `{run_id}`"))
            except Exception as exc:  # noqa: BLE001 - e.g. it started meanwhile: said, the rest go on
                notices.append(("error", f"`{run_id}` was not deleted: {hide_paths(exc)}"))
        st.session_state[NOTICES] = notices
        st.rerun(scope="app")
    if no.button("Cancel", key="runs.table.delete.no"):
        st.session_state.pop(CONFIRM_DELETE, None)
        st.rerun()


def pickable_runs(runs: list[RunSummary], wanted: RunFilter) -> list[RunSummary]:
    """The runs the run picker offers: those the filters keep, and the one shown now."""
    kept = wanted.apply(runs)
    current = st.session_state.get(SELECTED_RUN)
    if current and current not in {s.run_id for s in kept}:
        kept += [s for s in runs if s.run_id == current]
    return kept or runs
