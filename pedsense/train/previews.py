"""Predictions as training goes: a fixed, seeded handful of validation samples scored each epoch.

The trainer picks the samples once (:func:`pick_indices`: seeded, both classes as evenly as the
split allows), then after each epoch scores them with the weights of that epoch and keeps the
result in the run folder (the format: ``pedsense.epoch_predictions``):

    previews = EpochPreviews.for_dataset(run, val_set, count, seed, stage)   # classifier families
    ... each epoch: previews.score_classifier(model, val_set, device, epoch)
    previews = DetectorPreviews.for_dataset(run, yolo_dataset, count, seed)  # YOLO
    ... each epoch: previews.score_weights(weights, imgsz, device, epoch)

Any family plugs in through a validation dataset with ``labels`` and ``(input, label)`` items;
``preview_picture(index)`` (BGR uint8) and ``sample_id(index)`` are optional: a family without
pictures (annotation features) gets its P(crossing) against the label, and no sheet.
A sample whose picture cannot be read is left out with one clear line (the run's log and the
epoch's record); training goes on. The time spent is kept in ``seconds`` (``bench/bench_samples.py``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pedsense.epoch_predictions import append_epoch, picture_name, write_picture
from pedsense.errors import PedsenseError

TILE_HEIGHT = 128       # pixels of a sample's picture in the sheet
SHEET_WIDTH = 1024      # a sheet is at most this wide; tiles wrap into rows
JPEG_QUALITY = 85
CROSSING = 1


def pick_indices(labels: Sequence[Any], count: int, seed: int) -> list[int]:
    """``count`` sample indices (sorted), the same for the same labels and seed, taking the
    classes in turn so both show up when the split has both."""
    rng = random.Random(seed)
    pools: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        pools.setdefault(str(label), []).append(index)
    queues = [pools[key] for key in sorted(pools)]
    for queue in queues:
        rng.shuffle(queue)
    picked: list[int] = []
    while len(picked) < count and any(queues):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(queue.pop())
    return sorted(picked)


@dataclass
class PreviewSample:
    """One scored sample: where it is in the validation set, its id and label, its picture."""

    index: int
    sample_id: str
    label: int | None
    picture: np.ndarray | None = None                  # BGR uint8 (H, W, 3)
    truth: list = field(default_factory=list)          # YOLO: [[x1, y1, x2, y2, class], ...]


class EpochPreviews:
    """The samples of one stage and what each epoch predicted for them."""

    def __init__(self, run, stage: str, samples: list[PreviewSample], problems: list[str]):
        self.run, self.stage, self.samples, self.problems = run, stage, samples, problems
        self.seconds = 0.0  # spent picking, scoring and drawing (bench/bench_samples.py)
        self.epochs = 0     # epochs recorded
        self.failed = False

    @classmethod
    def for_dataset(cls, run, dataset, count: int, seed: int, stage: str = "train") -> "EpochPreviews | None":
        """The previews of ``count`` seeded samples of ``dataset`` (None when ``count`` is 0 or
        the dataset has no ``labels`` to pick from)."""
        labels = getattr(dataset, "labels", None)
        if count <= 0 or not labels:
            return None
        started = time.perf_counter()
        picture_of: Callable | None = getattr(dataset, "preview_picture", None)
        id_of: Callable = getattr(dataset, "sample_id", str)
        samples, problems = [], []
        for index in pick_indices(labels, count, seed):
            picture = None
            if picture_of is not None:
                try:
                    picture = picture_of(index)
                except (PedsenseError, OSError, ValueError) as exc:
                    problems.append(f"prediction sample {id_of(index)} cannot be read ({exc}); left out, "
                                    "training goes on")
                    continue
            samples.append(PreviewSample(index, str(id_of(index)), int(labels[index]), picture))
        previews = cls(run, stage, samples, problems)
        previews.report_problems()
        previews.seconds += time.perf_counter() - started
        return previews

    def report_problems(self) -> None:
        for problem in self.problems:
            self.run.log(problem)

    def guarded(self, epoch: int, score: Callable[[], None]) -> None:
        """Run ``score``; a failure is one log line and the previews stop, training goes on."""
        try:
            score()
        except Exception as exc:  # noqa: BLE001 - previews must never end a run
            self.run.log(f"prediction samples not scored at epoch {epoch} ({type(exc).__name__}: {exc}); "
                         "no more previews for this run, training goes on")
            self.samples = []
            self.failed = True

    def wanted(self) -> dict[int, float | None]:
        """``{index: None}`` of the samples: the validation pass fills in P(crossing)
        (``pedsense.train.fit.evaluate(keep=)``), so scoring costs no forward pass of its own."""
        return {s.index: None for s in self.samples}

    def cost(self) -> dict:
        """What the previews cost (recorded in config.json; ``bench/bench_samples.py``)."""
        return {"samples": len(self.samples), "epochs": self.epochs, "seconds": round(self.seconds, 4)}

    def score_classifier(self, model, dataset, device: str, epoch: int,
                         known: dict[int, float | None] | None = None) -> None:
        """P(crossing) of every sample, as the validation pass left it in ``known`` or else by
        ``model`` (eval mode, no gradients, the same input path as the validation: a
        frozen-feature dataset gives features), then :meth:`record`."""
        if not self.failed:
            self.guarded(epoch, lambda: self._score_classifier(model, dataset, device, epoch, known))

    def _score_classifier(self, model, dataset, device: str, epoch: int, known) -> None:
        import torch

        if not self.samples:
            return self.record(epoch, [])
        if known and all(known.get(s.index) is not None for s in self.samples):
            return self.record(epoch, [{"p_crossing": round(float(known[s.index]), 4)} for s in self.samples])
        started = time.perf_counter()
        indices = [s.index for s in self.samples]
        if hasattr(dataset, "__getitems__"):
            inputs, _ = dataset.__getitems__(indices)
        else:
            inputs = torch.stack([torch.as_tensor(dataset[i][0]) for i in indices])
        model.eval()
        amp = str(device).startswith("cuda")
        with torch.no_grad(), torch.autocast(device_type="cuda" if amp else "cpu", dtype=torch.float16, enabled=amp):
            logits = model(inputs.to(device)).float()
        p = torch.softmax(logits, dim=1)[:, CROSSING].cpu().tolist()
        self.seconds += time.perf_counter() - started
        self.record(epoch, [{"p_crossing": round(float(v), 4)} for v in p])

    def record(self, epoch: int, predictions: Sequence[Mapping[str, Any]]) -> None:
        """Keep epoch ``epoch``'s ``predictions`` (one mapping per sample: ``p_crossing``, and
        ``boxes`` for a detector): the sheet (when the samples have pictures) and the record."""
        started = time.perf_counter()
        rows = []
        for sample, prediction in zip(self.samples, predictions):
            row = {"id": sample.sample_id, "label": sample.label, **prediction}
            if sample.truth:
                row["truth"] = sample.truth
            rows.append(row)
        picture = None
        if rows and all(s.picture is not None for s in self.samples):
            picture = picture_name(self.stage, epoch)
            write_picture(self.run.path, picture, draw_sheet(self.samples, rows))
        append_epoch(self.run.path, {"stage": self.stage, "epoch": int(epoch), "picture": picture,
                                     "samples": rows, "problems": list(self.problems)})
        self.seconds += time.perf_counter() - started
        self.epochs += 1


# -- drawing the sheet -------------------------------------------------------------------------------
GREEN, RED, WHITE, GREY = (80, 175, 76), (60, 60, 220), (255, 255, 255), (40, 40, 40)
CLASS_COLOURS = {0: (80, 175, 76), 1: (40, 120, 255)}   # BGR: not-crossing green, crossing orange
CLASS_WORDS = {0: "not-crossing", 1: "crossing", None: "?"}


def draw_sheet(samples: Sequence[PreviewSample], rows: Sequence[Mapping[str, Any]]) -> bytes:
    """One JPEG: each sample's picture (boxes drawn for a detector) above its caption."""
    import cv2

    tiles = [_tile(s, r) for s, r in zip(samples, rows)]
    width = max(t.shape[1] for t in tiles)
    height = max(t.shape[0] for t in tiles)
    per_row = max(1, SHEET_WIDTH // width)
    rows_n = -(-len(tiles) // per_row)
    sheet = np.full((rows_n * height, min(len(tiles), per_row) * width, 3), 255, np.uint8)
    for n, tile in enumerate(tiles):
        top, left = (n // per_row) * height, (n % per_row) * width
        sheet[top:top + tile.shape[0], left:left + tile.shape[1]] = tile
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("the predictions sheet could not be encoded as JPEG")
    return data.tobytes()


def _tile(sample: PreviewSample, row: Mapping[str, Any]) -> np.ndarray:
    import cv2

    picture = np.ascontiguousarray(sample.picture)
    scale = TILE_HEIGHT / picture.shape[0]
    width = max(1, min(int(round(picture.shape[1] * scale)), SHEET_WIDTH))
    picture = cv2.resize(picture, (width, TILE_HEIGHT), interpolation=cv2.INTER_AREA)
    for box in row.get("truth") or ():
        x1, y1, x2, y2 = (int(round(v * scale)) for v in box[:4])
        cv2.rectangle(picture, (x1, y1), (x2, y2), WHITE, 1)
    for box in row.get("boxes") or ():
        x1, y1, x2, y2 = (int(round(v * scale)) for v in box[:4])
        colour = CLASS_COLOURS.get(int(box[4]), WHITE)
        cv2.rectangle(picture, (x1, y1), (x2, y2), colour, 2)
        cv2.putText(picture, f"{box[5]:.2f}", (x1, max(y1 - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1,
                    cv2.LINE_AA)
    caption = np.full((34, max(width, 150), 3), 255, np.uint8)
    p = row.get("p_crossing")
    label = sample.label
    right = p is not None and label is not None and (p >= 0.5) == (label == CROSSING)
    cv2.putText(caption, f"label {CLASS_WORDS.get(label, label)}", (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                GREY, 1, cv2.LINE_AA)
    cv2.putText(caption, "P(crossing) " + ("-" if p is None else f"{p:.2f}"), (3, 29),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, GREEN if right else RED, 1, cv2.LINE_AA)
    tile = np.full((TILE_HEIGHT + 34, max(width, 150) + 6, 3), 255, np.uint8)
    tile[:TILE_HEIGHT, :width] = picture
    tile[TILE_HEIGHT:, :caption.shape[1]] = caption
    return tile


# -- YOLO: frames with boxes ---------------------------------------------------------------------------
class DetectorPreviews(EpochPreviews):
    """A detector's samples are validation frames with their ground-truth boxes; each epoch the
    weights Ultralytics just saved predict them (P(crossing): the most confident crossing box)."""

    @classmethod
    def for_images(cls, run, images: Sequence[str], count: int, seed: int,
                   stage: str = "train") -> "DetectorPreviews | None":
        """Previews of ``count`` seeded frames of ``images`` (their YOLO label files beside them)."""
        if count <= 0 or not images:
            return None
        import cv2

        samples, problems = [], []
        for index in pick_indices([0] * len(images), count, seed):
            path = Path(images[index])
            picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if picture is None:
                problems.append(f"prediction sample {path.name} cannot be read (not an image OpenCV can "
                                "decode); left out, training goes on")
                continue
            truth = _truth(path, picture.shape[1], picture.shape[0])
            label = int(any(box[4] == CROSSING for box in truth))
            samples.append(PreviewSample(index, path.stem, label, picture, truth))
        previews = cls(run, stage, samples, problems)
        previews.report_problems()
        return previews

    def score_weights(self, weights: str | Path, imgsz: int, device: Any, epoch: int, conf: float = 0.25) -> None:
        """Predict the frames with ``weights`` (the epoch's ``last.pt``), then :meth:`record`."""
        if not self.failed:
            self.guarded(epoch, lambda: self._score_weights(weights, imgsz, device, epoch, conf))

    def _score_weights(self, weights: str | Path, imgsz: int, device: Any, epoch: int, conf: float) -> None:
        if not self.samples:
            return self.record(epoch, [])
        from ultralytics import YOLO

        started = time.perf_counter()
        model = YOLO(str(weights))
        results = model.predict([s.picture for s in self.samples], imgsz=imgsz, device=device, conf=conf,
                                verbose=False, save=False)
        predictions = []
        for result in results:
            boxes = result.boxes
            found = [[round(float(v), 1) for v in xyxy] + [int(c), round(float(p), 3)]
                     for xyxy, c, p in zip(boxes.xyxy.tolist(), boxes.cls.tolist(), boxes.conf.tolist())]
            crossing = [b[5] for b in found if b[4] == CROSSING]
            predictions.append({"p_crossing": max(crossing, default=0.0), "boxes": found})
        self.seconds += time.perf_counter() - started
        self.record(epoch, predictions)


def _truth(image: Path, width: int, height: int) -> list[list[float]]:
    """``[[x1, y1, x2, y2, class]]`` (pixels) of an image's YOLO label file (Ultralytics'
    images/ -> labels/ rule); [] when it has none."""
    from ultralytics.data.utils import img2label_paths

    from pedsense.data.yolo_format import read_label_file

    xyxy, classes = read_label_file(Path(img2label_paths([str(image)])[0]), width, height)
    return [[round(float(v), 1) for v in box] + [int(c)] for box, c in zip(xyxy, classes)]
