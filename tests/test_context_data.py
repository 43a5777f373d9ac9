"""The context family's data: vehicle/traffic parsing, the feature catalogue and its leak
guards, the annotations-only build, and `get-annotations` — on the 12 real JAAD videos."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile

import numpy as np
import pytest

from pedsense.benchmarks import PUBLISHED_JAAD, compare_with_published, trivial_baselines
from pedsense.catalogue import family_readiness, next_step
from pedsense.data.context_features import (FEATURE_GROUPS, ContextFeatureError, default_features,
                                            resolve_features, window_features)
from pedsense.data.context_format import (build_context, context_manifest, context_path,
                                          load_context_split)
from pedsense.data.download import download_annotations
from pedsense.data.synthetic.marker import marker_path
from pedsense.io import write_json_atomic
from pedsense.data.intent import IntentOptions, intent_windows
from pedsense.data.jaad import load_annotation_folder
from pedsense.data.scene import parse_scene
from pedsense.errors import ConfigError, DataError, PedsenseError

SCENE_FOLDERS = ("annotations", "annotations_attributes", "annotations_vehicle",
                 "annotations_traffic", "split_ids")


def _copy(src, dst):
    """A hard-link copy of a data home (pedsense replaces files, never edits them)."""
    return shutil.copytree(src, dst, copy_function=os.link)


@pytest.fixture(scope="module")
def real_videos(jaad_dir):
    videos, skipped = load_annotation_folder(jaad_dir / "annotations")
    assert not skipped
    return videos


# -- vehicle and traffic files ----------------------------------------------------------------
def test_real_vehicle_and_traffic_files_join_each_video(real_videos):
    video = real_videos["video_0005"]
    scene = video.scene
    assert scene.vehicle_error == "" and scene.traffic_error == "" and not scene.problems
    assert len(scene.vehicle) == video.num_frames
    assert scene.vehicle[0] == "moving_slow" and scene.vehicle[19] == "decelerating"
    assert scene.road_type == "parking_lot"
    assert scene.stop_sign[0] == 1 and scene.stop_sign[30] == 0 and scene.traffic_light[0] == "n/a"


def test_missing_files_leave_the_scene_unknown_never_guessed(tmp_path):
    scene = parse_scene(tmp_path / "none_vehicle.xml", None, num_frames=4)
    assert scene.vehicle == [None] * 4 and scene.road_type is None
    assert scene.vehicle_error == scene.traffic_error == "missing file"


def test_unknown_values_and_frames_beyond_the_video_are_named(tmp_path, caplog):
    vehicle = tmp_path / "v_vehicle.xml"
    vehicle.write_text('<vehicle_info><frame id="0" action="stopped"/><frame id="1" action="flying"/>'
                       '<frame id="9" action="stopped"/></vehicle_info>')
    traffic = tmp_path / "v_traffic.xml"
    traffic.write_text('<traffic_scene><road_type>street</road_type><frame id="0" ped_crossing="1" '
                       'ped_sign="0" stop_sign="0" traffic_light="yellow"/></traffic_scene>')
    scene = parse_scene(vehicle, traffic, num_frames=3)
    assert scene.vehicle == ["stopped", None, None]
    assert scene.traffic_light == [None, None, None] and scene.ped_crossing == [1, None, None]
    text = "\n".join(scene.problems)
    assert f"{vehicle}: unknown action 'flying' on frame 1" in text
    assert "frame 9 beyond the video's 3 frames" in text
    assert f"{traffic}: unknown value traffic_light='yellow' on frame 0" in text
    assert "no traffic scene for frames 1, 2" in text
    assert "flying" in caplog.text  # logged as a warning too


def test_a_damaged_scene_file_keeps_the_video(tmp_path):
    vehicle = tmp_path / "v_vehicle.xml"
    vehicle.write_text("<vehicle_info><frame id=")
    scene = parse_scene(vehicle, None, num_frames=2)
    assert "not well-formed" in scene.vehicle_error and scene.vehicle == [None, None]


# -- the catalogue and its leak guards --------------------------------------------------------
def test_defaults_are_every_group_the_sample_type_allows():
    assert default_features("beh") == ("box", "vehicle", "traffic", "history", "behaviour")
    assert default_features("all") == ("box", "vehicle", "traffic", "history")
    assert resolve_features(None, "all") == default_features("all")
    assert resolve_features("traffic, box", "beh") == ("box", "traffic")  # catalogue order
    assert issubclass(ContextFeatureError, ConfigError) and issubclass(ContextFeatureError, PedsenseError)


@pytest.mark.parametrize("names", ["behaviour", "box,behaviour", "look", "hand_gesture", "age"])
def test_behaviour_features_on_sample_type_all_are_a_presence_leak(names):
    with pytest.raises(ContextFeatureError, match="presence leak") as info:
        resolve_features(names, "all")
    assert "not-crossing" in str(info.value) and "--sample-type beh" in str(info.value)


@pytest.mark.parametrize("name", ["crossing", "crossing_point", "decision_point", "cross",
                                  "reaction", "tte", "future"])
@pytest.mark.parametrize("sample_type", ["beh", "all"])
def test_label_leaks_are_refused_by_the_catalogue(name, sample_type):
    with pytest.raises(ContextFeatureError, match=f"`{name}` can never be a context feature"):
        resolve_features(["box", name], sample_type)


def test_an_unknown_feature_lists_the_valid_ones():
    with pytest.raises(ContextFeatureError, match="Unknown context feature `speed`. Valid feature "
                                                  "groups: box, vehicle, traffic, history, behaviour"):
        resolve_features("box,speed", "beh")


def test_presence_leak_on_the_real_files(real_videos):
    """On JAAD_all, 'has behaviour tags' alone finds every crossing window: all windows without
    tags are labelled not-crossing (bystanders), so a rule using only presence beats chance."""
    tagged, labels = [], []
    for video in real_videos.values():
        windows, _ = intent_windows(video, IntentOptions(sample_type="all"))
        tracks = {t.track_id: t for t in video.tracks}
        for window in windows:
            tagged.append(tracks[window.track_id].is_behavioural)
            labels.append(window.label)
    tagged, labels = np.array(tagged), np.array(labels)
    assert labels.sum() > 0 and (~tagged).sum() > 0
    assert labels[~tagged].sum() == 0          # no tags -> never crossing
    assert labels[tagged].mean() > 0           # every crossing window has tags
    from pedsense.metrics import classification_metrics
    rule = classification_metrics(labels, y_pred=tagged.astype(int))
    assert rule["recall"] == 1.0 and rule["balanced_accuracy"] > 0.6


def test_window_features_read_only_the_window(real_videos):
    video = real_videos["video_0005"]
    windows, _ = intent_windows(video)
    window = windows[0]
    track = next(t for t in video.tracks if t.track_id == window.track_id)
    features = window_features(video, track, window.frames, tuple(FEATURE_GROUPS))
    for name, group in FEATURE_GROUPS.items():
        assert features[name].shape == (len(window.frames) - 1, len(group.columns))
        assert features[name].dtype == np.float32
    # box: offsets from the first box, then the box, then its height, in frame fractions;
    # row 0 is the window's second frame (the first is the reference, dropped)
    size = np.array([video.width, video.height] * 2)
    first, second = np.array(window.boxes_xyxy[0]) / size, np.array(window.boxes_xyxy[1]) / size
    np.testing.assert_allclose(features["box"][0], [*(second - first), *second,
                                                    second[3] - second[1]], atol=1e-6)
    # one-hot groups: exactly one column per categorical field
    assert (features["vehicle"].sum(axis=1) == 1).all()
    changed = video.scene.vehicle[window.frames[-1] + 1:]
    video.scene.vehicle[window.frames[-1] + 1:] = [None] * len(changed)  # the future is not read
    try:
        again = window_features(video, track, window.frames, ("vehicle",))
        np.testing.assert_array_equal(again["vehicle"], features["vehicle"])
    finally:
        video.scene.vehicle[window.frames[-1] + 1:] = changed


def test_history_reads_the_track_before_the_window_and_never_after(real_videos):
    video = real_videos["video_0005"]
    windows, _ = intent_windows(video)
    window = windows[-1]
    track = next(t for t in video.tracks if t.track_id == window.track_id)
    history = window_features(video, track, window.frames, ("history",))["history"]
    columns = FEATURE_GROUPS["history"].columns
    frame, first = window.frames[-1], track.boxes[0].frame
    last = history[-1]
    assert last[columns.index("seen_s")] == pytest.approx(np.log1p((frame - first) / 30.0), rel=1e-6)
    now, then = track.box_at(frame), track.boxes[0]
    assert last[columns.index("first_dy")] == pytest.approx((then.ybr - now.ybr) / video.height, abs=1e-6)
    for k in (15, 30, 60):  # a box k frames back exists only once the track is that old
        seen = last[columns.index(f"back{k}_seen")]
        assert seen == float(track.box_at(frame - k) is not None)
        if not seen:
            assert not last[[columns.index(f"back{k}_{c}") for c in ("dx", "dy", "dh")]].any()
    kept = track.boxes
    track.boxes = [box for box in kept if box.frame <= frame]  # the future is not read
    track._by_frame = None
    try:
        np.testing.assert_array_equal(window_features(video, track, window.frames, ("history",))["history"],
                                      history)
        track.boxes = [box for box in kept if box.frame >= window.frames[0]]  # the past is
        track._by_frame = None
        younger = window_features(video, track, window.frames, ("history",))["history"]
        assert younger[-1][columns.index("seen_s")] < last[columns.index("seen_s")]
    finally:
        track.boxes, track._by_frame = kept, None


def test_unknown_vehicle_is_an_explicit_column(real_videos):
    video = real_videos["video_0005"]
    windows, _ = intent_windows(video)
    track = next(t for t in video.tracks if t.track_id == windows[0].track_id)
    scene, video.scene = video.scene, None
    try:
        features = window_features(video, track, windows[0].frames, ("vehicle", "traffic"))
    finally:
        video.scene = scene
    columns = FEATURE_GROUPS["vehicle"].columns
    assert (features["vehicle"][:, columns.index("vehicle_unknown")] == 1).all()
    assert features["vehicle"].sum() == features["vehicle"].shape[0]
    traffic = FEATURE_GROUPS["traffic"].columns
    for column in ("flags_unknown", "light_unknown", "road_unknown"):
        assert (features["traffic"][:, traffic.index(column)] == 1).all()


# -- the build ------------------------------------------------------------------------------
def test_the_build_holds_the_intent_windows(jaad_context_home, real_videos):
    beh = load_context_split(jaad_context_home, "test", sample_type="beh")
    expected = [w for vid in sorted(real_videos) for w in intent_windows(real_videos[vid])[0]
                if vid in set(beh.windows["video"])]
    assert list(beh.windows["window_id"]) == [w.window_id for w in expected]
    assert beh.labels.tolist() == [w.label for w in expected]
    assert set(beh.groups) == {"box", "vehicle", "traffic", "history", "behaviour"}
    assert beh.groups["box"].shape == (len(beh), 15, 9) and beh.frames.shape == (len(beh), 16)
    assert {"window_id", "video", "ped_id", "start_frame", "end_frame", "tte", "width",
            "height"} <= set(beh.windows.columns)
    assert beh.intent == IntentOptions() and beh.sample_type == "beh"
    every = load_context_split(jaad_context_home, "test", sample_type="all")
    assert set(every.groups) == {"box", "vehicle", "traffic", "history"}  # behaviour never stored on all
    with pytest.raises(ContextFeatureError, match="presence leak"):
        every.select("box,behaviour")


def test_the_build_is_deterministic_and_reused(jaad_context_home, tmp_path):
    home = _copy(jaad_context_home, tmp_path / "home")
    manifest = context_manifest(home, "beh")
    assert manifest["splits"]["test"]["windows"] == 66 and manifest["scene"]["vehicle_missing"] == {}
    before = (context_path(home, "beh") / "test.npz").read_bytes()
    assert build_context(home) == context_path(home, "beh")
    assert context_manifest(home, "beh")["created_at"] == manifest["created_at"]  # reused
    shutil.rmtree(context_path(home, "beh"))
    build_context(home)
    assert (context_path(home, "beh") / "test.npz").read_bytes() == before


def test_a_missing_vehicle_file_is_counted_and_shown(jaad_context_home, tmp_path):
    home = _copy(jaad_context_home, tmp_path / "home")
    video = load_context_split(home, "test", sample_type="beh").windows["video"].iloc[0]
    (home / f"data/raw/annotations_vehicle/{video}_vehicle.xml").unlink()
    build_context(home)  # the input changed: rebuilt
    manifest = context_manifest(home, "beh")
    assert manifest["scene"]["vehicle_missing"] == {video: "missing file"}
    assert any("1 video without vehicle data (1 no file)" in line for line in manifest["summary"])
    data = load_context_split(home, "test", sample_type="beh")
    rows = (data.windows["video"] == video).to_numpy()
    column = data.columns["vehicle"].index("vehicle_unknown")
    assert rows.any() and (data.groups["vehicle"][rows][:, :, column] == 1).all()
    only = data.select(["vehicle"])  # every selected feature unknown in those windows: dropped
    assert len(only) == len(data) - rows.sum() and only.dropped_unknown == rows.sum()
    assert "left out" in only.unknown_note()


def test_not_built_and_old_builds_get_a_rebuild_message(jaad_context_home, tmp_path):
    home = _copy(jaad_context_home, tmp_path / "home")
    with pytest.raises(DataError, match="no 'train' windows"):
        load_context_split(home, "train", sample_type="beh")
    manifest_path = context_path(home, "all") / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["scene"]
    manifest_path.unlink()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="older pedsense .* rebuild it with `pedsense preprocess "
                                        "context --sample-type all`"):
        load_context_split(home, "test", sample_type="all")
    shutil.rmtree(context_path(home, "beh"))
    with pytest.raises(DataError, match="`pedsense preprocess context --sample-type beh`"):
        load_context_split(home, "test", sample_type="beh")


def test_annotations_without_clips_make_the_context_family_ready(jaad_context_home):
    ready = {row["family"]: row["ready"] for row in family_readiness(jaad_context_home)}
    assert ready == {"yolo": False, "resnet-lstm": False, "hybrid": False, "context": True}
    assert "`pedsense preprocess context`" in next_step(jaad_context_home)


def test_the_demo_set_builds_context_windows(demo_raw, tmp_path):
    home = _copy(demo_raw, tmp_path / "home")
    build_context(home)
    data = load_context_split(home, "train")
    assert len(data) > 0 and set(data.labels.tolist()) <= {0, 1}
    vehicle = data.columns["vehicle"].index("vehicle_unknown")
    assert (data.groups["vehicle"][:, :, vehicle] == 0).all()  # the demo writes its vehicle file


# -- beside the published ----------------------------------------------------------------------
def test_trivial_baselines_on_given_windows():
    labels = np.array([1] * 626 + [0] * 374)
    rows = {r["model"]: r for r in trivial_baselines(labels)}
    assert rows["always crossing"]["accuracy"] == pytest.approx(0.626)
    assert rows["always crossing"]["f1"] == pytest.approx(0.770, abs=5e-4)
    assert rows["always not-crossing"]["accuracy"] == pytest.approx(0.374)
    assert rows["always crossing"]["auc_binary"] is None or rows["always crossing"]["auc_binary"] == 0.5


def test_annotation_only_rows_and_the_leaky_one_is_never_comparable():
    mft = {(r.model, r.dataset): r for r in PUBLISHED_JAAD if r.model.startswith("MFT")}
    assert (mft[("MFT (box + vehicle only)", "JAAD_beh")].accuracy,
            mft[("MFT (box + vehicle only)", "JAAD_all")].auc) == (0.48, 0.77)
    assert mft[("MFT", "JAAD_beh")].f1 == 0.787 and "arXiv" in mft[("MFT", "JAAD_beh")].source
    rows = compare_with_published({"accuracy": 0.9}, inputs=("box", "speed", "traffic", "behaviour"),
                                  options=IntentOptions(sample_type="all"))
    leaky = next(r for r in rows if r["model"] == "MFT" and r["dataset"] == "JAAD_all")
    assert leaky["comparable"] is False and leaky["caveats"].startswith("presence leak")
    same = next(r for r in rows if r["model"] == "MFT" and r["dataset"] == "JAAD_beh")
    assert "JAAD_beh" in same["caveats"]  # a different variant, not a leak


# -- get-annotations ---------------------------------------------------------------------------
def _archive(tmp_path, jaad_dir, n_videos: int):
    """A tar.gz laid out like GitHub's archive of JAAD: one top folder holding the repository."""
    path = tmp_path / "JAAD.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for folder in SCENE_FOLDERS[:4]:
            for xml in sorted((jaad_dir / folder).glob("*.xml"))[:n_videos]:
                tar.add(xml, arcname=f"JAAD-7712f55/{folder}/{xml.name}")
        tar.add(jaad_dir / "split_ids", arcname="JAAD-7712f55/split_ids")
        readme = b"JAAD"
        info = tarfile.TarInfo("JAAD-7712f55/README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    return path


def test_get_annotations_downloads_unpacks_and_checks(tmp_home, tmp_path, jaad_dir):
    archive = _archive(tmp_path, jaad_dir, 3)
    result = download_annotations(tmp_home, url=archive.as_uri(), expected_videos=3)
    assert result["videos"] == 3 and "annotations_traffic" in result["folders"]
    assert len(list((tmp_home / "data/raw/annotations").glob("*.xml"))) == 3
    assert (tmp_home / "data/raw/split_ids/default/test.txt").is_file()
    assert not list((tmp_home / "data/raw").glob(".jaad-download-*"))  # nothing left behind


def test_get_annotations_refuses_what_is_not_jaad_and_changes_nothing(tmp_home, tmp_path, jaad_dir):
    archive = _archive(tmp_path, jaad_dir, 2)
    with pytest.raises(DataError, match="holds 2 annotation XML files .* JAAD has 346"):
        download_annotations(tmp_home, url=archive.as_uri())
    assert not (tmp_home / "data/raw/annotations").exists()


def test_get_annotations_refuses_a_demo_home_and_keeps_the_demo(tmp_home, tmp_path, jaad_dir):
    # the demo's video_0001.xml beside its clip; JAAD's video_0001.xml must not replace it
    demo_xml = tmp_home / "data/raw/annotations/video_0001.xml"
    demo_xml.parent.mkdir(parents=True)
    demo_xml.write_text("<annotations>demo</annotations>")
    write_json_atomic(marker_path(tmp_home), {"synthetic": True, "videos": ["video_0001"]})
    archive = _archive(tmp_path, jaad_dir, 3)
    with pytest.raises(DataError, match="synthetic demo set.*another data home"):
        download_annotations(tmp_home, url=archive.as_uri(), expected_videos=3)
    assert demo_xml.read_text() == "<annotations>demo</annotations>"
    assert sorted(p.name for p in demo_xml.parent.iterdir()) == ["video_0001.xml"]


def test_get_annotations_offline_says_what_to_do(tmp_home, tmp_path):
    with pytest.raises(DataError, match="Could not download .* Fix: on a machine that is online"):
        download_annotations(tmp_home, url=(tmp_path / "absent.tar.gz").as_uri())


# -- the command line and the dashboard ------------------------------------------------------------
@pytest.fixture
def annotations_home(jaad_context_home, tmp_path, monkeypatch):
    """The 12 real videos' annotations, nothing built, as the data home."""
    home = tmp_path / "home"
    for name in SCENE_FOLDERS:
        shutil.copytree(jaad_context_home / "data/raw" / name, home / "data/raw" / name,
                        copy_function=os.link)
    monkeypatch.setenv("PEDSENSE_HOME", str(home))
    return home


def test_cli_get_annotations_then_preprocess_context(tmp_home, tmp_path, jaad_dir, capsys):
    from pedsense.cli import main

    archive = _archive(tmp_path, jaad_dir, 12)
    # the real command checks for JAAD's 346 files: a 12-video archive is refused, with the fix
    assert main(["get-annotations", "--url", archive.as_uri()]) != 0
    assert "JAAD has 346" in capsys.readouterr().err
    for name in SCENE_FOLDERS:
        shutil.copytree(jaad_dir / name, tmp_home / "data/raw" / name)
    assert main(["setup"]) == 0
    out = capsys.readouterr().out
    assert "family context:     ready" in out and "family yolo:        not ready" in out
    assert main(["preprocess", "context", "--sample-type", "all"]) == 0
    out = capsys.readouterr().out
    assert "test (windows 88, crossing 11)" in out and "data/processed/context/all" in out
    assert "leakage check passed" in out


def test_data_page_builds_the_context_dataset_without_clips(annotations_home):
    from ui.state import job_manager

    at = open_page("pages/data.py")
    assert not at.exception, [e.value for e in at.exception]
    families = at.dataframe[0].value
    assert dict(zip(families["family"], families["ready"]))["context"] == "ready"
    assert dict(zip(families["family"], families["ready"]))["yolo"] == "not ready"
    next(b for b in at.button if "Build the context dataset" in b.label).click()
    at.run()
    job_manager().wait_idle(120)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert (annotations_home / "data/processed/context/beh/windows.csv").is_file()
    assert any("Build the context dataset (annotations only): done" in s.value for s in at.success)


def test_overview_says_the_context_family_is_ready(annotations_home):
    at = open_page("pages/overview.py")
    assert not at.exception, [e.value for e in at.exception]
    assert any("the **context** family is ready" in m.value for m in at.info)
    assert any("Build the context dataset" in b.label for b in at.button)


def open_page(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(os.path.join(os.path.dirname(__file__), "..", "app.py")),
                           default_timeout=60)
    at.run()
    if page != "pages/overview.py":
        at.switch_page(page)
        at.run()
    return at


def test_the_default_build_is_the_one_there(jaad_context_home, tmp_path):
    from pedsense.data.context_format import built_sample_types, context_manifest_path

    home = _copy(jaad_context_home, tmp_path / "home")
    assert built_sample_types(home) == ["beh", "all"]
    assert context_manifest_path(home) == context_path(home, "beh") / "manifest.json"
    shutil.rmtree(context_path(home, "beh"))
    assert load_context_split(home, "test").sample_type == "all"
    assert context_manifest_path(home).parent.name == "all"


def test_an_unreadable_annotation_is_skipped_and_named(jaad_context_home, tmp_path):
    home = _copy(jaad_context_home, tmp_path / "home")
    broken = home / "data/raw/annotations/video_0008.xml"
    broken.unlink()
    broken.write_text("<annotations><meta>")
    build_context(home)
    summary = context_manifest(home, "beh")["summary"]
    assert any(line.startswith("video_0008.xml skipped: ") and "not well-formed" in line
               for line in summary)
