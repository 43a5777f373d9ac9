"""Evaluation metrics equal scikit-learn's on hand-made prediction sets; box matching; saved results."""

import numpy as np
import pytest
from sklearn import metrics as skm

from pedsense.evaluation import box_iou, intent_metrics, match_boxes
from pedsense.metrics import classification_metrics

# (y_true, y_pred, P(crossing)): hand-made, including ties, one-sided and all-wrong cases.
CASES = {
    "mixed": ([0, 0, 1, 1, 1, 0, 1, 0, 0, 1], [0, 1, 1, 1, 0, 0, 1, 0, 1, 1],
              [0.1, 0.6, 0.8, 0.9, 0.4, 0.2, 0.7, 0.3, 0.55, 0.95]),
    "ties": ([0, 1, 0, 1, 1, 0], [0, 1, 1, 1, 0, 0], [0.5, 0.5, 0.5, 0.7, 0.2, 0.2]),
    "imbalanced": ([0] * 9 + [1], [0] * 8 + [1, 1], [0.1] * 8 + [0.6, 0.9]),
    "never predicts crossing": ([0, 1, 1, 0], [0, 0, 0, 0], [0.2, 0.4, 0.3, 0.1]),
    "all wrong": ([1, 0, 1, 0], [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_intent_metrics_equal_scikit_learn(case):
    y_true, y_pred, scores = CASES[case]
    ours = intent_metrics(y_true, y_pred, scores)
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert ours["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert ours["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, zero_division=0))
    assert ours["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, zero_division=0))
    assert ours["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, zero_division=0))
    assert ours["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, scores))
    assert ours["auc_binary"] == pytest.approx(skm.roc_auc_score(y_true, y_pred))
    assert ours["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist()
    assert ours["n"] == len(y_true)


def test_auc_is_undefined_with_one_class():
    assert classification_metrics([1, 1, 1], [0.2, 0.5, 0.9])["roc_auc"] is None
    metrics = intent_metrics([1, 1], [1, 0], [0.9, 0.1])
    assert metrics["roc_auc"] is None
    assert metrics["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score([1, 1], [1, 0]))


def test_empty_split_is_a_clear_error():
    from pedsense.errors import DataError

    with pytest.raises(DataError, match="No samples"):
        intent_metrics([], [])


@pytest.mark.parametrize("pred,true,expected", [
    (np.empty((0, 4)), np.array([[0, 0, 10, 10]]), []),
    (np.array([[0, 0, 10, 10]]), np.empty((0, 4)), []),
    (np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10]]), [(0, 0)]),
    (np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]), []),   # IoU 1/3
    # both predictions overlap truth 0; the better one wins and the other takes truth 1
    (np.array([[0, 0, 10, 10], [1, 0, 11, 10]]), np.array([[1, 0, 11, 10], [2, 0, 12, 10]]), [(1, 0), (0, 1)]),
])
def test_match_boxes(pred, true, expected):
    assert sorted(match_boxes(pred, true)) == sorted(expected)


def test_box_iou_values():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    assert iou.shape == (1, 3)
    assert iou[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0])


# -- evaluate() on tiny trained runs --------------------------------------------------------------
from test_infer_fixtures import infer_home, infer_home_base, run_of  # noqa: E402,F401


def _check_intent(section):
    for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1"):
        assert 0.0 <= section[key] <= 1.0
    assert np.array(section["confusion_matrix"]).sum() == section["n"]


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["yolo", "hybrid", "resnet-lstm"])
def test_evaluate_saves_metrics_in_the_run_folder(infer_home, model_type):
    import json

    import pedsense

    run = run_of(infer_home, model_type)
    result = pedsense.evaluate(run, split="val", device="cpu", max_images=6, conf=0.001)
    saved = json.loads((run / "evaluation_val.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["model_type"] == model_type and saved["split"] == "val"
    if model_type in ("yolo", "hybrid"):
        detection = saved["detection"]
        assert 0.0 <= detection["mAP50-95"] <= detection["mAP50"] <= 1.0
        matched = saved["matched_intent"]
        assert "skipped" in matched or (matched["matched"] > 0 and _check_intent(matched) is None)
    if model_type in ("hybrid", "resnet-lstm"):
        _check_intent(saved["intent"])


@pytest.mark.slow
def test_evaluate_bad_input(infer_home, tmp_path, monkeypatch):
    from pedsense.errors import ConfigError, DataError
    from pedsense.evaluation import evaluate
    from pedsense.runfolder import RunNotFound

    with pytest.raises(ConfigError, match="split must be one of"):
        evaluate(run_of(infer_home, "yolo"), split="holdout")
    with pytest.raises(RunNotFound):
        evaluate("yolo/no_such_run")
    lstm, yolo = run_of(infer_home, "resnet-lstm"), run_of(infer_home, "yolo")
    monkeypatch.setenv("PEDSENSE_HOME", str(tmp_path))  # a data home with no dataset built
    with pytest.raises(DataError, match="not built yet"):
        evaluate(lstm, device="cpu")
    with pytest.raises(DataError, match="preprocess yolo"):
        evaluate(yolo, device="cpu")
