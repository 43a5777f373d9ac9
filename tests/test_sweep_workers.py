"""Two worker processes share one SQLite study: every trial runs once, the budget holds, every
configuration gets every seed (the home allows two runs at a time). The trials are the tiny trainer's (tests/sweep_fakes.py); both
workers wait for each other before their first trial, so they really run side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pedsense.runfolder import list_runs
from pedsense.sweeps import Range, SweepSpec, create_sweep, open_sweep, trials_frame
from sweep_fakes import BARRIER, BARRIER_N, fake_manager

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def test_two_local_workers_share_one_sqlite_study(tmp_home, tmp_path):
    manager = fake_manager(tmp_home)
    manager.set_queue_settings(max_parallel=2)  # the slots are the home's: both workers train at once
    spec = SweepSpec("shared", "resnet-lstm", {"learning_rate": Range(1e-4, 1e-2, log=True),
                                               "dropout": (0.1, 0.5)},
                     base={"epochs": 2}, seeds=(0, 1), sampler="random", budget=8)
    sweep = create_sweep(spec, home=tmp_home, check=manager.check, check_data=False)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, BARRIER: str(barrier), BARRIER_N: "2", "SWEEP_FAKE_EPOCH_S": "0.2",
           "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    workers = [subprocess.Popen([sys.executable, str(TESTS / "sweep_fakes.py"), str(tmp_home), "shared"],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    ran = [n for r in reports for n in r["trials"]]
    assert all(r["trials"] for r in reports), reports       # both workers ran trials
    assert sorted(ran) == list(range(8)), reports            # each trial once, the budget exactly
    frame = trials_frame(open_sweep("shared", home=tmp_home, join=False))
    assert list(frame["state"]) == ["complete"] * 8, [(r.run_id, r.read_status().get("status"), r.read_status().get("error")) for r in list_runs(tmp_home)]
    seeds = frame.groupby(["learning_rate", "dropout"])["seed"].apply(sorted)
    assert len(seeds) == 4 and all(s == [0, 1] for s in seeds)
    runs = list_runs(tmp_home)
    assert len(runs) == 8 and {r.status for r in runs} == {"completed"}
    assert sorted(r.read_config()["sweep"]["trial"] for r in runs) == list(range(8))
    assert {t.user_attrs["worker"]["pid"] for t in sweep.study.get_trials()} == {r["pid"] for r in reports}
