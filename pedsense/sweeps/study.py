"""A sweep's Optuna study: its storage, what it records, and who may join it.

The storage is a SQLAlchemy URL: ``sqlite:///<home>/models/sweeps.db`` by default, or any
database Optuna's ``RDBStorage`` opens (PostgreSQL, MySQL), so workers on other machines can
join the same study. The study's user attribute ``pedsense`` records the sweep's spec, the
trainer's parameters (name, kind, default) and the dataset's fingerprint when it was created; a
worker joining a study whose trainer or dataset changed since then is refused, with the reason.
A grid sweep enqueues all its trials when it is created; a random or TPE sweep asks its sampler
for each new configuration (``pedsense.sweeps.worker``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pedsense.config import paths
from pedsense.data.manifest import fingerprint
from pedsense.io import read_json
from pedsense.runfolder import now_iso
from pedsense.sweeps.spec import Range, SweepError, SweepSpec
from pedsense.train.params import Param, spec_for
from pedsense.train.preflight import preflight

try:
    import fcntl
except ImportError:  # not on Windows: the budget lock is then a no-op
    fcntl = None

DB_NAME = "sweeps.db"
RECORD = "pedsense"          # the study's user attribute holding the sweep's record
STOP = "stop_requested"      # the study's user attribute a stop request sets
# The files that define each trainer's data: (what, path parts under the processed data).
DATASET_FILES = {
    "resnet-lstm": (("ResNet sequence manifest", ("resnet", "sequences", "manifest.json")),
                    ("labels.csv", ("resnet", "labels.csv"))),
    "hybrid": (("hybrid crop manifest", ("resnet", "crops", "manifest.json")),
               ("crops.csv", ("resnet", "crops.csv")),
               ("detector dataset manifest", ("yolo_detector", "manifest.json"))),
    "yolo": (("YOLO dataset manifest", ("yolo", "manifest.json")),),
    # both sample types' builds: a trial may pick either (its `sample_type` parameter)
    "context": (("context JAAD_beh manifest", ("context", "beh", "manifest.json")),
                ("context JAAD_all manifest", ("context", "all", "manifest.json"))),
}
# Manifest keys that change when the same data is built again (a time, file stamps).
VOLATILE_KEYS = ("created_at", "inputs")

optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- storage -----------------------------------------------------------------------------------
def default_storage(home: str | os.PathLike | None = None) -> str:
    """``sqlite:///<home>/models/sweeps.db`` (absolute), the storage of a data home's sweeps."""
    return "sqlite:///" + str((paths(home).models / DB_NAME).resolve())


def shown_url(url: str) -> str:
    """The storage URL with its password hidden (what pages, logs and tags show)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - shown as given when it does not parse
        return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


_STORAGES: dict[str, optuna.storages.RDBStorage] = {}
_STORAGES_LOCK = threading.Lock()


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage at ``url`` (one per process and URL); SQLite waits up to 60 s for a lock.

    Raises:
        SweepError: ``url`` is not a database URL, an in-memory SQLite, or cannot be opened.
    """
    with _STORAGES_LOCK:
        if url in _STORAGES:
            return _STORAGES[url]
        hint = "give sqlite:///PATH/sweeps.db or postgresql://USER:PASSWORD@HOST/DATABASE"
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise SweepError({"storage": f"{url!r} is not a database URL: {hint}."}) from None
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                raise SweepError({"storage": f"{shown_url(url)} is an in-memory database that no other "
                                             f"worker can join: {hint}."})
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"connect_args": {"timeout": 60}}
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except ImportError:
            raise SweepError({"storage": f"{shown_url(url)} needs the database's Python driver, which is "
                                         "not installed: pip install psycopg2-binary (PostgreSQL) or "
                                         "PyMySQL (MySQL) into this environment."}) from None
        except Exception as exc:  # noqa: BLE001 - a connection problem, in words
            database = sqlite_path(url)
            if database is not None and database.is_file():  # the file is there: it is damaged
                raise SweepError({"storage": damaged_database(database, exc)}) from None
            raise SweepError({"storage": f"cannot open {shown_url(url)} ({_first_line(exc)}); "
                                         f"{hint}, and check the database is reachable."}) from None
        _STORAGES[url] = storage
        return storage


def damaged_database(database: Path, exc: BaseException) -> str:
    """What to do about a sweeps database file that is there but does not open."""
    return (f"the sweeps database {database} is damaged ({_first_line(exc)}). Move it aside "
            f"(`mv {database} {database}.damaged`): the next sweep starts a new one; the runs its "
            "trials trained stay in models/.")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()  # SQLAlchemy wraps the driver's
    return f"{type(exc).__name__}: {text[0] if text else ''}"


@contextlib.contextmanager
def study_lock(url: str) -> Iterator[None]:
    """Hold the lock of a SQLite storage (``<db>.lock``) so that counting trials against the
    budget and asking the next one happen as one step across local workers. A server database
    has no such lock: two workers asking at the same instant may run one configuration more."""
    database = sqlite_path(url)
    if database is None or fcntl is None:
        yield
        return
    with open(str(database) + ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- what a study records -------------------------------------------------------------------------
def trainer_record(model_type: str) -> dict[str, list]:
    """``{parameter: [kind, default]}`` of the trainer now (compared when a worker joins)."""
    return {p.name: [p.kind, p.record(p.default)] for p in spec_for(model_type)}


def dataset_record(model_type: str, home: str | os.PathLike | None = None) -> dict[str, Any]:
    """The fingerprint of the data ``model_type`` trains on: its manifests without their build
    time and file stamps, and the contents of its label files. The same data built again (or on
    another machine) reads the same; other labels, counts or build parameters do not."""
    base = paths(home).processed
    parts, files = {}, {}
    for what, rel in DATASET_FILES[model_type]:
        path = base.joinpath(*rel)
        files[what] = str(Path("data", "processed", *rel))
        parts[what] = _file_fingerprint(path)
    return {"fingerprint": fingerprint(sorted(parts.items())), "parts": parts, "files": files}


def _file_fingerprint(path: Path) -> str | None:
    if not path.is_file():
        return None
    if path.suffix == ".json":
        manifest = read_json(path, None)
        if isinstance(manifest, dict):
            return fingerprint([{k: v for k, v in manifest.items() if k not in VOLATILE_KEYS}])
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@dataclass
class Sweep:
    """An open sweep: its study (with the spec's sampler and pruner) and what it recorded."""

    name: str
    storage: str
    study: optuna.Study
    spec: SweepSpec
    record: dict
    home: Path

    @property
    def shown_storage(self) -> str:
        return shown_url(self.storage)

    @property
    def metric(self) -> str:
        return self.spec.metric


# -- the search space in Optuna's terms -----------------------------------------------------------
def encode(param: Param, value: Any) -> Any:
    """A checked value as an Optuna parameter value (None, bool, int, float or str)."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return value


def decode(param: Param, value: Any) -> Any:
    """An Optuna parameter value back in the parameter's canonical type."""
    return param.check(value)


def distributions(spec: SweepSpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """One Optuna distribution per varied parameter: a categorical over values (and a grid's
    stepped ranges), an int or float distribution over a sampled range."""
    trainer = spec_for(spec.model_type)
    found = {}
    for name, value in spec.varied.items():
        param = trainer[name]
        if isinstance(value, Range) and spec.sampler != "grid":
            kind = optuna.distributions.IntDistribution if param.kind == "int" else \
                optuna.distributions.FloatDistribution
            found[name] = kind(value.low, value.high, log=value.log, step=value.step)
        else:
            values = value.values() if isinstance(value, Range) else value
            found[name] = optuna.distributions.CategoricalDistribution([encode(param, v) for v in values])
    return found


def make_sampler(spec: SweepSpec, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler of ``spec``: a grid's trials are all enqueued, so it never samples."""
    if spec.sampler == "tpe":
        configurations = spec.n_trials // max(len(spec.seeds), 1)
        # Optuna's default of 10 random start-up trials would leave a small budget all random.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(10, configurations // 2)))
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """``median``: stop a trial whose epoch value is below the median of earlier trials' at the
    same epoch, once two trials have finished and from its second epoch on."""
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    return optuna.pruners.NopPruner()


# -- creating and opening -------------------------------------------------------------------------
Check = Callable[[str, Mapping[str, Any]], Mapping[str, str]]


def create_sweep(spec: SweepSpec, *, storage: str | None = None, home: str | os.PathLike | None = None,
                 check: Check | None = None, check_data: bool = True) -> Sweep:
    """Check ``spec``, create its study and (for a grid) enqueue its trials.

    Args:
        storage: a SQLAlchemy URL (default: :func:`default_storage` of ``home``).
        check: ``(model_type, params) -> {field: message}``, the launch checks of a trial (default:
            ``pedsense.train.preflight``; pass ``RunManager.check`` to use a manager's trainers).
            The base config is checked with every value each varied parameter can take.
        check_data: refuse a hybrid sweep whose crops are not built (a trial would build them, and
            the trials after it would train on other data than the first).

    Raises:
        SweepError: a bad spec, a trial the trainer would refuse, an existing name, a bad storage.
    """
    spec = spec.checked()
    home = paths(home).home
    check = check or (lambda model_type, params: preflight(model_type, params, home))
    _check_launches(spec, check)
    if check_data and spec.model_type == "hybrid" and not (paths(home).resnet / "crops.csv").is_file():
        raise SweepError({"_data": "the hybrid's crops are not built: build them first (pedsense "
                                   "preprocess crops, or the Data page) so that every trial trains on "
                                   "the same crops."})
    url = storage or default_storage(home)
    rdb = open_storage(url)
    record = {"version": 1, "spec": spec.as_dict(), "trainer": spec.model_type,
              "trainer_params": trainer_record(spec.model_type),
              "dataset": dataset_record(spec.model_type, home), "metric": spec.metric,
              "direction": "maximize", "created_at": now_iso(), "home": str(home)}
    with study_lock(url):
        try:
            study = optuna.create_study(study_name=spec.name, storage=rdb, direction="maximize",
                                        sampler=make_sampler(spec, spec.sampler_seed), pruner=make_pruner(spec))
        except optuna.exceptions.DuplicatedStudyError:
            raise SweepError({"name": f"a sweep named {spec.name!r} already exists in {shown_url(url)}: pick "
                                      f"another name, or add a worker to it (pedsense sweep-worker "
                                      f"{spec.name})."}) from None
        try:
            study.set_user_attr(RECORD, record)
            study.set_user_attr(STOP, False)
            if spec.sampler == "grid":
                _enqueue_grid(spec, study)
        except BaseException:
            optuna.delete_study(study_name=spec.name, storage=rdb)  # leave no half-made study
            raise
    return Sweep(spec.name, url, study, spec, record, home)


def _check_launches(spec: SweepSpec, check: Check) -> None:
    """The trainer's launch checks on the base config, then with each varied value in turn."""
    base = {**spec.base, "seed": spec.seeds[0]} if "seed" in spec_for(spec.model_type) else dict(spec.base)
    errors = {f"base.{k}" if not k.startswith("_") else "base": v for k, v in check(spec.model_type, base).items()}
    if errors:
        raise SweepError(errors)
    for name, value in spec.varied.items():
        candidates = (value.low, value.high) if isinstance(value, Range) and not value.step else \
            (value.values() if isinstance(value, Range) else value)
        for candidate in candidates:
            problems = check(spec.model_type, {**base, name: candidate})
            if problems:
                shown = "; ".join(problems.values())
                raise SweepError({f"varied.{name}": f"with {name}={candidate!r} the trainer would refuse "
                                                     f"the trial: {shown}"})


def _enqueue_grid(spec: SweepSpec, study: optuna.Study) -> None:
    trainer = spec_for(spec.model_type)
    for order, (config, seed) in enumerate(spec.grid_trials()):
        study.enqueue_trial({k: encode(trainer[k], v) for k, v in config.items()},
                            user_attrs={"seed": seed, "order": order})


def open_sweep(name: str, *, storage: str | None = None, home: str | os.PathLike | None = None,
               model_type: str | None = None, join: bool = True) -> Sweep:
    """Open sweep ``name``; with ``join`` (a worker about to run trials) refuse a study whose
    trainer or dataset changed since it was created (:func:`join_problems`).

    Raises:
        SweepError: no such sweep (the message lists those there are), or it cannot be joined.
    """
    home = paths(home).home
    url = storage or default_storage(home)
    rdb = open_storage(url)
    try:
        attrs = optuna.load_study(study_name=name, storage=rdb).user_attrs
    except KeyError:
        known = optuna.get_all_study_names(rdb)
        there = f"there are: {', '.join(known)}." if known else "it holds no sweep yet."
        raise SweepError({"name": f"no sweep named {name!r} in {shown_url(url)}; {there}"}) from None
    record = attrs.get(RECORD)
    if not isinstance(record, dict) or "spec" not in record:
        raise SweepError({"name": f"study {name!r} in {shown_url(url)} was not made by pedsense (or its "
                                  "creation was interrupted): it records no sweep; pick another name."})
    problems = join_problems(record, home, model_type) if join else []
    if problems:
        raise SweepError({"name": f"sweep {name!r} cannot be joined: " + "; ".join(problems)})
    spec = SweepSpec.from_dict(record["spec"])
    spec = spec.checked() if join else _checked_or_raw(spec)
    study = optuna.load_study(study_name=name, storage=rdb, sampler=make_sampler(spec, spec.sampler_seed),
                              pruner=make_pruner(spec))
    return Sweep(name, url, study, spec, record, home)


def _checked_or_raw(spec: SweepSpec) -> SweepSpec:
    try:
        return spec.checked()
    except SweepError:
        return spec  # shown as recorded; joining it is refused with the reason


def join_problems(record: Mapping[str, Any], home: str | os.PathLike | None = None,
                  model_type: str | None = None) -> list[str]:
    """Why a worker may not run trials of the sweep ``record`` describes (empty: it may)."""
    trainer = record.get("trainer")
    if model_type is not None and model_type != trainer:
        return [f"it sweeps the {trainer} trainer, not {model_type} (give it another name for a "
                f"{model_type} sweep)"]
    problems = []
    try:
        SweepSpec.from_dict(record["spec"]).checked()
    except SweepError as exc:
        problems.append(f"its settings no longer fit the {trainer} trainer ({exc}); start a new sweep")
    except Exception as exc:  # noqa: BLE001 - e.g. a trainer that no longer exists
        problems.append(f"its settings cannot be read ({type(exc).__name__}: {exc}); start a new sweep")
        return problems
    changed = _trainer_changes(record.get("trainer_params") or {}, trainer_record(trainer))
    if changed:
        problems.append(f"the {trainer} trainer changed since the sweep was created ({'; '.join(changed)}), "
                        "so new trials would not be comparable with the earlier ones; start a new sweep")
    dataset = _dataset_changes(record.get("dataset") or {}, dataset_record(trainer, home))
    if dataset:
        problems.append(f"the dataset changed since the sweep was created ({dataset}), so new trials would "
                        "train on other data than the earlier ones; rebuild the data the sweep started "
                        "on, or start a new sweep")
    return problems


def _trainer_changes(recorded: Mapping[str, list], current: Mapping[str, list]) -> list[str]:
    changes = []
    for name, (kind, default) in recorded.items():
        if name not in current:
            changes.append(f"parameter {name} is gone")
        elif current[name][0] != kind:
            changes.append(f"{name} is now a {current[name][0]} parameter, was {kind}")
        elif json.dumps(current[name][1]) != json.dumps(default):
            changes.append(f"{name}'s default is now {current[name][1]!r}, was {default!r}")
    return changes


def _dataset_changes(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    if not recorded or recorded.get("fingerprint") == current.get("fingerprint"):
        return ""
    parts = recorded.get("parts") or {}
    changed = [what for what, fp in (current.get("parts") or {}).items() if parts.get(what) != fp]
    shown = []
    for what in changed:
        was, now = parts.get(what), current["parts"][what]
        state = "is missing now" if now is None else ("was missing" if was is None else "differs")
        shown.append(f"{what} {state}")
    return ", ".join(shown) or "its fingerprint differs"


# -- listing and stopping -------------------------------------------------------------------------
def list_sweeps(storage: str | None = None, home: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every sweep of a storage, newest first: name, trainer, sampler, trials by state, best value.

    A SQLite storage that does not exist yet holds no sweep (and is not created by listing)."""
    url = storage or default_storage(home)
    database = sqlite_path(url)
    if database is not None and not database.is_file():
        return []
    found = []
    for summary in optuna.get_all_study_summaries(open_storage(url), include_best_trial=True):
        record = summary.user_attrs.get(RECORD)
        if not isinstance(record, dict):
            continue
        spec = record.get("spec") or {}
        best = summary.best_trial
        found.append({"name": summary.study_name, "trainer": record.get("trainer"),
                      "sampler": spec.get("sampler"), "varied": ", ".join(spec.get("varied") or {}),
                      "trials": summary.n_trials, "metric": record.get("metric"),
                      "best": best.value if best is not None else None,
                      "created_at": record.get("created_at"),
                      "stop_requested": bool(summary.user_attrs.get(STOP))})
    found.sort(key=lambda s: s.get("created_at") or "", reverse=True)
    return found


def request_stop(sweep: Sweep) -> None:
    """Ask every worker of the sweep to start no new trial (running trials finish)."""
    sweep.study.set_user_attr(STOP, now_iso())


def stop_requested(sweep: Sweep) -> bool:
    """Whether a stop request stands (read from the storage: another process may have set it)."""
    return bool(sweep.study.user_attrs.get(STOP))


def clear_stop(sweep: Sweep) -> None:
    """A worker joining the sweep means to run it: an earlier stop request no longer holds."""
    sweep.study.set_user_attr(STOP, False)
