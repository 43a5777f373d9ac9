"""Shared fixtures: the real JAAD annotations in tests/data/jaad and tiny synthetic data homes."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

# `make test` runs the suite on every core with pytest-xdist (`-n auto`, pyproject.toml). Each
# worker is one process, so each takes one core's share of PyTorch's threads: two workers with
# two threads each on two cores spend their time waiting on each other's threads.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER:
    _share = str(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # this worker and the processes it starts
        os.environ.setdefault(_name, _share)


def _scan_installed_components_once():
    """Every ``AppTest.run`` makes Streamlit scan all installed packages' metadata for custom
    components (about 0.1 s each, some 40 s over the suite). The packages do not change while the
    suite runs, so the first scan serves them all. pedsense ships no components; a real server
    still scans, once, when it starts."""
    try:
        from streamlit.components.v2 import manifest_scanner
    except ImportError:  # a Streamlit without v2 components does not scan
        return
    manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


_scan_installed_components_once()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip without a CUDA GPU (``bench/gpu_check.py`` runs them on one)."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if not torch.cuda.is_available():
        for item in marked:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU (bench/gpu_check.py runs it on one)"))


# The real annotations of 12 JAAD videos (MIT licence, see tests/data/jaad/LICENSE), carried by
# the repository: a plain clone has nothing beside it, so no test reads outside the checkout.
JAAD_TEST_DATA = Path(__file__).resolve().parent / "data" / "jaad"


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name`` after ``build(folder)`` ran in it once in this test run: for the
    session homes, which tests only read (or copy).

    The folder is marked done on disk, so a session fixture that several modules import (each
    import is a fixture of its own) still builds once. Under pytest-xdist it lies above every
    worker's own temporary folder: the first worker to ask builds it and the others wait for it,
    so the tiny trained runs and builds are made once, not once per worker. A build that failed or
    was cut short is made again by the next one that asks. A passing run removes it with the rest
    of its temporary folder (``tmp_path_retention_policy``).
    """
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if XDIST_WORKER:
        shared = shared.parent  # the run's folder; each worker's own is a folder in it
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.write_text("ok\n")
    return folder


@pytest.fixture(scope="session")
def jaad_dir() -> Path:
    """The real JAAD annotations of 12 videos (MIT licence), read-only."""
    assert (JAAD_TEST_DATA / "annotations").is_dir(), f"{JAAD_TEST_DATA} is missing from the checkout"
    return JAAD_TEST_DATA


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


@pytest.fixture(autouse=True)
def _no_password(monkeypatch):
    """The dashboard tests run as a local user: a password set in the shell does not apply."""
    monkeypatch.delenv("PEDSENSE_PASSWORD", raising=False)
    monkeypatch.delenv("PEDSENSE_NO_AUTH", raising=False)


# -- the synthetic demo set, raw and built (preprocessing) -------------------------------------
# Small enough that the whole chain (demo clips, frames, YOLO, detector, sequences, crops) takes
# seconds on 2 cores; other engineers' trainer, viewer and dashboard tests build on these.
DEMO_VIDEOS = 3
DEMO_FRAMES = 120
DEMO_SIZE = (320, 180)
DEMO_CROP = (64, 64)
DEMO_SEQUENCE_LENGTH = 16
DEMO_STRIDE = 8


def _link_copy(src: Path, dst: Path) -> Path:
    """A copy of a data home whose files are hard links (pedsense replaces files, never edits them)."""
    shutil.copytree(src, dst, copy_function=os.link)
    return dst


def copy_data_home(src: Path, dst: Path) -> Path:
    """A hard-link copy of a built data home whose YOLO ``data.yaml`` files point at the copy.

    ``data.yaml`` holds an absolute path: relocating it makes Ultralytics read (and cache its
    labels) in the copy, never in the shared session home it came from.
    """
    from pedsense.config import paths
    from pedsense.data.yolo_format import relocate_data_yaml

    _link_copy(src, dst)
    for dataset in (paths(dst).yolo, paths(dst).yolo_detector):
        if (dataset / "data.yaml").is_file():  # a home of annotations only has none
            relocate_data_yaml(dataset)
    return dst


@pytest.fixture(scope="session")
def copy_home():
    """``copy_home(src, dst)``: see ``copy_data_home`` (for fixtures in other test modules)."""
    return copy_data_home


def _make_raw(tmp_path_factory, name: str, num_frames: int) -> Path:
    """A data home holding a tiny synthetic demo set (clips, XML, attributes, splits)."""
    from pedsense.data.synthetic import make_demo_dataset

    return built_once(tmp_path_factory, name, lambda home: make_demo_dataset(
        home, n_videos=DEMO_VIDEOS, seed=0, num_frames=num_frames, width=DEMO_SIZE[0], height=DEMO_SIZE[1]))


def _build_all(raw: Path, tmp_path_factory, name: str, task: str) -> Path:
    """A copy of ``raw`` with frames extracted and every dataset built for ``task`` (crops 64x64)."""
    from pedsense.data.frames import extract_frames
    from pedsense.data.resnet_format import build_resnet_crops, build_resnet_sequences
    from pedsense.data.yolo_format import build_detector_dataset, build_yolo_dataset

    def build(folder: Path) -> None:
        home = _link_copy(raw, folder / "home")
        extract_frames(home=home)
        build_yolo_dataset(home=home, task=task)
        build_detector_dataset(home=home, task=task)
        build_resnet_sequences(DEMO_SEQUENCE_LENGTH, DEMO_STRIDE, DEMO_CROP, home=home, task=task)
        build_resnet_crops(DEMO_CROP, home=home, task=task)

    return built_once(tmp_path_factory, name, build) / "home"


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory) -> Path:
    """A data home holding a tiny synthetic demo set (clips, XML, attributes, splits). Read-only."""
    return _make_raw(tmp_path_factory, "demo_raw", DEMO_FRAMES)


@pytest.fixture(scope="session")
def demo_built(demo_raw, tmp_path_factory) -> Path:
    """``demo_raw`` plus extracted frames and every dataset built (crops 64x64). Read-only."""
    return _build_all(demo_raw, tmp_path_factory, "demo_built", task="action")


@pytest.fixture
def demo_raw_home(demo_raw, tmp_path, monkeypatch) -> Path:
    """A writable hard-link copy of ``demo_raw`` (no frames yet), set as ``$PEDSENSE_HOME``."""
    home = _link_copy(demo_raw, tmp_path / "demo_raw_home")
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    return home


@pytest.fixture
def demo_home(demo_built, tmp_path, monkeypatch) -> Path:
    """A writable hard-link copy of ``demo_built``, set as ``$PEDSENSE_HOME``: write runs into it."""
    home = copy_data_home(demo_built, tmp_path / "demo_home")
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    return home


# -- the demo set under the `intent` task (JAAD benchmark windows) -----------------------------
# `demo_raw`'s 120-frame clips are too short for the protocol (16 observed + up to 60 frames
# before each event): at 200 frames every split holds windows of both classes, and one short
# track gives the builds a skip reason to report.
INTENT_DEMO_FRAMES = 200


@pytest.fixture(scope="session")
def intent_raw(tmp_path_factory) -> Path:
    """A data home holding 3 synthetic 200-frame demo videos (1 train, 1 val, 1 test). Read-only."""
    return _make_raw(tmp_path_factory, "intent_raw", INTENT_DEMO_FRAMES)


@pytest.fixture(scope="session")
def intent_built(intent_raw, tmp_path_factory) -> Path:
    """``intent_raw`` plus frames and every dataset built with ``task="intent"`` (benchmark
    defaults: obs 16, TTE 30-60, overlap 0.8, sample type beh, split default; crops 64x64)."""
    return _build_all(intent_raw, tmp_path_factory, "intent_built", task="intent")


@pytest.fixture
def intent_home(intent_built, tmp_path, monkeypatch) -> Path:
    """A writable hard-link copy of ``intent_built``, set as ``$PEDSENSE_HOME``."""
    home = copy_data_home(intent_built, tmp_path / "intent_home")
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    return home


# -- the context family's data: the 12 real videos, built from annotations alone --------------
@pytest.fixture(scope="session")
def jaad_context_home(tmp_path_factory, jaad_dir) -> Path:
    """A data home holding the 12 real videos' annotation folders (no clips) with both context
    builds (JAAD_beh and JAAD_all). Read-only: copy it (``copy_home``) to change anything."""
    from pedsense.data.context_format import build_context
    from pedsense.data.intent import IntentOptions

    def build(home: Path) -> None:
        raw = home / "data" / "raw"
        for name in ("annotations", "annotations_attributes", "annotations_vehicle",
                     "annotations_traffic", "split_ids"):
            shutil.copytree(jaad_dir / name, raw / name)
        for sample_type in ("beh", "all"):
            build_context(home, intent=IntentOptions(sample_type=sample_type))

    return built_once(tmp_path_factory, "jaad_context", build)
