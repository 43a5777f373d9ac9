"""The Sweep page (a sweep from the form, bad input under its field), the Runs page's compare
tables (config "differences only", a sweep's mean ± std with the best highlighted, parallel
coordinates, importance), and the Leaderboard (the table and each export button's content)."""

from __future__ import annotations

import json

import pytest
from streamlit.runtime.memory_media_file_storage import _calculate_file_id
from streamlit.testing.v1 import AppTest

import pedsense.sweeps as sweeps
from pedsense.benchmarks import PUBLISHED_JAAD
from pedsense.leaderboard import leaderboard, to_csv, to_latex, to_markdown
from pedsense.sweeps import SweepSpec, create_sweep, open_sweep, run_worker
from sweep_fakes import fake_manager
from test_app_pages import open_page
from test_leaderboard import evaluated_run, manifest


@pytest.fixture
def launched(monkeypatch):
    """``launch_worker`` recorded instead of starting a process (its trials are tested elsewhere)."""
    calls = []

    def launch(name, *, storage=None, home=None):
        calls.append((name, home))
        return {"pid": 4242, "log": "models/sweeps/x/worker.log"}

    monkeypatch.setattr(sweeps, "launch_worker", launch)
    return calls


def table(at: AppTest, *columns: str):
    """The first table on the page holding all these columns (st.dataframe has no key to look up)."""
    for frame in at.dataframe:
        value = frame.value
        if all(c in value.columns for c in columns):
            return value
    raise AssertionError(f"no table with columns {columns}: {[list(f.value.columns) for f in at.dataframe]}")


def fill_form(at: AppTest, name: str, values: str | None) -> AppTest:
    at.selectbox(key="sweep.form.trainer").set_value("resnet-lstm").run()
    at.text_input(key="sweep.form.name").set_value(name)
    at.selectbox(key="sweep.form.resnet-lstm.preset").set_value("quick")
    if values is not None:
        at.multiselect(key="sweep.form.resnet-lstm.varied").set_value(["learning_rate"]).run()
        at.text_input(key="sweep.form.resnet-lstm.learning_rate.values").set_value(values)
    at.text_input(key="sweep.form.seeds").set_value("0, 1")
    return at.run()


def test_sweep_page_creates_a_sweep_from_the_form_and_starts_its_worker(demo_home, launched):
    at = fill_form(open_page("pages/sweep.py"), "page-lr", "0.001, 0.002")
    at.multiselect(key="sweep.form.resnet-lstm.overrides").set_value(["epochs", "pretrained"]).run()
    at.text_input(key="sweep.form.resnet-lstm.override.epochs").set_value("1")
    at.text_input(key="sweep.form.resnet-lstm.override.pretrained").set_value("false").run()
    at.button(key="sweep.create").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Sweep `page-lr` created: 4 trials" in s.value for s in at.success), [e.value for e in at.error]
    assert launched == [("page-lr", demo_home)]
    sweep = open_sweep("page-lr", home=demo_home)
    assert sweep.spec.base["backbone"] == "resnet18" and sweep.spec.base_source == "preset quick"
    assert sweep.spec.base["epochs"] == 1 and sweep.spec.base["pretrained"] is False  # changed on top
    assert sweep.spec.seeds == (0, 1) and len(sweep.study.trials) == 4
    assert any(s["name"] == "page-lr" for s in table(at, "trainer", "sampler").to_dict("records"))


@pytest.mark.parametrize("values, field, words", [
    (None, "varied", "nothing is varied"),
    ("0.001, 7", "varied.learning_rate", "value 7"),
    ("0.001", "varied.learning_rate", "two or more values"),
])
def test_sweep_page_shows_each_problem_under_its_field(demo_home, launched, values, field, words):
    at = fill_form(open_page("pages/sweep.py"), "bad", values)
    at.button(key="sweep.create").click().run()
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert f"**{field}**" in message and words in message
    assert launched == [] and sweeps.list_sweeps(home=demo_home) == []


def test_a_damaged_sweeps_database_says_move_it_aside_without_a_server_path(demo_home, launched):
    (demo_home / "models").mkdir(exist_ok=True)
    (demo_home / "models" / "sweeps.db").write_bytes(b"garbage " * 512)
    at = fill_form(open_page("pages/sweep.py"), "after-damage", "0.001, 0.002")
    at.button(key="sweep.create").click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert errors and all("models/sweeps.db is damaged" in e and "Move it aside" in e for e in errors), errors
    assert "mv models/sweeps.db models/sweeps.db.damaged" in errors[-1]
    assert not [e for e in errors if str(demo_home) in e or "give sqlite:///" in e], errors
    assert launched == []


@pytest.fixture
def swept(tmp_home):
    """A finished grid sweep of the tiny trainer: 2 learning rates x 2 seeds, 4 tagged runs."""
    manager = fake_manager(tmp_home)
    create_sweep(SweepSpec("lr", "resnet-lstm", {"learning_rate": (1e-3, 3e-3)}, base={"epochs": 2},
                           seeds=(0, 1)), home=tmp_home, check=manager.check, check_data=False)
    run_worker("lr", home=tmp_home, manager=manager, poll_s=0.02)
    manager.shutdown()
    return tmp_home


def test_runs_page_compares_configs_and_shows_the_sweep(swept):
    at = open_page("pages/runs.py")
    assert not at.exception, [e.value for e in at.exception]
    picker = at.multiselect(key="compare.runs")
    picker.set_value(picker.options).run()  # the sweep's four runs
    config = table(at, "setting")
    assert set(config["setting"]) >= {"parameters.learning_rate", "sweep.trial", "parameters.seed"}
    assert "parameters.epochs" not in set(config["setting"])  # the same in every run: hidden
    at.toggle(key="compare.differences").set_value(False).run()
    assert "parameters.epochs" in set(table(at, "setting")["setting"])
    configurations = table(at, "val_acc (mean ± std)")
    assert list(configurations["learning_rate"]) == [0.003, 0.001] and list(configurations["n"]) == [2, 2]
    assert list(configurations["best"]) == ["★ best", ""]
    assert configurations.iloc[0]["val_acc (mean ± std)"] == "0.3005 ± 0.0007"
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "Parameters → val_acc (completed trials)" in titles  # Optuna's parallel coordinates
    assert "Parameter importance (Optuna, fANOVA)" in titles
    picker.set_value(picker.options[:1]).run()
    at.button(key="compare.sweep_runs").click().run()
    assert len(at.multiselect(key="compare.runs").value) == 4  # the sweep's runs, overlaid


def test_sweep_page_lists_sweeps_with_results(swept, launched):
    at = open_page("pages/sweep.py")
    assert not at.exception
    assert table(at, "trainer", "sampler").iloc[0]["name"] == "lr"
    assert list(table(at, "val_acc (mean ± std)")["n"]) == [2, 2]
    at.button(key="sweeps.add").click().run()
    assert launched == [("lr", swept)]


def test_leaderboard_page_shows_the_table_and_exports_it(tmp_home, tmp_path):
    jaad = manifest(tmp_path, "jaad", sample_type="all")
    for seed, wrong in ((0, 1), (1, 3)):
        evaluated_run(tmp_home, jaad, seed=seed, wrong=wrong)
    at = open_page("pages/leaderboard.py")
    assert not at.exception, [e.value for e in at.exception]
    shown = table(at, "comparison", "protocol")
    # every published row stands beside the group, each marked comparable or not (variant, inputs, leak)
    assert list(shown["model"]) == ["ResNet-LSTM"] + [f"{r.model} (published)" for r in PUBLISHED_JAAD]
    assert shown.iloc[0]["accuracy"] == "0.800 ± 0.141" and shown.iloc[2]["comparison"] == "comparable"
    exported = leaderboard(tmp_home)
    for extension, mime, export in (("csv", "text/csv", to_csv), ("md", "text/markdown", to_markdown),
                                    ("tex", "application/x-tex", to_latex)):
        button = at.download_button(key=f"leaderboard.download.{extension}")
        content = export(exported).encode("utf-8")
        # the served file's id is the hash of its bytes, type and name: the button holds exactly this
        assert _calculate_file_id(content, mime, f"pedsense_leaderboard.{extension}") in button.proto.url
    at.toggle(key="leaderboard.published").set_value(False).run()
    assert list(table(at, "comparison", "protocol")["model"]) == ["ResNet-LSTM"]


def test_leaderboard_page_on_an_empty_home_says_how_to_fill_it(tmp_home):
    at = open_page("pages/leaderboard.py")
    assert not at.exception and any("No evaluated run yet" in i.value for i in at.info)

