"""Faults of the file system and of processes (issue 19.2): a disk that fills up while training or
evaluating, a read-only data home or run folder, a scheduler lock held by a stopped process or
replaced by a directory, a worker killed between its metrics row and its checkpoints, and a
damaged ``models/settings.json``. Each ends with a message naming the problem and the fix.

The disk and the read-only file system are real: a small ``tmpfs`` really fills up (ENOSPC), and
a read-only bind mount really refuses writes (EROFS) — even to root, whom ``chmod`` would not stop
(the tests run as root). Where mounting is not allowed (no CAP_SYS_ADMIN), a non-root user gets
``chmod a-w`` instead (EACCES, the same message), and root without mounts skips.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pedsense.cli import main
from pedsense.config import REPO_ROOT
from pedsense.runfolder import RunFolder
from test_app_pages import open_page
from test_train_fixtures import write_resnet_sequences

pytestmark = pytest.mark.filterwarnings("ignore:ImageNet weights")
TINY = {"batch_size": 2, "backbone": "resnet18", "crop_size": 32, "hidden_size": 16,
        "learning_rate": 1e-3, "num_workers": 0, "device": "cpu"}


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` made read-only for real while the block runs (a read-only bind mount as root)."""
    path = Path(path)
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")] if p.is_dir()}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if shutil.which("mount") is None or not _mount("--bind", str(path), str(path)):
        pytest.skip("needs a read-only bind mount (root with CAP_SYS_ADMIN) or a non-root user")
    try:
        assert _mount("-o", "remount,bind,ro", str(path)), "remount read-only failed"
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int = 64):
    """A real ``size_mb`` MB file system (tmpfs) mounted at ``path`` while the block runs."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", f"size={size_mb}m", "pedsense-test", str(path)):
        pytest.skip("needs a small tmpfs mount (root with CAP_SYS_ADMIN)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill_up(folder: Path) -> Path:
    """Write ``folder/filler`` until the disk is full (a real ENOSPC); returns the filler."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 2**20)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with contextlib.suppress(OSError):  # the last partial MB: fill every byte that is left
        with open(folder / "filler2", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    return filler


# -- a full disk ----------------------------------------------------------------------------------
def test_a_disk_that_fills_up_mid_training_ends_the_run_failed_saying_so_and_claims_no_weights(
        tmp_path, monkeypatch, capfd):
    from pedsense.train import events as ev
    from pedsense.train.resnet_trainer import train_resnet_lstm

    with small_disk(tmp_path / "disk") as disk:
        home = disk / "home"
        write_resnet_sequences(home, {"train": 2, "val": 1}, frames=2)
        monkeypatch.setenv("PEDSENSE_HOME", str(home))

        def fill_after_epoch_1(event):
            if isinstance(event, ev.EpochEnd) and event.epoch == 1:
                fill_up(disk)  # the disk fills between epoch 1's metrics row and its checkpoints

        with pytest.raises(Exception) as raised:
            train_resnet_lstm("full", epochs=3, on_event=fill_after_epoch_1, **TINY)
        [folder] = [RunFolder(p) for p in (home / "models" / "resnet-lstm").iterdir()]
        status = folder.read_status()
        assert type(raised.value).__name__ == "DiskFull"
        assert status["status"] == "failed", status  # recorded although the disk is full
        assert status["error"].startswith(f"No space left on {folder.path}: free ")
        assert "No weights were saved" in status["error"]  # epoch 1's checkpoints never made it
        assert not (folder.path / "best.pt").exists() and not (folder.path / "last.pt").exists()
        assert "Traceback" not in capfd.readouterr().err


@pytest.fixture(scope="module")
def trained_base(tmp_path_factory) -> Path:
    """A data home with a few 32 px ResNet-LSTM sequences and one completed 1-epoch run. Read-only."""
    from pedsense.train.resnet_trainer import train_resnet_lstm

    home = tmp_path_factory.mktemp("faults_trained")
    write_resnet_sequences(home, {"train": 2, "val": 2}, frames=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PEDSENSE_HOME", str(home))
        patch.setenv("PEDSENSE_OFFLINE", "1")
        train_resnet_lstm("tiny", epochs=1, **TINY)
    return home


@pytest.fixture
def trained_home(trained_base, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A copy of ``trained_base`` as ``$PEDSENSE_HOME``, and its run's folder."""
    home = tmp_path / "home"
    shutil.copytree(trained_base, home)
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    [run] = (home / "models" / "resnet-lstm").iterdir()
    return home, run


@contextlib.contextmanager
def run_on_small_disk(run: Path):
    """The run folder ``run`` moved onto a small disk of its own (its files copied there)."""
    saved = run.with_name(run.name + ".saved")
    run.rename(saved)
    try:
        with small_disk(run, size_mb=sum(f.stat().st_size for f in saved.rglob("*") if f.is_file()) // 2**20 + 8):
            for item in saved.iterdir():
                (shutil.copytree if item.is_dir() else shutil.copy)(item, run / item.name)
            yield run
    finally:
        shutil.rmtree(run, ignore_errors=True)
        saved.rename(run)


@pytest.mark.slow
def test_a_full_disk_while_evaluating_says_how_much_is_free_not_unexpected_oserror(trained_home, capsys):
    _, run = trained_home
    with run_on_small_disk(run):
        fill_up(run)
        code = main(["evaluate", str(run), "--device", "cpu", "--max-images", "4"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"error: No space left on {run}: free some space and rerun the evaluation" in err, err
    assert "unexpected" not in err and "Traceback" not in err


# -- the scheduler lock ---------------------------------------------------------------------------
HOLD_THE_LOCK = """
import os, signal, sys
from pedsense.runqueue import scheduler_lock
with scheduler_lock(sys.argv[1]):
    print("holding", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)
"""


@pytest.fixture
def stopped_lock_holder(tmp_home):
    """A process that took the scheduler lock and was then stopped (SIGSTOP) holding it."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(tmp_home)], env=env,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    deadline = time.monotonic() + 60
    while open(f"/proc/{holder.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, "the holder did not stop"
        time.sleep(0.05)
    yield holder
    holder.kill()
    holder.wait(30)


def test_a_lock_held_by_a_stopped_process_names_it_and_reading_never_waits(stopped_lock_holder, tmp_home,
                                                                           monkeypatch, capsys):
    from pedsense import runqueue

    done = RunFolder.create("resnet-lstm", "done", home=tmp_home)
    done.write_config({"model_type": "resnet-lstm"})
    done.set_status("completed")
    started = time.monotonic()
    assert main(["runs"]) == 0  # read-only work: no lock taken
    assert "resnet-lstm/done_" in capsys.readouterr().out and time.monotonic() - started < 20
    monkeypatch.setattr(runqueue, "LOCK_WAIT_S", 1.0)
    assert main(["runs", "--max-parallel", "2"]) == 2  # a write waits, then says who holds the lock
    err = capsys.readouterr().err
    pid = stopped_lock_holder.pid
    assert f"held for over 1 s by process {pid}" in err and "which is stopped" in err, err
    assert f"kill -CONT {pid}" in err and "Traceback" not in err


def test_a_directory_where_the_lock_file_goes_names_the_path_and_the_fix(tmp_home, capsys):
    lock = tmp_home / "models" / ".scheduler.lock"
    lock.mkdir(parents=True)
    assert main(["runs"]) == 0  # listing does not need the lock
    assert main(["runs", "--max-parallel", "2"]) == 2
    err = capsys.readouterr().err
    assert f"The scheduler lock {lock} is a directory" in err and f"mv {lock} {lock}.bad" in err, err
    assert "IsADirectoryError" not in err


# -- models/settings.json garbage -------------------------------------------------------------------
def test_unreadable_queue_settings_are_reported_on_the_cli_and_the_runs_page(tmp_home, capsys):
    (tmp_home / "models").mkdir()
    (tmp_home / "models" / "settings.json").write_text("{max_parallel: 3")
    assert main(["runs"]) == 0
    err = capsys.readouterr().err
    assert "warning: models/settings.json is not valid JSON" in err
    assert "the defaults are in force (1 run at a time" in err and "pedsense runs --max-parallel N" in err
    page = open_page("pages/runs.py")
    assert not page.exception, [e.value for e in page.exception]
    assert any("settings.json is not valid JSON" in w.value and "defaults are in force" in w.value
               for w in page.warning), [w.value for w in page.warning]


# -- a worker killed between its epoch's metrics row and its checkpoints -----------------------------
def test_a_run_killed_after_its_metrics_row_claims_only_the_weights_and_best_on_disk(trained_home, capsys):
    from pedsense.runsummary import read_summary

    home, run = trained_home
    folder = RunFolder(run)
    best_before = read_summary(folder).best_metric
    assert best_before["epoch"] == 1 and (run / "best.pt").is_file()
    # Epoch 2's row made it to metrics.csv, then the worker was killed before its checkpoints:
    # best.pt and last.pt still hold epoch 1, and the row claims a better epoch 2.
    row = {**folder.read_metrics()[-1], "epoch": 2, "val_acc": 1.0}
    folder.append_metrics(row)
    folder.update_config(best_metric=None)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = {"pid": int(dead.stdout), "start": "1", "heartbeat_at": time.time()}  # a process gone
    folder.set_status("running")
    folder.update_status(pid=killed["pid"], pid_start="1")
    (run / "worker.json").write_text(json.dumps(killed))
    assert main(["runs"]) == 0
    capsys.readouterr()
    status = folder.read_status()
    assert status["status"] == "interrupted"
    assert "weights on disk: best.pt (epoch 1), last.pt (epoch 1)" in status["error"], status["error"]
    best = read_summary(folder).best_metric
    assert best["epoch"] == 1 and best["value"] == best_before["value"]  # what best.pt holds
    (run / "best.pt").unlink()
    (run / "last.pt").unlink()
    folder.set_status("running")
    folder.update_status(pid=killed["pid"], pid_start="1")
    assert main(["runs"]) == 0
    status = folder.read_status()
    assert status["status"] == "interrupted" and "no weights were saved" in status["error"]
    assert "Resume it" not in status["error"] and "Launch it again" in status["error"]
    assert read_summary(folder).best_metric["value"] is None  # no best claimed without best.pt


# -- a read-only data home, a read-only run folder -----------------------------------------------------
def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err and "unexpected" not in err, err
    return lines[0]


@pytest.mark.parametrize("command", [
    ["setup"],
    ["preprocess", "resnet", "--stride", "4", "--crop-size", "64"],
    ["train", "resnet-lstm", "--epochs", "1", "--batch-size", "2", "--backbone", "resnet18", "--device", "cpu"],
], ids=["setup", "preprocess", "train"])
def test_a_read_only_data_home_is_read_but_every_write_says_so_once(demo_home, command, capsys):
    done = RunFolder.create("resnet-lstm", "done", home=demo_home)
    done.write_config({"model_type": "resnet-lstm"})
    done.set_status("completed")
    with read_only(demo_home):
        assert main(["runs"]) == 0  # reading works without the lock
        assert "resnet-lstm/done_" in capsys.readouterr().out
        code = main(command)
    assert code == 2
    assert one_error(capsys.readouterr().err).startswith(f"error: the data home {demo_home} is read-only")


def test_evaluate_on_a_read_only_data_home_says_so(trained_home, capsys):
    home, run = trained_home
    with read_only(home):
        assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    assert one_error(capsys.readouterr().err).startswith(f"error: the data home {home} is read-only")


def test_export_into_a_read_only_run_folder_names_the_run(trained_home, capsys):
    _, run = trained_home
    with read_only(run):
        assert main(["export", str(run)]) == 2
    assert one_error(capsys.readouterr().err).startswith(f"error: cannot write into {run}: read-only")


def test_the_overview_page_reads_a_read_only_data_home(demo_home):
    gone = RunFolder.create("resnet-lstm", "gone", home=demo_home)  # its process is gone: it would
    gone.write_config({"model_type": "resnet-lstm"})                # be settled, which needs a write
    gone.set_status("running")
    gone.update_status(pid=2**22 + 1, pid_start="1")
    with read_only(demo_home):
        page = open_page("pages/overview.py")
    assert not page.exception, [e.value for e in page.exception]
    assert not page.error, [e.value for e in page.error]
    assert any("gone_" in d.value.to_string() for d in page.dataframe)  # the runs are listed
