"""Data: make the demo set, extract frames and build the datasets, in the background."""

import streamlit as st

import pandas as pd

from pages.common import (class_balance_figure, class_counts, datasets_status, describe_dataset_task,
                          error_box, job_manager, show_error, source_badge, source_facts)
from pedsense.jobs import DATA_JOBS, PIPELINE, task_job_kwargs

st.title("Data")
st.caption("Everything here runs in the background: leave the page and come back, the progress "
           "bars pick up where they are. Jobs run one at a time, in the order you start them.")


SPLITS = ("default", "high_visibility", "all_videos", "random")


def start_jobs(*kinds: str, **options) -> None:
    """Queue data jobs (the button callbacks); errors show on the next run of the page.

    The dataset builds take the task and intent options chosen under "Labels".
    """
    try:
        labels = labels_options()
        for kind in kinds:
            kwargs = options if kind == "demo" else task_job_kwargs(kind, **labels)
            job_manager().start(kind, **kwargs)
    except Exception as exc:  # noqa: BLE001
        st.session_state["data_job_error"] = exc


def labels_options() -> dict:
    """The task, split and intent protocol the "Labels" widgets hold (session state)."""
    state = st.session_state
    task = state.get("data.task", "action")
    options = {"task": task, "split": state.get("data.split", "default")}
    if task == "intent":
        tte = state.get("data.tte", (30, 60))
        options.update(obs_length=int(state.get("data.obs_length", 16)), tte=(int(tte[0]), int(tte[1])),
                       overlap=float(state.get("data.overlap", 0.8)),
                       sample_type=state.get("data.sample_type", "beh"),
                       irrelevant=state.get("data.irrelevant", "exclude"))
    return options


def labels_ui() -> None:
    """Which question the dataset builds' labels answer, and the benchmark protocol's options."""
    st.markdown("**Labels**")
    st.radio("Task", ("action", "intent"), key="data.task", horizontal=True,
             format_func={"action": "action — is the pedestrian crossing now (per-frame `cross`)",
                          "intent": "intent — will they cross, 1-2 s ahead (JAAD benchmark)"}.get,
             help="`action` labels every frame with JAAD's `cross` attribute (the seed's behaviour). "
                  "`intent` follows the JAAD pedestrian-action benchmark: 16 frames ending 30-60 "
                  "frames before the `crossing_point`, labelled with the track-level `crossing`.")
    st.selectbox("Split", SPLITS, key="data.split",
                 help="`default`, `high_visibility`, `all_videos`: JAAD's split files (train/val/test); "
                      "`random`: a seeded random split of the videos.")
    if st.session_state.get("data.task", "action") != "intent":
        return
    left, middle, right = st.columns(3)
    left.number_input("Observation length (frames)", min_value=1, max_value=64, value=16, step=1,
                      key="data.obs_length", help="Frames per window; the benchmark uses 16.")
    middle.slider("TTE (frames before the event)", 0, 120, (30, 60), key="data.tte",
                  help="Where a window may end: 30-60 frames (1-2 s at 30 fps) before the event.")
    right.number_input("Overlap", min_value=0.0, max_value=0.95, value=0.8, step=0.05, format="%.2f",
                       key="data.overlap", help="Window overlap; 0.8 with 16 frames steps 3 frames.")
    left.selectbox("Sample type", ("beh", "all"), key="data.sample_type",
                   help="`beh`: pedestrians with behaviour labels; `all`: also `ped` bystanders "
                        "(labelled not-crossing).")
    middle.selectbox("crossing = -1", ("exclude", "not-crossing"), key="data.irrelevant",
                     help="Pedestrians whose crossing is irrelevant: left out (pedsense's default) "
                          "or not-crossing (as the benchmark code does).")


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
    labels_ui()
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
    if result.get("task"):
        shown.append(f"task {result['task']}")
    lines = [", ".join(shown)] + [f"- {line}" for line in result.get("summary") or []]
    return "\n".join(lines)


def datasets_ui() -> None:
    st.subheader("What is on disk")
    status = datasets_status()
    st.dataframe(
        [{"dataset": row["label"], "built": row["built"], "task": describe_dataset_task(row["manifest"]),
          "path": row["path"], "created": row["manifest"].get("created_at", ""),
          "warnings": "; ".join(row["manifest"].get("warnings") or [])} for row in status],
        hide_index=True, width="stretch")
    for row in status:
        if row["built"] and row["manifest"]:
            build_summary_ui(row)
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


def skipped_table(manifest: dict) -> pd.DataFrame:
    """``reason, count, meaning`` of everything an ``intent`` build left out (empty otherwise)."""
    from pedsense.data.intent import SKIP_REASON_TEXT
    from pedsense.data.manifest import BUILD_SKIP_TEXT

    skipped = (manifest.get("intent") or {}).get("skipped") or {}
    text = {**SKIP_REASON_TEXT, **BUILD_SKIP_TEXT}
    return pd.DataFrame([{"reason": reason, "count": count, "meaning": text.get(reason, "")}
                         for reason, count in skipped.items()], columns=["reason", "count", "meaning"])


def build_summary_ui(row: dict) -> None:
    """One dataset's build summary (task, skips and why, leakage check) and its manifest."""
    manifest = row["manifest"]
    with st.expander(f"{row['label']}: build summary and manifest"):
        for line in manifest.get("summary") or []:
            st.markdown(f"- {line}")
        skipped = skipped_table(manifest)
        if not skipped.empty:
            st.dataframe(skipped, hide_index=True, width="stretch")
        st.json(manifest, expanded=False)


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
