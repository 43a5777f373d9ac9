"""ONNX and OpenVINO exports: files and record in the run folder, ONNX Runtime's and OpenVINO's
predictions equal PyTorch's within fp32 tolerance, the fastest engine timed and recorded on
first use, stale exports, engines that fail to load and missing packages said (with a fallback)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from pedsense.data.video import read_video_frame
from pedsense.export import ExportError, export_run
from pedsense.geometry import match_boxes
from pedsense.infer import BackendUnavailable, load_clip_ground_truth, load_predictor
from pedsense.infer import engines
from pedsense.infer.backends import cpu_has_bf16, openvino_telemetry_off, read_exports
from pedsense.infer.engines import AGREEMENT_TOLERANCE, TIMINGS_RECORD
from test_infer_fixtures import demo_clip, infer_home, infer_home_base, run_of  # noqa: F401

pytestmark = pytest.mark.slow
MODEL_TYPES = ("yolo", "hybrid", "resnet-lstm")
LOW_CONF = 0.001  # a 1-epoch detector is unsure of everything: still yields boxes


def copy_run(run, home):
    """A copy of one run folder under ``home/models`` (weights hard-linked: exports add files only)."""
    target = home / "models" / run.parent.name / run.name
    shutil.copytree(run, target, copy_function=os.link)
    return target


@pytest.fixture(scope="module")
def exported(infer_home_base, tmp_path_factory):
    """{model type: a copy of its tiny run, exported to ONNX once}."""
    home = tmp_path_factory.mktemp("onnx_runs")
    runs = {}
    for model_type in MODEL_TYPES:
        runs[model_type] = copy_run(run_of(infer_home_base, model_type), home)
        export_run(runs[model_type])
    return runs


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_export_writes_the_files_and_the_record_load_predictor_reads(exported, model_type):
    run = exported[model_type]
    assert set(json.loads((run / "export.json").read_text())["formats"]) == {"onnx"}
    record = read_exports(run)["onnx"]
    expected = {"yolo": {"detector"}, "hybrid": {"detector", "classifier"},
                "resnet-lstm": {"features", "temporal"}}[model_type]
    assert record["format"] == "onnx" and set(record["components"]) == expected
    for part in record["components"].values():
        assert (run / part["file"]).is_file() and part["file"].endswith(".onnx")
        if "max_abs_diff" in part:  # the ResNet parts are checked against PyTorch at export
            assert part["max_abs_diff"] < 1e-4
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")], "no temporary file is left"
    predictor = load_predictor(run, device="cpu", backend="onnx")
    assert predictor.backend == "onnxruntime"
    assert predictor.describe_backend().startswith("ONNX Runtime")
    assert load_predictor(run, device="cpu", backend="pytorch").backend == "pytorch"


def _same_predictions(torch_side, onnx_side, score_tolerance=1e-4):
    """Boxes matched one-to-one (a tie in confidence may order equal boxes differently), then
    detector confidences compared within fp32 tolerance, crossing scores within
    ``score_tolerance``, and the labels of every pedestrian whose score is not within it of 0.5."""
    assert len(torch_side) == len(onnx_side)
    pairs = match_boxes(torch_side.xyxy, onnx_side.xyxy, threshold=0.99)
    assert len(pairs) == len(torch_side)
    i, j = (np.array(k, int) for k in zip(*pairs)) if pairs else (np.empty(0, int), np.empty(0, int))
    assert np.allclose(np.sort(torch_side.confidences), np.sort(onnx_side.confidences), atol=1e-4, equal_nan=True)
    scores = torch_side.crossing_scores[i]
    assert np.allclose(scores, onnx_side.crossing_scores[j], atol=score_tolerance, equal_nan=True)
    decisive = ~(np.abs(scores - 0.5) <= score_tolerance)  # NaN (buffering) counts: both say so
    assert ([torch_side.labels[k] for k, d in zip(i, decisive) if d]
            == [onnx_side.labels[k] for k, d in zip(j, decisive) if d])


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_onnx_runtime_predicts_what_pytorch_predicts(exported, infer_home, model_type):
    clip = demo_clip(infer_home)
    truth, _ = load_clip_ground_truth(clip, infer_home)
    with_torch = load_predictor(exported[model_type], device="cpu", conf=LOW_CONF, backend="pytorch")
    with_onnx = load_predictor(exported[model_type], device="cpu", conf=LOW_CONF, backend="onnx")
    decided = 0
    for index in range(with_torch.history + 2):  # a ResNet-LSTM decides once its buffers are full
        frame = read_video_frame(clip, index)
        a = with_torch.predict(frame, index, truth.at(index))
        b = with_onnx.predict(frame, index, truth.at(index))
        _same_predictions(a, b)
        decided += sum(label != "buffering" for label in b.labels)
    assert decided > 0


def test_a_stale_export_is_not_used(exported, tmp_path):
    run = copy_run(exported["hybrid"], tmp_path)
    classifier = run / "resnet_classifier.pt"
    # the run is retrained: new weights file (its own inode, not the shared hard link)
    shutil.copy(classifier, tmp_path / "new.pt")
    os.utime(tmp_path / "new.pt", ns=(1, 1))
    os.replace(tmp_path / "new.pt", classifier)
    predictor = load_predictor(run, device="cpu")
    assert predictor.backend == "pytorch"
    assert "older than resnet_classifier.pt" in predictor.describe_backend()
    with pytest.raises(BackendUnavailable, match="pedsense export"):
        load_predictor(run, device="cpu", backend="onnx")


def test_onnx_backend_without_an_export_says_how_to_make_one(infer_home):
    run = run_of(infer_home, "resnet-lstm")
    assert load_predictor(run, device="cpu").backend == "pytorch"
    with pytest.raises(BackendUnavailable, match="pedsense export .* --format onnx"):
        load_predictor(run, device="cpu", backend="onnx")


def test_export_without_the_onnx_package_names_it(infer_home, tmp_path, monkeypatch):
    run = copy_run(run_of(infer_home, "resnet-lstm"), tmp_path)
    before = sorted(p.name for p in run.iterdir())
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ExportError, match="needs the `onnx` package.*pip install onnx"):
        export_run(run)
    assert sorted(p.name for p in run.iterdir()) == before, "nothing is written"


@pytest.mark.parametrize("opset", ["999", "3"])
def test_export_checks_the_opset_first(infer_home, tmp_path, capsys, opset):
    from pedsense.cli import main

    run = copy_run(run_of(infer_home, "resnet-lstm"), tmp_path)
    before = sorted(p.name for p in run.iterdir())
    assert main(["export", str(run), "--opset", opset]) == 2
    err = capsys.readouterr().err
    assert "opset must be an ONNX opset from 7 to 20" in err and f"got {opset}" in err
    assert len(err.strip().splitlines()) == 1, err  # one line, no graph dump
    assert sorted(p.name for p in run.iterdir()) == before, "nothing is written"


def test_cli_export_then_predict_uses_onnx_runtime(infer_home, tmp_path, capsys):
    from pedsense.cli import main

    run = copy_run(run_of(infer_home, "yolo"), tmp_path)
    assert main(["export", str(run), "--format", "onnx"]) == 0
    assert "best.onnx from best.pt" in capsys.readouterr().out
    out = tmp_path / "overlay.webm"
    assert main(["predict", str(run), demo_clip(infer_home).stem, "-o", str(out)]) == 0
    # auto: ONNX Runtime and PyTorch timed on first use, the fastest runs the detector
    assert "detector: fastest measured here (" in capsys.readouterr().err
    assert (run / TIMINGS_RECORD).is_file() and out.is_file()


# -- OpenVINO, and the fastest engine -------------------------------------------------------------
@pytest.fixture(scope="module")
def exported_both(exported, tmp_path_factory):
    """{model type: a copy of its ONNX-exported run, exported to OpenVINO as well} for the hybrid
    (detector by Ultralytics' exporter, classifier by openvino.convert_model) and the
    ResNet-LSTM (its features and temporal halves)."""
    home = tmp_path_factory.mktemp("openvino_runs")
    runs = {}
    for model_type in ("hybrid", "resnet-lstm"):
        runs[model_type] = copy_run(exported[model_type], home)
        export_run(runs[model_type], "openvino")
    return runs


def test_an_openvino_export_sends_no_telemetry_and_writes_nothing_in_the_users_home(exported, tmp_path):
    # OpenVINO's converter phones Google Analytics and keeps a client id in ~/intel unless told not to
    run = copy_run(exported["resnet-lstm"], tmp_path / "home")
    user = tmp_path / "user"
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    script = ("import os, sys; from pedsense.export import export_run; export_run(sys.argv[1], 'openvino'); "
              "print('CI after:', os.environ.get('CI'))")
    done = subprocess.run([sys.executable, "-c", script, str(run)], env={**env, "HOME": str(user)},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "openvino" in read_exports(run)
    assert list(user.iterdir()) == [], "nothing is written in the user's home"
    assert "CI after: None" in done.stdout  # the switch is set for the export only


def test_the_telemetry_switch_comes_back_as_it_was_when_blocks_nest_and_overlap(monkeypatch):
    monkeypatch.setenv("CI", "mine")
    entered, may_leave = threading.Event(), threading.Event()

    def other_session():  # enters after this thread, leaves after it
        with openvino_telemetry_off():
            entered.set()
            may_leave.wait(60)

    thread = threading.Thread(target=other_session)
    with openvino_telemetry_off(), openvino_telemetry_off():
        thread.start()
        assert entered.wait(60) and os.environ["CI"] == "true"
    assert os.environ["CI"] == "true", "the other session is still converting"
    may_leave.set()
    thread.join(60)
    assert os.environ["CI"] == "mine"
    monkeypatch.delenv("CI")
    with openvino_telemetry_off():
        assert os.environ["CI"] == "true"
    assert "CI" not in os.environ


@pytest.mark.parametrize("model_type", ["hybrid", "resnet-lstm"])
def test_openvino_export_sits_beside_the_onnx_one_and_predicts_what_pytorch_predicts(exported_both, infer_home,
                                                                                     model_type):
    run = exported_both[model_type]
    records = read_exports(run)
    assert set(records) == {"onnx", "openvino"}, "an OpenVINO export keeps the ONNX one"
    for part in records["openvino"]["components"].values():
        assert (run / part["file"]).exists()
        if "max_abs_diff" in part:
            assert part["max_abs_diff"] < 1e-4, "OpenVINO runs at fp32, as the model was trained"
    clip = demo_clip(infer_home)
    truth, _ = load_clip_ground_truth(clip, infer_home)
    with_torch = load_predictor(run, device="cpu", conf=LOW_CONF, backend="pytorch")
    with_openvino = load_predictor(run, device="cpu", conf=LOW_CONF, backend="openvino")
    assert with_openvino.backend == "openvino" and with_openvino.describe_backend().startswith("OpenVINO")
    for index in range(with_torch.history + 1):
        frame = read_video_frame(clip, index)
        _same_predictions(with_torch.predict(frame, index, truth.at(index)),
                          with_openvino.predict(frame, index, truth.at(index)))


def test_auto_times_every_engine_once_and_runs_each_stage_on_the_fastest(exported_both, tmp_path):
    run = copy_run(exported_both["hybrid"], tmp_path)
    predictor = load_predictor(run, device="cpu")
    timings = json.loads((run / TIMINGS_RECORD).read_text())
    (entry,) = timings.values()
    fastest = {group: min(seconds, key=seconds.get) for group, seconds in entry["groups"].items()}
    assert set(entry["groups"]["detector"]) == {"onnxruntime", "openvino", "pytorch"}
    assert predictor.choice.engines == {"detector": fastest["detector"], "classifier": fastest["classifier"]}
    assert "detector: fastest measured here" in predictor.describe_backend()
    # the second load reads the timings instead of measuring again
    again = load_predictor(run, device="cpu")
    assert json.loads((run / TIMINGS_RECORD).read_text()) == timings
    assert again.choice.engines == predictor.choice.engines


def test_without_openvino_installed_the_next_engine_runs_and_the_package_is_named(exported_both, tmp_path,
                                                                                 monkeypatch):
    run = copy_run(exported_both["resnet-lstm"], tmp_path)
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises ImportError
    predictor = load_predictor(run, device="cpu")
    assert "openvino" not in predictor.backend
    assert "OpenVINO is not installed (pip install openvino)" in predictor.describe_backend()
    with pytest.raises(BackendUnavailable, match="needs the `openvino` package: pip install openvino"):
        load_predictor(run, device="cpu", backend="openvino")
    with pytest.raises(ExportError, match="needs the `openvino` package.*pip install openvino"):
        export_run(run, "openvino")
    assert set(read_exports(run)) == {"onnx", "openvino"}, "a refused export loses nothing"


def test_an_export_that_fails_to_load_is_passed_over_saying_which(exported_both, tmp_path):
    run = copy_run(exported_both["hybrid"], tmp_path)
    broken = run / read_exports(run)["openvino"]["components"]["classifier"]["file"]
    broken.unlink()  # the hard link, not the shared file
    broken.write_text("<net>truncated")
    predictor = load_predictor(run, device="cpu")
    assert predictor.choice.engines["classifier"] in ("onnxruntime", "pytorch")
    assert "OpenVINO could not load the classifier export" in predictor.describe_backend()
    with pytest.raises(BackendUnavailable, match="could not be loaded by OpenVINO"):
        load_predictor(run, device="cpu", backend="openvino")


def test_engines_are_timed_in_turns_so_a_burst_of_load_falls_on_all_alike():
    calls = []

    class Stage:  # a crop model's surface, as engines.probe calls it
        crop_size, splits_into_features = (8, 8), False

        def __init__(self, name):
            self.name = name

        def classify(self, crops):
            calls.append(self.name)
            return np.full((len(crops), 2), 0.5, np.float32)

    seconds = engines.time_models({"openvino": Stage("openvino"), "pytorch": Stage("pytorch")})
    assert calls == ["openvino", "pytorch"] * (1 + engines.TIMED_CALLS), "a warm-up each, then turns"
    assert set(seconds) == {"openvino", "pytorch"} and all(value >= 0 for value in seconds.values())


@pytest.mark.parametrize("record", [
    {"formats": {"onnx": {"components": [1]}}},
    {"formats": {"onnx": {"components": {"features": {"file": None}, "temporal": {"file": 3}}}}},
    {"formats": {"onnx": {"components": {"features": [1], "temporal": {}}}}},
    {"formats": {"onnx": {"components": {"features": {"file": "f.onnx"}, "temporal": {"file": "t.onnx"}}}}},
    {"formats": [1]}, [1], "export",
], ids=["components-list", "file-not-text", "component-list", "no-source", "formats-list", "list", "text"])
def test_an_export_record_that_is_not_ours_leaves_pytorch_and_says_how_to_export_again(tmp_path, record):
    from pedsense.infer.backends import choose_backend

    (tmp_path / "export.json").write_text(json.dumps(record))
    choice = choose_backend(tmp_path, "resnet-lstm", "auto", "cpu")
    assert choice.candidates == ("pytorch",)
    assert "pedsense export" in choice.reason and "None" not in choice.reason
    with pytest.raises(BackendUnavailable, match="pedsense export"):
        choose_backend(tmp_path, "resnet-lstm", "onnx", "cpu")


def test_a_timings_record_with_values_that_are_not_numbers_is_measured_again(exported_both, tmp_path):
    run = copy_run(exported_both["resnet-lstm"], tmp_path)
    load_predictor(run, device="cpu")
    timings = json.loads((run / TIMINGS_RECORD).read_text())
    (entry,) = timings.values()
    for group in entry["groups"].values():
        group.update(dict.fromkeys(group, "fast"))  # a hand edit, or another tool's file
    for group in (entry.get("agreement") or {}).values():
        group.update(dict.fromkeys(group, [0.1]))
    (run / TIMINGS_RECORD).write_text(json.dumps(timings))
    predictor = load_predictor(run, device="cpu")
    assert "fastest measured here" in predictor.describe_backend()
    (entry,) = json.loads((run / TIMINGS_RECORD).read_text()).values()
    assert all(isinstance(v, float) for group in entry["groups"].values() for v in group.values())
    for foreign in ([1, 2], {next(iter(timings)): {**entry, "groups": "x", "agreement": 3}}):
        (run / TIMINGS_RECORD).write_text(json.dumps(foreign))
        assert "fastest measured here" in load_predictor(run, device="cpu").describe_backend()
        (entry,) = json.loads((run / TIMINGS_RECORD).read_text()).values()
        assert "features+temporal" in entry["groups"]


# -- OpenVINO in bf16 -----------------------------------------------------------------------------
def _skip_without_bf16():
    if not cpu_has_bf16():
        pytest.skip("needs a CPU with bf16 units (AVX512-BF16 or AMX), as OpenVINO finds them")


@pytest.mark.parametrize("model_type", ["hybrid", "resnet-lstm"])
def test_openvino_bf16_runs_the_cnn_in_bf16_the_rest_in_float32_close_to_pytorch(exported_both, infer_home,
                                                                                 model_type):
    _skip_without_bf16()
    run = exported_both[model_type]
    with_torch = load_predictor(run, device="cpu", conf=LOW_CONF, backend="pytorch")
    with_bf16 = load_predictor(run, device="cpu", conf=LOW_CONF, backend="openvino-bf16")
    precisions = {name: runner.__self__.precision for name, runner in with_bf16.classifier.sessions.items()}
    if model_type == "hybrid":
        assert with_bf16.choice.engines == {"detector": "openvino", "classifier": "openvino-bf16"}
        assert precisions == {"classifier": "bf16"}
        assert "the detector runs at float32 (OpenVINO bf16 runs the crop models only)" in (
            with_bf16.describe_backend())
    else:
        assert precisions == {"features": "bf16", "temporal": "f32"}, "the LSTM stays float32"
    assert "OpenVINO bf16" in with_bf16.describe_backend()
    clip = demo_clip(infer_home)
    truth, _ = load_clip_ground_truth(clip, infer_home)
    for index in range(with_torch.history + 1):
        frame = read_video_frame(clip, index)
        _same_predictions(with_torch.predict(frame, index, truth.at(index)),
                          with_bf16.predict(frame, index, truth.at(index)), score_tolerance=0.05)


def test_auto_takes_bf16_only_where_it_agrees_with_float32(exported_both, tmp_path, monkeypatch):
    _skip_without_bf16()
    run = copy_run(exported_both["hybrid"], tmp_path / "measured")
    predictor = load_predictor(run, device="cpu")
    (entry,) = json.loads((run / TIMINGS_RECORD).read_text()).values()
    assert set(entry["groups"]["classifier"]) == {"onnxruntime", "openvino", "openvino-bf16", "pytorch"}
    assert "openvino-bf16" not in entry["groups"]["detector"], "boxes stay float32"
    measured = entry["agreement"]["classifier"]["openvino-bf16"]
    assert 0 < measured < AGREEMENT_TOLERANCE, "bf16 moves a trained model's probabilities a little"
    timed = entry["groups"]["classifier"]
    assert predictor.choice.engines["classifier"] == min(timed, key=timed.get), "it agrees: the fastest runs"
    assert "classifier: OpenVINO bf16 agrees with float32 to" in predictor.describe_backend()
    # a tolerance the measured difference exceeds: passed over, when measured and when read back
    monkeypatch.setattr(engines, "AGREEMENT_TOLERANCE", measured / 2)
    for target in (run, copy_run(exported_both["hybrid"], tmp_path / "strict")):
        strict = load_predictor(target, device="cpu")
        assert strict.choice.engines["classifier"] != "openvino-bf16"
        assert re.search(r"OpenVINO bf16 differs by up to 0\.\d{3} from float32 on the classifier probe "
                         r"\(tolerance [0-9.e-]+\): passed over", strict.describe_backend())


def test_a_cpu_without_bf16_units_is_never_offered_bf16(exported_both, tmp_path, monkeypatch):
    from pedsense.infer import backends

    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: False)
    run = copy_run(exported_both["resnet-lstm"], tmp_path)
    assert "openvino-bf16" not in backends.choose_backend(run, "resnet-lstm", "auto", "cpu").candidates
    with pytest.raises(BackendUnavailable, match="needs a CPU with bf16 units .* use backend='openvino'"):
        load_predictor(run, device="cpu", backend="openvino-bf16")


def test_the_cli_offers_every_engine_and_format():
    from pedsense.commands.infer import BACKEND_CHOICES, EXPORT_FORMATS
    from pedsense.export import FORMATS
    from pedsense.infer.backends import BACKENDS

    assert BACKEND_CHOICES == BACKENDS and EXPORT_FORMATS == FORMATS
