"""The marker file that labels a data home's raw data as the synthetic demo set.

``data/raw/SYNTHETIC_DEMO.json`` records the seed, parameters and videos of the set; every page
and manifest that shows data asks :func:`is_synthetic`. Deliberately light (no OpenCV, no numpy):
the dashboard and ``pedsense info`` import it on every run.
"""

from __future__ import annotations

from pathlib import Path

from pedsense.config import paths
from pedsense.io import read_json

MARKER_NAME = "SYNTHETIC_DEMO.json"
SYNTHETIC_NOTE = ("Synthetic JAAD-format demo set drawn by pedsense (stick figures on a drawn street). "
                  "It is NOT JAAD data: results on it say nothing about real pedestrians.")


def marker_path(home=None) -> Path:
    return paths(home).raw / MARKER_NAME


def read_marker(home=None) -> dict | None:
    """The synthetic-set marker, or None when this data home holds no synthetic set."""
    marker = read_json(marker_path(home))
    return marker if isinstance(marker, dict) and marker.get("synthetic") is True else None


def is_synthetic(home=None) -> bool:
    """True when ``data/raw`` holds (or is being filled with) the synthetic demo set."""
    return read_marker(home) is not None


def synthetic_video_ids(home=None) -> list[str]:
    """The videos written by the demo generator (empty when the set is not synthetic)."""
    marker = read_marker(home)
    return list(marker.get("videos", [])) if marker else []
