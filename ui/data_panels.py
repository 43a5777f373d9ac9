"""The Data and Overview pages' parts: the raw data, the label options, jobs and datasets."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from pedsense.catalogue import class_counts, datasets_status, describe_task, family_readiness
from pedsense.config import paths
from pedsense.data.intent import SKIP_REASON_TEXT, TASKS, IntentOptions
from pedsense.data.splits import SPLITS
from pedsense.jobs import DATA_JOBS, PIPELINE, task_job_kwargs
from pedsense.train.params import IRRELEVANT, OBS_LENGTH, OVERLAP, PLACEMENT, SAMPLE_TYPE, TTE
from ui.feedback import hide_paths, shown_path, source_badge, without_paths
from ui.forms import field_ui
from ui.state import home, job_manager
from ui.downloads import chart_ui

JOB_ERROR = "data_job_error"
INTENT_FIELDS = (OBS_LENGTH, TTE, OVERLAP, SAMPLE_TYPE, IRRELEVANT, PLACEMENT)


# -- what the raw data holds ------------------------------------------------------------------
@st.cache_data(max_entries=4, show_spinner="Reading the annotations…")
def _dataset_stats(home_dir: str, fingerprint: tuple) -> dict:
    """``dataset_stats`` once per state of the annotation files (parsing all of JAAD takes seconds)."""
    from pedsense.data.stats import dataset_stats

    return dataset_stats(home_dir)


def source_facts() -> dict:
    """What the raw data holds: kind (JAAD / synthetic / none), clips, annotated videos,
    pedestrians and crossing balance."""
    from pedsense.data.synthetic import is_synthetic

    p = paths(home())
    annotations = sorted(p.annotations.glob("*.xml")) + sorted(p.attributes.glob("*.xml"))
    xml_count = sum(1 for a in annotations if a.parent == p.annotations)
    clips = [c for c in p.clips.glob("*") if c.is_file()] if p.clips.is_dir() else []
    facts: dict[str, Any] = {"annotations": xml_count, "clips": len(clips),
                             "synthetic": bool(xml_count) and is_synthetic(p.home), "stats": None}
    if xml_count:
        fingerprint = tuple((a.name, a.stat().st_mtime_ns, a.stat().st_size) for a in annotations)
        try:
            facts["stats"] = _dataset_stats(str(p.home), fingerprint)
        except Exception as exc:  # noqa: BLE001 - a bad XML must not hide the rest of the page
            facts["stats_error"] = str(exc)
    facts["kind"] = ("none" if not xml_count else "synthetic demo" if facts["synthetic"] else "JAAD")
    return facts


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
        st.error(f"The annotations could not be read: {hide_paths(facts['stats_error'])}", icon=":material/block:")


# -- the label options and the jobs -----------------------------------------------------------
def labels_options() -> dict:
    """The task, split and intent protocol the "Labels" widgets hold (session state)."""
    state = st.session_state
    task = state.get("data.task", "action")
    options: dict[str, Any] = {"task": task, "split": state.get("data.split", "default")}
    if task == "intent":
        options["intent"] = IntentOptions.from_dict(
            {field.name: state.get(f"data.{field.name}") for field in INTENT_FIELDS})
    return options


def start_jobs(*kinds: str, **options) -> None:
    """Queue data jobs (the button callbacks); errors show on the next run of the page.

    The dataset builds take the task and intent options chosen under "Labels".
    """
    try:
        labels = labels_options()
        for kind in kinds:
            kwargs = options if kind in ("demo", "context", "annotations") \
                else task_job_kwargs(kind, **labels)
            job_manager().start(kind, **kwargs)
    except Exception as exc:  # noqa: BLE001
        st.session_state[JOB_ERROR] = exc


def labels_ui() -> None:
    """Which question the dataset builds' labels answer, and the benchmark protocol's options."""
    st.markdown("**Labels**")
    st.radio("Task", TASKS, key="data.task", horizontal=True,
             format_func={"action": "action — is the pedestrian crossing now (per-frame `cross`)",
                          "intent": "intent — will they cross, 1-2 s ahead (JAAD benchmark)"}.get,
             help="`action` labels every frame with JAAD's `cross` attribute (the seed's behaviour). "
                  "`intent` follows the JAAD pedestrian-action benchmark: 16 boxes ending 30-60 "
                  "boxes before the `crossing_point`, labelled with the track-level `crossing`.")
    st.selectbox("Split", SPLITS, key="data.split",
                 help="`default`, `high_visibility`, `all_videos`: JAAD's split files (train/val/test); "
                      "`random`: a seeded random split of the videos.")
    if st.session_state.get("data.task", "action") != "intent":
        return
    defaults = IntentOptions().as_dict()
    columns = st.columns(3)
    for index, field in enumerate(INTENT_FIELDS):
        st.session_state.setdefault(f"data.{field.name}", tuple(defaults[field.name])
                                    if field.name == "tte" else defaults[field.name])
        with columns[index % 3]:
            field_ui("data", field)


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
                 kwargs={"n_videos": int(n_videos), "seed": int(seed)}, disabled=busy, width="stretch")
    second.button(":material/settings: Prepare everything (frames + all datasets)", on_click=start_jobs,
                  args=PIPELINE, type="primary", disabled=busy, width="stretch")
    columns = st.columns(len(PIPELINE))
    for column, kind in zip(columns, PIPELINE):
        column.button(DATA_JOBS[kind][1], on_click=start_jobs, args=(kind,), disabled=busy,
                      width="stretch", key=f"data.start.{kind}")
    if busy:
        st.caption("A job is running: the buttons come back when it ends.")


def families_ui() -> None:
    """Which model families the data home can train now (context: annotations; others: clips)."""
    rows = family_readiness(home())
    st.dataframe([{"family": row["family"], "needs": row["needs"],
                   "ready": "ready" if row["ready"] else "not ready", "why": hide_paths(row["why"])}
                  for row in rows], hide_index=True, width="stretch")


def context_ui() -> None:
    """JAAD's annotations (no clips) and the context dataset built from them alone."""
    busy = job_manager().busy()
    st.markdown("**Annotations only** — the context family learns from JAAD's annotations "
                "(box trajectory, ego-vehicle action, traffic scene, behaviour tags); no clips needed.")
    sample_type = st.radio("Sample type", ("beh", "all"), key="data.context_sample_type",
                           horizontal=True,
                           help="`beh`: behaviour pedestrians (JAAD_beh). `all`: every pedestrian "
                                "(JAAD_all; behaviour features are refused there: presence leak).")
    first, second = st.columns(2)
    first.button(":material/download: " + DATA_JOBS["annotations"][1], on_click=start_jobs,
                 args=("annotations",), disabled=busy, width="stretch", key="data.start.annotations",
                 help="Downloads JAAD's annotation repository at the pinned commit into data/raw "
                      "(a few MB). Offline: the message says what to do instead.")
    second.button(":material/table_chart: " + DATA_JOBS["context"][1], on_click=start_jobs,
                  args=("context",), kwargs={"sample_type": sample_type}, disabled=busy,
                  width="stretch", key="data.start.context")


def jobs_ui() -> None:
    """Progress of this process's data jobs: live while one runs, drawn once otherwise."""
    st.fragment(_jobs, run_every=1.0 if job_manager().busy() else None)()


def _jobs() -> None:
    manager = job_manager()
    for kind in ("demo", "annotations", *PIPELINE, "context"):
        job = manager.latest(kind)
        if job is None:
            continue
        if job.active:
            st.progress(job.fraction, text=f"{job.label}: {job.message or job.status}")
        elif job.status == "failed":
            st.error(f"{job.label} failed: {hide_paths(job.error)}", icon=":material/block:")
        elif job.status == "stopped":
            st.info(f"{job.label}: cancelled.", icon=":material/stop_circle:")
        else:
            st.success(f"{job.label}: done in {job.duration_s:.1f}s. {hide_paths(_summary(job.result))}",
                       icon=":material/check_circle:")
            skipped_ui(job.result if isinstance(job.result, dict) else {}, f"job.{job.job_id}")


def _summary(result) -> str:
    """A one-line summary of what a job wrote."""
    if not isinstance(result, dict):
        return ""
    shown = []
    for key in ("videos", "n_videos", "frames", "written", "images", "total", "sequences", "crops"):
        if isinstance(result.get(key), (int, float)):
            shown.append(f"{key}: {result[key]}")
    if result.get("task"):
        shown.append(f"task {result['task']}")
    lines = [", ".join(shown)] + [f"- {line}" for line in result.get("summary") or []]
    return "\n".join(lines)


# -- what is built ----------------------------------------------------------------------------
def class_balance_figure(rows: list[dict], title: str):
    """Grouped bars of samples per class and split (plotly figure)."""
    figure = px.bar(rows, x="split", y="count", color="class", barmode="group", title=title,
                    color_discrete_map={"crossing": "#d62728", "not-crossing": "#2ca02c",
                                        "pedestrian": "#1f77b4"}, text_auto=True)
    figure.update_layout(height=280, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="")
    return figure


def datasets_ui() -> None:
    st.subheader("What is on disk")
    status = datasets_status(home())
    st.dataframe(
        [{"dataset": row["label"], "built": row["built"], "task": describe_task(row["manifest"]),
          "path": row["path"], "created": row["manifest"].get("created_at", ""),
          "warnings": hide_paths("; ".join(row["manifest"].get("warnings") or []))} for row in status],
        hide_index=True, width="stretch")
    for row in status:
        if row["built"] and row["manifest"]:
            skipped_ui(row["manifest"], f"dataset.{row['kind']}", row["label"])
            build_summary_ui(row)
    charts = [(row, class_counts(row["manifest"])) for row in status if row["built"]]
    charts = [(row, counts) for row, counts in charts if counts]
    if not charts:
        st.caption("Class balance charts appear here once a dataset is built.")
        return
    columns = st.columns(min(len(charts), 2))
    for index, (row, counts) in enumerate(charts):
        with columns[index % len(columns)]:
            chart_ui(class_balance_figure(counts, row["label"]), key=f"balance.{row['kind']}")


def skipped_table(manifest: dict) -> pd.DataFrame:
    """``reason, count, meaning`` of everything an ``intent`` build left out (empty otherwise)."""
    from pedsense.data.manifest import BUILD_SKIP_TEXT

    skipped = (manifest.get("intent") or {}).get("skipped") or {}
    text = {**SKIP_REASON_TEXT, **BUILD_SKIP_TEXT}
    return pd.DataFrame([{"reason": reason, "count": count, "meaning": text.get(reason, "")}
                         for reason, count in skipped.items()], columns=["reason", "count", "meaning"])


def skipped_records(record: dict) -> dict[str, tuple[int, list[dict]]]:
    """``{"videos"|"files": (count, rows)}`` a build left out, from its manifest's ``skipped``
    record (a frame extraction's ``failed`` videos count as skipped videos)."""
    skipped = record.get("skipped") if isinstance(record.get("skipped"), dict) else {}
    found = {}
    for kind, column in (("videos", "video"), ("files", "file")):
        entry = skipped.get(kind) if isinstance(skipped.get(kind), dict) else {}
        rows = [{column: shown_path(r.get(column, "")) if kind == "files" else r.get(column, ""),
                 "reason": hide_paths(r.get("reason", ""))}
                for r in entry.get("list") or [] if isinstance(r, dict)]
        found[kind] = (int(entry.get("count") or len(rows)), rows)
    failed = record.get("failed") if isinstance(record.get("failed"), dict) else {}
    if failed:
        count, rows = found["videos"]
        found["videos"] = (count + len(failed), rows + [{"video": v, "reason": hide_paths(m)}
                                                        for v, m in failed.items()])
    return found


def skipped_ui(record: dict, key: str, label: str = "") -> None:
    """How many videos and annotation files a build skipped, each list in an expander."""
    found = skipped_records(record)
    for kind, noun in (("videos", "videos"), ("files", "annotation files")):
        count, rows = found.get(kind, (0, []))
        if count:
            with st.expander(f":material/warning: {label + ': ' if label else ''}{count} {noun} skipped"):
                st.dataframe(rows, hide_index=True, width="stretch", key=f"skipped.{key}.{kind}")


def build_summary_ui(row: dict) -> None:
    """One dataset's build summary (task, skips and why, leakage check) and its manifest."""
    manifest = row["manifest"]
    with st.expander(f"{row['label']}: build summary and manifest"):
        for line in manifest.get("summary") or []:
            st.markdown(f"- {hide_paths(line)}")
        skipped = skipped_table(manifest)
        if not skipped.empty:
            st.dataframe(skipped, hide_index=True, width="stretch")
        st.json(without_paths(manifest), expanded=False)
