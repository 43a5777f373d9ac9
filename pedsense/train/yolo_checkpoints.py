"""Ultralytics checkpoints a run can always resume from.

Ultralytics resumes from a checkpoint that still has its optimizer, but its last step strips
the optimizer from ``weights/last.pt`` (a stopped run goes through it too), and it writes
``last.pt``/``best.pt`` in place, so a failed write would leave half a file. A stop therefore
sets the last whole epoch aside as ``weights/resume.pt``, and each save moves the previous
files aside first and puts them back when it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

from pedsense.errors import DataError

PREVIOUS_SUFFIX = ".previous"  # last.pt.previous: the checkpoint a save is replacing


def resume_file(last: Path) -> Path:
    """Where a stop sets ``last.pt`` aside: ``resume.pt`` beside it."""
    return last.with_name("resume.pt")


def keeping_previous_weights(save_model, weights_dir: Path):
    """Run Ultralytics' ``save_model`` so that a failed write loses no checkpoint.

    Ultralytics overwrites ``last.pt`` and ``best.pt`` in place; a full disk mid-write would
    leave half a file where the previous epoch's was. They are moved aside first (a rename,
    no copy), put back if the save raises, and dropped once it succeeded.
    """
    moved = []
    for name in ("last.pt", "best.pt"):
        path = weights_dir / name
        if path.is_file():
            os.replace(path, path.with_name(name + PREVIOUS_SUFFIX))
            moved.append(path)
    try:
        result = save_model()
    except BaseException:
        for path in moved:
            os.replace(path.with_name(path.name + PREVIOUS_SUFFIX), path)
        raise
    for path in moved:
        previous = path.with_name(path.name + PREVIOUS_SUFFIX)
        if path.is_file():
            previous.unlink(missing_ok=True)
        else:  # best.pt is written only when the epoch is the best so far
            os.replace(previous, path)
    return result


def keep_resume_point(last: Path) -> None:
    """Set ``weights/last.pt`` (the last completed epoch, optimizer included) aside as ``resume.pt``.

    A stop mid-epoch makes Ultralytics save the cut epoch over last.pt and then strip its
    optimizer; resuming continues from the epoch before and trains the cut one again.
    """
    if last.is_file():
        os.replace(last, resume_file(last))


def resume_point(save_dir: Path) -> tuple[Path | None, int]:
    """The checkpoint Ultralytics can resume ``save_dir`` from, and how many epochs it holds.

    Of ``weights/last.pt``, ``weights/resume.pt`` (set aside by a stop) and
    ``weights/last.pt.previous`` (left by a crash during a save), the one that still has its
    optimizer and the most epochs; ``(None, 0)`` when none does (stopped in the first epoch:
    train it again).

    Raises:
        DataError: a checkpoint there cannot be read (truncated by a crash or a full disk) and
            none other can be resumed from.
    """
    import torch

    best: tuple[Path | None, int] = (None, 0)
    unreadable = []
    weights = save_dir / "weights"
    # last.pt.previous: a process killed while Ultralytics was writing last.pt over it
    for path in (weights / "last.pt", weights / "resume.pt", weights / f"last.pt{PREVIOUS_SUFFIX}"):
        if not path.is_file():
            continue
        if path.stat().st_size == 0:
            unreadable.append(f"{path} is empty (0 bytes)")
            continue
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            unreadable.append(f"{path} cannot be read ({str(exc).splitlines()[0][:120]})")
            continue
        epochs = int(checkpoint.get("epoch", -1)) + 1 if isinstance(checkpoint, dict) else 0
        if isinstance(checkpoint, dict) and checkpoint.get("optimizer") is not None and epochs > best[1]:
            best = (path, epochs)
    if best[0] is None and unreadable:
        raise DataError(f"Cannot resume: {'; '.join(unreadable)}. A crash or a full disk cut its save short "
                        "and no other checkpoint of the run can be resumed from: free disk space if it is "
                        "full, then start a new run with the same parameters.")
    return best
