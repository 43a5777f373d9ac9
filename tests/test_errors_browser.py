"""The error browser's library: the predictions table, filters, metrics at a threshold, curves,
per-attribute metrics, worst-first lists, two-run joins, dataset drift and window playback.

The tables are built from the real builds of the demo sets (``intent_home``: benchmark windows;
``demo_home``: ``action`` sequences) with the model's probabilities drawn at random: what is
under test is what pedsense does with a model's outputs, not the model.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from pedsense.config import paths
from pedsense.data.jaad import parse_attributes
from pedsense.errors import DataError
from pedsense.errors_browser import (COLUMNS, Filters, NotEvaluated, browse, dataset_drift, dataset_stamp,
                                     disagreeing, disagreement_counts, join_runs, read_predictions,
                                     shared_metrics, worst_first)
from pedsense.errors_browser.table import build_table, predictions_path, write_predictions
from pedsense.metrics import classification_metrics, threshold_curves
from pedsense.train.samples import read_split_rows


def _rows(home, name: str, split: str = "val") -> list[dict]:
    return read_split_rows(paths(home).resnet / name, split, name, "pedsense preprocess resnet")


def _table(home, name="labels.csv", split="val", seed=0) -> pd.DataFrame:
    rows = _rows(home, name, split)
    labels = [int(r["label"]) for r in rows]
    p = np.random.default_rng(seed).random(len(rows))
    return build_table(labels, p, rows, split=split, home=home)


# -- the table --------------------------------------------------------------------------------------
def test_intent_windows_keep_the_build_columns_and_the_jaad_attributes(intent_home):
    rows = _rows(intent_home, "labels.csv")
    table = _table(intent_home)
    assert list(table.columns) == list(COLUMNS) and len(table) == len(rows) > 0
    assert set(table["kind"]) == {"window"} and set(table["split"]) == {"val"}
    by_id = table.set_index("sample_id")
    for row in rows:
        got = by_id.loc[row["sequence_id"]]
        assert (got.video_id, got.track_id, got.start_frame, got.end_frame, got.label) == \
            (row["video_id"], row["track_id"], int(row["start_frame"]), int(row["end_frame"]), int(row["label"]))
        assert got.tte == int(row["tte"]) and got.event_frame == int(row["event_frame"])
        assert got.occlusion == row["occlusion"] and got.weather == row["weather"]
        attributes = parse_attributes(paths(intent_home).attributes_file(row["video_id"]))[row["track_id"]]
        assert (got.age, got.gender, got.designated) == (attributes["age"], attributes["gender"],
                                                          attributes["designated"])
        assert got.group_size == str(attributes["group_size"])
        assert got.event_source == ("crossing_point" if attributes["crossing_point"] == got.event_frame
                                    else "track_end")
    assert set(table["tte_bin"]) <= {"30-39", "40-49", "50-60"}


def test_action_sequences_get_tte_and_conditions_from_the_annotation(demo_home):
    from pedsense.data.jaad import parse_annotation
    from pedsense.data.intent import TrackEvent, track_event

    table = _table(demo_home)
    assert len(table) and set(table["kind"]) == {"window"}
    annotations = {video: parse_annotation(paths(demo_home).annotation(video), paths(demo_home).attributes_file(video))
                   for video in set(table["video_id"])}
    for row in table.itertuples():
        annotation = annotations[row.video_id]
        event = track_event(annotation.track(row.track_id))
        assert isinstance(event, TrackEvent)
        assert row.event_frame == event.frame and row.tte == event.frame - row.end_frame
        assert row.event_source == event.source
        assert row.tte_bin == ("after event" if row.tte < 0 else row.tte_bin)
        assert row.time_of_day == annotation.time_of_day and row.track_label == "pedestrian"
        assert row.age != "unknown"


def test_crops_are_scored_one_frame_each(intent_home):
    table = _table(intent_home, "crops.csv")
    assert set(table["kind"]) == {"crop"} and (table["start_frame"] == table["end_frame"]).all()
    assert (table["tte"] == table["event_frame"] - table["end_frame"]).all()


def test_detections_find_their_pedestrian_by_box(demo_home):
    from pedsense.data.jaad import parse_annotation

    video = "video_0002"
    annotation = parse_annotation(paths(demo_home).annotation(video), paths(demo_home).attributes_file(video))
    track = next(t for t in annotation.tracks if t.label == "pedestrian" and len(t.boxes) > 5)
    box = track.boxes[5]
    rows = [{"sample_id": f"{video}_{box.frame:06d}_0", "video_id": video, "frame": box.frame,
             "xyxy": list(box.xyxy), "image_wh": (annotation.width, annotation.height)},
            {"sample_id": f"{video}_{box.frame:06d}_1", "video_id": video, "frame": box.frame,
             "xyxy": [0.0, 0.0, 2.0, 2.0], "image_wh": (annotation.width, annotation.height)}]
    table = build_table([1, 0], [0.9, 0.2], rows, split="val", home=demo_home)
    assert list(table["kind"]) == ["detection"] * 2
    assert table["track_id"].tolist() == [track.track_id, "unknown"]
    assert table.iloc[0]["age"] == track.attributes["age"] and table.iloc[1]["age"] == "unknown"


def test_mismatched_inputs_are_refused(intent_home):
    with pytest.raises(DataError, match="one of each per sample"):
        build_table([1, 0], [0.5], [{}, {}], split="val", home=intent_home)


# -- reading it back --------------------------------------------------------------------------------
def test_reading_names_what_is_missing_and_the_fix(intent_home, tmp_path):
    run = tmp_path / "resnet-lstm" / "tiny_20250101_000000"
    run.mkdir(parents=True)
    with pytest.raises(NotEvaluated, match="not evaluated on val yet.*pedsense evaluate") as missing:
        read_predictions(run, "val", None)
    assert not missing.value.evaluated
    with pytest.raises(NotEvaluated, match="before per-window predictions were kept.*again") as old:
        read_predictions(run, "val", {"evaluated_at": "2025-01-01", "intent": {}})
    assert old.value.evaluated
    with pytest.raises(DataError, match="no predictions to browse"):
        read_predictions(run, "val", {"predictions": None, "benchmark": {"skipped": "nothing matched"}})
    table = _table(intent_home)
    record = write_predictions(run, "val", table)
    assert record == {"file": "predictions_val.parquet", "rows": len(table), "kind": "window"}
    assert not [p for p in run.iterdir() if p.name.startswith(".")], "no temp file left behind"
    pd.testing.assert_frame_equal(read_predictions(run, "val", {"predictions": record}), table)
    predictions_path(run, "val").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot be read.*again"):
        read_predictions(run, "val", {"predictions": record})


def test_reading_checks_the_scores_and_names_the_bad_column(intent_home, tmp_path):
    run = tmp_path / "resnet-lstm" / "tiny_20250101_000000"
    run.mkdir(parents=True)
    table = _table(intent_home)
    for column, value in (("p_crossing", float("nan")), ("p_crossing", 1.5), ("label", 3)):
        damaged = table.copy()
        damaged.loc[1, column] = value
        record = write_predictions(run, "val", damaged)
        with pytest.raises(DataError, match=rf"1 of {len(table)} rows whose column {column} is not .*"
                                            rf"sample {damaged['sample_id'][1]}.*evaluate it.* again"):
            read_predictions(run, "val", {"predictions": record})


def test_a_rebuilt_dataset_is_noticed_with_both_builds(intent_home):
    manifest_path = paths(intent_home).sequences / "manifest.json"
    stamp = dataset_stamp(manifest_path)
    assert stamp["built"] and stamp["task"] == "intent" and stamp["fingerprint"]
    assert dataset_drift({"dataset": stamp}, manifest_path) is None
    manifest = json.loads(manifest_path.read_text())
    manifest["created_at"] = "2031-01-01T00:00:00+00:00"
    manifest_path.unlink()  # a hard link shared with the session's build: replace it, never edit it
    manifest_path.write_text(json.dumps(manifest))
    drift = dataset_drift({"dataset": stamp}, manifest_path)
    assert drift.recorded == stamp and drift.current["created_at"] == "2031-01-01T00:00:00+00:00"
    assert stamp["created_at"] in drift.message and "2031-01-01" in drift.message
    assert "Evaluate the run again" in drift.message
    # an evaluation made before datasets were stamped reads as another build, too
    assert dataset_drift({}, manifest_path) is not None
    manifest_path.unlink()
    assert "no such build is on disk" in dataset_drift({"dataset": stamp}, manifest_path).message


# -- browsing (a hand-made table: every number checked against scikit-learn) -------------------------
def _hand_table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    label = rng.integers(0, 2, n)
    return pd.DataFrame({
        "sample_id": [f"s{i}" for i in range(n)], "kind": "window",
        "video_id": rng.choice(["video_0001", "video_0002"], n), "track_id": [f"t{i % 40}" for i in range(n)],
        "start_frame": np.arange(n) - 15, "end_frame": np.arange(n), "label": label,
        "p_crossing": np.clip(rng.normal(0.35 + 0.3 * label, 0.25), 0, 1),
        "tte_bin": rng.choice(["30-39", "40-49", "50-60"], n), "age": rng.choice(["child", "adult"], n),
        "occlusion": rng.choice(["none", "part"], n)})


def test_browse_filters_and_scores_with_scikit_learn():
    table = _hand_table()
    filters = Filters(tte_bins=("30-39", "40-49"), values={"age": ("child",)}, p_range=(0.1, 0.9))
    view = browse(table, filters, 0.4, attribute="occlusion")
    keep = table["tte_bin"].isin(["30-39", "40-49"]) & (table["age"] == "child") & \
        table["p_crossing"].between(0.1, 0.9)
    subset = table[keep]
    assert view.total == len(table) and view.filtered == len(subset) > 0
    y, p = subset["label"], subset["p_crossing"]
    assert view.metrics == classification_metrics(y, p, threshold=0.4)
    assert view.metrics["confusion_matrix"] == skm.confusion_matrix(y, p >= 0.4, labels=[0, 1]).tolist()
    assert view.metrics["f1"] == pytest.approx(skm.f1_score(y, p >= 0.4))
    assert view.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    # per attribute value: counts add up, each value's metrics are its rows'
    rows = view.by_attribute.set_index("group")
    assert rows["n"].sum() == len(subset)
    part = subset[subset["occlusion"] == "part"]
    assert rows.loc["part", "accuracy"] == pytest.approx(skm.accuracy_score(part["label"], part["p_crossing"] >= 0.4))
    # the threshold moves every metric and the matrix
    other = browse(table, filters, 0.7)
    assert other.metrics["confusion_matrix"] != view.metrics["confusion_matrix"]
    assert sum(map(sum, other.metrics["confusion_matrix"])) == len(subset)
    assert "TTE 30-39, 40-49 · age child · P(crossing) 0.10-0.90" == filters.describe()


def test_a_confusion_cell_lists_its_windows_worst_first():
    table = _hand_table()
    view = browse(table, Filters(cell=(1, 0)), 0.5)
    (tn, fp), (fn, tp) = view.metrics["confusion_matrix"]
    assert view.filtered == len(table), "the matrix stays the whole filtered set's"
    assert view.selected == fn and len(view.windows) == min(fn, 200)
    assert (view.windows["label"] == 1).all() and (view.windows["p_crossing"] < 0.5).all()
    errors = view.windows["error"].to_numpy()
    assert (np.diff(errors) <= 0).all() and errors[0] == pytest.approx(1 - table[table.label == 1].p_crossing.min())
    assert (view.windows["predicted"] == 0).all()
    ranked = worst_first(table, 0.5, limit=None)
    assert len(ranked) == len(table) and ranked.iloc[0]["error"] == ranked["error"].max()


def test_a_filter_that_leaves_nothing_says_so():
    table = _hand_table()
    view = browse(table, Filters(values={"age": ("child",)}, p_range=(0.4321, 0.4322)), 0.5, attribute="age")
    assert view.empty and view.windows.empty and view.curves is None
    assert view.metrics["n"] == 0 and view.metrics["accuracy"] is None
    assert view.by_attribute is not None and view.by_attribute.empty
    assert view.empty_message().startswith(f"No window of the {len(table)} matches age child")
    assert "widen the probability range or clear a filter" in view.empty_message()
    none_here = browse(table[table.label == 1], Filters(cell=(0, 1)), 0.5)
    assert not none_here.empty and none_here.windows.empty
    assert "No false positive among" in none_here.empty_message()
    with pytest.raises(DataError, match="No column 'colour'"):
        browse(table, Filters(values={"colour": ("red",)}))


def test_curves_are_scikit_learns_with_the_operating_point():
    table = _hand_table()
    y, p = table["label"], table["p_crossing"]
    curves = threshold_curves(y, p, threshold=0.5)
    fpr, tpr, _ = skm.roc_curve(y, p)
    np.testing.assert_allclose(curves["roc"]["fpr"], fpr)
    np.testing.assert_allclose(curves["roc"]["tpr"], tpr)
    precision, recall, _ = skm.precision_recall_curve(y, p, drop_intermediate=True)
    np.testing.assert_allclose(curves["pr"]["precision"], precision)
    point = curves["operating"]
    assert point["tpr"] == pytest.approx(skm.recall_score(y, p >= 0.5)) == point["recall"]
    assert point["precision"] == pytest.approx(skm.precision_score(y, p >= 0.5))
    tn, fp, _, _ = skm.confusion_matrix(y, p >= 0.5).ravel()
    assert point["fpr"] == pytest.approx(fp / (fp + tn))
    assert threshold_curves([1, 1], [0.2, 0.9]) is None
    assert threshold_curves([0, 1], [0.2, 0.9], threshold=0.95)["operating"]["precision"] == 1.0


# -- two runs ---------------------------------------------------------------------------------------
def test_two_runs_disagree_per_cell():
    a = pd.DataFrame({"sample_id": ["w1", "w2", "w3", "w4", "w5"], "kind": "window", "video_id": "v",
                      "track_id": ["p1", "p1", "p2", "p2", "unknown"], "start_frame": [0, 8, 0, 8, 0],
                      "end_frame": [15, 23, 15, 23, 15], "label": [1, 1, 0, 0, 1],
                      "p_crossing": [0.9, 0.2, 0.7, 0.1, 0.5], "tte_bin": "30-39"})
    # a single-crop run: its crops of the same pedestrians, one ending on each window's last frame
    b = pd.DataFrame({"sample_id": ["c1", "c2", "c3", "c4", "c9"], "kind": "crop", "video_id": "v",
                      "track_id": ["p1", "p1", "p2", "p2", "p9"], "start_frame": [15, 23, 15, 23, 3],
                      "end_frame": [15, 23, 15, 23, 3], "label": [1, 1, 0, 0, 0],
                      "p_crossing": [0.8, 0.8, 0.2, 0.6, 0.5]})
    joined = join_runs(a, b)
    assert sorted(joined["sample_id"]) == ["w1", "w2", "w3", "w4"], "unknown tracks never match"
    assert dict(zip(joined["sample_id"], joined["sample_id_b"])) == {"w1": "c1", "w2": "c2", "w3": "c3", "w4": "c4"}
    counts = disagreement_counts(joined)
    assert counts["windows"].sum() == 3
    as_rows = {(r.truth, r.cell_a, r.cell_b): (r.windows, r.right) for r in counts.itertuples()}
    assert as_rows == {("crossing", "false negative", "true positive"): (1, "B"),
                       ("not-crossing", "false positive", "true negative"): (1, "B"),
                       ("not-crossing", "true negative", "false positive"): (1, "A")}
    wrong_b = disagreeing(joined, (0, 0, 1))
    assert wrong_b["sample_id"].tolist() == ["w4"] and wrong_b["gap"].iloc[0] == pytest.approx(0.5)
    assert disagreeing(joined)["sample_id"].tolist()[0] == "w2", "largest gap first"
    metrics = shared_metrics(joined).set_index("run")
    assert metrics.loc["A", "accuracy"] == pytest.approx(0.5) and metrics.loc["B", "accuracy"] == pytest.approx(0.75)
    with pytest.raises(DataError, match="share no sample"):
        join_runs(a, b.assign(video_id="other"))
    assert disagreement_counts(join_runs(a, a)).empty


# -- playing a window -------------------------------------------------------------------------------
def test_a_window_plays_its_observed_frames_then_the_horizon(intent_home, tmp_path):
    from pedsense.data.video import video_info
    from pedsense.errors_browser.playback import (MIN_WIDTH, STRIP_CROP, clip_path, table_series,
                                                  window_frames, write_clip)
    from pedsense.infer.intent_series import clip_annotation

    table = _table(intent_home)
    row = table.iloc[0].to_dict()
    annotation = clip_annotation(paths(intent_home).clip(row["video_id"]), intent_home)
    track = annotation.track(row["track_id"])
    frames = window_frames(row, home=intent_home)
    expected = tuple(f for f in track.frames if row["start_frame"] <= f <= row["end_frame"])
    assert frames.observed == expected and len(expected) == 16
    assert frames.event_frame == row["event_frame"]
    assert frames.horizon == tuple(range(row["end_frame"] + 1, row["event_frame"] + 1))
    assert len(frames.images) == len(frames.observed) + len(frames.horizon)
    assert frames.images[0].shape[1] == MIN_WIDTH, "small frames are scaled up so captions read"
    assert frames.strip.shape == (STRIP_CROP[1], STRIP_CROP[0] * 16, 3)
    assert not frames.notes
    short = window_frames(row, home=intent_home, max_horizon=5)
    assert short.horizon == tuple(range(row["end_frame"] + 1, row["end_frame"] + 6))
    output = write_clip(short, clip_path(tmp_path / "run", "val", row, 0.5))
    assert output.name == f"{row['sample_id']}_t0.50.webm" and output.parent.name == "val"
    info = video_info(output)
    assert info.frame_count == 21 and info.width == MIN_WIDTH
    series = table_series(table, row, annotation)
    mine = table[(table.video_id == row["video_id"]) & (table.track_id == row["track_id"])]
    assert series.predicted_frames == len(mine) and series.event_frame == row["event_frame"]
    assert dict(zip(series.frames, series.p_crossing))[row["end_frame"]] == pytest.approx(row["p_crossing"], abs=1e-4)


def test_a_crop_plays_with_context_and_a_missing_frame_is_a_note(intent_home):
    from pedsense.errors_browser.playback import window_frames

    table = _table(intent_home, "crops.csv")
    row = table.sort_values("end_frame").iloc[-1].to_dict()
    frames = window_frames(row, home=intent_home, obs_length=4, max_horizon=3)
    assert frames.observed[-1] == row["end_frame"] and len(frames.observed) == 4
    assert any("context" in note for note in frames.notes)
    # a frame past the clip's end: the clip stops there, saying why
    beyond = dict(row, event_frame=10_000)
    far = window_frames(beyond, home=intent_home, max_horizon=400)
    assert any(note.startswith("stopped at frame") for note in far.notes)
    assert len(far.images) == len(far.observed) + len(far.horizon)
    with pytest.raises(DataError, match="has no annotation"):
        window_frames(dict(row, video_id="video_9999"), home=intent_home)
