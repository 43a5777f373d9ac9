"""The Errors page in AppTest, on real tiny runs evaluated on the demo set's val split.

The ResNet-LSTM and the hybrid of ``infer_home`` are evaluated once (the evaluation writes their
predictions tables); the tests drive the page through a click on a confusion cell, a filter, the
threshold slider, playing a window, two runs side by side, and the bad inputs: a run evaluated
before predictions were kept (offered a re-evaluation), a dataset rebuilt since, a filter that
leaves nothing.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from pedsense.config import REPO_ROOT, paths
from conftest import built_once
from test_infer_fixtures import infer_home_base, run_of  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Base weights", "ignore:ImageNet weights")]
ERRORS = str(REPO_ROOT / "pages" / "errors.py")


def _run_id(path) -> str:
    return f"{path.parent.name}/{path.name}"


def _texts(at) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def _cells(at) -> dict[str, int]:
    """``{"false negative": 3, ...}`` from the confusion matrix's buttons."""
    found = {}
    for button in at.button:
        match = re.fullmatch(r"(true|false) (positive|negative): (\d+)", button.label)
        if match:
            found[f"{match[1]} {match[2]}"] = int(match[3])
    return found


def _trim_val(home, keep: int = 12) -> None:
    """Keep the first ``keep`` val sequences and the val crops inside them (2 shared cores: the
    evaluations stay seconds long); the files are replaced, never edited (they are hard links)."""
    import csv

    from pedsense.io import write_csv_atomic

    def rows(path):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames), list(reader)

    resnet = paths(home).resnet
    columns, sequences = rows(resnet / "labels.csv")
    val = [r for r in sequences if r["split"] == "val"][:keep]
    write_csv_atomic(resnet / "labels.csv", [r for r in sequences if r["split"] != "val"] + val, columns)
    spans = {(r["video_id"], r["track_id"], int(f)) for r in val
             for f in range(int(r["start_frame"]), int(r["end_frame"]) + 1)}
    columns, crops = rows(resnet / "crops.csv")
    write_csv_atomic(resnet / "crops.csv", [r for r in crops if r["split"] != "val" or
                                            (r["video_id"], r["track_id"], int(r["frame"])) in spans], columns)


@pytest.fixture(scope="session")
def errors_home_base(infer_home_base, tmp_path_factory, copy_home):
    """``infer_home`` (val trimmed) with its ResNet-LSTM and hybrid runs evaluated on val. Read-only.

    Made once per test run, on disk, however many modules (and xdist workers) use it.
    """
    from pedsense.evaluation import evaluate

    def build(folder: Path) -> None:
        home = copy_home(infer_home_base, folder / "home")
        _trim_val(home)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PEDSENSE_HOME", str(home))
            evaluate(run_of(home, "resnet-lstm"), "val", device="cpu")
            evaluate(run_of(home, "hybrid"), "val", device="cpu", max_images=2, conf=0.001)

    return built_once(tmp_path_factory, "errors_home", build) / "home"


@pytest.fixture
def errors_home(errors_home_base, tmp_path, monkeypatch, copy_home):
    """A writable copy of ``errors_home_base``, set as ``$PEDSENSE_HOME``."""
    home = copy_home(errors_home_base, tmp_path / "home")
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    return home


def _page(run) -> AppTest:
    at = AppTest.from_file(ERRORS, default_timeout=120)
    at.session_state["errors_run"] = _run_id(run)
    return at.run()


def test_evaluate_keeps_every_window_and_the_build_it_used(errors_home):
    from pedsense.errors_browser import load_run_table
    from pedsense.metrics import classification_metrics

    for model_type, kind in (("resnet-lstm", "window"), ("hybrid", "crop")):
        run = run_of(errors_home, model_type)
        evaluation = json.loads((run / "evaluation_val.json").read_text())
        loaded = load_run_table(run, "val")
        table = loaded.table
        assert evaluation["predictions"]["file"] == "predictions_val.parquet"
        assert evaluation["predictions"]["rows"] == len(table) == evaluation["intent"]["n"]
        assert set(table["kind"]) == {kind} and set(table["split"]) == {"val"}
        # the table's probabilities are the evaluation's: the same metrics at 0.5
        again = classification_metrics(table["label"], table["p_crossing"], threshold=0.5)
        assert again == evaluation["benchmark"]["metrics"]
        behaviour = table[table["track_label"] == "pedestrian"]
        assert len(behaviour) and (behaviour["age"] != "unknown").all() and (table["tte_bin"] != "unknown").all()
        assert evaluation["dataset"]["built"] and loaded.drift is None


def test_cell_filter_and_threshold_drive_the_page(errors_home):
    run = run_of(errors_home, "resnet-lstm")
    table = pd.read_parquet(run / "predictions_val.parquet")
    positives, negatives = int(table["label"].sum()), int((table["label"] == 0).sum())
    at = _page(run)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert sum(_cells(at).values()) == len(table)
    # the threshold slider moves the matrix: at 0 every window is predicted crossing
    at.slider(key="errors_threshold").set_value(0.0).run()
    assert _cells(at) == {"true negative": 0, "false positive": negatives, "false negative": 0,
                          "true positive": positives}
    assert [m.value for m in at.metric if m.label == "recall"] == ["1.000"]
    # a click on a cell lists that cell's windows, worst first
    at.button(key="errors_cell_01").click().run()
    assert not at.exception and at.session_state["errors_cell"] == (0, 1)
    assert f"**{negatives} false positives**" in _texts(at)
    listed = next(d.value for d in at.dataframe if "error" in d.value.columns)
    assert (listed["label"] == 0).all() and listed["error"].is_monotonic_decreasing
    # a filter: one TTE bin keeps only its windows, and the matrix follows
    chosen = table["tte_bin"].value_counts().index[0]
    at.multiselect(key="errors_tte").set_value([chosen]).run()
    in_bin = table[table["tte_bin"] == chosen]
    assert sum(_cells(at).values()) == len(in_bin)
    assert f"{len(in_bin)} of {len(table)}" in _texts(at) and f"TTE {chosen}" in _texts(at)
    listed = next(d.value for d in at.dataframe if "error" in d.value.columns)
    assert set(listed["tte_bin"]) == {chosen}
    # an attribute filter and the per-value chart's column
    at.selectbox(key="errors_attribute").set_value("age").run()
    assert not at.exception and not at.error
    # play the worst window: a WebM in the run folder
    at.button(key="errors_play").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    clip = at.session_state["errors_play_clip"]
    assert clip.endswith("_t0.00.webm") and (run / "renders" / "errors" / "val").is_dir()
    from pedsense.data.video import video_info

    assert video_info(clip).frame_count >= 16
    # the pedestrian's curve: the table's samples, then every frame of its track on request
    assert "P(crossing) of each evaluated sample of this pedestrian" in _texts(at)
    at.button(key="errors_play_track").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "P(crossing) per frame the model was run on" in _texts(at)
    # a filter that leaves no window says so
    at.slider(key="errors_p_range").set_value((0.0, 0.0)).run()
    assert not at.exception
    assert "widen the probability range or clear a filter" in _texts(at)
    # another run's table starts with no filter and no cell
    at.selectbox(key="errors_run").set_value(_run_id(run_of(errors_home, "hybrid"))).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.multiselect(key="errors_tte").value == [] and at.session_state["errors_cell"] is None
    assert at.slider(key="errors_p_range").value == (0.0, 1.0)


def test_two_runs_side_by_side(errors_home):
    lstm, hybrid = run_of(errors_home, "resnet-lstm"), run_of(errors_home, "hybrid")
    at = _page(lstm)
    at.slider(key="errors_threshold").set_value(0.5).run()
    assert at.selectbox(key="errors_other").value == _run_id(hybrid)
    assert not at.exception and not at.error, [e.value for e in at.error]
    text = _texts(at)
    assert "samples both runs scored" in text
    if "agree on every shared sample" not in text:  # the tiny runs disagree somewhere: play one
        counts = next(d.value for d in at.dataframe if "cell_a" in d.value.columns)
        assert counts["windows"].sum() > 0
        at.button(key="errors_cmp_play").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert at.session_state["errors_cmp_play_clip"].endswith(".webm")


def test_a_run_whose_config_is_damaged_is_left_out_of_the_comparison(errors_home):
    lstm, hybrid = run_of(errors_home, "resnet-lstm"), run_of(errors_home, "hybrid")
    (hybrid / "config.json").unlink()  # hard links shared with the other copies: replace, never edit
    (hybrid / "config.json").write_text("[1, 2, 3]")
    at = _page(lstm)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert _run_id(hybrid) not in at.selectbox(key="errors_run").options
    assert not [s for s in at.selectbox if s.key == "errors_other"]
    assert "Evaluate another run on `val` to compare it" in _texts(at)


def test_an_evaluation_without_predictions_is_offered_again(errors_home, capsys):
    run = run_of(errors_home, "resnet-lstm")
    saved = run / "evaluation_val.json"
    old = json.loads(saved.read_text())
    for key in ("predictions", "dataset"):
        old.pop(key)
    saved.unlink()  # hard links shared with the other copies: replace the files, never edit them
    saved.write_text(json.dumps(old))
    (run / "predictions_val.parquet").unlink()
    _trim_val(errors_home, keep=6)
    at = _page(run)
    assert not at.exception
    assert "before per-window predictions were kept" in _texts(at)
    at.button(key="errors_evaluate").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert (run / "predictions_val.parquet").is_file() and _cells(at)
    # the command line says where the table is
    from pedsense.cli import main

    assert main(["evaluate", str(run), "--device", "cpu"]) == 0
    assert "every sample's prediction: predictions_val.parquet in the run folder (6 rows" in capsys.readouterr().out


def test_an_unreadable_table_is_an_error_with_the_fix(errors_home):
    run = run_of(errors_home, "resnet-lstm")
    (run / "predictions_val.parquet").unlink()
    (run / "predictions_val.parquet").write_bytes(b"half a file")
    at = _page(run)
    assert not at.exception
    assert "cannot be read" in " ".join(e.value for e in at.error)
    assert at.button(key="errors_evaluate").label == "Re-evaluate on val"


def test_a_rebuilt_dataset_is_a_warning_with_both_builds(errors_home, errors_home_base):
    run = run_of(errors_home, "resnet-lstm")
    manifest_path = paths(errors_home).sequences / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["created_at"] = "2031-01-01T00:00:00+00:00"
    manifest_path.unlink()
    manifest_path.write_text(json.dumps(manifest))
    at = _page(run)
    assert not at.exception and not at.error
    warning = " ".join(w.value for w in at.warning)
    assert "2031-01-01" in warning and "Evaluate the run again" in warning
    assert any(j.value and "2031-01-01" in str(j.value) for j in at.json)
    shown = warning + " ".join(str(j.value) for j in at.json)
    assert "manifest.json" in warning  # relative to the data home, or …/manifest.json outside it
    assert str(errors_home) not in shown and str(errors_home_base) not in shown, shown
    assert _cells(at), "the table is still browsable"


def test_a_run_never_evaluated_offers_the_evaluation(errors_home):
    yolo = run_of(errors_home, "yolo")
    for name in ("evaluation_val.json", "predictions_val.parquet"):  # another module may have evaluated it
        (yolo / name).unlink(missing_ok=True)
    at = _page(yolo)
    assert not at.exception and not at.error
    assert "is not evaluated on val yet" in _texts(at)
    assert at.button(key="errors_evaluate").label == "Evaluate on val"


def test_no_run_yet(tmp_home):
    at = AppTest.from_file(ERRORS, default_timeout=60).run()
    assert not at.exception and "No completed run yet" in _texts(at)
