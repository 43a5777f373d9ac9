"""Data-parallel training on PyTorch's own machinery: ``torch.distributed``, DDP, ``torchrun``.

A ResNet run asks for several devices with ``devices="cpu,cpu"`` / ``"cuda:0,cuda:1"`` / a GPU
count. It then trains in one process per device:

- **under torchrun** (``launch_command``: ``torchrun --standalone --nproc-per-node N -m
  pedsense.worker RUN_DIR``, or a multi-node ``torchrun --nnodes … --rdzv-endpoint …`` around the
  same entry point), every process calls the seed trainer and :func:`current` joins the process
  group from torchrun's environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_*``);
- **called directly** (library, CLI, the dashboard's in-thread runs), the trainer starts the
  processes itself (:mod:`pedsense.train.spawn`) and relays rank 0's events to its caller.

Either way: the model is wrapped in DDP, each rank reads its shard of every global batch
(:class:`ShardedBatchSampler`, re-seeded each epoch), loss and accuracy sums are all-reduced,
a stop request or a non-finite loss is agreed by every rank at the same batch, and only rank 0
writes run files and events (ranks > 0 run a :class:`FollowerRun`). ``batch_size`` is the
global batch. ``gloo`` on CPUs, ``nccl`` on GPUs.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from pedsense.device import parse_device_list
from pedsense.errors import ConfigError, PedsenseError
from pedsense.train.common import TrainingRun

# How long a rank waits for the others at a collective (the hybrid's ranks > 0 wait out its
# detector stage; a rank-0 feature extraction can take a while on real JAAD).
GROUP_TIMEOUT = datetime.timedelta(hours=6)
# Set by pedsense.train.spawn for the processes it starts (torchrun's variables are not used
# there, so Ultralytics in rank 0 still behaves as a top-level process).
SPAWN_ENV = ("PEDSENSE_DDP_RANK", "PEDSENSE_DDP_WORLD_SIZE", "PEDSENSE_DDP_INIT")


class DistributedError(PedsenseError):
    """A data-parallel launch that cannot work (launcher missing, processes that did not start)."""


def is_main_process() -> bool:
    """False in a torchrun / spawned process of rank > 0: such a process writes nothing."""
    for variable in ("PEDSENSE_DDP_RANK", "RANK"):
        if os.environ.get(variable, "").strip().isdigit():
            return int(os.environ[variable]) == 0
    return True


def torchrun_env() -> bool:
    """True inside a process torchrun started for a group of more than one."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "LOCAL_RANK" in os.environ


@dataclass
class Distributed:
    """This process's place in a data-parallel run; ``SINGLE`` (world size 1) makes every
    method a no-op, so one code path serves both."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    devices: tuple[str, ...] = ()
    init_method: str | None = None     # None: torchrun's env:// (or a group already there)
    launcher: str = "single"           # single | torchrun | spawn
    joined: bool = field(default=False, init=False)
    owned: bool = field(default=False, init=False)  # this context created the process group

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str:
        return "nccl" if self.device.startswith("cuda") else "gloo"

    def join(self) -> "Distributed":
        """Join the process group (once); every rank must call it. Blocks until all have."""
        import torch.distributed as dist

        if not self.active or self.joined:
            return self
        if self.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(self.device))
        if not dist.is_initialized():
            self.owned = True
            try:
                dist.init_process_group(self.backend, init_method=self.init_method or "env://",
                                        rank=self.rank, world_size=self.world_size, timeout=GROUP_TIMEOUT)
            except Exception as exc:  # rendezvous refused, port taken, backend missing
                raise DistributedError(
                    f"Process {self.rank} of {self.world_size} could not join the data-parallel group "
                    f"({self.backend}, {self.init_method or 'env://'}): {type(exc).__name__}: {exc}. "
                    "Check that every process was started (torchrun's log) and the rendezvous port is "
                    "free, or train in one process (leave devices empty).") from exc
        self.joined = True
        return self

    def leave(self) -> None:
        """Leave the process group this context created (a worker's own group is left alone)."""
        import torch.distributed as dist

        if self.owned and dist.is_initialized():
            dist.destroy_process_group()
        self.joined = self.owned = False

    # -- collectives (no-ops in one process) ---------------------------------------------------
    def _tensor(self, values: Sequence[float]) -> torch.Tensor:
        device = self.device if self.backend == "nccl" else "cpu"
        return torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums of ``values`` over the ranks."""
        if not self.active:
            return [float(v) for v in values]
        import torch.distributed as dist

        tensor = self._tensor(values)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu().tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when it is True on any (a stop, a non-finite loss)."""
        return self.sum([1.0 if flag else 0.0])[0] > 0 if self.active else bool(flag)

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        if not self.active:
            return [value]
        import torch.distributed as dist

        found: list[Any] = [None] * self.world_size
        dist.all_gather_object(found, value)
        return found

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm statistics drift apart between broadcasts)."""
        if not self.active:
            return
        import torch.distributed as dist

        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` inside DistributedDataParallel (itself in one process)."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=ids)

    def agree_stop(self, run: TrainingRun, flag: bool) -> bool:
        """Whether to stop now, the same answer on every rank (any rank's request counts)."""
        if not self.active:
            return bool(flag)
        if self.any(flag) and not run.stop_seen:
            run.stop_seen = True
            run.log("stop requested (by another training process)")
        return run.stop_seen

    def record(self) -> dict | None:
        """config.json's ``distributed`` entry (None in one process)."""
        if not self.active:
            return None
        return {"world_size": self.world_size, "backend": self.backend, "launcher": self.launcher,
                "devices": list(self.devices), "batch_size": "global (split over the processes)"}


SINGLE = Distributed()


def current(devices: Sequence[str] | None, device: str) -> Distributed:
    """This process's data-parallel context.

    Inside torchrun's processes (or those :mod:`pedsense.train.spawn` started), the rank and
    world come from the environment and the device is ``devices[LOCAL_RANK]`` (or
    ``cuda:LOCAL_RANK`` / ``cpu`` when no list was given). Otherwise one process on ``device``
    (``devices`` of one entry: that device). Call :meth:`Distributed.join` before training.

    Raises:
        ConfigError: torchrun started another number of processes per node than ``devices`` names.
    """
    devices = tuple(devices or ())
    if os.environ.get("PEDSENSE_DDP_RANK", "").isdigit():
        rank, world = int(os.environ["PEDSENSE_DDP_RANK"]), int(os.environ["PEDSENSE_DDP_WORLD_SIZE"])
        return Distributed(rank, rank, world, devices[rank] if devices else device, devices,
                           os.environ["PEDSENSE_DDP_INIT"], "spawn")
    if torchrun_env():
        local_rank, local_world = int(os.environ["LOCAL_RANK"]), int(os.environ.get("LOCAL_WORLD_SIZE", "0") or 0)
        if devices and local_world and local_world != len(devices):
            raise ConfigError(f"torchrun started {local_world} processes per node, but devices names "
                              f"{len(devices)} ({','.join(devices)}). Use --nproc-per-node {len(devices)}.")
        own = devices[local_rank] if devices else \
            (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        return Distributed(int(os.environ["RANK"]), local_rank, int(os.environ["WORLD_SIZE"]), own,
                           devices, None, "torchrun")
    return Distributed(device=devices[0] if len(devices) == 1 else device, devices=devices)


def needs_spawn(devices: Sequence[str] | None) -> bool:
    """True when a run asks for several devices but this process is not one of a group yet."""
    import torch.distributed as dist

    return bool(devices) and len(devices) > 1 and not torchrun_env() \
        and not os.environ.get("PEDSENSE_DDP_RANK") and not dist.is_initialized()


def check_global_batch(batch_size: int, world_size: int, what: str = "batch_size") -> None:
    if batch_size < world_size:
        raise ConfigError(f"{what}={batch_size} is smaller than the {world_size} training processes: "
                          f"batch_size is the global batch, split over them. Use {what} >= {world_size}.")


# -- the data each rank reads -----------------------------------------------------------------
class ShardedBatchSampler(torch.utils.data.Sampler):
    """Each rank's share of every global batch: one permutation per epoch (seeded with
    ``seed + epoch`` on every rank, as DistributedSampler's ``set_epoch``), cut into global
    batches of ``batch_size``, rank r taking items r, r + W, … of each. An epoch covers the
    samples one process would see, each once: a training epoch drops only a last batch of one
    (as one process does), or one too small to give every rank ``min_per_rank`` samples (single
    crops ask for 2: BatchNorm cannot learn from one crop's 1x1 maps; sequences for 1).
    """

    def __init__(self, n: int, batch_size: int, *, rank: int, world_size: int, shuffle: bool,
                 seed: int = 0, min_per_rank: int = 1):
        self.n, self.batch_size, self.rank, self.world_size = n, batch_size, rank, world_size
        self.shuffle, self.seed, self.epoch, self.min_per_rank = shuffle, seed, 0, min_per_rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=generator).tolist()
        else:
            order = list(range(self.n))
        batches = [order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        if self.shuffle and len(batches) > 1:
            last = len(batches[-1])
            if last == 1 or (last < self.batch_size and last < self.world_size * self.min_per_rank):
                batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches():
            shard = batch[self.rank::self.world_size]
            if shard:
                yield shard

    def __len__(self) -> int:
        return sum(1 for b in self.global_batches() if b[self.rank::self.world_size])


# -- ranks > 0 write nothing --------------------------------------------------------------------
class FollowerRun(TrainingRun):
    """The run as a rank > 0 sees it: same folder and checkpoints to read, nothing written, no
    events; its stop decision comes from rank 0 through :meth:`Distributed.any`."""

    def log(self, message: str) -> None:
        pass

    def start(self, config: Mapping[str, Any]) -> None:
        pass

    def rewind(self, stage: str, epochs_kept: int) -> None:
        pass

    def stage(self, stage: str, total_epochs: int) -> None:
        pass

    def stage_done(self, stage: str, best: Mapping[str, Any]) -> None:
        pass

    def batch_end(self, epoch: int, batch: int, total_batches: int, stage: str = "train") -> bool:
        return self.stop_now()

    def step_end(self, epoch: int, step: int, loss: float, lr: float, stage: str = "train") -> None:
        pass

    def epoch_end(self, epoch: int, total_epochs: int, row: Mapping[str, Any], stage: str = "train") -> None:
        self.epochs_done += 1

    def record(self, **changes: Any) -> None:
        pass

    def finish(self, best_metric: Mapping[str, Any] | None = None, **config_extra: Any) -> Path:
        return self.path

    def fail(self, exc: BaseException) -> None:
        pass


def open_run(ctx: Distributed, model_type: str, name: str | None, **kwargs: Any) -> TrainingRun:
    """``TrainingRun.open`` on rank 0; a :class:`FollowerRun` of the same folder elsewhere."""
    if ctx.is_main:
        return TrainingRun.open(model_type, name, **kwargs)
    run_dir = kwargs.get("run_dir")
    if run_dir is None:
        raise ConfigError("A data-parallel process of rank > 0 needs the run folder rank 0 writes "
                          "(run_dir=); launch through torchrun -m pedsense.worker RUN_DIR.")
    from pedsense.runfolder import RunFolder

    return FollowerRun(RunFolder(run_dir), model_type, None, kwargs.get("should_stop"),
                       resume=bool(kwargs.get("resume")))


# -- the launcher the run manager's supervisor calls ------------------------------------------
def find_torchrun() -> str:
    """The ``torchrun`` beside this interpreter (a virtual environment's), else on PATH.

    Raises:
        DistributedError: torchrun is missing.
    """
    beside = Path(sys.executable).with_name("torchrun")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("torchrun")
    if found:
        return found
    raise DistributedError(
        f"torchrun, PyTorch's launcher, was found neither beside {sys.executable} nor on PATH, so a run on "
        "several devices cannot start. It comes with torch: reinstall it in this environment "
        "(`python -m pip install --force-reinstall torch`), or train on one device (leave devices empty).")


def launch_command(run_dir: str | os.PathLike, devices: Any, *, model_type: str | None = None) -> list[str]:
    """The command line that runs ``run_dir``'s worker on ``devices``.

    A ResNet-LSTM run on several devices: ``torchrun --standalone --nnodes 1 --nproc-per-node N
    -m pedsense.worker RUN_DIR`` (each process writes nothing unless :func:`is_main_process`).
    YOLO and the hybrid start in one process: Ultralytics starts its own DDP processes for the
    detector, the hybrid's classifier stage starts its own (:mod:`pedsense.train.spawn`). One
    device (or none): ``python -m pedsense.worker RUN_DIR``.

    Raises:
        ConfigError: ``devices`` is not a device list. DistributedError: torchrun is missing.
    """
    parsed = parse_device_list(devices) if devices not in (None, "") else None
    model_type = model_type or Path(run_dir).resolve().parent.name
    worker = ["-m", "pedsense.worker", str(run_dir)]
    if not parsed or len(parsed) < 2 or model_type != "resnet-lstm":
        return [sys.executable, *worker]
    return [find_torchrun(), "--standalone", "--nnodes", "1", "--nproc-per-node", str(len(parsed)), *worker]


def explain_exit(returncode: int, log_tail: str = "") -> str:
    """A launcher's exit in words, for a run whose torchrun ended before the trainer recorded it."""
    text = log_tail.lower()
    if returncode == 127 or "no such file" in text and "torchrun" in text:
        return "torchrun could not be started (not found); " + find_torchrun.__doc__.splitlines()[0]
    if "address already in use" in text or "eaddrinuse" in text:
        return ("the training processes could not meet: their rendezvous port is in use. Start the run "
                "again (torchrun --standalone picks a free port), or pass another --rdzv-endpoint.")
    if "rendezvous" in text and "timeout" in text:
        return ("the training processes timed out waiting for each other: start torchrun on every node "
                "with the same --rdzv-endpoint and --nnodes.")
    if "childfailederror" in text:
        return "a training process failed (its error is in worker.log); the others were stopped."
    return f"the launcher exited with code {returncode}."
