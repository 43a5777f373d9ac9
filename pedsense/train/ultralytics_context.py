"""What surrounds Ultralytics in pedsense: its console quiet (training, export, a predictor's
first load), its own logging integrations off (pedsense keeps one TensorBoard and one MLflow path
for every family)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator


# Ultralytics' own logging integrations that write where pedsense already does: its MLflow
# callback (on by default once mlflow is installed) would log every run into runs/mlflow of the
# working directory, its TensorBoard one into the run folder beside pedsense's event files.
PEDSENSE_OWNED_INTEGRATIONS = ("mlflow", "tensorboard")


@contextmanager
def ultralytics_integrations_off() -> Iterator[None]:
    """Turn Ultralytics' MLflow and TensorBoard callbacks off for this training, in memory only:
    the user's Ultralytics settings file is not rewritten, and the values come back afterwards.
    pedsense writes TensorBoard events itself and exports to MLflow (``pedsense mlflow-export``)."""
    from ultralytics.utils import SETTINGS

    previous = {key: SETTINGS.get(key) for key in PEDSENSE_OWNED_INTEGRATIONS}
    for key in PEDSENSE_OWNED_INTEGRATIONS:
        dict.__setitem__(SETTINGS, key, False)  # dict's own: SETTINGS[key] = ... saves the file
    try:
        yield
    finally:
        for key, value in previous.items():
            dict.__setitem__(SETTINGS, key, value)


@contextmanager
def ultralytics_quiet(verbose: bool = False) -> Iterator[None]:
    """Ultralytics' info lines (progress bars, export banners, "Loading ... for ONNX Runtime
    inference") hidden for the block unless ``verbose``; its warnings still show."""
    from ultralytics.utils import LOGGER

    previous = LOGGER.level
    if not verbose:
        LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(previous)
