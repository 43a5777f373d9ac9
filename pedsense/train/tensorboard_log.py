"""TensorBoard event files in every run folder, so ``tensorboard --logdir models/`` shows each run.

``TrainingRun`` opens a :class:`TensorBoardLog` when the run starts (when the ``tensorboard``
package is installed; without it the run trains as before and its log says what to install) and
feeds it what it records anyway:

- each epoch's metrics row: ``train/loss``, ``val/loss``, ``train/accuracy``, ``val/accuracy``,
  ``lr`` and the family's own metrics under ``metrics/`` (``metrics/mAP50-95``, ...), at the
  epoch as the step; a stage other than the classifier's (the hybrid's ``detector``) is prefixed
  (``detector/val/loss``);
- each point of the loss curve: ``train/loss_smoothed`` and ``train/lr_step`` at the optimizer step;
- at the end, the run's parameters as hparams with its best metric (``best/<name>``).

The writer is PyTorch's own (``torch.utils.tensorboard.SummaryWriter``), writing into the run folder.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

INSTALL_HINT = "TensorBoard event files need the tensorboard package: pip install tensorboard"
# metrics.csv column -> TensorBoard tag; other numeric columns go under metrics/
TAGS = {"train_loss": "train/loss", "val_loss": "val/loss", "train_acc": "train/accuracy",
        "val_acc": "val/accuracy", "lr": "lr"}
NOT_SCALARS = ("epoch", "stage", "seconds")
MAIN_STAGES = ("train", "classifier")


def tag_prefix(stage: str | None) -> str:
    return "" if stage in (None, "", *MAIN_STAGES) else f"{stage}/"


def epoch_scalars(row: Mapping[str, Any], stage: str | None = None) -> dict[str, float]:
    """The TensorBoard scalars of one metrics row: ``{tag: value}`` (finite numbers only)."""
    prefix = tag_prefix(stage or row.get("stage"))
    scalars = {}
    for key, value in row.items():
        if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            scalars[prefix + TAGS.get(key, f"metrics/{key}")] = float(value)
    return scalars


def hparam_values(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as TensorBoard takes them (numbers, text, booleans; the rest as text)."""
    values = {}
    for key, value in parameters.items():
        if isinstance(value, (bool, int, float, str)):
            values[key] = value
        elif value is None:
            values[key] = "none"
        else:
            values[key] = str(value)
    return values


class TensorBoardLog:
    """One run's TensorBoard writer (event files in the run folder). Never breaks training:
    a write that fails closes the writer with one log line."""

    def __init__(self, writer):
        self.writer = writer

    @classmethod
    def open(cls, run_dir: str | os.PathLike, say: Callable[[str], None] = log.info) -> "TensorBoardLog":
        """A writer into ``run_dir``; without ``tensorboard`` one that writes nothing, after
        ``say`` (the run's log) named the package to install."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            say(INSTALL_HINT)
            return cls(None)
        return cls(SummaryWriter(log_dir=str(run_dir), flush_secs=30))

    def _guarded(self, write, *args) -> None:
        if self.writer is None:
            return
        try:
            write(*args)
        except Exception as exc:  # noqa: BLE001 - a full disk: the run goes on without TensorBoard
            log.warning("TensorBoard logging stopped: %s", exc)
            self.close()

    @property
    def active(self) -> bool:
        return self.writer is not None

    def step(self, step: int, loss: float, lr: float, stage: str | None) -> None:
        def write():
            prefix = tag_prefix(stage)
            if math.isfinite(loss):
                self.writer.add_scalar(f"{prefix}train/loss_smoothed", loss, step)
            if math.isfinite(lr):
                self.writer.add_scalar(f"{prefix}train/lr_step", lr, step)
        self._guarded(write)

    def epoch(self, epoch: int, row: Mapping[str, Any], stage: str | None) -> None:
        def write():
            for tag, value in epoch_scalars(row, stage).items():
                self.writer.add_scalar(tag, value, epoch)
            self.writer.flush()
        self._guarded(write)

    def hparams(self, parameters: Mapping[str, Any], best: Mapping[str, Any] | None) -> None:
        """The parameters with the best metric, in the run's own event file (TensorBoard's
        HParams tab lists every run of ``--logdir`` side by side)."""
        def write():
            from torch.utils.tensorboard.summary import hparams

            metrics = {}
            if best and isinstance(best.get("value"), (int, float)):
                metrics[f"best/{best['name']}"] = float(best["value"])
            experiment, start, end = hparams(hparam_values(parameters), metrics)
            file_writer = self.writer._get_file_writer()
            for summary in (experiment, start, end):
                file_writer.add_summary(summary)
            for tag, value in metrics.items():
                self.writer.add_scalar(tag, value, int(best.get("epoch") or 0))
            self.writer.flush()
        self._guarded(write)

    def close(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass
