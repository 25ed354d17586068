"""Batch statistics over every process of a data-parallel job (SyncBatchNorm semantics).

With the batch split among W processes, a batch norm that took statistics over its own share
would normalise each share differently from the whole batch. Here the layers opted in by
:func:`sync_batch_statistics` add up, over the process group, for each channel

    S1 = sum x,   S2 = sum x^2,   M = count            (over N, H, W of every share)

and use ``mean = S1 / M`` and ``var = S2 / M - mean^2`` (biased; the running variance is made
unbiased with the global M, as for one process). The sum is a differentiable all-reduce: in the
backward pass each process receives the gradient of every process's loss with respect to
(S1, S2), so after the data-parallel gradient average the weights move as for one process with
the whole batch. Outside training, or with no process group of more than one process, nothing
is exchanged.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["global_moments", "sync_batch_statistics", "syncs"]


class _SumOverProcesses(torch.autograd.Function):
    """y = sum over processes of x; the gradient of each x is the sum over processes of the
    gradient of y (every process's loss depends on every x through y)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        total = x.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def syncs(module: nn.Module) -> bool:
    """Whether ``module`` should exchange its batch statistics now."""
    return (getattr(module, "sync_statistics", False) and module.training
            and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


def global_moments(x: Tensor) -> tuple[Tensor, Tensor, int]:
    """Per-channel mean and biased variance over (N, H, W) of ``x`` on every process, and the
    number of values per channel M. Sums are taken in float32.

    Shape:
        (N, C, H, W) -> (1, C, 1, 1), (1, C, 1, 1), int
    """
    values = x.float()
    channels = x.shape[1]
    count = torch.tensor([x.shape[0] * x.shape[2] * x.shape[3]], dtype=torch.float32,
                         device=x.device)
    local = torch.cat([values.sum((0, 2, 3)), values.square().sum((0, 2, 3)), count])
    total = _SumOverProcesses.apply(local)
    m = total[-1]
    mean = total[:channels] / m
    var = (total[channels:2 * channels] / m - mean.square()).clamp_min(0)
    shape = (1, channels, 1, 1)
    return mean.view(shape).to(x.dtype), var.view(shape).to(x.dtype), int(m.item())


def sync_batch_statistics(network: nn.Module, enabled: bool = True) -> int:
    """Make every layer of ``network`` that takes batch statistics (it has a
    ``sync_statistics`` attribute: batch and switchable norms) take them over all processes;
    the number of such layers."""
    found = 0
    for module in network.modules():
        if hasattr(module, "sync_statistics"):
            module.sync_statistics = enabled
            found += 1
    return found
