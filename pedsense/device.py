"""Pick and describe the torch device; keep torch's CPU thread count across Ultralytics calls."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterator

from pedsense.errors import ConfigError


class DeviceError(ConfigError):
    """The requested device does not exist on this machine."""


MAX_PROCESSES = 64  # training processes per machine a device list may ask for


def parse_device_list(value: Any, rule: str = "must be a device list") -> tuple[str, ...] | None:
    """A device list -> one torch device per training process (syntax only, no torch import).

    ``"cpu,cpu"``, ``"cuda:0,cuda:1"`` (or ``"0,1"``), ``["cpu", "cpu"]``, or a number of GPUs
    (``2`` -> ``("cuda:0", "cuda:1")``); empty -> None. Whether the GPUs exist is
    :func:`resolve_device_list`'s job.

    Raises:
        ConfigError: not a device list, CPU and GPUs mixed, a GPU named twice, too many.
    """
    if value is None or isinstance(value, bool):
        raise ConfigError(f"{rule}, got {value!r}.")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        if not 1 <= int(value) <= MAX_PROCESSES:
            raise ConfigError(f"must name 1 to {MAX_PROCESSES} GPUs, got {value!r}.")
        return tuple(f"cuda:{i}" for i in range(int(value)))
    if isinstance(value, str):
        items = re.split(r"[,\s]+", value.strip())
    elif isinstance(value, (list, tuple)):
        items = [str(item) for item in value]
    else:
        raise ConfigError(f"{rule}, got {value!r}.")
    devices = []
    for item in (i.strip().lower() for i in items if i.strip()):
        item = f"cuda:{item}" if item.isdigit() else "cuda:0" if item == "cuda" else item
        if item != "cpu" and not re.fullmatch(r"cuda:\d+", item):
            raise ConfigError(f"{item!r} is not a device: use cpu or cuda:N entries (e.g. cpu,cpu or "
                              f"cuda:0,cuda:1), got {value!r}.")
        devices.append(item)
    if not devices:
        return None
    if len(devices) > MAX_PROCESSES:
        raise ConfigError(f"names {len(devices)} devices; at most {MAX_PROCESSES} processes per machine.")
    if len({d.split(":")[0] for d in devices}) > 1:
        raise ConfigError(f"mixes the CPU and GPUs ({','.join(devices)}): every process trains on the same "
                          "kind of device. Use cpu,cpu or cuda:0,cuda:1.")
    gpus = [d for d in devices if d != "cpu"]
    if len(set(gpus)) != len(gpus):
        raise ConfigError(f"names a GPU twice ({','.join(devices)}): one process per GPU.")
    return tuple(devices)


def resolve_device_list(devices: Any) -> tuple[str, ...] | None:
    """:func:`parse_device_list`, then every GPU checked to exist (DeviceError naming the visible ones)."""
    if devices is None or (isinstance(devices, str) and not devices.strip()):
        return None
    parsed = parse_device_list(devices)
    gpus = [int(d.split(":")[1]) for d in parsed or () if d != "cpu"]
    if not gpus:
        return parsed  # CPU processes: nothing to look for, so no torch import (~2 s) here
    import torch

    shown = ",".join(parsed or ())
    if not torch.cuda.is_available():
        raise DeviceError(f"devices={shown} names GPUs, but no CUDA GPU is visible to PyTorch. Use cpu,cpu "
                          "(processes on the CPU), or leave devices empty to train in one process.")
    missing = [f"cuda:{i}" for i in gpus if i >= torch.cuda.device_count()]
    if missing:
        raise DeviceError(f"devices={shown}: {', '.join(missing)} does not exist; "
                          f"{torch.cuda.device_count()} GPU(s) are visible: "
                          + ", ".join(d for d in available_devices() if d.startswith("cuda")) + ".")
    return parsed


def available_devices() -> list[str]:
    """``["cpu"]`` plus ``"cuda:N"`` for each visible GPU (and ``"mps"`` on Apple silicon)."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device: str | None = None) -> str:
    """Return a torch device string; ``None``/``"auto"`` picks the first GPU, else the CPU.

    Raises:
        DeviceError: when a GPU is asked for and none is visible.
    """
    if device is not None and str(device).strip().lower() == "cpu":
        return "cpu"  # nothing to look for: no torch import (~2 s), e.g. for `pedsense train --queue`
    import torch

    if device is None or str(device).strip().lower() in ("", "auto"):
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    device = str(device).strip().lower()
    if device.isdigit():
        device = f"cuda:{device}"
    if device == "cuda":
        device = "cuda:0"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device={device!r} was requested but no CUDA GPU is visible to PyTorch. "
                "Use device='cpu' (or leave it empty to auto-detect)."
            )
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device={device!r}: only {torch.cuda.device_count()} GPU(s) are visible. "
                "Pick one of " + ", ".join(available_devices()) + "."
            )
        return device
    if device == "mps":
        if "mps" not in available_devices():
            raise DeviceError("device='mps' was requested but Apple MPS is not available. Use 'cpu'.")
        return device
    if device == "cpu":
        return device
    raise DeviceError(f"Unknown device {device!r}. Use 'auto', 'cpu', 'cuda' or 'cuda:N'.")


def describe_device(device: str | None = None) -> str:
    """A human name for the device, e.g. ``"CPU (2 threads)"`` or ``"cuda:0 — NVIDIA H100"``."""
    import torch

    resolved = resolve_device(device)
    if resolved.startswith("cuda"):
        return f"{resolved} — {torch.cuda.get_device_name(int(resolved.split(':')[1]))}"
    if resolved == "mps":
        return "mps — Apple GPU"
    return f"CPU ({torch.get_num_threads()} threads)"


@contextmanager
def torch_threads_kept() -> Iterator[int]:
    """Restore torch's intra-op thread count (yielded) when the block ends.

    Ultralytics' ``select_device`` (each train and val, and a model's first predict or track)
    sets it to ``cpu_count - 1`` for the calling thread (1 on a 2-core machine), where it would
    stay for the ResNet work that follows: a hybrid's crop classifier, a ResNet-LSTM stage.
    Wrap every Ultralytics call in this.
    """
    import torch

    threads = torch.get_num_threads()
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)
