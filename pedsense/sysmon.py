"""Is the machine the bottleneck? A run's process tree and the GPUs, sampled into its folder.

``system.csv`` (the one home of the format; append-only like ``metrics.csv``) gets a row every
:data:`SAMPLE_EVERY_S` from a daemon thread of the process that trains the run
(:class:`SystemSampler`, started and stopped by ``pedsense.train.common.TrainingRun``):

- ``time``             seconds since the epoch (Unix time) of the sample,
- ``cpu_percent``      the run's process tree (the trainer, its data-loader workers, its
                       data-parallel ranks): 100 = one core busy, as ``top`` counts,
- ``rss_mb``           the tree's resident memory (summed per process, shared pages per process),
- ``machine_cpu_percent``, ``machine_mem_percent``   the whole machine (100 = every core / all RAM),
- ``gpu<i>_util``, ``gpu<i>_mem_mb``   per GPU, utilisation (%) and memory in use, through
                       NVIDIA's management library (``pynvml``, package ``nvidia-ml-py``) when
                       it finds a driver; without it the rows hold the CPU and memory columns only.

:func:`machine_load` is the same measurement of the machine now (the dashboard's sidebar).
psutil does the process and machine counters; without psutil nothing is sampled (one log line).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from pedsense.io import append_row, read_rows

log = logging.getLogger(__name__)

SYSTEM_FILE = "system.csv"
SAMPLE_EVERY_S = 3.0
COLUMNS = ("time", "cpu_percent", "rss_mb", "machine_cpu_percent", "machine_mem_percent")


def system_path(run_dir: str | os.PathLike) -> Path:
    """``<run>/system.csv``."""
    return Path(run_dir) / SYSTEM_FILE


def read_system(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of a run's ``system.csv`` (numbers parsed); [] when it has none.

    Raises:
        FileFormatError: the file is not a CSV table.
    """
    return read_rows(system_path(run_dir))


def gpu_columns(rows: list[dict]) -> list[int]:
    """The GPU indices the rows have columns for."""
    found = {int(k[3:-5]) for row in rows[:1] for k in row if k.startswith("gpu") and k.endswith("_util")}
    return sorted(found)


# -- GPUs through NVML ------------------------------------------------------------------------------
_NVML: dict[str, Any] = {}
_NVML_LOCK = threading.Lock()


def _nvml():
    """The ``pynvml`` module once initialised, or None (not installed, no driver, no GPU)."""
    with _NVML_LOCK:
        if "module" not in _NVML:
            try:
                import pynvml

                pynvml.nvmlInit()
                _NVML["module"] = pynvml if pynvml.nvmlDeviceGetCount() > 0 else None
            except Exception:  # noqa: BLE001 - ImportError, NVMLError_LibraryNotFound, DriverNotLoaded ...
                _NVML["module"] = None
        return _NVML["module"]


def visible_gpus() -> list[tuple[int, Any]]:
    """``[(index, NVML handle)]`` of the GPUs this process may use (``CUDA_VISIBLE_DEVICES``,
    by index or UUID, when set), numbered as CUDA numbers them here; [] without NVML."""
    nvml = _nvml()
    if nvml is None:
        return []
    try:
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001
        return []
    wanted = os.environ.get("CUDA_VISIBLE_DEVICES")
    if wanted is None:
        return list(enumerate(handles))
    chosen = []
    for item in (w.strip() for w in wanted.split(",") if w.strip()):
        if item.isdigit() and int(item) < len(handles):
            chosen.append(handles[int(item)])
        else:
            chosen += [h for h in handles if _uuid(nvml, h).startswith(item)]
    return list(enumerate(chosen))


def _uuid(nvml, handle) -> str:
    try:
        value = nvml.nvmlDeviceGetUUID(handle)
        return value.decode() if isinstance(value, bytes) else str(value)
    except Exception:  # noqa: BLE001
        return ""


def gpu_load(gpus: list[tuple[int, Any]] | None = None) -> list[dict]:
    """``[{"index", "name", "util", "mem_mb", "mem_total_mb"}]`` of the visible GPUs now."""
    nvml = _nvml()
    found = []
    for index, handle in (visible_gpus() if gpus is None else gpus):
        try:
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            name = nvml.nvmlDeviceGetName(handle)
            found.append({"index": index, "name": name.decode() if isinstance(name, bytes) else str(name),
                          "util": float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                          "mem_mb": round(memory.used / 2**20, 1), "mem_total_mb": round(memory.total / 2**20, 1)})
        except Exception:  # noqa: BLE001 - a GPU fallen off the bus: left out of this sample
            continue
    return found


# -- the machine now ----------------------------------------------------------------------------------
def machine_load() -> dict | None:
    """The machine's load now: ``{"cpu_percent", "cores", "mem_percent", "mem_used_gb",
    "mem_total_gb", "gpus": gpu_load()}``, or None without psutil. ``cpu_percent`` is the
    average over every core since the previous call in this process."""
    try:
        import psutil
    except ImportError:
        return None
    memory = psutil.virtual_memory()
    return {"cpu_percent": psutil.cpu_percent(interval=None), "cores": psutil.cpu_count() or 1,
            "mem_percent": memory.percent, "mem_used_gb": round((memory.total - memory.available) / 2**30, 1),
            "mem_total_gb": round(memory.total / 2**30, 1), "gpus": gpu_load()}


# -- the sampler ---------------------------------------------------------------------------------------
class ProcessTree:
    """CPU % and resident memory of a process and all its descendants.

    psutil measures a process's CPU % between two calls on the same ``Process`` object, so the
    objects are kept from sample to sample (a new child counts from its second sample on).
    """

    def __init__(self, pid: int | None = None):
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid or os.getpid())
        self.known: dict[int, Any] = {}

    def sample(self) -> tuple[float, float]:
        """(CPU % of the tree since the last sample, resident MB)."""
        psutil = self._psutil
        try:
            members = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            members = [self.root]
        cpu, rss, alive = 0.0, 0, {}
        for process in members:
            process = self.known.get(process.pid, process)
            try:
                with process.oneshot():
                    cpu += process.cpu_percent(interval=None)
                    rss += process.memory_info().rss
                alive[process.pid] = process
            except psutil.Error:  # ended between the listing and now
                continue
        self.known = alive
        return round(cpu, 1), round(rss / 2**20, 1)


class SystemSampler:
    """Append a row of the run's process tree, the machine and the GPUs to ``system.csv`` every
    ``every_s`` seconds, from a daemon thread, until :meth:`stop`. Never raises into training:
    a failure (psutil missing, a full disk) ends the sampling with one log line."""

    def __init__(self, run_dir: str | os.PathLike, every_s: float | None = None, pid: int | None = None):
        self.path = system_path(run_dir)
        self.every_s = float(every_s or SAMPLE_EVERY_S)
        self.pid = pid
        self.cpu_seconds = 0.0  # what the sampler itself cost (its thread's CPU time)
        self.samples = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "SystemSampler":
        self._thread = threading.Thread(target=self._loop, name="pedsense-system-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        try:
            tree = ProcessTree(self.pid)
            gpus = visible_gpus()
            tree.sample()  # psutil's CPU % needs a first reading to measure from
            import psutil

            psutil.cpu_percent(interval=None)
        except ImportError:
            log.info("system load is not sampled: install psutil (pip install psutil)")
            return
        except Exception as exc:  # noqa: BLE001 - never break the run
            log.warning("system load is not sampled: %s", exc)
            return
        while not self._stop.wait(self.every_s):
            started = time.thread_time()
            try:
                append_row(self.path, self.row(tree, gpus, psutil), self._lock)
            except Exception as exc:  # noqa: BLE001 - a full disk, the folder deleted: stop sampling
                log.warning("system load sampling stopped: %s", exc)
                return
            finally:
                self.cpu_seconds += time.thread_time() - started
                self.samples += 1

    @staticmethod
    def row(tree: ProcessTree, gpus: list[tuple[int, Any]], psutil) -> dict:
        cpu, rss = tree.sample()
        row = {"time": round(time.time(), 2), "cpu_percent": cpu, "rss_mb": rss,
               "machine_cpu_percent": psutil.cpu_percent(interval=None),
               "machine_mem_percent": psutil.virtual_memory().percent}
        for gpu in gpu_load(gpus):
            row[f"gpu{gpu['index']}_util"] = gpu["util"]
            row[f"gpu{gpu['index']}_mem_mb"] = gpu["mem_mb"]
        return row
