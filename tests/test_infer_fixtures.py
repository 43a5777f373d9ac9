"""Tiny trained runs of all three model types, trained once per test session (no tests here).

The viewer, inference and evaluation tests import ``infer_home`` from this module. The runs are
trained into one data home (``conftest.built_once``), so however many test modules (and xdist
workers) use the fixture, each model is trained once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import built_once

TINY_IMGSZ = 64
#: the ResNet-LSTM's crops: 32 px instead of the build's 64 (a quarter of the convolutions in
#: its training and in every test that predicts, exports or evaluates with it)
LSTM_CROP = 32
#: the hybrid run's settings: tiny, with detector settings of its own, which
#: test_train_hybrid.py checks reach Ultralytics and the record (its two-stage test reads this run)
HYBRID_TINY = dict(imgsz=TINY_IMGSZ, yolo_batch_size=4, workers=0, backbone="resnet18", crop_size=32,
                   learning_rate=1e-3, num_workers=0)
HYBRID_DETECTOR_EXTRAS = dict(optimizer="AdamW", lr0=0.003, warmup_epochs=0.3, nbs=4)
HYBRID_EPOCHS = dict(epochs=2, batch_size=32, yolo_epochs=1)


def _train_all(home: Path) -> None:
    """The three tiny runs (the ResNet-LSTM on 32-px crops); no prediction samples (no test of
    these runs looks at them)."""
    from pedsense.train.hybrid_trainer import train_hybrid
    from pedsense.train.resnet_trainer import train_resnet_lstm
    from pedsense.train.yolo_trainer import train_yolo

    train_yolo(name="tiny", epochs=1, batch_size=4, imgsz=TINY_IMGSZ, device="cpu", home=home, workers=0,
               prediction_samples=0)
    # ImageNet weights asked for, offline: the run records that it trained from scratch, and why
    train_hybrid("hy", device="cpu", home=home, prediction_samples=0, **HYBRID_EPOCHS, **HYBRID_DETECTOR_EXTRAS,
                 **HYBRID_TINY)
    train_resnet_lstm(name="tiny", epochs=1, batch_size=8, device="cpu", home=home, backbone="resnet18",
                      pretrained=False, num_workers=0, crop_size=LSTM_CROP, prediction_samples=0)


@pytest.fixture(scope="session")
def infer_home_base(demo_built, tmp_path_factory, copy_home) -> Path:
    """A data home with the demo set built and one completed tiny run of each model type."""
    def build(folder: Path) -> None:
        home = copy_home(demo_built, folder / "home")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PEDSENSE_HOME", str(home))
            patch.setenv("YOLO_OFFLINE", "1")
            patch.setenv("PEDSENSE_OFFLINE", "1")
            _train_all(home)

    return built_once(tmp_path_factory, "infer_runs_home", build) / "home"


@pytest.fixture
def infer_home(infer_home_base, monkeypatch) -> Path:
    """``infer_home_base`` set as ``$PEDSENSE_HOME`` for one test."""
    monkeypatch.setenv("PEDSENSE_HOME", str(infer_home_base))
    return infer_home_base


def run_of(home: Path, model_type: str) -> Path:
    """The (only) completed run of ``model_type`` in ``home``."""
    from pedsense.runfolder import list_runs

    runs = [r.path for r in list_runs(home, model_types=(model_type,)) if r.status == "completed"]
    assert runs, f"no completed {model_type} run in {home}"
    return runs[0]


def demo_clip(home: Path) -> Path:
    from pedsense.infer.clips import list_clips

    clips = list_clips(home)
    assert clips, f"no clips in {home}"
    return clips[0]


def short_copy(clip: Path, target: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``clip`` as a clip of their own (a render of it is quick)."""
    import cv2

    from pedsense.data.video import iter_frames, video_info

    info = video_info(clip)
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), info.fps, (info.width, info.height))
    for index, frame in iter_frames(clip):
        if index >= frames:
            break
        writer.write(frame)
    writer.release()
    return target
