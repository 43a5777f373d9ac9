"""Shared fixtures: the real JAAD annotations in ../shared/jaad and tiny synthetic data homes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pedsense.config import REPO_ROOT

# Training tests must not fight each other for the 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def _shared_jaad() -> Path:
    env = os.environ.get("PEDSENSE_SHARED_JAAD")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / "shared" / "jaad", REPO_ROOT.parent.parent / "shared" / "jaad"]
    for candidate in candidates:
        if (candidate / "annotations").is_dir():
            return candidate
    raise RuntimeError("../shared/jaad not found; set PEDSENSE_SHARED_JAAD to its path")


@pytest.fixture(scope="session")
def jaad_dir() -> Path:
    """The real JAAD annotations of 12 videos (MIT licence), read-only."""
    return _shared_jaad()


@pytest.fixture
def tmp_home(tmp_path, monkeypatch) -> Path:
    """An empty data home for one test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never reach the network: Ultralytics' and torchvision's downloads fail fast."""
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("PEDSENSE_OFFLINE", "1")
