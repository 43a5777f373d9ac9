"""Data: make the demo set, extract frames and build the datasets, in the background."""

import streamlit as st

from pages.common import (class_balance_figure, class_counts, datasets_status, error_box, job_manager,
                          show_error, source_badge, source_facts)
from pedsense.jobs import DATA_JOBS, PIPELINE

st.title("Data")
st.caption("Everything here runs in the background: leave the page and come back, the progress "
           "bars pick up where they are. Jobs run one at a time, in the order you start them.")


def start_jobs(*kinds: str, **options) -> None:
    """Queue data jobs (the button callbacks); errors show on the next run of the page."""
    try:
        for kind in kinds:
            job_manager().start(kind, **(options if kind == "demo" else {}))
    except Exception as exc:  # noqa: BLE001
        st.session_state["data_job_error"] = exc


def source_ui() -> None:
    facts = source_facts()
    kind = facts["kind"]
    st.markdown(source_badge(kind))
    cols = st.columns(4)
    cols[0].metric("Annotated videos", facts["annotations"])
    cols[1].metric("Clips", facts["clips"])
    if kind == "synthetic demo":
        st.info("This is the **synthetic demo set**: generated stick-figure pedestrians in the JAAD "
                "formats, for trying the pipeline. Put JAAD clips and annotations under `data/raw/` "
                "for real results.", icon=":material/science:")
    elif kind == "none":
        st.warning("No annotations under `data/raw/annotations/`. Make the demo set below, or copy "
                   "JAAD's `annotations/` and clips there.", icon=":material/inbox:")
    if facts.get("stats_error"):
        st.error(f"The annotations could not be read: {facts['stats_error']}", icon=":material/block:")


def actions_ui() -> None:
    busy = job_manager().busy()
    with st.expander("Demo set options"):
        n_videos = st.number_input("Videos", min_value=1, max_value=64, value=8, step=1,
                                   help="How many synthetic clips to write (each a few seconds).")
        seed = st.number_input("Seed", min_value=0, value=0, step=1,
                               help="The same seed always writes the same set.")
    first, second = st.columns(2)
    first.button(":material/science: Make the demo set", on_click=start_jobs, args=("demo",),
                 kwargs={"n_videos": int(n_videos), "seed": int(seed)}, disabled=busy,
                 width="stretch")
    second.button(":material/settings: Prepare everything (frames + all datasets)", on_click=start_jobs,
                  args=PIPELINE, type="primary", disabled=busy, width="stretch")
    columns = st.columns(len(PIPELINE))
    for column, kind in zip(columns, PIPELINE):
        column.button(DATA_JOBS[kind][1], on_click=start_jobs, args=(kind,), disabled=busy,
                      width="stretch", key=f"data.start.{kind}")
    if busy:
        st.caption("A job is running: the buttons come back when it ends.")


@st.fragment(run_every=1.0)
def jobs_ui() -> None:
    """Progress of this process's data jobs; reruns the page once the last one finishes."""
    manager = job_manager()
    for kind in ("demo", *PIPELINE):
        job = manager.latest(kind)
        if job is None:
            continue
        if job["status"] in ("queued", "running"):
            st.progress(job["fraction"], text=f"{job['label']}: {job['message'] or job['status']}")
        elif job["status"] == "failed":
            st.error(f"{job['label']} failed: {job['error']}", icon=":material/block:")
        else:
            st.success(f"{job['label']}: done in {job['duration_s']:.1f}s. {_summary(job['result'])}",
                       icon=":material/check_circle:")
    busy = manager.busy()
    if st.session_state.get("data_jobs_busy") and not busy:
        st.session_state["data_jobs_busy"] = False
        st.rerun(scope="app")
    st.session_state["data_jobs_busy"] = busy


def _summary(result) -> str:
    """A one-line summary of what a job wrote."""
    if not isinstance(result, dict):
        return ""
    shown = []
    for key in ("videos", "n_videos", "frames", "written", "images", "total", "sequences", "crops"):
        if isinstance(result.get(key), (int, float)):
            shown.append(f"{key}: {result[key]}")
    if result.get("path"):
        shown.append(f"in `{result['path']}`")
    return ", ".join(shown)


def datasets_ui() -> None:
    st.subheader("What is on disk")
    status = datasets_status()
    st.dataframe(
        [{"dataset": row["label"], "built": row["built"], "path": row["path"],
          "created": row["manifest"].get("created_at", ""),
          "warnings": "; ".join(row["manifest"].get("warnings") or [])} for row in status],
        hide_index=True, width="stretch")
    charts = [(row, class_counts(row["manifest"])) for row in status if row["built"]]
    charts = [(row, counts) for row, counts in charts if counts]
    if not charts:
        st.caption("Class balance charts appear here once a dataset is built.")
        return
    columns = st.columns(min(len(charts), 2))
    for index, (row, counts) in enumerate(charts):
        with columns[index % len(columns)]:
            st.plotly_chart(class_balance_figure(counts, row["label"]), width="stretch",
                            key=f"balance.{row['kind']}")


if "data_job_error" in st.session_state:
    show_error(st.session_state.pop("data_job_error"), "starting the job")
with error_box("reading the raw data"):
    source_ui()
st.subheader("Prepare")
with error_box("drawing the actions"):
    actions_ui()
jobs_ui()
with error_box("reading the datasets"):
    datasets_ui()
