"""Where a run comes from: what makes it resumable, its dataset's fingerprint, its lineage.

``TrainingRun`` records these in ``config.json``; ``pedsense.train.resume`` checks them.
"""

from __future__ import annotations

import os
from pathlib import Path

from pedsense.config import paths
from pedsense.errors import ConfigError
from pedsense.runfolder import RunFolder

RESUMABLE_STATUSES = ("stopped", "interrupted", "failed")

# Keys of a pre-created config.json that say where a run comes from; ``TrainingRun.start`` keeps them.
LINEAGE_KEYS = ("parent_run", "parent_dir", "extends_epochs", "schedule_note")


def resumable_folder(run_dir: str | os.PathLike | None) -> RunFolder:
    """The run folder ``run_dir`` when it can be resumed; else ConfigError saying why."""
    if run_dir is None or not (Path(run_dir) / "config.json").is_file():
        raise ConfigError(f"resume=True needs run_dir=<an existing run folder>; {run_dir!r} has no "
                          "config.json. Resume with pedsense.train.resume.resume_run(<run folder>).")
    folder = RunFolder(run_dir)
    status = folder.status
    if status == "completed":
        raise ConfigError(f"Run {folder.run_id} is completed: there is nothing to resume. Extend it "
                          "instead (pedsense.train.resume.extend_run(run, epochs)) to train more epochs.")
    if status not in RESUMABLE_STATUSES + ("running", "queued"):
        raise ConfigError(f"Run {folder.run_id} reads {status!r}; only a stopped, interrupted or failed "
                          "run can be resumed.")
    return folder


def dataset_record(files: tuple[Path, ...], run_dir: Path) -> dict:
    """``dataset_files`` (relative to the data home) and their ``dataset_fingerprint`` for config.json."""
    home = home_of_run(run_dir)
    shown = []
    for path in files:
        try:
            shown.append(str(Path(path).resolve().relative_to(home)) if home else str(path))
        except ValueError:
            shown.append(str(path))
    return {"dataset_files": shown, "dataset_fingerprint": dataset_fingerprint(files)}


def dataset_fingerprint(files: tuple[Path, ...] | list[Path]) -> str:
    """A short hash of the contents of ``files`` (a missing file counts as missing)."""
    import hashlib

    from pedsense.data.manifest import fingerprint

    items = []
    for path in files:
        path = Path(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        items.append([path.name, digest])
    return fingerprint(items)


def home_of_run(run_dir: str | os.PathLike) -> Path | None:
    """The data home holding ``run_dir`` (``<home>/models/<model_type>/<run>``), or None."""
    run_dir = Path(run_dir).resolve()
    if len(run_dir.parents) < 3:
        return None
    home = run_dir.parents[2]
    return home if paths(home).models == run_dir.parent.parent else None
