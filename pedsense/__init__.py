"""pedsense: train and inspect pedestrian crossing-intent models on JAAD.

Importing the package is cheap; heavy modules (torch, Ultralytics) load on first use.
"""

import os as _os

__version__ = "0.1.0"

__all__ = ["evaluate", "__version__"]


def _claim_cpu_threads() -> None:
    """Default ``OMP_NUM_THREADS`` to the CPUs this process may use, unless the user set it.

    ``import ultralytics`` sets ``OMP_NUM_THREADS=1`` when it is unset, to leave cores to its
    data-loading workers. torch reads the variable once, when its thread pool starts, so if
    Ultralytics is imported first every later ResNet forward and backward in the process (the
    dashboard trains and predicts in one process) runs on one core; subprocesses inherit it
    too. This runs before anything imports torch or Ultralytics, and makes both see the
    machine's CPU count, as torch would without Ultralytics.
    """
    if _os.environ.get("OMP_NUM_THREADS"):
        return
    try:
        cpus = len(_os.sched_getaffinity(0))  # respects taskset / container CPU sets
    except (AttributeError, OSError):  # macOS, Windows
        cpus = _os.cpu_count() or 1
    _os.environ["OMP_NUM_THREADS"] = str(max(1, cpus))


_claim_cpu_threads()


def __getattr__(name: str):
    # ``pedsense.evaluate(run_dir, split="val")`` without importing torch at ``import pedsense``.
    if name == "evaluate":
        from pedsense.evaluation import evaluate

        return evaluate
    raise AttributeError(f"module 'pedsense' has no attribute {name!r}")
