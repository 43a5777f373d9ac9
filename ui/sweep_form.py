"""The Sweep page's parts: the form of a new sweep, and the list of sweeps with their workers.

The form builds a :class:`pedsense.sweeps.SweepSpec` from typed widgets (a parameter's values or
range come from its spec); ``pedsense.sweeps.create_sweep`` checks it with the same rules as the
command line and shows every problem under its field name. A sweep's trials run in a worker
process (``pedsense sweep-worker``), so they go on when the page, or the dashboard, closes.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

import pedsense.sweeps as sweeps
from pedsense.sweeps.spec import RANGE_KINDS, SweepError
from pedsense.train.params import SPECS, spec_for
from pedsense.train.presets import presets_for
from ui.compare import sweep_results_ui
from ui.feedback import error_box, hide_paths
from ui.state import MODEL_LABELS, PAGE_RUNS, home, run_manager

FORM = "sweep.form"
SELECTED_SWEEP = "sweep.selected"


def key(*parts: str) -> str:
    return ".".join((FORM, *parts))


# -- the form -------------------------------------------------------------------------------------
def sweep_form_ui() -> sweeps.SweepSpec:
    """The widgets of a new sweep; returns its (unchecked) spec."""
    model_type = st.selectbox("Trainer", list(SPECS), format_func=lambda t: MODEL_LABELS.get(t, t),
                              key=key("trainer"))
    name = st.text_input("Sweep name", key=key("name"), placeholder="lr-search",
                         help="Names the Optuna study and the trials' runs (<name>-t000, ...).")
    base, source = base_ui(model_type)
    varied = varied_ui(model_type)
    seeds_col, sampler_col, budget_col, prune_col = st.columns(4)
    seeds_text = seeds_col.text_input("Seeds", key=key("seeds"), placeholder="0, 1, 2",
                                      help="Every configuration runs once per seed (empty: the base "
                                           "config's seed).")
    sampler = sampler_col.selectbox("Sampler", sweeps.SAMPLERS, key=key("sampler"),
                                    help="grid: every combination of the values; random or tpe: "
                                         "Optuna samples values and ranges.")
    budget = budget_col.number_input("Budget (trials)", min_value=1, max_value=sweeps.MAX_BUDGET, value=None,
                                     step=1, key=key("budget"),
                                     help="Runs to make in all, seeds included (empty: the whole grid).")
    pruner = prune_col.selectbox("Pruning", sweeps.PRUNERS, key=key("pruner"),
                                 help="median: stop a trial whose validation metric is below the median "
                                      "of earlier trials at the same epoch.")
    return sweeps.SweepSpec(name, model_type, varied, base=base, seeds=sweeps.parse_seeds(seeds_text),
                            sampler=sampler, budget=None if budget is None else int(budget),
                            pruner=pruner, base_source=source)


def base_ui(model_type: str) -> tuple[dict, str]:
    """A preset or a run of this trainer as the base config, with parameters changed on top."""
    spec = spec_for(model_type)
    runs = [s for s in run_manager().runs() if s.model_type == model_type and s.parameters]
    kind = st.radio("Base config", ["Preset", "A run"] if runs else ["Preset"], horizontal=True,
                    key=key(model_type, "base"))
    if kind == "Preset":
        presets = presets_for(model_type)
        preset = st.selectbox("Preset", list(presets), format_func=lambda k: presets[k].label,
                              key=key(model_type, "preset"))
        params, source = sweeps.base_config(model_type, preset=preset)
    else:
        run = st.selectbox("Run", [s.run_id for s in runs], key=key(model_type, "run"))
        params, source = sweeps.base_config(model_type, run=run, home=home())
    changed = st.multiselect("Change base parameters", [p.name for p in spec if p.name != "seed"],
                             key=key(model_type, "overrides"),
                             help="Set these for every trial, on top of the base config.")
    for name in changed:
        param = spec[name]
        current = params.get(name, param.default)
        text = st.text_input(f"{name} ({param.describe()})", value="" if current is None else _shown(current),
                             key=key(model_type, "override", name))
        params[name] = sweeps.parse_value(model_type, name, text)
    st.caption(f"Base: {source}.")
    return params, source


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def varied_ui(model_type: str) -> dict[str, Any]:
    """The parameters to vary, each with its values or (numbers) a range."""
    spec = spec_for(model_type)
    names = st.multiselect("Parameters to vary", sweeps.variable_names(model_type), key=key(model_type, "varied"))
    varied: dict[str, Any] = {}
    for name in names:
        param = spec[name]
        label, values_col = st.columns([1, 3])
        label.markdown(f"**{name}**  \n{param.describe()}")
        if param.kind in RANGE_KINDS and values_col.radio(
                "as", ["values", "range"], horizontal=True, key=key(model_type, name, "mode")) == "range":
            varied[name] = _range_ui(values_col, model_type, param)
        elif param.kind == "bool" or param.choices:
            choices = [True, False] if param.kind == "bool" else list(param.choices)
            varied[name] = tuple(values_col.multiselect("values", choices, default=choices[:2],
                                                        key=key(model_type, name, "choices")))
        else:
            text = values_col.text_input("values (comma-separated)", key=key(model_type, name, "values"),
                                         placeholder="e.g. 0.0001, 0.001")
            varied[name] = sweeps.parse_values(model_type, name, text)
    return varied


def _range_ui(column, model_type: str, param) -> sweeps.Range:
    whole = param.kind == "int"
    low_col, high_col, step_col, log_col = column.columns(4)
    number = dict(step=1 if whole else None, format=None if whole else "%g")
    low, high = _initial_span(param)
    low = low_col.number_input("low", value=low, key=key(model_type, param.name, "low"), **number)
    high = high_col.number_input("high", value=high, key=key(model_type, param.name, "high"), **number)
    step = step_col.number_input("step (grid)", value=None, min_value=0 if whole else 0.0,
                                 key=key(model_type, param.name, "step"), **number)
    log = log_col.checkbox("log", key=key(model_type, param.name, "log"))
    return sweeps.Range(low, high, log=log, step=step or None)


def _initial_span(param) -> tuple:
    """A first range around the default: a tenth to ten times it (numbers), half to twice (whole)."""
    default = param.default if isinstance(param.default, (int, float)) and param.default else 1
    low, high = (default / 10, default * 10) if param.kind == "float" else (max(1, default // 2), default * 2)
    if param.maximum is not None:
        high = min(high, param.maximum)
    if param.minimum is not None and not param.exclusive_min:
        low = max(low, param.minimum)
    return (int(low), int(high)) if param.kind == "int" else (float(low), float(high))


def create_ui(spec: sweeps.SweepSpec) -> None:
    """Create the sweep and start its first worker; every problem listed under its field."""
    manager = run_manager()
    try:
        sweep = sweeps.create_sweep(spec, home=home(), check=manager.check, check_data=manager.check_data)
    except SweepError as exc:
        st.error("The sweep was not created:\n" + "\n".join(f"- **{field}**: {hide_paths(message)}"
                                                           for field, message in exc.field_errors.items()),
                 icon=":material/block:")
        return
    started = sweeps.launch_worker(sweep.name, home=home())
    st.session_state[SELECTED_SWEEP] = sweep.name
    st.success(f"Sweep `{sweep.name}` created: {sweep.spec.n_trials} trials; worker {started['pid']} runs "
               f"them (log: `{started['log']}`). Follow it under **Sweeps**, its runs on the Runs page.",
               icon=":material/check_circle:")


# -- the sweeps -------------------------------------------------------------------------------------
def sweeps_ui() -> None:
    """Every sweep of the data home, one picked with its workers, actions and results."""
    found = sweeps.list_sweeps(home=home())
    if not found:
        st.info("No sweep yet: create one under **New sweep** (or `pedsense sweep`).", icon=":material/inbox:")
        return
    st.dataframe(found, hide_index=True, width="stretch", key="sweeps.table")
    names = [s["name"] for s in found]
    current = st.session_state.get(SELECTED_SWEEP)
    name = st.selectbox("Sweep", names, index=names.index(current) if current in names else 0,
                        key="sweeps.pick")
    st.session_state[SELECTED_SWEEP] = name
    sweep = sweeps.open_sweep(name, home=home(), join=False)
    workers = sweeps.running_workers(sweep)
    live = any(w["alive"] is not False for w in workers)
    problems = sweeps.join_problems(sweep.record, home())
    if problems:
        st.warning("A new worker would be refused: " + "; ".join(problems), icon=":material/warning:")
    st.caption("Running now: " + (", ".join(f"trial {w['trial']} on {w['host']} (pid {w['pid']}"
                                            + (", gone" if w["alive"] is False else "") + ")" for w in workers)
                                  if workers else "nothing") + f" · storage `{sweep.shown_storage}`")
    add, stop, runs = st.columns(3)
    if add.button(":material/add: Add a worker", disabled=bool(problems), key="sweeps.add",
                  help="Starts another `pedsense sweep-worker` on this machine; trials run side by side."):
        with error_box("starting a worker"):
            started = sweeps.launch_worker(name, home=home())
            st.toast(f"Worker {started['pid']} started", icon=":material/play_circle:")
    if stop.button(":material/stop_circle: Stop the sweep", disabled=not live, key="sweeps.stop",
                   help="Workers stop their running trials (queued again) and start no new one; "
                        "Add a worker resumes the sweep."):
        with error_box("stopping the sweep"):
            sweeps.request_stop(sweep)
            st.toast(f"Stopping {name}…", icon=":material/pending:")
    runs.page_link(PAGE_RUNS, label="Compare its runs", icon=":material/monitoring:")
    st.fragment(_results, run_every=5.0 if live else None)(name)


def _results(name: str) -> None:
    with error_box("reading the sweep"):
        sweep_results_ui(sweeps.open_sweep(name, home=home(), join=False))
