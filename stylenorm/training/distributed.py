"""Data-parallel training under ``torchrun``: one process per GPU (NCCL) or CPU slot (gloo).

What changes when ``WORLD_SIZE`` > 1 (and nothing does without it):

* **data**: each rank makes its share of the global batch of every iteration (``--batch-size``
  images per rank, ``WORLD_SIZE x batch_size`` in all; :mod:`.data`), so a run is a pure
  function of (seed, world size, batch size);
* **gradients**: the task's losses run inside ``DistributedDataParallel``, which averages the
  gradients over the ranks: the step is the one process's step on the global batch;
* **norms**: batch and switchable norms take their batch statistics over all ranks
  (:mod:`..nn.sync`), running averages included;
* **files**: rank 0 alone writes the run folder (checkpoints, logs, samples, the model); the
  others keep a :class:`SilentLog`, and reach the checkpoint through rank 0 (no shared file
  system is needed);
* **stopping**: a Ctrl-C or SIGTERM on any rank stops every rank after the same iteration, with
  one checkpoint written by rank 0.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import StylenormError
from ..nn.sync import sync_batch_statistics
from ..ranks import Place, from_environment

__all__ = ["DataParallelTask", "SilentLog", "agree_to_stop", "check_world", "join_job",
           "mean_losses", "on_main", "refuse_in_job", "synchronise", "world_record"]

T = TypeVar("T")
TIMEOUT = datetime.timedelta(minutes=10)


def join_job(device: torch.device) -> tuple[Place, torch.device]:
    """This process's place, with the process group started when there are several ranks;
    a CUDA rank gets the GPU its ``LOCAL_RANK`` names."""
    place = from_environment()
    if not place.is_split:
        return place, device
    if device.type == "mps":
        raise StylenormError("torchrun training runs on CUDA GPUs (NCCL) or CPUs (gloo), not "
                             "MPS; pass --device cpu")
    if device.type == "cuda":
        if place.local_index >= torch.cuda.device_count():
            raise StylenormError(f"LOCAL_RANK {place.local_index} has no GPU: this machine has "
                                 f"{torch.cuda.device_count()}; lower --nproc-per-node")
        device = torch.device("cuda", place.local_index)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return place, device


def refuse_in_job(what: str, reason: str) -> None:
    """An error when this process is one rank of several: ``what`` does not run under torchrun."""
    if from_environment().is_split:
        raise StylenormError(f"{what} does not run under torchrun ({reason}); run it as one "
                             "process")


def _active() -> bool:
    return dist.is_initialized() and dist.get_world_size() > 1


def on_main(function: Callable[..., T], *args) -> T:
    """``function(*args)`` on rank 0, its result (or its error) handed to every rank."""
    if not _active():
        return function(*args)
    box: list = [None]
    if dist.get_rank() == 0:
        try:
            box[0] = ("ok", function(*args))
        except StylenormError as exc:
            box[0] = ("error", str(exc))
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise StylenormError(value)
    return value


def synchronise() -> None:
    """Wait until every rank is here (nothing without a process group)."""
    if _active():
        dist.barrier()


def _all_reduce(values: list[float], op) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=op)
    return tensor.tolist()


def agree_to_stop(requested: bool) -> bool:
    """True on every rank when any rank was asked to stop (so all stop after one iteration)."""
    if not _active():
        return requested
    return _all_reduce([float(requested)], dist.ReduceOp.MAX)[0] > 0


def mean_losses(losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each loss averaged over the ranks (the global batch's loss, for the log)."""
    if not _active():
        return losses
    keys = sorted(losses)
    summed = _all_reduce([float(losses[k].detach()) for k in keys], dist.ReduceOp.SUM)
    size = dist.get_world_size()
    return {k: torch.tensor(v / size) for k, v in zip(keys, summed, strict=True)}


class _TaskModule(nn.Module):
    """The task's losses as a module's forward, so that DDP sees every use of the network."""

    def __init__(self, task) -> None:
        super().__init__()
        self.network = task.network
        self.task = task

    def forward(self, batch: list[torch.Tensor], iteration: int) -> dict[str, torch.Tensor]:
        return self.task.losses(batch, iteration)


class DataParallelTask:
    """Stands in for a task in the training step: ``losses`` runs inside DDP. Built after the
    weights are final on every rank (DDP starts by copying rank 0's to the others)."""

    def __init__(self, task, device: torch.device) -> None:
        sync_batch_statistics(task.network)
        self.module = DistributedDataParallel(
            _TaskModule(task), device_ids=[device.index] if device.type == "cuda" else None,
            forward_sync_buffers=False)  # synced norms keep the buffers equal on every rank

    def losses(self, batch: list[torch.Tensor], iteration: int) -> dict[str, torch.Tensor]:
        return self.module(batch, iteration)


class SilentLog:
    """What a rank other than 0 keeps instead of a log file: it records nothing."""

    def append(self, record: dict) -> None:
        pass

    def records(self) -> list[dict]:
        return []

    def truncate(self, iteration: int) -> None:
        pass

    def loss_keys(self) -> list[str]:
        return []

    def final_losses(self, window: int = 50) -> dict[str, float]:
        return {}


def world_record(place: Place, batch_size: int) -> dict:
    """What a checkpoint and the model's provenance say about the job."""
    return {"world_size": place.count, "batch_size_per_rank": batch_size,
            "global_batch": place.count * batch_size}


def check_world(saved: dict | None, place: Place, batch_size: int, exact_across_sizes: bool,
                path) -> None:
    """Refuse to resume a checkpoint of another world size unless the run can go on exactly:
    the same global batch (``--batch-size`` is per rank) and a task whose steps do not depend on
    how the batch is split (``exact_across_sizes``)."""
    saved = saved or world_record(Place(), batch_size)  # checkpoints from before torchrun
    now = world_record(place, batch_size)
    if saved["world_size"] == now["world_size"]:
        return
    was = f"{saved['world_size']} process(es) x {saved['batch_size_per_rank']}"
    if not exact_across_sizes:
        raise StylenormError(f"{path}: trained by {was}; this task's steps depend on how the "
                             f"batch is split, so resume it with {saved['world_size']} "
                             "process(es)")
    if saved["global_batch"] != now["global_batch"]:
        per_rank = saved["global_batch"] / place.count
        hint = (f"--batch-size {int(per_rank)}" if per_rank.is_integer() else
                f"a process count that divides {saved['global_batch']}")
        raise StylenormError(
            f"{path}: trained with a global batch of {saved['global_batch']} ({was}); with "
            f"{place.count} process(es) x {batch_size} it would be {now['global_batch']}: "
            f"use {hint} (--batch-size is per process)", params=("batch_size",))
