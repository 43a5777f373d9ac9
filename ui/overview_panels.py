"""The Overview page's parts: the dataset at a glance, what is built, latest runs, next step."""

from __future__ import annotations

import streamlit as st

from pedsense.jobs import PIPELINE
from pedsense.runsummary import RunSummary
from ui.feedback import fmt_best, hide_paths, shown_status, source_badge
from ui.state import MODEL_LABELS, PAGE_DATA, PAGE_RUNS, PAGE_TRAIN_RESNET, PAGE_VIEWER, job_manager


def _count(value) -> int | None:
    """A count from ``dataset_stats``: a number, or the sum of a ``{label: n}`` table."""
    if isinstance(value, dict):
        return int(sum(v for v in value.values() if isinstance(v, (int, float))))
    return int(value) if isinstance(value, (int, float)) else None


def dataset_ui(facts: dict) -> None:
    stats = facts.get("stats") if isinstance(facts.get("stats"), dict) else {}
    behaviour = stats.get("behaviour_pedestrians") if isinstance(stats.get("behaviour_pedestrians"), dict) else {}
    crossing, not_crossing = behaviour.get("crossing") or 0, behaviour.get("not_crossing") or 0
    st.markdown(source_badge(facts["kind"]))
    # two a row: the page gives this panel 3/5 of its width, and a quarter of that cut
    # "Pedestrian tracks" to "Pedestrian tra…"
    cols = [*st.columns(2), *st.columns(2)]
    cols[0].metric("Videos", _count(stats.get("videos")) or facts["annotations"])
    cols[1].metric("Frames", _count(stats.get("frames")) or "—")
    cols[2].metric("Pedestrian tracks", _count(stats.get("tracks")) or "—",
                   help="Tracks labelled pedestrian, ped or people.")
    if crossing + not_crossing:
        cols[3].metric("Crossing", f"{crossing / (crossing + not_crossing):.0%}",
                       help=f"{crossing} of {crossing + not_crossing} pedestrians with a behaviour label "
                            "cross (the rest do not): the class balance the models learn from.")
    else:
        cols[3].metric("Crossing", "—", help="No pedestrian has a crossing label yet.")
    if facts["kind"] == "synthetic demo":
        st.caption("Generated stick-figure pedestrians in the JAAD formats, for trying the pipeline.")
    if facts.get("stats_error"):
        st.error(f"The annotations could not be read: {hide_paths(facts['stats_error'])}", icon=":material/block:")


def built_ui(status: list[dict]) -> None:
    st.markdown("**Processed datasets**  \n" + " · ".join(
        f"{':material/check_box:' if row['built'] else ':material/check_box_outline_blank:'} {row['label']}" for row in status))


def latest_runs_ui(runs: list[RunSummary]) -> None:
    st.subheader("Latest runs")
    if not runs:
        st.caption("No runs yet.")
        return
    st.dataframe([{"type": MODEL_LABELS.get(r.model_type), "name": r.name, "status": shown_status(r),
                   "best metric": fmt_best(r.best_metric)} for r in runs[:5]], hide_index=True, width="stretch")
    st.page_link(PAGE_RUNS, label="All runs", icon=":material/monitoring:")


def start_jobs(*kinds: str) -> None:
    for kind in kinds:
        job_manager().start(kind)


def next_step_ui(facts: dict, status: list[dict], runs: list[RunSummary]) -> None:
    """The one thing a new user should do now, with the button that does it."""
    st.subheader("Next step")
    busy = job_manager().busy()
    if busy:
        st.info("A data job is running; its progress is in the sidebar and on the Data page.", icon=":material/build:")
        st.page_link(PAGE_DATA, label="Open the Data page", icon=":material/folder_open:")
    elif facts["kind"] == "none":
        st.info("No data yet. Make the small synthetic demo set (a minute), or copy JAAD's clips and "
                "annotations into `data/raw/`.", icon=":material/inbox:")
        st.button(":material/science: Make the demo set", type="primary", on_click=start_jobs, args=("demo",))
    elif facts.get("clips") == 0 and not any(row["built"] for row in status
                                             if row["kind"].startswith("context")):
        st.info("Annotations, no clips: the **context** family is ready (it learns from the "
                "annotations alone); the others need JAAD's clips.", icon=":material/table_chart:")
        st.button(":material/table_chart: Build the context dataset", type="primary",
                  on_click=start_jobs, args=("context",))
    elif not all(row["built"] for row in status if not row["kind"].startswith("context")):
        missing = [row["label"] for row in status
                   if not row["built"] and not row["kind"].startswith("context")]
        st.info("Build the training datasets: " + ", ".join(missing) + ".", icon=":material/settings:")
        st.button(":material/settings: Prepare everything", type="primary", on_click=start_jobs, args=PIPELINE)
    elif not runs:
        st.info("Data is ready. Train a first model: the quick CPU preset of the ResNet-LSTM "
                "takes a few minutes.", icon=":material/rocket_launch:")
        st.page_link(PAGE_TRAIN_RESNET, label="Train ResNet-LSTM", icon=":material/movie:")
    elif not any(r.status == "completed" for r in runs):
        st.info("A run is on its way: follow it on the Runs page.", icon=":material/monitoring:")
        st.page_link(PAGE_RUNS, label="Open the Runs page", icon=":material/monitoring:")
    else:
        st.success("Look at what a trained model sees, frame by frame.", icon=":material/visibility:")
        st.page_link(PAGE_VIEWER, label="Open the Viewer", icon=":material/visibility:")
