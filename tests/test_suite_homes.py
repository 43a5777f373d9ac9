"""``conftest.built_once``: the session homes are built once per test run, by one xdist worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import built_once

TESTS = Path(__file__).resolve().parent

# a worker: its own temporary folder inside the run's, as pytest-xdist lays them out
WORKER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import conftest

class Factory:
    def getbasetemp(self):
        return Path(sys.argv[2]) / sys.argv[3]

def build(folder):
    with open(Path(sys.argv[2]) / "builds.log", "a") as log:
        log.write(sys.argv[3] + "\\n")
    time.sleep(1.0)  # long enough that the other worker asks while this one builds
    (folder / "made").write_text(sys.argv[3])

print(conftest.built_once(Factory(), "home", build))
"""


def test_a_home_is_built_once_and_again_after_a_build_that_failed(tmp_path_factory):
    built = []

    def build(folder: Path) -> None:
        built.append(folder)
        (folder / "made").write_text("yes")

    first = built_once(tmp_path_factory, "probe_home", build)
    assert built_once(tmp_path_factory, "probe_home", build) == first
    assert built == [first] and (first / "made").read_text() == "yes"

    def cut_short(folder: Path) -> None:
        (folder / "half").write_text("")
        raise RuntimeError("cut short")

    with pytest.raises(RuntimeError):
        built_once(tmp_path_factory, "probe_broken", cut_short)
    again = built_once(tmp_path_factory, "probe_broken", build)
    assert (again / "made").exists() and not (again / "half").exists()  # built afresh


def test_two_xdist_workers_asking_at_once_share_one_build(tmp_path):
    env = {**os.environ, "PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "2"}
    for worker in ("gw0", "gw1"):
        (tmp_path / worker).mkdir()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(TESTS), str(tmp_path), name], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name in ("gw0", "gw1")]
    results = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-2000:] for _, err in results]
    folders = {out.strip() for out, _ in results}
    assert folders == {str(tmp_path / "home")}  # both read the one home in the run's folder
    assert len((tmp_path / "builds.log").read_text().split()) == 1
    assert (tmp_path / "home" / "made").read_text() in ("gw0", "gw1")
