"""A run's files for someone outside it: why it failed, and the run as one zip.

- :func:`failure_of`: the error (``status.json``), the last lines of ``train.log`` before it,
  and the traceback — the last one ``train.log`` holds (``TrainingRun.fail`` and
  ``worker.record_end`` write it there), else the last one of ``worker.log`` (a worker that died).
- :func:`run_zip`: ``metrics.csv``, ``steps.csv``, ``config.json``, ``status.json``, the labels
  and the logs of a run as the bytes of one zip file, in a folder named after the run.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from pedsense.epoch_predictions import RECORDS_FILE, predictions_dir
from pedsense.runfolder import RunFolder
from pedsense.runlabels import labels_path
from pedsense.sysmon import system_path

TRACEBACK_START = "Traceback (most recent call last):"
# train.log's entries start with a timestamp; a traceback's other lines do not.
_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
LAST_LINES = 12


@dataclass(frozen=True)
class Failure:
    """Why a run failed: the error, the log lines before it, the traceback ("" when none)."""

    error: str
    last_lines: tuple[str, ...]
    traceback: str


def split_log(text: str) -> tuple[list[str], str]:
    """``(lines outside tracebacks, the last traceback)`` of a log."""
    plain, blocks, block = [], [], None
    for line in text.splitlines():
        if TRACEBACK_START in line:
            block = [line[line.index(TRACEBACK_START):]]
            blocks.append(block)
        elif block is not None and not _ENTRY.match(line) and line.strip():
            block.append(line)
        else:
            block = None
            if line.strip():
                plain.append(line)
    return plain, "\n".join(blocks[-1]) if blocks else ""


def failure_of(folder: RunFolder, error: str | None = None, lines: int = LAST_LINES) -> Failure:
    """What the failed run at ``folder`` left to say (``error`` defaults to ``status.json``'s)."""
    plain, trace = split_log(folder.read_log(max_chars=400_000))
    if not trace and folder.worker_log_path.is_file():
        text = folder.worker_log_path.read_text(encoding="utf-8", errors="replace")[-200_000:]
        trace = split_log(text)[1]
    message = error if error is not None else folder.read_status().get("error")
    return Failure(error=str(message or "no error was recorded"), last_lines=tuple(plain[-lines:]),
                   traceback=trace)


def run_files(folder: RunFolder) -> list:
    """The files of a run a zip carries (those that exist): metrics, config, status, labels, logs,
    the system load and the predictions per epoch."""
    candidates = (folder.metrics_path, folder.steps_path, folder.config_path, folder.status_path,
                  labels_path(folder), folder.log_path, folder.worker_log_path, system_path(folder.path),
                  predictions_dir(folder.path) / RECORDS_FILE,
                  *sorted(folder.path.glob("evaluation_*.json")), folder.path / "results.csv")
    return [path for path in candidates if path.is_file()]


def run_zip(folder: RunFolder) -> bytes:
    """The bytes of ``<run>.zip``: :func:`run_files` under a folder named after the run."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in run_files(folder):
            archive.write(path, f"{folder.name}/{path.relative_to(folder.path).as_posix()}")
    return buffer.getvalue()
