"""Pick and describe the torch device; keep torch's CPU thread count across Ultralytics calls."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from pedsense.errors import ConfigError


class DeviceError(ConfigError):
    """The requested device does not exist on this machine."""


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
