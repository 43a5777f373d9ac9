"""pedsense: train and inspect pedestrian crossing-intent models on JAAD.

Importing the package is cheap; heavy modules (torch, Ultralytics) load on first use.
"""

__version__ = "0.1.0"

__all__ = ["evaluate", "__version__"]


def __getattr__(name: str):
    # ``pedsense.evaluate(run_dir, split="val")`` without importing torch at ``import pedsense``.
    if name == "evaluate":
        from pedsense.evaluation import evaluate

        return evaluate
    raise AttributeError(f"module 'pedsense' has no attribute {name!r}")
