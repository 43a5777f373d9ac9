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
