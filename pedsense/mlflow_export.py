"""pedsense runs in MLflow: ``pedsense mlflow-export [RUN ...] --uri URI``, and the setting
that exports each run as it ends.

Each pedsense run is one MLflow run of the experiment ``pedsense``, found again by its tag
``pedsense.run_id``: exporting again updates it (new epochs, the end status, the weights) and
never makes a second one. What goes in: the trainer's parameters, every numeric column of
``metrics.csv`` per epoch (the hybrid's detector stage as ``detector/<metric>``), the best
metric, tags (model type, status, dataset task, the run's labels) and, for a finished run, its
best weights as the artifact ``weights/<file>``. MLflow's client does the writing (imported only
here, when used). The default store is ``sqlite:///<data home>/mlflow.db`` with its artifacts in
``<data home>/mlartifacts``; ``mlflow ui --backend-store-uri sqlite:///<data home>/mlflow.db``
opens it.

The setting lives in ``models/settings.json`` as ``"mlflow": {"export_on_end": bool, "uri": ...}``
(``pedsense mlflow-export --on-end on``, or the Runs page); the worker exports a run whose
setting is on as soon as its end is recorded (``pedsense.worker.execute``), and a failed export
is one line in the run's log.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlparse

from pedsense.config import paths
from pedsense.errors import PedsenseError
from pedsense.io import read_json
from pedsense.runfolder import FINISHED_STATUSES, RunFolder, parse_iso
from pedsense.runqueue import home_of, settings_path, update_settings

EXPERIMENT = "pedsense"
RUN_ID_TAG = "pedsense.run_id"
SETTING = "mlflow"
INSTALL_HINT = "Exporting to MLflow needs the mlflow package: pip install mlflow"
SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks", "databricks-uc")
MAIN_STAGES = ("train", "classifier")
MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "stopped": "KILLED", "interrupted": "KILLED"}
NOT_METRICS = ("epoch", "stage")


class MlflowExportError(PedsenseError):
    """The MLflow store cannot be used (package missing, a URI that does not parse or answer)."""


@dataclass(frozen=True)
class ExportSetting:
    """Whether runs are exported as they end, and where (None: :func:`default_uri`)."""

    export_on_end: bool = False
    uri: str | None = None


def default_uri(home: str | os.PathLike | None = None) -> str:
    return f"sqlite:///{paths(home).home / 'mlflow.db'}"


def read_setting(home: str | os.PathLike | None = None) -> ExportSetting:
    raw = read_json(settings_path(home), {})
    section = raw.get(SETTING) if isinstance(raw, dict) else None
    section = section if isinstance(section, dict) else {}
    uri = section.get("uri")
    return ExportSetting(bool(section.get("export_on_end")), uri if isinstance(uri, str) and uri.strip() else None)


def write_setting(home: str | os.PathLike | None = None, *, export_on_end: bool | None = None,
                  uri: str | None = None) -> ExportSetting:
    """Change the setting (what is not given is kept; ``uri=""`` goes back to the default).

    Raises:
        MlflowExportError: ``uri`` does not parse as an MLflow tracking URI.
    """
    current = read_setting(home)
    if uri is not None:
        uri = check_uri(uri) if uri.strip() else None
    else:
        uri = current.uri
    setting = ExportSetting(current.export_on_end if export_on_end is None else bool(export_on_end), uri)
    update_settings(home, {SETTING: {"export_on_end": setting.export_on_end, "uri": setting.uri}})
    return setting


# -- the store ------------------------------------------------------------------------------------
def check_uri(uri: str) -> str:
    """``uri`` when it is an MLflow tracking URI this machine can use, else one line naming it.

    A ``sqlite:///`` file's folder is created; an ``http(s)`` server must answer a connection
    (3 s), so an export never hangs in MLflow's retries.
    """
    text = str(uri).strip()
    parsed = urlparse(text)
    scheme = parsed.scheme.split("+")[0].lower()
    if scheme not in SCHEMES:
        raise MlflowExportError(
            f"MLflow URI {text!r} does not parse as a tracking URI: use sqlite:///<path>/mlflow.db, "
            "file:///<folder>, http(s)://<host>:<port> or a database URL (postgresql://...).")
    if scheme == "sqlite":
        if not text.startswith("sqlite:///") or len(text) <= len("sqlite:///"):
            raise MlflowExportError(f"MLflow URI {text!r} does not parse: write sqlite:///<path>/mlflow.db "
                                    "(three slashes, then the file's path).")
        folder = Path(text[len("sqlite:///"):]).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MlflowExportError(f"MLflow URI {text!r} cannot be reached: its folder {folder} cannot be "
                                    f"created ({exc.strerror or exc}).") from None
    elif scheme in ("http", "https"):
        port = parsed.port or (443 if scheme == "https" else 80)
        try:
            socket.create_connection((parsed.hostname or "", port), timeout=3).close()
        except OSError as exc:
            raise MlflowExportError(f"MLflow URI {text!r} cannot be reached ({exc.strerror or exc}): start the "
                                    "server (`mlflow server`) or give another --uri.") from None
    return text


def import_mlflow():
    try:
        import mlflow
    except ImportError:
        raise MlflowExportError(INSTALL_HINT) from None
    return mlflow


def open_store(uri: str, home: str | os.PathLike | None = None) -> tuple[Any, str]:
    """(MLflow client, the ``pedsense`` experiment's id), the experiment made when missing: for
    a SQLite store its artifacts go beside the file (``mlartifacts/``), never into the cwd."""
    mlflow = import_mlflow()
    from mlflow.tracking import MlflowClient

    uri = check_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return client, experiment.experiment_id
        location = None
        if uri.startswith("sqlite:///"):
            location = (Path(uri[len("sqlite:///"):]).expanduser().resolve().parent / "mlartifacts").as_uri()
        return client, client.create_experiment(EXPERIMENT, artifact_location=location)
    except mlflow.exceptions.MlflowException as exc:
        raise MlflowExportError(f"MLflow URI {uri!r} cannot be used: {str(exc).splitlines()[0]}") from None


# -- one run -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exported:
    run_id: str
    mlflow_run_id: str
    created: bool
    metric_values: int
    weights: str | None


def export_runs(runs: Iterable[RunFolder], uri: str | None = None,
                home: str | os.PathLike | None = None) -> list[Exported]:
    """Export ``runs`` into the MLflow store at ``uri`` (default: :func:`default_uri`)."""
    client, experiment_id = open_store(uri or default_uri(home), home)
    return [export_run(client, experiment_id, folder) for folder in runs]


def export_run(client, experiment_id: str, folder: RunFolder) -> Exported:
    """Create or update the MLflow run of ``folder``; only what MLflow lacks is logged."""
    from mlflow.entities import Metric, Param, RunTag

    config = folder.read_config()
    status = folder.read_status()
    found = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_ID_TAG}` = '{folder.run_id}'",
                               max_results=1)
    if found:
        mlrun, created = found[0], False
    else:
        started = parse_iso(status.get("started_at") or status.get("created_at"))
        mlrun = client.create_run(experiment_id, start_time=int(started * 1000) if started else None,
                                  tags={RUN_ID_TAG: folder.run_id}, run_name=folder.name)
        created = True
    mlrun_id = mlrun.info.run_id
    params = [Param(k, v) for k, v in run_params(config).items() if k not in mlrun.data.params]
    history: dict[str, set[int]] = {}

    def logged(key: str) -> set[int]:  # the steps MLflow holds already: a re-export adds new epochs only
        if key not in mlrun.data.metrics:
            return set()
        if key not in history:
            history[key] = {m.step for m in client.get_metric_history(mlrun_id, key)}
        return history[key]

    metrics = [Metric(key, value, timestamp, step) for key, value, step, timestamp in run_metrics(folder, config)
               if step not in logged(key)]
    tags = [RunTag(k, v) for k, v in run_tags(folder, config, status).items()]
    for start in range(0, max(len(metrics), 1), 900):  # MLflow takes at most 1000 entries per batch
        client.log_batch(mlrun_id, metrics=metrics[start:start + 900],
                         params=params if start == 0 else [], tags=tags if start == 0 else [])
    weights = log_weights(client, mlrun_id, folder, status.get("status"))
    if status.get("status") in MLFLOW_STATUS:
        finished = parse_iso(status.get("finished_at"))
        client.set_terminated(mlrun_id, MLFLOW_STATUS[status["status"]],
                              end_time=int(finished * 1000) if finished else None)
    return Exported(folder.run_id, mlrun_id, created, len(metrics), weights)


def run_params(config: Mapping[str, Any]) -> dict[str, str]:
    params = config.get("parameters") if isinstance(config.get("parameters"), Mapping) else {}
    values = {k: "none" if v is None else str(v)[:6000] for k, v in params.items()}
    for key in ("model_type", "device", "weights_source", "task"):
        if config.get(key) is not None:
            values.setdefault(key, str(config[key])[:6000])
    return values


def run_metrics(folder: RunFolder, config: Mapping[str, Any]) -> list[tuple[str, float, int, int]]:
    """``(key, value, step, timestamp ms)`` of every numeric cell of ``metrics.csv`` (step: the
    epoch) and of the best metric."""
    now = int(time.time() * 1000)
    found = []
    for row in folder.read_metrics():
        stage = row.get("stage") or "train"
        prefix = "" if stage in MAIN_STAGES else f"{stage}/"
        epoch = row.get("epoch")
        if not isinstance(epoch, (int, float)):
            continue
        for key, value in row.items():
            if key not in NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
                found.append((prefix + key, float(value), int(epoch), now))
    best = config.get("best_metric")
    if isinstance(best, Mapping) and isinstance(best.get("value"), (int, float)):
        found.append((f"best/{best.get('name')}", float(best["value"]), int(best.get("epoch") or 0), now))
    return found


def run_tags(folder: RunFolder, config: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, str]:
    tags = {RUN_ID_TAG: folder.run_id, "pedsense.model_type": folder.model_type,
            "pedsense.status": str(status.get("status")), "pedsense.folder": str(folder.path)}
    if config.get("task"):
        tags["pedsense.task"] = str(config["task"])
    if status.get("error"):
        tags["pedsense.error"] = str(status["error"])[:5000]
    labelled, note = run_labels(folder)
    tags.update({f"tag.{tag}": "true" for tag in labelled})
    if note:
        tags["mlflow.note.content"] = note[:5000]  # MLflow shows it as the run's description
    return tags


def run_labels(folder: RunFolder) -> tuple[tuple[str, ...], str]:
    """The run's tags and note (``pedsense tag`` / ``pedsense note``: ``pedsense.runlabels``)."""
    try:
        from pedsense.runlabels import read_labels
    except ImportError:  # an install without run labels
        return (), ""
    labels = read_labels(folder)
    return tuple(labels.tags), labels.note or ""


def log_weights(client, mlrun_id: str, folder: RunFolder, status: str | None) -> str | None:
    """Log a finished run's best weights as ``weights/<file>`` unless MLflow holds that file at
    that size already; returns the file's name when it is there."""
    weights = folder.weights("best")
    if status not in FINISHED_STATUSES or weights is None:
        return None
    held = {Path(f.path).name: f.file_size for f in client.list_artifacts(mlrun_id, "weights")}
    if held.get(weights.name) != weights.stat().st_size:
        client.log_artifact(mlrun_id, str(weights), "weights")
    return weights.name


# -- as each run ends ----------------------------------------------------------------------------------
def export_when_set(folder: RunFolder) -> Exported | None:
    """Export ``folder`` when its data home's setting says so; never raises (a failure is one
    line in the run's log)."""
    if not folder.status_path.exists():
        return None
    try:
        home = home_of(folder)
        setting = read_setting(home)
        if not setting.export_on_end:
            return None
        (done,) = export_runs([folder], setting.uri, home)
        folder.log(f"exported to MLflow ({setting.uri or default_uri(home)}): run {done.mlflow_run_id}")
        return done
    except Exception as exc:  # noqa: BLE001 - the run's end is recorded; the export is a courtesy
        try:
            folder.log(f"MLflow export failed: {exc}")
        except OSError:
            pass
        return None
