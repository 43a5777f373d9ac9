"""Launch checks: everything a trainer would refuse at its start, found before any run exists.

``preflight(model_type, params, home)`` returns ``{field: message}`` for the parameter spec's
rules (``pedsense.train.params``) and for what depends on the data home: the datasets the
trainer reads are built (for the task asked), the batch fits the training split, the device
exists, an existing detector's weights (``yolo_model``, a .pt ``model_variant``) load. The
dashboard's forms and the run manager call it, so a launch that would fail at once is refused with the field to fix and no run folder is made.
The messages are the trainers' own (the same functions raise them there).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from pedsense.config import paths
from pedsense.data.intent import IntentOptions
from pedsense.errors import PedsenseError
from pedsense.train.common import check_batch_size, require_task
from pedsense.train.params import FormError, spec_for
from pedsense.train.samples import count_split_rows, read_split_rows

Check = Callable[[dict, Any], None]


def preflight(model_type: str, params: Mapping[str, Any],
              home: str | os.PathLike | None = None) -> dict[str, str]:
    """``{field: message}`` of every problem a launch of ``model_type`` with ``params`` would
    meet at its start (empty: it can launch). ``_data`` holds problems of no single field."""
    spec = spec_for(model_type)
    errors = spec.errors(params)
    if errors:
        return errors
    checked = spec.check(params)
    p = paths(home)
    for field, check in _CHECKS[model_type]:
        try:
            check(checked, p)
        except PedsenseError as exc:
            errors.setdefault(field, str(exc))
    return errors


def _device(params: dict, p) -> None:
    if params.get("device") is not None:
        from pedsense.device import resolve_device

        resolve_device(params["device"])


def _devices(params: dict, p) -> None:
    from pedsense.device import resolve_device_list

    resolve_device_list(params.get("devices"))


def _yolo_devices(params: dict, p) -> None:
    """Devices that exist, and GPUs: Ultralytics trains data-parallel on CUDA only."""
    from pedsense.device import resolve_device_list
    from pedsense.train.yolo_ddp import ultralytics_devices

    devices = resolve_device_list(params.get("devices"))
    if devices and len(devices) > 1:
        ultralytics_devices(devices)


def _variant(params: dict, p) -> None:
    """A base model that exists and, given as a .pt file, holds a detector (the trainer's check)."""
    if params.get("yolo_model") is None:
        from pedsense.train.yolo_inputs import check_model_variant

        check_model_variant(params["model_variant"])


def _yolo_images(p, folder: str, rebuild: str) -> int | None:
    """Training images of a YOLO dataset (None when it is not built: its own check says so)."""
    from pedsense.train.yolo_inputs import load_yolo_dataset

    try:
        return load_yolo_dataset(getattr(p, folder) / "data.yaml", rebuild).counts["train"]
    except PedsenseError:
        return None


def _yolo_data(params: dict, p) -> None:
    from pedsense.train.yolo_inputs import load_yolo_dataset

    load_yolo_dataset(p.yolo / "data.yaml", "pedsense preprocess yolo")


def _yolo_batch(params: dict, p) -> None:
    from pedsense.train.yolo_inputs import subset_size

    images = _yolo_images(p, "yolo", "pedsense preprocess yolo")
    if images is not None:
        check_batch_size(params["batch_size"], subset_size(images, params["fraction"]), "training images")


def _sequences(params: dict, p) -> None:
    read_split_rows(p.resnet / "labels.csv", "train", "ResNet sequence dataset", "pedsense preprocess resnet")
    require_task(params["task"], p.sequences / "manifest.json", "ResNet sequence dataset",
                 "pedsense preprocess resnet")


def _sequence_batch(params: dict, p) -> None:
    rows = count_split_rows(p.resnet / "labels.csv", "train")
    if rows:
        check_batch_size(params["batch_size"], rows, "training sequences")


def _sequence_context(params: dict, p) -> None:
    """Fusion: the groups pass the leak guard (the build's sample type) and the build carries them."""
    if params["context_features"] and (p.resnet / "labels.csv").is_file():
        from pedsense.data.sequence_context import load_sequence_context

        load_sequence_context(p.home, "train", params["context_features"], ())


def _reuse(params: dict, p) -> None:
    if params["yolo_model"] is not None:
        from pedsense.train.hybrid_trainer import check_yolo_model

        check_yolo_model(params["yolo_model"])


def _detector_data(params: dict, p) -> None:
    if params["yolo_model"] is None:
        from pedsense.train.yolo_inputs import load_yolo_dataset

        load_yolo_dataset(p.yolo_detector / "data.yaml", "pedsense preprocess detector")


def _detector_batch(params: dict, p) -> None:
    from pedsense.train.yolo_inputs import subset_size

    images = _yolo_images(p, "yolo_detector", "pedsense preprocess detector")
    if params["yolo_model"] is None and images is not None:
        check_batch_size(params["yolo_batch_size"] or params["batch_size"],
                         subset_size(images, params["fraction"]), "detector training images")


def _crops_task(params: dict, p) -> None:
    intent = IntentOptions.from_dict(params)  # the protocol of crops the run would build
    if (p.resnet / "crops.csv").is_file():
        require_task(params["task"], p.resnet / "crops" / "manifest.json", "hybrid crop dataset",
                     "pedsense preprocess crops",
                     options=intent.as_dict() if params["task"] == "intent" else None)


def _crops_batch(params: dict, p) -> None:
    rows = count_split_rows(p.resnet / "crops.csv", "train")
    if rows:  # missing crops are built by the run
        check_batch_size(params["batch_size"], rows, "training crops")


def _context_features(params: dict, p) -> None:
    """The build exists and allows the groups asked for (a presence leak is refused here)."""
    from pedsense.data.context_features import resolve_features
    from pedsense.data.context_format import context_manifest_path

    resolve_features(params["features"], params["sample_type"] or context_manifest_path(p.home).parent.name)


def _context_data(params: dict, p) -> None:
    from pedsense.train.context_trainer import load_context_data

    data = load_context_data(None, p.home, params["sample_type"])  # features: _context_features' to judge
    check_batch_size(params["batch_size"], len(data.train), "training windows")


_CHECKS: dict[str, list[tuple[str, Check]]] = {
    "yolo": [("device", _device), ("devices", _yolo_devices), ("model_variant", _variant), ("_data", _yolo_data),
             ("batch_size", _yolo_batch)],
    "resnet-lstm": [("device", _device), ("devices", _devices), ("_data", _sequences),
                    ("batch_size", _sequence_batch), ("context_features", _sequence_context)],
    "hybrid": [("device", _device), ("devices", _devices), ("yolo_model", _reuse), ("model_variant", _variant),
               ("_data", _detector_data),
               ("yolo_batch_size", _detector_batch), ("_data", _crops_task), ("batch_size", _crops_batch)],
    # features first: a leaky group is named on its field; then the build and the batch
    "context": [("device", _device), ("features", _context_features), ("_data", _context_data)],
}


def refuse(model_type: str, params: Mapping[str, Any], home=None) -> None:
    """Raise ``FormError`` with every problem :func:`preflight` finds."""
    errors = preflight(model_type, params, home)
    if errors:
        raise FormError(errors)
