"""Shared UI pieces: the process-wide managers, the sidebar, error display and formatting.

Only ``app.py`` and ``pages/`` import streamlit. The managers are created once per process
(``st.cache_resource``) and keyed by the data home, so every browser tab sees the same runs.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import streamlit as st

from pedsense.config import data_home
from pedsense.errors import PedsenseError
from pedsense.jobs import JobManager
from pedsense.runs import RunManager

log = logging.getLogger("pedsense.app")

# Streamlit page files, shared by app.py's navigation and st.switch_page / st.page_link.
PAGE_OVERVIEW = "pages/overview.py"
PAGE_DATA = "pages/data.py"
PAGE_TRAIN_YOLO = "pages/train_yolo.py"
PAGE_TRAIN_RESNET = "pages/train_resnet_lstm.py"
PAGE_TRAIN_HYBRID = "pages/train_hybrid.py"
PAGE_RUNS = "pages/runs.py"
PAGE_VIEWER = "pages/viewer.py"
TRAIN_PAGES = {"yolo": PAGE_TRAIN_YOLO, "resnet-lstm": PAGE_TRAIN_RESNET, "hybrid": PAGE_TRAIN_HYBRID}
MODEL_LABELS = {"yolo": "YOLO26", "resnet-lstm": "ResNet-LSTM", "hybrid": "Hybrid"}

def use_app_navigation() -> None:
    """Make a deep link such as ``/runs`` open through app.py's navigation and sidebar.

    Because a ``pages/`` folder sits beside app.py, Streamlit starts a fresh server in its old
    multipage mode: if the first visitor opens a deep link, it runs that page file on its own
    (no sidebar of ours, every file of ``pages/`` listed) and keeps doing so until some run
    calls ``st.navigation``, which a deep link never reaches. Clearing that process-wide flag
    and rerunning sends the run through app.py, which shows the same page properly.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# Every page imports this module, and the flag is process-wide, so checking on first import
# is enough: after one rerun through app.py the server stays in st.navigation mode.
use_app_navigation()


STATUS_COLOURS = {"queued": "gray", "running": "blue", "completed": "green", "failed": "red",
                  "stopped": "orange", "interrupted": "violet", "unknown": "gray"}
STATUS_ICONS = {"queued": ":material/hourglass_top:", "running": ":material/play_circle:",
                "completed": ":material/check_circle:", "failed": ":material/error:",
                "stopped": ":material/stop_circle:", "interrupted": ":material/warning:",
                "unknown": ":material/help:"}

# Session-state key holding the run the Runs page shows (set by the train pages on launch).
SELECTED_RUN = "selected_run"


# -- the process-wide managers ---------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _run_manager(home: str) -> RunManager:
    return RunManager(home)


@st.cache_resource(show_spinner=False)
def _job_manager(home: str) -> JobManager:
    return JobManager(home)


def home() -> Path:
    """The data home this process serves (``$PEDSENSE_HOME`` or the repository root)."""
    return data_home()


def run_manager() -> RunManager:
    """The one RunManager of this process for the current data home."""
    return _run_manager(str(home()))


def job_manager() -> JobManager:
    """The one JobManager (background data jobs) of this process for the current data home."""
    return _job_manager(str(home()))


@st.cache_resource(show_spinner=False)
def device_description() -> str:
    from pedsense.device import describe_device

    return describe_device()


@st.cache_resource(show_spinner=False)
def device_choices() -> list[str]:
    """``auto`` then every device torch sees (``cpu``, ``cuda:N``, ``mps``)."""
    from pedsense.device import available_devices

    return ["auto", *available_devices()]


# -- errors ----------------------------------------------------------------------------------
def show_error(exc: BaseException, doing: str = "") -> None:
    """A clear message in the page instead of a traceback."""
    where = f" while {doing}" if doing else ""
    if isinstance(exc, PedsenseError):
        st.error(f"Could not finish{where}: {exc}", icon=":material/block:")
    else:
        log.exception("unexpected error%s", where, exc_info=exc)
        st.error(f"Unexpected error{where}: {type(exc).__name__}: {exc}. The app keeps running; "
                 "the terminal running `streamlit` has the details.", icon=":material/block:")


@contextmanager
def error_box(doing: str = "") -> Iterator[None]:
    """Run a block; any error becomes an ``st.error`` (Streamlit's own reruns pass through)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page must keep serving
        show_error(exc, doing)


# -- formatting ------------------------------------------------------------------------------
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


def fmt_best(best: dict | None) -> str:
    """``"val_acc 0.812 (epoch 3)"`` or ``"—"``."""
    if not best or best.get("value") is None:
        return "—"
    value = best["value"]
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    epoch = f" (epoch {best['epoch']})" if best.get("epoch") is not None else ""
    return f"{best.get('name', 'best')} {shown}{epoch}"


def fmt_status(status: str) -> str:
    """Status as a coloured markdown badge."""
    colour = STATUS_COLOURS.get(status, "gray")
    return f":{colour}-badge[{STATUS_ICONS.get(status, '')} {status}]"


def progress_of(snap: dict) -> tuple[float, str]:
    """(fraction done, caption) of a run snapshot, counting batches within the epoch."""
    total = snap.get("epochs_total") or 0
    done = snap.get("epochs_done") or 0
    if snap.get("status") == "queued":
        position = snap.get("queue_position")
        return 0.0, f"queued{f' #{position}' if position else ''}"
    fraction = done / total if total else 0.0
    if total and snap.get("total_batches"):
        fraction += snap["batch"] / snap["total_batches"] / total
    text = f"epoch {done}/{total or '?'}"
    if snap.get("stage") and snap.get("model_type") == "hybrid":
        text += f" · {snap['stage']}"
    if snap.get("total_batches") and snap.get("status") == "running":
        text += f" · batch {snap['batch']}/{snap['total_batches']}"
    if snap.get("eta_s") is not None:
        text += f" · ETA {fmt_duration(snap['eta_s'])}"
    return min(max(fraction, 0.0), 1.0), text


# -- the sidebar -----------------------------------------------------------------------------
def sidebar() -> None:
    """Data home, device and active/queued runs: drawn by app.py on every page."""
    with st.sidebar:
        st.markdown(f"**Data home**  \n`{home()}`")
        with error_box("detecting the device"):
            st.markdown(f"**Device**  \n{device_description()}")
        active_runs_ui()


@st.fragment(run_every=2.0)
def active_runs_ui() -> None:
    """The running run and the queue, refreshed every 2 s without rerunning the page."""
    st.markdown("**Training**")
    try:
        active = run_manager().active()
        jobs = job_manager().active()
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "reading the runs")
        return
    if not active:
        st.caption("No run is training. Launch one from a Train page.")
    for snap in active:
        fraction, text = progress_of(snap)
        st.caption(f"{STATUS_ICONS.get(snap['status'], '')} `{snap['run_id']}`")
        st.progress(fraction, text=text)
    for job in jobs:
        st.caption(f":material/build: {job['label']}")
        st.progress(job["fraction"], text=job["message"] or job["status"])


# -- training forms --------------------------------------------------------------------------
YOLO_VARIANTS = ("yolo26n", "yolo26s", "yolo26m", "yolo26l", "yolo26x")
SEED_PRESET = "Seed defaults"
NO_YOLO_MODEL = "— none: train stage 1 —"

# Help text of the seed parameters; keyword extras take theirs from the trainer's docstring.
FIELD_HELP = {
    "name": "Prefix of the run folder `models/<type>/<name>_<YYYYmmdd_HHMMSS>/`. Letters, digits, "
            "`.`, `_` and `-` only: anything else (like `/` or `..`) becomes `-`. Empty: the model type.",
    "epochs": "Passes over the training set (a whole number ≥ 1).",
    "batch_size": "Samples per optimisation step (≥ 1). Lower it if memory runs out.",
    "imgsz": "Square training image size in pixels: a multiple of 32. 640 is the seed default; "
             "320 trains about 4× faster.",
    "model_variant": "YOLO26 size, n (nano, fastest) to x (largest). Base weights are fetched once "
                     "into `models/base/`.",
    "learning_rate": "AdamW learning rate (a number > 0, e.g. 1e-4).",
    "yolo_epochs": "Epochs of the stage-1 YOLO pedestrian detector. Ignored when an existing YOLO "
                   "model is picked.",
    "yolo_model": "Reuse a trained YOLO model and skip stage 1: pick a completed run or give the path "
                  "of a `.pt` file.",
    "device": "`auto` takes the first GPU when there is one, else the CPU.",
    # keyword extras of the trainers
    "workers": "Ultralytics data-loader workers (empty: its default; 0–2 on a small CPU machine).",
    "num_workers": "DataLoader worker processes (empty: chosen from the CPU count).",
    "patience": "Stop early after this many epochs without improvement (Ultralytics' patience).",
    "seed": "Random seed, so a run can be repeated.",
    "lr0": "Initial learning rate of the Ultralytics optimizer (> 0).",
    "optimizer": "Ultralytics optimizer; `auto` picks one from the run length.",
    "cache": "Cache decoded images in RAM (fastest, more memory) or on disk, or off.",
    "verbose": "More Ultralytics detail in the run's log.",
    "backbone": "ResNet depth of the feature extractor (the seed: resnet50).",
    "pretrained": "Start from ImageNet weights (downloaded once; offline it starts from random "
                  "weights and says so in config.json).",
    "hidden_size": "LSTM hidden units (the seed: 256).",
    "num_layers": "Stacked LSTM layers (the seed: 1).",
    "dropout": "Dropout before the classifier head, from 0 to 0.99 (the seed: 0.3).",
    "crop_size": "Resize the dataset's crops: an int or (width, height). Empty: as built (224×224).",
    "weight_decay": "AdamW weight decay (≥ 0).",
    "frozen_children": "Backbone children kept frozen (the seed: 6, i.e. up to layer2).",
    "yolo_batch_size": "Batch size of stage 1 (empty: the same as Batch size).",
    "task": "The question the labels answer: `action` (is the pedestrian crossing now), `intent` "
            "(will they cross, 1-2 s ahead: the JAAD benchmark), or as built (whatever the dataset "
            "on disk holds). A dataset built for the other task is refused.",
}
CHOICES = {"optimizer": ("auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"),
           "cache": (False, "ram", "disk"),
           # the labels' task and the JAAD benchmark protocol (pedsense.data.intent)
           "task": (None, "action", "intent"),
           "split": ("default", "high_visibility", "all_videos", "random"),
           "sample_type": ("beh", "all"),
           "irrelevant": ("exclude", "not-crossing")}
# Labels of special choice values, per parameter.
CHOICE_LABELS = {"task": {None: "as built (the dataset's task)"}}


def _choice_label(value: Any, param: str | None = None) -> str:
    special = CHOICE_LABELS.get(param or "", {})
    if value in special:
        return special[value]
    return {False: "off", True: "on", None: "—"}.get(value, str(value)) if not isinstance(
        value, str) else value
FIELD_LABELS = {"imgsz": "Image size", "yolo_model": "Existing YOLO model", "yolo_epochs": "YOLO epochs",
                "model_variant": "Model variant", "batch_size": "Batch size",
                "learning_rate": "Learning rate", "name": "Run name", "task": "Task",
                "tte": "TTE (frames before the event)", "obs_length": "Observation length",
                "irrelevant": "crossing = -1"}


def docstring_help(function: Any) -> dict[str, str]:
    """``{param: text}`` from the ``Args:`` section of a Google-style docstring."""
    import inspect
    import re

    doc = inspect.getdoc(function) or ""
    helps: dict[str, str] = {}
    current = None
    in_args = False
    for line in doc.splitlines():
        if re.match(r"^(Args|Arguments|Parameters|Keyword Args):\s*$", line.strip()):
            in_args = True
            continue
        if in_args and line and not line.startswith(" "):
            in_args = False
        if not in_args:
            continue
        match = re.match(r"^ {2,8}(\w+)(?: \([^)]*\))?:\s*(.*)$", line)
        if match:
            current = match.group(1)
            helps[current] = match.group(2)
        elif current and line.strip():
            helps[current] += " " + line.strip()
    return helps


def presets_for(model_type: str, seed: dict[str, Any]) -> dict[str, dict]:
    """``{preset label: full parameter dict}``: the seed defaults plus ``pedsense.train.presets``."""
    from pedsense.train import presets

    found = {SEED_PRESET: dict(seed)}
    for key, preset in presets.presets_for(model_type).items():
        merged = {**seed, **{k: v for k, v in preset.params.items() if k in seed}}
        if key == "seed" or merged == seed:
            continue  # the seed defaults are already the first entry
        found[_preset_label(preset.label)] = merged
    return found


def _preset_label(label: str) -> str:
    return label[:1].upper() + label[1:]


def _state_key(model_type: str, param: str) -> str:
    return f"form.{model_type}.{param}"


def _widget_value(param: str, value: Any, default: Any) -> Any:
    """A parameter value as its widget holds it (None → "" or "auto", numbers as text fields)."""
    if param == "device":
        return value or "auto"
    if param == "yolo_model":
        return NO_YOLO_MODEL if value in (None, "") else str(value)
    if param in CHOICES or param in ("backbone", "model_variant"):
        return value
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, int) and isinstance(value, (int, float)):
        return int(value)
    if isinstance(default, float) and isinstance(value, (int, float)):
        return float(value)
    return "" if value is None else str(value)


def _load_preset(model_type: str, preset: dict, seed: dict) -> None:
    for param, value in preset.items():
        st.session_state[_state_key(model_type, param)] = _widget_value(param, value, seed.get(param))
    st.session_state[_state_key(model_type, "yolo_model_path")] = ""


def _on_preset_change(model_type: str, presets: dict[str, dict], seed: dict) -> None:
    _load_preset(model_type, presets[st.session_state[_state_key(model_type, "preset")]], seed)


def yolo_model_choices() -> dict[str, str]:
    """``{label: weights path}`` of YOLO weights from completed runs (newest first)."""
    choices = {}
    for snap in run_manager().runs():
        if snap["status"] != "completed" or snap["model_type"] not in ("yolo", "hybrid"):
            continue
        folder = Path(snap["path"])
        names = ("best.pt", "weights/best.pt") if snap["model_type"] == "yolo" else ("yolo_detector.pt",)
        for name in names:
            if (folder / name).is_file():
                choices[f"{snap['run_id']} ({name})"] = str(folder / name)
                break
    return choices


def field_label(param: str) -> str:
    """The label a parameter's field shows (errors name the field the same way)."""
    return FIELD_LABELS.get(param, param.replace("_", " ").capitalize())


def _field_ui(model_type: str, param: str, default: Any, help_text: str | None) -> None:
    """Draw one parameter's widget (its value lives in session state under its key)."""
    key = _state_key(model_type, param)
    label = field_label(param)
    if param == "device":
        if st.session_state.get(key) not in device_choices():
            st.session_state[key] = "auto"
        st.selectbox("Device", device_choices(), key=key, help=help_text)
    elif param == "model_variant":
        variants = list(dict.fromkeys([*YOLO_VARIANTS, str(default)]))
        st.selectbox(label, variants, key=key, help=help_text)
    elif param == "yolo_model":
        options = [NO_YOLO_MODEL, *yolo_model_choices().values()]
        if st.session_state.get(key) not in options:
            st.session_state[key] = NO_YOLO_MODEL
        labels = {v: k for k, v in yolo_model_choices().items()}
        st.selectbox(label, options, key=key, help=help_text, format_func=lambda v: labels.get(v, v))
        st.text_input("…or the path of YOLO weights (.pt)", key=_state_key(model_type, "yolo_model_path"),
                      placeholder="models/yolo/my-run_20250101_120000/best.pt")
    elif param in CHOICES or param == "backbone":
        options = list(dict.fromkeys([*_choices(param), default]))
        if st.session_state.get(key) not in options:
            st.session_state[key] = default
        st.selectbox(label, options, key=key, help=help_text,
                     format_func=lambda value: _choice_label(value, param))
    elif isinstance(default, bool):
        st.checkbox(label, key=key, help=help_text)
    elif isinstance(default, int):
        st.number_input(label, step=1, key=key, help=help_text)
    elif isinstance(default, float):
        st.number_input(label, step=_float_step(default), format="%g", key=key, help=help_text)
    else:
        st.text_input(label, key=key, help=help_text)


def _choices(param: str) -> tuple[str, ...]:
    if param == "backbone":
        from pedsense.train.resnet_lstm import BACKBONES

        return tuple(BACKBONES)
    return CHOICES[param]


def _float_step(default: float) -> float:
    if default <= 0:
        return 0.1
    return 10 ** math.floor(math.log10(default)) / 10 if default < 1 else 0.1


def _parse_text(value: str, default: Any) -> Any:
    """A free-text field's value: "" → the default when None, numbers and lists parsed."""
    import ast

    value = value.strip()
    if value == "":
        return None if default is None else default
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    return parsed if isinstance(parsed, (int, float, list, tuple, bool)) else value


def _collect_params(model_type: str, seed: dict[str, Any]) -> dict[str, Any]:
    """The form's values as trainer keyword arguments."""
    params: dict[str, Any] = {}
    for param, default in seed.items():
        value = st.session_state.get(_state_key(model_type, param))
        if param == "device":
            value = None if value in (None, "", "auto") else value
        elif param == "yolo_model":
            typed = (st.session_state.get(_state_key(model_type, "yolo_model_path")) or "").strip()
            value = typed or (None if value in (None, NO_YOLO_MODEL) else value)
        elif param == "name":
            value = (value or "").strip() or None
        elif isinstance(value, str) and not isinstance(default, str):
            value = _parse_text(value, default)
        elif isinstance(value, float) and isinstance(default, int) and not isinstance(default, bool):
            value = int(value) if value.is_integer() else value
        params[param] = value
    return params


def training_form_ui(model_type: str) -> dict | None:
    """Draw the preset selector and the form of ``model_type``'s trainer.

    Every trainer parameter gets a field with its seed default and help. On submit the values
    are validated; errors show under their field and nothing launches. Returns the valid
    parameters on a good submit, else None.
    """
    import inspect

    from pedsense.runs import sanitize_name, trainer_parameters, validate_training_params

    trainer = run_manager().trainer(model_type)
    seed = {k: (None if v is inspect.Parameter.empty else v)
            for k, v in trainer_parameters(trainer).items()}
    helps = {**docstring_help(trainer), **FIELD_HELP}
    presets = presets_for(model_type, seed)
    preset_key = _state_key(model_type, "preset")
    if st.session_state.get(preset_key) not in presets:
        st.session_state[preset_key] = next(iter(presets))
        _load_preset(model_type, presets[st.session_state[preset_key]], seed)
    st.selectbox("Preset", list(presets), key=preset_key, on_change=_on_preset_change,
                 args=(model_type, presets, seed),
                 help="Fills the form: the quick CPU preset trains in minutes on the demo set; "
                      "the seed defaults are the full-size settings of the original API.")

    slots = {}
    with st.form(f"form.{model_type}", border=True):
        left, right = st.columns(2, gap="large")
        for index, (param, default) in enumerate(seed.items()):
            with left if index % 2 == 0 else right:
                _field_ui(model_type, param, default, helps.get(param))
                slots[param] = st.empty()
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/rocket_launch:")
    if not submitted:
        return None
    params = _collect_params(model_type, seed)
    errors = validate_training_params(model_type, params, home())
    for param, message in errors.items():
        (slots.get(param) or st).error(f"{field_label(param)}: {message}", icon=":material/warning:")
    if errors:
        st.error("Nothing was launched: fix the fields marked above.", icon=":material/block:")
        return None
    if "name" in params and params["name"] and sanitize_name(params["name"], model_type) != params["name"]:
        slots["name"].info(f"Saved as `{sanitize_name(params['name'], model_type)}`.")
    return params


def launch_run_ui(model_type: str, params: dict) -> None:
    """Queue the run and open its live view on the Runs page (or show why it cannot start)."""
    from pedsense.runs import FormError

    try:
        run_id = run_manager().submit(model_type, params)
    except FormError as exc:
        for param, message in exc.field_errors.items():
            st.error(f"{field_label(param)}: {message}", icon=":material/warning:")
        return
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "launching the run")
        return
    st.session_state[SELECTED_RUN] = run_id
    st.switch_page(PAGE_RUNS)


def trainer_page(model_type: str, title: str, intro: str, needs: tuple[str, ...]) -> None:
    """A Train page: title, what the model needs, the form, and the launch.

    ``needs`` lists dataset files (relative to the data home) the trainer reads.
    """
    st.title(title)
    st.caption(intro)
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
        manifest = need_manifest(need)
        if manifest:
            st.caption(f"`{need}`: built for {describe_dataset_task(manifest)}.")
    params = None
    with error_box("building the form"):
        params = training_form_ui(model_type)
    if params is not None:
        launch_run_ui(model_type, params)


# -- datasets --------------------------------------------------------------------------------
# (job kind, label, file that says "built", folder of its manifest.json) — relative to the home.
DATASETS = (
    ("frames", "Extracted frames", "data/raw/frames", None),
    ("yolo", "YOLO dataset (2 classes)", "data/processed/yolo/data.yaml", "data/processed/yolo"),
    ("detector", "Detector dataset (1 class)", "data/processed/yolo_detector/data.yaml",
     "data/processed/yolo_detector"),
    ("resnet", "ResNet-LSTM sequences", "data/processed/resnet/labels.csv",
     "data/processed/resnet/sequences"),
    ("crops", "Hybrid intent crops", "data/processed/resnet/crops.csv", "data/processed/resnet/crops"),
)


def read_manifest(folder: str | None) -> dict:
    from pedsense.io import read_json

    if folder is None:
        return {}
    manifest = read_json(home() / folder / "manifest.json", {})
    return manifest if isinstance(manifest, dict) else {}


def need_manifest(need: str) -> dict:
    """The build manifest of the dataset whose "built" file is ``need`` ({} when unknown)."""
    for _, _, marker, manifest_dir in DATASETS:
        if marker == need and (home() / need).exists():
            return read_manifest(manifest_dir)
    return {}


def describe_dataset_task(manifest: dict) -> str:
    """``"intent (obs 16, TTE 30-60, beh, split default)"``, ``"action"``, or "" without a manifest."""
    if not manifest:
        return ""
    task = manifest.get("task") or "action"
    options = manifest.get("intent_options") or {}
    if task != "intent" or not options:
        return task
    tte = "-".join(str(t) for t in options.get("tte") or ())
    return (f"intent (obs {options.get('obs_length')}, TTE {tte}, {options.get('sample_type')}, "
            f"split {options.get('split')})")


def datasets_status() -> list[dict]:
    """One dict per processed dataset: kind, label, built?, manifest (counts, split, warnings)."""
    rows = []
    for kind, label, marker, manifest_dir in DATASETS:
        path = home() / marker
        built = path.exists() and (path.is_file() or any(path.iterdir()))
        rows.append({"kind": kind, "label": label, "built": built, "path": marker,
                     "manifest": read_manifest(manifest_dir) if built else {}})
    return rows


def class_counts(manifest: dict) -> list[dict]:
    """``[{"split", "class", "count"}]`` from a build manifest's ``counts`` (boxes or samples)."""
    rows = []
    for split, counts in (manifest.get("counts") or {}).items():
        if not isinstance(counts, dict):
            continue
        per_class = counts.get("boxes") if isinstance(counts.get("boxes"), dict) else counts
        for name, count in per_class.items():
            if isinstance(count, (int, float)) and name not in ("videos", "images"):
                rows.append({"split": split, "class": name, "count": count})
    return rows


def class_balance_figure(rows: list[dict], title: str):
    """Grouped bars of samples per class and split (plotly figure)."""
    import plotly.express as px

    figure = px.bar(rows, x="split", y="count", color="class", barmode="group", title=title,
                    color_discrete_map={"crossing": "#d62728", "not-crossing": "#2ca02c",
                                        "pedestrian": "#1f77b4"}, text_auto=True)
    figure.update_layout(height=280, margin=dict(l=10, r=10, t=40, b=10), legend_title_text="")
    return figure


SOURCE_BADGES = {"none": ":gray-badge[:material/inbox: No data yet]",
                 "JAAD": ":blue-badge[:material/videocam: JAAD]",
                 "synthetic demo": ":violet-badge[:material/science: Synthetic demo set]"}


def source_badge(kind: str) -> str:
    """The data source as a markdown badge (the demo set is always labelled synthetic)."""
    return f"**Dataset** {SOURCE_BADGES.get(kind, kind)}"


@st.cache_data(max_entries=4, show_spinner="Reading the annotations…")
def _dataset_stats(home_dir: str, fingerprint: tuple) -> dict:
    """``dataset_stats`` once per state of the annotation files (parsing all of JAAD takes seconds)."""
    from pedsense.data.stats import dataset_stats

    return dataset_stats(home_dir)


def source_facts() -> dict:
    """What the raw data holds: kind (JAAD / synthetic / none), clips, annotated videos,
    pedestrians and crossing balance."""
    from pedsense.config import paths
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
