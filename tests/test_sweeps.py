"""Sweeps: the spec's every bad input, studies (create, join, refuse), pruning, stop and resume,
and one real grid sweep of tiny ResNet-LSTM runs end to end (CLI -> runs -> evaluate -> leaderboard).

Most trials here are runs of the tiny trainer in tests/sweep_fakes.py (a known value per
parameter set, through the real RunManager, RunFolder and Optuna study); the end-to-end test
trains the real ResNet-LSTM.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from pedsense.runfolder import RunFolder, find_run, list_runs
from pedsense.sweeps import (Range, SweepError, SweepSpec, configurations, create_sweep, open_sweep,
                             parse_vary, request_stop, run_worker, trials_frame)
from pedsense.sweeps.study import RECORD
from pedsense.sweeps.worker import next_trial, requeue_lost_trials, used_trials
from sweep_fakes import fake_manager, value_at

LR = "learning_rate"


def spec(**changes) -> SweepSpec:
    values = dict(name="s", model_type="resnet-lstm", varied={LR: (1e-3, 2e-3)}, base={"epochs": 2})
    values.update(changes)
    return SweepSpec(**values)


# -- the spec ------------------------------------------------------------------------------------
BAD_SPECS = [
    (dict(varied={}), "varied", "nothing is varied"),
    (dict(varied={LR: Range(0.1, 0.01)}, sampler="random", budget=4), f"varied.{LR}", "above its high"),
    (dict(budget=0), "budget", "from 1 to 200"),
    (dict(varied={LR: Range(1e-4, 1e-2)}, sampler="tpe", budget=201), "budget", "from 1 to 200"),
    (dict(varied={LR: tuple(i / 1000 for i in range(1, 11)), "dropout": tuple(i / 100 for i in range(21)),
                  "hidden_size": (8, 16)}), "budget", "over the cap of 200"),
    (dict(varied={"foo": (1, 2)}), "varied.foo", "no parameter 'foo'"),
    (dict(varied={LR: (1e-3,)}), f"varied.{LR}", "two or more values"),
    (dict(varied={LR: (1e-3, 0.001)}), f"varied.{LR}", "given twice"),
    (dict(varied={LR: (1e-3, 2.0)}), f"varied.{LR}", "value 2.0"),
    (dict(varied={LR: Range(1e-4, 2.0)}, sampler="random", budget=2), f"varied.{LR}", "outside what"),
    (dict(varied={"dropout": Range(0.0, 0.5, log=True)}, sampler="random", budget=2), "varied.dropout",
     "log range needs low > 0"),
    (dict(varied={"backbone": Range(1, 2)}, sampler="random", budget=2), "varied.backbone",
     "a range needs a number parameter"),
    (dict(varied={LR: Range(1e-4, 1e-2)}), f"varied.{LR}", "a grid needs values or a range with a step"),
    (dict(varied={"seed": (1, 2)}), "varied.seed", "seeds are the sweep's own list"),
    (dict(varied={"device": ("cpu", "cuda")}), "varied.device", "cannot be varied"),
    (dict(varied={LR: Range(1e-4, 1e-2)}, sampler="random"), "budget", "need a budget"),
    (dict(seeds=(0, 1), budget=3), "budget", "not a multiple of the 2 seeds"),
    (dict(budget=4), "budget", "more than the grid's 2 trials"),
    (dict(seeds=(1, 1)), "seeds", "repeats a seed"),
    (dict(name="my sweep"), "name", "'my-sweep'"),
    (dict(sampler="bayes"), "sampler", "one of grid, random, tpe"),
    (dict(base={"foo": 1}), "base.foo", "no parameter 'foo'"),
    (dict(model_type="hybrid", varied={"tte": ((30, 60), (20, 50))}), "varied.tte", "intent protocol"),
]


@pytest.mark.parametrize("changes, field, words", BAD_SPECS, ids=[b[2] for b in BAD_SPECS])
def test_bad_sweeps_are_refused_naming_the_field_and_the_fix(changes, field, words):
    with pytest.raises(SweepError) as caught:
        spec(**changes).checked()
    assert field in caught.value.field_errors, caught.value.field_errors
    assert words in caught.value.field_errors[field]


def test_checked_spec_is_canonical_and_survives_the_study_record():
    checked = spec(varied={"hidden_size": Range(8, 24, step=8), "crop_size": ("32", "48x32")},
                   seeds=(3, 4)).checked()
    assert checked.varied["hidden_size"].values() == (8, 16, 24)
    assert checked.varied["crop_size"] == ((32, 32), (48, 32))
    assert checked.n_configurations == 6 and checked.n_trials == 12
    assert [t[1] for t in checked.grid_trials()[:4]] == [3, 4, 3, 4]  # configuration by configuration
    again = SweepSpec.from_dict(json.loads(json.dumps(checked.as_dict()))).checked()
    assert again == checked


def test_seeds_default_to_the_base_config_seed():
    assert spec(base={"seed": 7}).checked().seeds == (7,)
    assert spec().checked().seeds == (42,)  # the trainer's default


@pytest.mark.parametrize("text, expected", [
    ("learning_rate=1e-4,1e-3", (LR, (1e-4, 1e-3))),
    ("learning_rate=1e-5:1e-2:log", (LR, Range(1e-5, 1e-2, log=True))),
    ("hidden-size=8:64:8", ("hidden_size", Range(8, 64, step=8))),
    ("pretrained=true,false", ("pretrained", (True, False))),
])
def test_vary_options_parse(text, expected):
    assert parse_vary("resnet-lstm", text) == expected


@pytest.mark.parametrize("text", ["learning_rate", "=1,2", "learning_rate=", "learning_rate=1:x"])
def test_bad_vary_options_say_how_to_write_them(text):
    with pytest.raises(SweepError, match="NAME=|not a number"):
        parse_vary("resnet-lstm", text)


# -- studies ---------------------------------------------------------------------------------------
def test_create_refuses_an_existing_name_a_bad_storage_and_a_trial_the_trainer_would_refuse(demo_home):
    create_sweep(spec(name="twice"), home=demo_home)
    with pytest.raises(SweepError, match="already exists") as caught:
        create_sweep(spec(name="twice"), home=demo_home)
    assert "pedsense sweep-worker twice" in str(caught.value)
    with pytest.raises(SweepError, match="not a database URL"):
        create_sweep(spec(name="x"), home=demo_home, storage="not a url")
    with pytest.raises(SweepError, match="in-memory"):
        create_sweep(spec(name="x"), home=demo_home, storage="sqlite://")
    if importlib.util.find_spec("psycopg2") is None:  # no driver here: said so, password hidden
        with pytest.raises(SweepError, match="needs the database's Python driver") as caught:
            create_sweep(spec(name="x"), home=demo_home, storage="postgresql://me:secret@localhost/pedsense")
        assert "secret" not in str(caught.value) and "me:***@localhost" in str(caught.value)
    with pytest.raises(SweepError) as caught:  # the demo set has 70 training sequences
        create_sweep(spec(name="big", varied={"batch_size": (4, 500)}), home=demo_home)
    assert "batch_size=500" in caught.value.field_errors["varied.batch_size"]
    assert "larger than the" in caught.value.field_errors["varied.batch_size"]


def test_a_grid_enqueues_its_trials_and_a_worker_runs_them_once(tmp_home):
    manager = fake_manager(tmp_home)
    sweep = create_sweep(spec(name="grid", varied={LR: (1e-3, 3e-3), "dropout": (0.1, 0.2)}, seeds=(0, 1)),
                         home=tmp_home, check=manager.check, check_data=False)
    assert len(sweep.study.trials) == 8
    report = run_worker("grid", home=tmp_home, manager=manager, poll_s=0.02)
    assert report.reason == "the sweep has run its budget"
    assert [o.state for o in report.outcomes] == ["complete"] * 8
    for outcome in report.outcomes:
        assert outcome.value == value_at(outcome.params[LR], outcome.seed, 2, 2)
        tag = find_run(outcome.run_id, tmp_home).read_config()["sweep"]
        assert tag["name"] == "grid" and tag["trial"] == outcome.number and tag["state"] == "complete"
        assert tag["value"] == outcome.value and tag["seed"] == outcome.seed
    assert sorted(RunFolder(r.path).name.rsplit("_", 2)[0] for r in list_runs(tmp_home)) == \
        [f"grid-t{n:03d}" for n in range(8)]
    table = configurations(trials_frame(sweep), [LR, "dropout"])
    assert list(table["n"]) == [2, 2, 2, 2] and table["best"].sum() == 2  # dropout changes nothing here
    assert table.iloc[0]["mean"] == pytest.approx(0.3005) and table.iloc[0]["std"] == pytest.approx(0.000707, abs=1e-6)


def test_a_sampled_sweep_runs_every_configuration_with_every_seed(tmp_home):
    manager = fake_manager(tmp_home)
    create_sweep(spec(name="tpe", varied={LR: Range(1e-4, 1e-2, log=True)}, sampler="tpe", budget=6,
                      seeds=(0, 1, 2)), home=tmp_home, check=manager.check, check_data=False)
    report = run_worker("tpe", home=tmp_home, manager=manager, poll_s=0.02)
    assert len(report.outcomes) == 6
    by_config: dict = {}
    for outcome in report.outcomes:
        by_config.setdefault(outcome.params[LR], []).append(outcome.seed)
    assert len(by_config) == 2 and all(sorted(s) == [0, 1, 2] for s in by_config.values())


def test_median_pruning_stops_runs_below_the_median(tmp_home):
    manager = fake_manager(tmp_home)
    create_sweep(spec(name="prune", varied={LR: (4e-3, 3e-3, 1e-3, 5e-4)}, base={"epochs": 4},
                      pruner="median"), home=tmp_home, check=manager.check, check_data=False)
    report = run_worker("prune", home=tmp_home, manager=manager, poll_s=0.02)
    assert [o.state for o in report.outcomes] == ["complete", "complete", "pruned", "pruned"]
    pruned = report.outcomes[2]
    assert find_run(pruned.run_id, tmp_home).status == "stopped"
    assert find_run(pruned.run_id, tmp_home).read_config()["sweep"]["state"] == "pruned"
    assert len(find_run(pruned.run_id, tmp_home).read_metrics()) < 4


def test_join_is_refused_when_the_trainer_or_the_dataset_changed(demo_home):
    sweep = create_sweep(spec(name="moved"), home=demo_home)
    with pytest.raises(SweepError, match="sweeps the resnet-lstm trainer, not yolo"):
        open_sweep("moved", home=demo_home, model_type="yolo")
    record = dict(sweep.study.user_attrs[RECORD])
    record["trainer_params"] = {**record["trainer_params"], "dropout": ["float", 0.5]}
    sweep.study.set_user_attr(RECORD, record)
    with pytest.raises(SweepError, match="dropout's default is now 0.3, was 0.5"):
        run_worker("moved", home=demo_home)
    create_sweep(spec(name="data"), home=demo_home)
    labels = demo_home / "data" / "processed" / "resnet" / "labels.csv"
    text = labels.read_text()
    labels.unlink()  # a hard link into the session's demo set: replace it, never edit it
    labels.write_text(text.replace(",1,", ",0,", 1))
    with pytest.raises(SweepError, match="dataset changed since the sweep was created .labels.csv differs"):
        run_worker("data", home=demo_home)
    assert open_sweep("data", home=demo_home, join=False).name == "data"  # still readable
    with pytest.raises(SweepError, match="no sweep named 'nope'.*there are: "):
        open_sweep("nope", home=demo_home)


def test_stop_requeues_the_running_trial_and_a_new_worker_finishes_the_budget(tmp_home, monkeypatch):
    manager = fake_manager(tmp_home)
    sweep = create_sweep(spec(name="pause", base={"epochs": 20}, varied={LR: (1e-3, 2e-3)}), home=tmp_home,
                         check=manager.check, check_data=False)
    monkeypatch.setattr("pedsense.sweeps.worker.STOP_CHECK_S", 0.05)
    requested = []

    def stop_the_sweep_once_a_run_trains() -> bool:  # as the Sweep page's Stop button does
        runs = list_runs(tmp_home)
        if runs and runs[0].status == "running" and not requested:
            requested.append(runs[0].read_config())  # tagged while it trains
            request_stop(sweep)
        return False

    report = run_worker("pause", home=tmp_home, manager=manager, poll_s=0.02,
                        should_stop=stop_the_sweep_once_a_run_trains)
    assert report.reason == "stopped on request" and [o.state for o in report.outcomes] == ["requeued"]
    assert requested[0]["sweep"]["state"] == "running" and requested[0]["device"] == "cpu"  # both kept
    stopped = find_run(report.outcomes[0].run_id, tmp_home)
    assert stopped.status == "stopped" and stopped.read_config()["sweep"]["state"] == "requeued"
    monkeypatch.setattr("sweep_fakes.EPOCH_S", 0.005)
    resumed = run_worker("pause", home=tmp_home, manager=manager, poll_s=0.02)
    assert sorted((o.params[LR], o.state) for o in resumed.outcomes) == [(1e-3, "complete"), (2e-3, "complete")]
    frame = trials_frame(open_sweep("pause", home=tmp_home, join=False))
    assert sorted(frame["state"]) == ["complete", "complete", "requeued"]
    assert used_trials(sweep.study.get_trials()) == 2


def test_a_trial_whose_worker_is_gone_runs_again(tmp_home):
    manager = fake_manager(tmp_home)
    sweep = create_sweep(spec(name="lost"), home=tmp_home, check=manager.check, check_data=False)
    trial = next_trial(sweep)
    trial.set_user_attr("worker", {**trial.user_attrs["worker"], "pid": 2**22 + 12345, "start": "0"})
    assert requeue_lost_trials(sweep) == [trial.number]
    report = run_worker("lost", home=tmp_home, manager=manager, poll_s=0.02)
    assert sorted(o.params[LR] for o in report.outcomes) == [1e-3, 2e-3]


# -- the real thing ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_grid_sweep_of_real_tiny_runs_end_to_end(demo_home, capsys):
    """`pedsense sweep` -> 2 configurations x 1 seed of the real ResNet-LSTM -> evaluate -> leaderboard."""
    from pedsense.cli import main
    from pedsense.evaluation import evaluate
    from pedsense.leaderboard import leaderboard

    code = main(["sweep", "resnet-lstm", "real", "--epochs", "1", "--batch-size", "16", "--backbone",
                 "resnet18", "--crop-size", "16", "--no-pretrained", "--frozen-children", "8",
                 "--hidden-size", "16", "--vary", "learning_rate=0.001,0.003", "--seeds", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sweep real: 2 trials of resnet-lstm" in out and out.count(": complete") == 2
    sweep = open_sweep("real", home=demo_home, join=False)
    frame = trials_frame(sweep)
    assert list(frame["state"]) == ["complete", "complete"]
    for _, trial in frame.iterrows():
        folder = find_run(trial["run_id"], demo_home)
        config = folder.read_config()
        assert folder.status == "completed" and config["parameters"]["seed"] == 0
        assert config["sweep"]["trial"] == trial["trial"] and config["sweep"]["state"] == "complete"
        assert config["best_metric"]["value"] == pytest.approx(trial["value"])  # the trial's value
        assert config["device"] == "cpu" and config["parameters"][LR] == trial[LR]
        evaluate(folder.path, "test", home=demo_home)
    table = leaderboard(demo_home, published=False)
    assert len(table) == 2 and set(table["n"]) == {1}
    assert all("sweep real" in m for m in table["model"]) and table["dataset"].eq("synthetic").all()
    assert sorted(table["config"].str.contains("learning_rate=0.003")) == [False, True]


def test_one_worker_samples_the_same_values_for_the_same_sampler_seed(tmp_home):
    manager = fake_manager(tmp_home)
    sampled = []
    for name in ("first", "again"):
        create_sweep(spec(name=name, varied={LR: Range(1e-4, 1e-2, log=True)}, sampler="random", budget=3),
                     home=tmp_home, check=manager.check, check_data=False)
        report = run_worker(name, home=tmp_home, manager=manager, poll_s=0.02)
        sampled.append([o.params[LR] for o in report.outcomes])
    assert sampled[0] == sampled[1] and len(set(sampled[0])) == 3


def test_commands_create_list_refuse_and_export(demo_home, capsys, tmp_path):
    from pedsense.cli import main

    assert main(["sweep", "resnet-lstm", "later", "--preset", "quick", "--vary", "learning_rate=0.001,0.002",
                 "--vary", "dropout=0.1,0.3", "--seeds", "0,1", "--create-only"]) == 0
    out = capsys.readouterr().out
    assert "sweep later: 8 trials of resnet-lstm (grid, varying learning_rate, dropout; seeds 0, 1; base: " \
           "preset quick)" in out and "start workers with: pedsense sweep-worker later" in out
    assert open_sweep("later", home=demo_home).spec.base["backbone"] == "resnet18"
    assert main(["sweeps"]) == 0 and "later  resnet-lstm  grid  varying learning_rate, dropout  8 trials" \
        in capsys.readouterr().out
    assert main(["sweeps", "later"]) == 0 and "no trial has finished yet" in capsys.readouterr().out
    assert main(["sweep", "resnet-lstm", "bad", "--vary", "learning_rate=0.1:0.01", "--sampler", "random",
                 "--budget", "2"]) == 2
    assert "varied.learning_rate: the range's low 0.1 is above its high 0.01" in capsys.readouterr().err
    assert main(["sweep", "resnet-lstm", "bad", "--vary", "learning_rate=0.001,0.002", "--vary",
                 "learning_rate=0.003,0.004"]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["sweep-worker", "nope"]) == 2 and "no sweep named 'nope'" in capsys.readouterr().err
    target = tmp_path / "board.md"
    assert main(["leaderboard", "--format", "markdown", "-o", str(target)]) == 0
    assert target.read_text().startswith("| model")
    assert main(["leaderboard"]) == 0 and "No evaluated runs yet" in capsys.readouterr().out
