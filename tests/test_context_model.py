"""The context family (issue 18): models, trainer, CLI, evaluation and Train page on real tiny data.

Training runs on the synthetic demo set's context build (it has train, val and test windows);
the leak refusal on the 12 real JAAD videos' ``all`` build (``jaad_context_home``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import built_once
from pedsense.cli import main
from pedsense.errors import DataError
from pedsense.runfolder import RunFolder, list_runs
from pedsense.train.checkpoints import load_context_model
from pedsense.train.context_model import (MAX_PARAMETERS, ContextGRU, build_context_model,
                                          parameter_count, predict_proba)
from pedsense.train.context_trainer import relevance_used, selection_record, train_context, weighting_used

# JAAD's group widths (pedsense.data.context_features), T = obs_length - 1
DIMS = {"box": 9, "vehicle": 6, "traffic": 12, "behaviour": 13}
LENGTHS = dict.fromkeys(DIMS, 15)


@pytest.fixture(scope="session")
def demo_context(demo_raw, tmp_path_factory, copy_home) -> Path:
    """The demo set with a context build (beh; annotations only). Read-only."""
    from pedsense.data.context_format import build_context
    from pedsense.data.intent import IntentOptions

    def build(folder: Path) -> None:
        build_context(copy_home(demo_raw, folder / "home"), intent=IntentOptions(sample_type="beh"))

    return built_once(tmp_path_factory, "demo_context", build) / "home"


@pytest.fixture
def context_home(demo_context, tmp_path, monkeypatch, copy_home) -> Path:
    home = copy_home(demo_context, tmp_path / "home")
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def trained(demo_context, tmp_path_factory, copy_home) -> tuple[Path, Path, list]:
    """One real 3-epoch GRU run on the demo build: (home, run folder, its events)."""
    home = copy_home(demo_context, tmp_path_factory.mktemp("trained") / "home")
    events = []
    run = train_context(epochs=3, batch_size=4, seed=1, device="cpu", home=home, on_event=events.append)
    return home, run, events


# -- the models ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, layers", [("gru", 1), ("gru", 2), ("transformer", 2)])
def test_both_models_stay_under_a_million_parameters(kind, layers):
    model = build_context_model(kind, DIMS, LENGTHS, hidden_size=64, num_layers=layers)
    assert parameter_count(model) < MAX_PARAMETERS
    batch = {g: torch.randn(5, 15, d) for g, d in DIMS.items()}
    assert model(batch).shape == (5, 2) and model.encode(batch).shape == (5, model.out_dim)


def test_a_new_gru_reads_the_whole_window_too_and_an_older_checkpoint_rebuilds_as_it_was(tmp_path):
    new = build_context_model("gru", DIMS, LENGTHS, hidden_size=16)
    assert new.model_args["window_mlp"] is True and new.out_dim == 32
    batch = {g: torch.randn(3, 15, d) for g, d in DIMS.items()}
    changed = {g: x.clone() for g, x in batch.items()}
    changed["box"][:, 0] += 5.0  # the window's oldest step reaches the summary through the MLP too
    new.eval()
    assert not torch.allclose(new.encode(batch)[:, 16:], new.encode(changed)[:, 16:])
    older = {k: v for k, v in new.model_args.items() if k != "window_mlp"}  # a checkpoint made before it
    rebuilt = ContextGRU(**older)
    assert rebuilt.window is None and rebuilt.out_dim == 16 and rebuilt(batch).shape == (3, 2)


def test_a_model_over_budget_is_refused_with_the_fix():
    with pytest.raises(DataError, match="over the context family's 1,000,000: lower hidden_size"):
        build_context_model("gru", DIMS, LENGTHS, hidden_size=512, num_layers=3)


def test_normalisation_lives_in_the_model_and_unknown_values_sit_at_the_mean():
    model = ContextGRU({"box": 2}, {"box": 4}, hidden_size=8)
    model.fit_normalisation({"box": np.array([[[100.0, 1.0]] * 4, [[300.0, np.nan]] * 4])})
    assert torch.allclose(model.mean_box, torch.tensor([200.0, 1.0]))
    normalised = model.normalised({"box": torch.tensor([[[200.0, np.nan]] * 4])})["box"]
    assert torch.equal(normalised, torch.zeros(1, 4, 2))


@pytest.mark.parametrize("epoch, epochs, windows, pedestrians, expected", [
    (8, 20, 1265, 120, None),
    (2, 20, 1265, 120, "the best epoch is early (2 of 20)"),
    (9, 20, 242, 22, "val holds only 242 windows from 22 pedestrians"),
    (1, 3, 242, 22, "val holds only 242 windows"),   # a 3-epoch run: no early-epoch note
])
def test_selection_note_says_when_the_chosen_epoch_rests_on_little(epoch, epochs, windows, pedestrians, expected):
    record = selection_record({"epoch": epoch}, epochs, windows, pedestrians)
    assert record["metric"] == "val_auc_binary" and record["epoch"] == epoch
    if expected is None:
        assert "note" not in record
    else:
        assert expected in record["note"] and ("early" in record["note"]) == (epoch <= epochs // 5 and epochs >= 5)


# -- training ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("chosen, sample_type, used", [("auto", "beh", "sqrt"), ("auto", "all", "none"),
                                                       ("balanced", "all", "balanced"), ("none", "beh", "none")])
def test_auto_class_weighting_is_the_sample_types_recipe_and_a_choice_is_kept(chosen, sample_type, used):
    # JAAD_all (20% crossing) trained with sqrt weighting predicted crossing too often (test
    # precision 0.47); its val chose no weighting, JAAD_beh's (82% crossing) needs sqrt
    assert weighting_used({"class_weighting": chosen}, sample_type) == used


@pytest.mark.parametrize("chosen, sample_type, used", [(3.0, "all", 3.0), (0.0, "all", 0.0), (1.5, "beh", 0.0)])
def test_the_relevance_target_weighs_only_on_all_builds(chosen, sample_type, used):
    assert relevance_used({"relevance_weight": chosen}, sample_type) == used


def test_the_behavioural_column_is_the_parsers_rule_on_the_real_files(jaad_context_home):
    from pedsense.data.context_format import load_context_split

    test = load_context_split(jaad_context_home, "test", sample_type="all")  # the 12 videos' split with both kinds
    behavioural = test.behavioural()
    assert set(np.unique(behavioural)) == {0.0, 1.0}
    # Track.is_behavioural: JAAD's `b` ids, its `pedestrian` tracks; the benchmark's all: bystanders never cross
    assert (behavioural == test.windows.ped_id.str.endswith("b")).all()
    assert (behavioural == (test.windows.track_label == "pedestrian")).all()
    assert not test.labels[behavioural == 0].any()


@pytest.mark.slow
def test_on_an_all_build_relevance_is_a_learned_target_never_an_input(demo_context, tmp_path, copy_home):
    from pedsense.data.context_format import build_context, load_context_split
    from pedsense.data.intent import IntentOptions
    home = copy_home(demo_context, tmp_path / "home")
    build_context(home, intent=IntentOptions(sample_type="all"))
    train = load_context_split(home, "train", sample_type="all").select(None)
    behavioural = train.behavioural()
    assert 0 < behavioural.mean() < 1  # the demo's bystanders are `ped` tracks

    run = train_context(epochs=6, batch_size=16, learning_rate=1e-2, seed=1, device="cpu", home=home,
                        sample_type="all", relevance_weight=3.0)
    config = RunFolder(run).read_config()
    assert config["parameters"]["relevance_weight"] == 3.0 and config["relevance_weight"] == 3.0
    assert config["features"] == ["box", "vehicle", "traffic", "history"]  # the target is not an input
    model, meta = load_context_model(run / "last.pt")
    assert meta["model_args"]["relevance"] is True
    x = {g: torch.as_tensor(train.groups[g]) for g in model.groups}
    with torch.no_grad():
        summary = model.encode(x)
        assert torch.equal(model(x), model.head(summary))  # predictions read the crossing head alone
        relevance = torch.sigmoid(model.relevance(summary)[:, 0]).numpy()
    # it learned the target: an untrained head (relevance_weight 1e-9) sits at a loss of ~0.44 here
    assert float(torch.nn.functional.binary_cross_entropy(torch.as_tensor(relevance),
                                                          torch.as_tensor(behavioural))) < 0.2

    off = train_context(epochs=1, batch_size=16, seed=1, device="cpu", home=home, sample_type="all")  # the default
    assert RunFolder(off).read_config()["relevance_weight"] == 0.0
    model, meta = load_context_model(off / "best.pt")
    assert model.relevance is None and "relevance" not in meta["model_args"]


def test_a_run_records_events_metrics_and_a_checkpoint_that_loads_alone(trained):
    home, run, events = trained
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished" and kinds.count("EpochEnd") == 3
    folder = RunFolder(run)
    assert folder.status == "completed" and run.parent == home / "models" / "context"
    rows = folder.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert {"val_auc_binary", "val_roc_auc", "val_f1", "val_acc"} <= set(rows[0])
    config = folder.read_config()
    assert config["sample_type"] == "beh" and config["features"] == ["box", "vehicle", "traffic", "history", "behaviour"]
    assert config["parameters"]["model"] == "gru" and config["parameter_count"] < MAX_PARAMETERS
    assert config["parameters"]["class_weighting"] == "auto" and config["class_weighting"] == "sqrt"  # beh's recipe
    assert config["relevance_weight"] == 0.0  # every beh window is a behaviour pedestrian
    best = max(rows, key=lambda r: r["val_auc_binary"])
    assert config["best_metric"]["name"] == "val_auc_binary" and config["best_metric"]["epoch"] == best["epoch"]
    assert f"val holds only {config['dataset']['val']} windows" in config["selection"]["note"]  # tiny val
    model, meta = load_context_model(run / "best.pt")  # from its own path alone
    assert meta["epoch"] == best["epoch"] and meta["features"] == config["features"]
    from pedsense.data.context_format import load_context_split

    val = load_context_split(home, "val")
    assert predict_proba(model, val.groups).shape == (len(val), 2)


@pytest.mark.slow
def test_evaluate_json_reports_both_aucs_and_the_trivial_baselines(trained, monkeypatch, capsys):
    home, run, _ = trained
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    # the tests' demo set has no test windows: val goes through the same code (`--split test` on JAAD)
    assert main(["evaluate", str(run), "--split", "val", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    from pedsense.data.context_format import load_context_split

    test = load_context_split(home, "val")
    intent = result["intent"]
    assert {"accuracy", "auc_binary", "roc_auc", "f1", "precision", "recall"} <= set(intent)
    assert intent["n"] == len(test) > 0 and result["task"] == "intent"
    baselines = {row["model"]: row for row in result["benchmark"]["baselines"]}
    assert baselines["always crossing"]["n"] == len(test)
    assert baselines["always crossing"]["accuracy"] == pytest.approx(test.labels.mean())
    assert result["benchmark"]["inputs"] == ["box", "speed", "traffic", "behaviour"]
    assert result["predictions"]["kind"] == "window" and result["predictions"]["rows"] == len(test)
    assert main(["evaluate", str(run), "--split", "val"]) == 0
    text = capsys.readouterr().out
    assert "trivial baselines on the same samples" in text and "auc_binary" in text and "roc_auc" in text


@pytest.mark.slow
def test_a_stopped_run_resumes_to_every_epoch_once(context_home):
    from pedsense.train.resume import resume_run

    epochs_seen = []

    def stop_after_first(event):
        if type(event).__name__ == "EpochEnd":
            epochs_seen.append(event.epoch)

    run = train_context(epochs=3, batch_size=4, device="cpu", on_event=stop_after_first,
                        should_stop=lambda: bool(epochs_seen))
    assert RunFolder(run).status == "stopped" and epochs_seen == [1]
    resume_run(run)
    folder = RunFolder(run)
    assert folder.status == "completed"
    assert [r["epoch"] for r in folder.read_metrics()] == [1, 2, 3]
    assert len(folder.read_config()["resumes"]) == 1


def test_cli_refuses_behaviour_on_an_all_build_as_a_presence_leak(jaad_context_home, tmp_path, monkeypatch,
                                                                    copy_home, capsys):
    home = copy_home(jaad_context_home, tmp_path / "home")
    shutil.rmtree(home / "data" / "processed" / "context" / "beh")  # an `all` build only
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    assert main(["--home", str(home), "train", "context", "--features", "box,vehicle,traffic,behaviour"]) != 0
    err = capsys.readouterr().err
    assert "presence leak" in err and "features" in err
    assert list_runs(home=home) == []  # refused before any run folder exists


def test_cli_refuses_unknown_and_label_features(context_home, capsys):
    assert main(["train", "context", "--features", "box,crossing_point"]) != 0
    assert "can never be a context feature" in capsys.readouterr().err
    assert main(["train", "context", "--features", "boxes"]) != 0
    assert "Unknown context feature `boxes`" in capsys.readouterr().err


def test_no_build_says_how_to_make_one(tmp_home, capsys):
    assert main(["train", "context"]) != 0
    assert "pedsense preprocess context" in capsys.readouterr().err


def test_train_context_page_draws_its_form(context_home):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=60)
    at.switch_page("pages/train_context.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Train Context"]
    assert at.selectbox(key="form.context.model").options == ["gru", "transformer"]
    assert at.text_input(key="form.context.features") is not None


# -- the Errors page's player without frames (item 7) ----------------------------------------------
def test_a_window_without_frames_plays_as_its_trajectory_on_a_blank_frame(jaad_context_home, tmp_path):
    import cv2

    from pedsense.data.context_format import load_context_split
    from pedsense.errors_browser.playback import BLANK, frames_exist, window_frames, write_clip
    from pedsense.infer.intent_series import clip_annotation
    from pedsense.config import paths

    test = load_context_split(jaad_context_home, "test", sample_type="all")
    window = test.windows.iloc[0].to_dict()
    assert not frames_exist(window["video_id"], jaad_context_home)  # annotations only, no clips
    row = {**window, "kind": "window", "label": int(test.labels[0]), "p_crossing": 0.8,
           "event_source": "crossing_point"}
    annotation = clip_annotation(paths(jaad_context_home).clip(window["video_id"]), jaad_context_home)
    frames = window_frames(row, obs_length=16, max_horizon=2, max_width=480, home=jaad_context_home,
                           annotation=annotation)
    assert len(frames.observed) == 16 and "blank frame" in frames.notes[0]
    first = frames.images[0]
    assert first.shape[1] == 480 and first.shape[0] == round(480 * annotation.height / annotation.width)
    box = annotation.track(window["track_id"]).box_at(frames.observed[-1])
    scale = 480 / annotation.width
    centre = (int((box.ytl + box.ybr) / 2 * scale), int(box.xtl * scale))  # on the box's left edge
    drawn = frames.images[len(frames.observed) - 1]
    assert (np.abs(drawn[centre[0], centre[1] - 1:centre[1] + 2].astype(int) - BLANK).sum() > 0)
    assert (drawn[-5, 5] == BLANK).all()  # the frame is blank where nothing is drawn
    output = write_clip(frames, tmp_path / "window.webm")
    capture = cv2.VideoCapture(str(output))
    read = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or sum(1 for _ in iter(lambda: capture.read()[0], False))
    codec = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode(errors="replace")
    capture.release()
    assert read == len(frames.images) and output.suffix == ".webm" and codec.upper() in ("VP80", "VP90", "VP8\x00", "VP9\x00")


@pytest.mark.slow
def test_errors_page_plays_a_context_window_without_clips(trained, tmp_path, monkeypatch, copy_home):
    from streamlit.testing.v1 import AppTest

    from pedsense.data.video import video_info
    from pedsense.evaluation import evaluate

    home = copy_home(trained[0], tmp_path / "home")
    shutil.rmtree(home / "data" / "raw" / "clips")  # annotations only: no frame can be read
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    run = home / "models" / "context" / trained[1].name
    evaluate(run, "val", home=home)
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "errors.py"), default_timeout=120)
    at.session_state["errors_run"] = f"context/{run.name}"
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key="errors_play").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    texts = " ".join(str(c.value) for c in at.caption)
    assert "drawn from its annotations" in texts
    clip = at.session_state["errors_play_clip"]
    assert clip.endswith(".webm") and video_info(clip).frame_count >= 16
    assert at.button(key="errors_play_track").disabled  # no clip to run a model over


@pytest.mark.slow
def test_cli_train_context_prints_the_val_auc_and_the_selection_note(context_home, capsys):
    assert main(["--home", str(context_home), "train", "context", "--seed", "1", "--epochs", "1",
                 "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "val_auc_binary=" in out and "val_roc_auc=" in out
    assert "note: Epoch 1 was chosen by val balanced accuracy, but val holds only" in out
    assert [run.model_type for run in list_runs(home=context_home)] == ["context"]
