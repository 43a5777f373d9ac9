"""Training forms, built from the trainers' parameter specs (``pedsense.train.params``).

Every field is typed (a number box for a number, a select box for a choice, a slider for a
range); essentials come first and the rest sits under "Advanced". Presets fill the form. On
submit the values go through the same checks the trainer would make at its start
(``RunManager.check`` -> ``pedsense.train.preflight``): problems show under their field and
nothing is launched, no run folder is made.
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from pedsense.catalogue import describe_task, need_manifest
from pedsense.config import paths
from pedsense.runfolder import RunFolder, sanitize_name
from pedsense.train.params import GROUPS, FormError, Param, spec_for
from pedsense.train.presets import presets_for
from ui.describe import describe_model
from ui.feedback import error_box, hide_paths, show_error
from ui.state import PAGE_DATA, PAGE_RUNS, SELECTED_RUN, device_choices, home, run_manager

SEED_PRESET = "Seed defaults"
# A select box's stand-in for None (``task``: as built; no detector): Streamlit shows a None
# value as an empty box reading "Choose an option", so the value in force would not show.
UNSET = "(unset)"


def state_key(model_type: str, param: str) -> str:
    return f"form.{model_type}.{param}"


def preset_options(model_type: str) -> dict[str, dict]:
    """``{label: values}``: the spec's defaults (the seed's), then each preset's overrides."""
    spec = spec_for(model_type)
    found = {SEED_PRESET: spec.defaults()}
    for key, preset in presets_for(model_type).items():
        if key != "seed":
            found[preset.label[:1].upper() + preset.label[1:]] = {**spec.defaults(), **preset.params}
    return found


def _widget_value(param: Param, value: Any) -> Any:
    """A parameter value as its widget holds it."""
    if param.kind == "device":
        return value or "auto"
    if param.kind == "devices":
        return ",".join(value) if isinstance(value, (list, tuple)) else (value or "")
    if param.kind == "size" and value is not None:
        return int(value[0] if isinstance(value, (list, tuple)) else value)
    if param.kind == "range":
        from pedsense.data.intent import parse_tte

        return parse_tte(value)
    if param.kind in ("choice", "variant", "weights") and value is None:
        return UNSET
    return value


def load_values(model_type: str, values: dict) -> None:
    spec = spec_for(model_type)
    for param in spec:
        st.session_state[state_key(model_type, param.name)] = _widget_value(param, values.get(param.name))


def _on_preset_change(model_type: str) -> None:
    chosen = st.session_state[state_key(model_type, "preset")]
    load_values(model_type, preset_options(model_type)[chosen])


def fill_form(model_type: str) -> None:
    """First visit: the form holds the seed defaults (before the title, which follows the form)."""
    presets = preset_options(model_type)
    key = state_key(model_type, "preset")
    if st.session_state.get(key) not in presets:
        st.session_state[key] = next(iter(presets))
        load_values(model_type, presets[st.session_state[key]])


def preset_ui(model_type: str) -> None:
    """The preset selector; it fills the form (first visit: the seed defaults)."""
    fill_form(model_type)
    presets = preset_options(model_type)
    key = state_key(model_type, "preset")
    st.selectbox("Preset", list(presets), key=key, on_change=_on_preset_change, args=(model_type,),
                 help="Fills the form: the quick CPU preset trains in minutes on the demo set; the "
                      "seed defaults are the full-size settings of the original API.")


def current_values(model_type: str) -> dict[str, Any]:
    """The form's values as trainer keyword arguments."""
    values = {}
    for param in spec_for(model_type):
        value = st.session_state.get(state_key(model_type, param.name))
        if value == UNSET:
            value = None
        elif param.kind == "device" and value in (None, "", "auto"):
            value = None
        elif param.kind == "devices":
            value = ",".join(value) if isinstance(value, (list, tuple)) else value
            value = (value or "").strip() or None
        elif param.kind == "text":
            value = (value or "").strip() or None
        elif param.kind == "float" and isinstance(value, int):
            value = float(value)
        elif param.kind == "range" and value is not None:
            value = (int(value[0]), int(value[1]))
        values[param.name] = value
    return values


# -- one field -------------------------------------------------------------------------------
def detector_choices() -> dict[str, str]:
    """``{weights path: label}`` of detectors to reuse: completed YOLO and hybrid runs, and
    every ``.pt`` under ``models/base``; no free path (the server's file system stays private)."""
    choices = {}
    for summary in run_manager().runs():
        if summary.status != "completed" or summary.model_type not in ("yolo", "hybrid"):
            continue
        weights = RunFolder(summary.path).weights("detector", summary.model_type)
        if weights is not None:
            choices[str(weights)] = f"{summary.run_id} ({weights.name})"
    for weights in sorted(paths(home()).base_models.glob("*.pt")):
        choices[str(weights)] = f"models/base/{weights.name}"
    return choices


def _choice_label(param: Param, value: Any) -> str:
    if value is None:
        return param.none_label or "—"
    return {False: "off", True: "on"}.get(value, str(value)) if isinstance(value, bool) else str(value)


def field_ui(prefix: str, param: Param) -> None:
    """Draw one parameter's widget; its value lives in session state under ``<prefix>.<name>``."""
    key, label, help_text = f"{prefix}.{param.name}", param.title, param.help
    if param.kind == "device":
        options = device_choices()
        if st.session_state.get(key) not in options:
            st.session_state[key] = "auto"
        st.selectbox(label, options, key=key, help=help_text)
    elif param.kind == "devices":
        devices_ui(key, label, help_text, param)
    elif param.kind == "weights":
        choices = detector_choices()
        options = [UNSET, *choices]
        if st.session_state.get(key) not in options:
            st.session_state[key] = UNSET
        st.selectbox(label, options, key=key, help=help_text,
                     format_func=lambda v: param.none_label if v == UNSET else choices.get(v, v))
    elif param.kind in ("choice", "variant"):
        options = [_widget_value(param, o) for o in dict.fromkeys([*param.choices, param.default])]
        if st.session_state.get(key) not in options:
            st.session_state[key] = _widget_value(param, param.default)
        st.selectbox(label, options, key=key, help=help_text,
                     format_func=lambda value: _choice_label(param, None if value == UNSET else value))
    elif param.kind == "bool":
        st.checkbox(label, key=key, help=help_text)
    elif param.kind in ("int", "size"):
        st.number_input(label, min_value=int(param.minimum) if param.minimum is not None else None,
                        max_value=int(param.maximum) if param.maximum is not None else None,
                        step=param.multiple_of or 1, key=key, help=help_text,
                        placeholder=param.none_label or None)
    elif param.kind == "float":
        st.number_input(label, min_value=float(param.minimum) if param.minimum is not None else None,
                        max_value=float(param.maximum) if param.maximum is not None else None,
                        step=_float_step(param.default), format="%g", key=key, help=help_text)
    elif param.kind == "range":
        if st.session_state.get(key) is None:
            st.session_state[key] = (30, 60)
        st.slider(label, int(param.minimum or 0), int(param.maximum or 300), key=key, help=help_text)
    else:
        st.text_input(label, key=key, help=help_text, placeholder=param.none_label or None)


def devices_ui(key: str, label: str, help_text: str, param: Param) -> None:
    """The device list: the visible GPUs to pick from, or (no GPU) a list typed out (cpu,cpu)."""
    gpus = [d for d in device_choices() if d.startswith("cuda")]
    value = st.session_state.get(key)
    if gpus:
        if not isinstance(value, list):
            picked = [d.strip() for d in str(value or "").split(",")]
            st.session_state[key] = [d for d in picked if d in gpus]
        st.multiselect(label, gpus, key=key, help=help_text, placeholder=param.none_label)
        return
    if not isinstance(value, str):
        st.session_state[key] = ""
    st.text_input(label, key=key, placeholder="e.g. cpu,cpu (no GPU is visible)",
                  help=help_text + " No GPU is visible here: several CPU processes (cpu,cpu) still work.")


def _float_step(default: Any) -> float:
    if not isinstance(default, (int, float)) or default <= 0:
        return 0.05
    return 10 ** math.floor(math.log10(default)) if default < 1 else 0.1


# -- the form ---------------------------------------------------------------------------------
def _fields(model_type: str, params: list[Param], slots: dict) -> None:
    left, right = st.columns(2, gap="large")
    for index, param in enumerate(params):
        with left if index % 2 == 0 else right:
            field_ui(f"form.{model_type}", param)
            slots[param.name] = st.empty()


def training_form_ui(model_type: str) -> dict | None:
    """The form of ``model_type``'s trainer; the valid parameters on a good submit, else None."""
    spec = spec_for(model_type)
    slots: dict[str, Any] = {}
    groups = spec.groups()
    with st.form(f"form.{model_type}", border=True):
        top = st.empty()
        _fields(model_type, groups.pop("essentials", []), slots)
        if groups:
            with st.expander("Advanced"):
                for group, params in groups.items():
                    st.markdown(f"**{GROUPS[group]}**")
                    _fields(model_type, params, slots)
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/rocket_launch:")
    if not submitted:
        return None
    values = current_values(model_type)
    errors = run_manager().check(model_type, values)
    for field, message in errors.items():
        target = slots.get(field) or top
        label = spec[field].title if field in spec else "Data"
        target.error(f"{label}: {hide_paths(message)}", icon=":material/warning:")
    if errors:
        st.error("Nothing was launched: fix the fields marked above.", icon=":material/block:")
        return None
    if not _name_confirmed(model_type, values.get("name"), slots.get("name")):
        return None
    return values


def _name_confirmed(model_type: str, name: str | None, slot) -> bool:
    """A name that would be changed is shown first; launching needs a second press."""
    if not name or sanitize_name(name, model_type) == name:
        return True
    saved = sanitize_name(name, model_type)
    key = f"form.{model_type}.confirmed_name"
    if st.session_state.get(key) == name:
        st.session_state.pop(key)
        return True
    st.session_state[key] = name
    (slot or st).warning(f"The run will be saved as `{saved}` (only letters, digits, `.`, `_` and `-` "
                         "are kept). Press **Start training** again to launch it.", icon=":material/edit:")
    return False


def launch_run_ui(model_type: str, params: dict) -> None:
    """Queue the run and open its live view on the Runs page (or show why it cannot start)."""
    try:
        run_id = run_manager().submit(model_type, params)
    except FormError as exc:
        spec = spec_for(model_type)
        for field, message in exc.field_errors.items():
            st.error(f"{spec[field].title if field in spec else 'Data'}: {hide_paths(message)}",
                     icon=":material/warning:")
        return
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "launching the run")
        return
    st.session_state[SELECTED_RUN] = run_id
    st.switch_page(PAGE_RUNS)


# -- the page ---------------------------------------------------------------------------------
def offline_note() -> str | None:
    """Why pretrained weights cannot be fetched now (cached for a minute), or None."""
    return _offline_reason()


@st.cache_data(ttl=60, show_spinner=False)
def _offline_reason() -> str | None:
    from pedsense.train.offline import offline_reason

    return offline_reason()


def trainer_page(model_type: str, needs: tuple[str, ...]) -> None:
    """A Train page: a title and description that follow the form, what the model reads, the
    preset, the form and the launch. ``needs`` lists the dataset files (relative to the home)."""
    fill_form(model_type)
    values = current_values(model_type)
    title, intro = describe_model(model_type, values)
    st.title(title)  # the title first; the preset's choice has filled the form before this run
    st.caption(intro)
    preset_ui(model_type)
    if values.get("pretrained", True) is not False and offline_note():
        st.markdown(":orange-badge[:material/cloud_off: offline: from scratch] ImageNet/YOLO base "
                    f"weights cannot be fetched now ({offline_note()}): the run starts from random "
                    "weights and records that in its config.")
    active = run_manager().active()
    if active:
        st.info(f"{len(active)} run(s) active: a new launch waits in the queue and starts when "
                "the ones before it finish.", icon=":material/hourglass_top:")
    missing = [need for need in needs if not (home() / need).exists()]
    if missing:
        st.warning("Not built yet: " + ", ".join(f"`{m}`" for m in missing) + ". The trainer "
                   "reads it, so build it on the Data page before launching.", icon=":material/warning:")
        st.page_link(PAGE_DATA, label="Go to the Data page", icon=":material/folder_open:")
    for need in needs:
        manifest = need_manifest(need, home())
        if manifest:
            st.caption(f"`{need}`: built for {describe_task(manifest)}.")
    params = None
    with error_box("building the form"):
        params = training_form_ui(model_type)
    if params is not None:
        launch_run_ui(model_type, params)

