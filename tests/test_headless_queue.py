"""Queued runs start with no browser open: `pedsense serve` (what `make run` starts) runs the
scheduler beside the real Streamlit server, and `pedsense worker-pool` runs it alone (issue 19.1)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from pedsense.config import REPO_ROOT
from pedsense.runfolder import RunFolder
from test_train_fixtures import write_resnet_sequences
from test_worker_runs import TINY_ARGS, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:ImageNet weights")]


@pytest.fixture
def home(tmp_home):
    write_resnet_sequences(tmp_home, {"train": 2, "val": 1}, frames=2)
    return tmp_home


def pedsense(home, *args, **popen) -> subprocess.Popen:
    env = {**os.environ, "PEDSENSE_HOME": str(home), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "pedsense", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def queue(home, *names: str) -> list[RunFolder]:
    folders = []
    for name in names:
        cli = pedsense(home, "train", "resnet-lstm", "--queue", "--epochs", "1", "--name", name, *TINY_ARGS)
        out, err = cli.communicate(timeout=120)
        assert cli.returncode == 0, err
        folders.append(RunFolder(home / "models" / out.strip()))
    time.sleep(2)  # no scheduler yet: they stay queued (nothing else would start them)
    assert {f.status for f in folders} == {"queued"}
    return folders


def end(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1]


def test_runs_queued_from_the_cli_finish_once_the_server_starts_with_no_page_open(home):
    folders = queue(home, "first", "second")
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    server = pedsense(home, "serve", "--port", str(port))
    try:
        def healthy():
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as answer:
                    return answer.read().strip() == b"ok"
            except OSError:
                return False

        wait_for(healthy, timeout=120, what="the streamlit server")  # served, and no page is opened
        wait_for(lambda: all(f.status == "completed" for f in folders), timeout=300,
                 what="both queued runs to finish")
        assert all((f.path / "best.pt").is_file() for f in folders)
    finally:
        err = end(server)
    assert "resnet-lstm/first_" in err and "completed" in err, err


def test_a_second_worker_pool_on_one_home_does_nothing_and_says_which_serves_it(tmp_home):
    first = pedsense(tmp_home, "worker-pool")
    try:
        wait_for(lambda: (tmp_home / "models" / ".worker-pool.lock").read_text().strip() == str(first.pid)
                 if (tmp_home / "models" / ".worker-pool.lock").exists() else False, timeout=60,
                 what="the first pool")
        second = pedsense(tmp_home, "worker-pool")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 0
        assert f"already served by worker pool {first.pid}" in err
        assert first.poll() is None
    finally:
        end(first)
    assert first.returncode == 0


def test_worker_pool_until_empty_drains_the_queue_and_returns(home):
    [folder] = queue(home, "headless")
    pool = pedsense(home, "worker-pool", "--until-empty")
    _, err = pool.communicate(timeout=300)
    assert pool.returncode == 0, err
    assert folder.status == "completed", err
    assert f"{folder.run_id}: completed" in err, err
