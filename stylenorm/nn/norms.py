"""Unconditional normalization layers for NCHW feature maps, and the name -> class registry.

Every layer standardises its input with a mean and a (biased) variance and then applies an
optional per-channel affine map,

    y = gamma * (x - mean) / sqrt(var + eps) + beta,

and the layers differ only in the axes the statistics are taken over:

==========  =====================================  ===================
layer       statistics over                        mean / var shape
==========  =====================================  ===================
batch       (N, H, W)                              (1, C, 1, 1)
instance    (H, W)                                 (N, C, 1, 1)
layer       (C, H, W)                              (N, 1, 1, 1)
group       (C/G, H, W) inside each of G groups    (N, G) per group
switchable  softmax mix of the three above         (N, C, 1, 1)
==========  =====================================  ===================

The layers are written with plain tensor ops (the tests check them against ``torch.nn.functional``)
and are all built one way, ``Layer(num_channels, **kwargs)``, so a model can pick one by name with
`build_norm` or `norm_factory`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum

import torch
from torch import Tensor, nn

from .sync import global_moments, syncs

__all__ = ["BatchNorm2d", "GroupNorm2d", "Identity2d", "InstanceNorm2d", "LayerNorm2d",
           "NORM_CLASSES", "NormName", "SwitchableNorm2d", "build_norm", "check_nchw",
           "norm_factory", "resolve_num_groups"]


def check_nchw(x: Tensor, num_channels: int | None, what: str) -> None:
    """Raise a ValueError unless ``x`` is 4-D (N, C, H, W) with ``num_channels`` channels.

    ``num_channels=None`` accepts any channel count.
    """
    if x.dim() != 4:
        raise ValueError(
            f"{what} expects a 4-D (N, C, H, W) tensor; got {x.dim()}-D shape {tuple(x.shape)}"
        )
    if num_channels is not None and x.shape[1] != num_channels:
        raise ValueError(
            f"{what} expects {num_channels} channels; got shape {tuple(x.shape)} "
            f"with {x.shape[1]} channels"
        )


def _check_positive_int(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int; got {value!r}")


def _check_momentum(momentum: float | None, allow_none: bool) -> None:
    if momentum is None and allow_none:
        return
    if momentum is None or not 0.0 <= momentum <= 1.0:
        allowed = "a float in [0, 1] or None" if allow_none else "a float in [0, 1]"
        raise ValueError(f"momentum must be {allowed}; got {momentum!r}")


def _moments(x: Tensor, dims: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Mean and biased variance over ``dims``, keeping them for broadcasting."""
    return x.mean(dim=dims, keepdim=True), x.var(dim=dims, keepdim=True, correction=0)


@torch.no_grad()
def _track(running_mean: Tensor, running_var: Tensor, mean: Tensor, var: Tensor, count: int,
           factor: float) -> None:
    """running <- (1 - factor) * running + factor * batch, with the variance made unbiased.

    The unbiased variance is var * M / (M - 1) for M values per channel, as PyTorch does.
    """
    unbiased = var * (count / (count - 1)) if count > 1 else var
    running_mean.lerp_(mean.flatten().to(running_mean.dtype), factor)
    running_var.lerp_(unbiased.flatten().to(running_var.dtype), factor)


class _Norm2d(nn.Module):
    """Shared skeleton: validate, take statistics (``_statistics``), standardise, affine."""

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        _check_positive_int(num_channels, "num_channels")
        if not eps > 0:
            raise ValueError(f"eps must be > 0; got {eps!r}")
        self.num_channels, self.eps, self.affine = num_channels, eps, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def _statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        check_nchw(x, self.num_channels, type(self).__name__)
        mean, var = self._statistics(x)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.weight is None:
            return y
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.affine}"


class BatchNorm2d(_Norm2d):
    """Batch normalization: statistics over (N, H, W) for each channel.

    In training the batch mean and biased variance normalise, and the running estimates move by
    ``running <- (1 - m) * running + m * batch`` with the *unbiased* batch variance
    (``m = 1 / num_batches_tracked``, a cumulative average, when ``momentum=None``). In eval the
    running estimates normalise, unless ``track_running_stats=False``: then batch statistics do.

    Shape:
        (N, C, H, W) -> (N, C, H, W); batch statistics need N * H * W > 1.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__(num_channels, eps, affine)
        _check_momentum(momentum, allow_none=True)
        self.momentum, self.track_running_stats = momentum, track_running_stats
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_channels))
            self.register_buffer("running_var", torch.ones(num_channels))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.sync_statistics = False  # over every process of a job: see `.sync`

    def _statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.track_running_stats and not self.training:
            return self.running_mean.view(1, -1, 1, 1), self.running_var.view(1, -1, 1, 1)
        count = x.shape[0] * x.shape[2] * x.shape[3]
        if syncs(self):
            mean, var, count = global_moments(x)
        elif count == 1:
            raise ValueError(
                f"BatchNorm2d needs more than one value per channel to take batch statistics; "
                f"got input of shape {tuple(x.shape)} (N*H*W = 1). Use a larger batch, call "
                f".eval() to use the running statistics, or pick another norm"
            )
        else:
            mean, var = _moments(x, (0, 2, 3))
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = self.momentum
            if factor is None:
                factor = 1.0 / float(self.num_batches_tracked)
            _track(self.running_mean, self.running_var, mean, var, count, factor)
        return mean, var


class InstanceNorm2d(_Norm2d):
    """Instance normalization: statistics over (H, W) for each sample and channel.

    ``InstanceNorm2d(num_channels, eps=1e-5, affine=True)``.

    Shape:
        (N, C, H, W) -> (N, C, H, W)
    """

    def _statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return _moments(x, (2, 3))


class LayerNorm2d(_Norm2d):
    """Layer normalization: statistics over (C, H, W) for each sample, per-channel gamma/beta.

    ``LayerNorm2d(num_channels, eps=1e-5, affine=True)`` equals
    ``F.layer_norm(x, x.shape[1:], gamma[:, None, None].expand(C, H, W), ...)``.

    Shape:
        (N, C, H, W) -> (N, C, H, W)
    """

    def _statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return _moments(x, (1, 2, 3))


def resolve_num_groups(num_channels: int, num_groups: int) -> int:
    """The largest divisor of ``num_channels`` that is <= ``num_groups``.

    So ``GroupNorm2d(64)`` uses 32 groups, ``GroupNorm2d(3)`` uses 3 and ``GroupNorm2d(48, 32)``
    uses 24: the channels always split into equal groups.
    """
    _check_positive_int(num_channels, "num_channels")
    _check_positive_int(num_groups, "num_groups")
    return max(d for d in range(1, min(num_groups, num_channels) + 1) if num_channels % d == 0)


class GroupNorm2d(_Norm2d):
    """Group normalization: channels split into G equal groups, statistics per sample and group.

    ``num_groups`` is an upper bound: if it does not divide ``num_channels`` the layer uses
    `resolve_num_groups` (the largest divisor <= ``num_groups``) and stores it in ``num_groups``.
    G = 1 is layer norm; G = C is instance norm.

    Shape:
        (N, C, H, W) -> (N, C, H, W)
    """

    def __init__(self, num_channels: int, num_groups: int = 32, eps: float = 1e-5,
                 affine: bool = True) -> None:
        super().__init__(num_channels, eps, affine)
        self.requested_groups = num_groups
        self.num_groups = resolve_num_groups(num_channels, num_groups)

    def _statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n, c = x.shape[:2]
        mean, var = _moments(x.reshape(n, self.num_groups, -1), (2,))
        per_group = c // self.num_groups
        return (mean.repeat_interleave(per_group, dim=1).view(n, c, 1, 1),
                var.repeat_interleave(per_group, dim=1).view(n, c, 1, 1))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_groups={self.num_groups}"


class SwitchableNorm2d(_Norm2d):
    """Switchable normalization (Luo et al. 2018): a learned mix of IN, LN and BN statistics.

    From the per-sample, per-channel moments ``mu_in``, ``var_in`` (over H, W), with
    ``s = var_in + mu_in^2``::

        mu_ln = mean_C(mu_in)   var_ln = mean_C(s) - mu_ln^2
        mu_bn = mean_N(mu_in)   var_bn = mean_N(s) - mu_bn^2
        mean  = sum_k softmax(mean_weight)_k mu_k,   var = sum_k softmax(var_weight)_k var_k

    for k in (in, ln, bn). The six control parameters start at 1 (an even mix). In eval the BN
    branch uses ``running_mean`` / ``running_var``, updated in training like `BatchNorm2d` (the
    variance made unbiased when there is more than one value per channel). Batch size 1 works.

    Shape:
        (N, C, H, W) -> (N, C, H, W)
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True) -> None:
        super().__init__(num_channels, eps, affine)
        _check_momentum(momentum, allow_none=False)
        self.momentum = momentum
        self.mean_weight = nn.Parameter(torch.ones(3))
        self.var_weight = nn.Parameter(torch.ones(3))
        self.register_buffer("running_mean", torch.zeros(num_channels))
        self.register_buffer("running_var", torch.ones(num_channels))
        self.sync_statistics = False  # the BN branch over every process of a job: see `.sync`

    def _statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu_in, var_in = _moments(x, (2, 3))
        square = var_in + mu_in.square()
        mu_ln = mu_in.mean(1, keepdim=True)
        var_ln = (square.mean(1, keepdim=True) - mu_ln.square()).clamp_min(0)
        mu_bn, var_bn = self._batch_branch(x, mu_in, square)
        wm, wv = self.mean_weight.softmax(0), self.var_weight.softmax(0)
        mean = wm[0] * mu_in + wm[1] * mu_ln + wm[2] * mu_bn
        var = wv[0] * var_in + wv[1] * var_ln + wv[2] * var_bn
        return mean, var

    def _batch_branch(self, x: Tensor, mu_in: Tensor, square: Tensor) -> tuple[Tensor, Tensor]:
        if not self.training:
            return self.running_mean.view(1, -1, 1, 1), self.running_var.view(1, -1, 1, 1)
        count = x.shape[0] * x.shape[2] * x.shape[3]
        if syncs(self):  # the mean over N of per-sample moments is the moment over (N, H, W)
            mu_bn, var_bn, count = global_moments(x)
        else:
            mu_bn = mu_in.mean(0, keepdim=True)
            var_bn = (square.mean(0, keepdim=True) - mu_bn.square()).clamp_min(0)
        _track(self.running_mean, self.running_var, mu_bn, var_bn, count, self.momentum)
        return mu_bn, var_bn

    def mixture_weights(self) -> dict[str, dict[str, float]]:
        """The softmaxed mixing weights, e.g. ``{"mean": {"in": .., "ln": .., "bn": ..}, ...}``."""
        with torch.no_grad():
            return {
                stat: dict(zip(("in", "ln", "bn"), raw.softmax(0).tolist(), strict=True))
                for stat, raw in (("mean", self.mean_weight), ("var", self.var_weight))
            }


class Identity2d(nn.Module):
    """No normalization. Takes (and ignores) the other norms' arguments so it builds the same way.

    Shape:
        (N, C, H, W) -> (N, C, H, W), the input itself
    """

    def __init__(self, num_channels: int, **_ignored: object) -> None:
        super().__init__()
        _check_positive_int(num_channels, "num_channels")
        self.num_channels = num_channels

    def forward(self, x: Tensor) -> Tensor:
        check_nchw(x, self.num_channels, type(self).__name__)
        return x


class NormName(str, Enum):
    """Registry names of the unconditional norms (also the CLI choices)."""

    NONE = "none"
    BATCH = "batch"
    INSTANCE = "instance"
    LAYER = "layer"
    GROUP = "group"
    SWITCHABLE = "switchable"

    def __str__(self) -> str:
        return self.value


NORM_CLASSES: dict[NormName, type[nn.Module]] = {
    NormName.NONE: Identity2d,
    NormName.BATCH: BatchNorm2d,
    NormName.INSTANCE: InstanceNorm2d,
    NormName.LAYER: LayerNorm2d,
    NormName.GROUP: GroupNorm2d,
    NormName.SWITCHABLE: SwitchableNorm2d,
}


def _resolve(name: str | NormName) -> NormName:
    try:
        return NormName(name.lower() if isinstance(name, str) else name)
    except ValueError:
        choices = [n.value for n in NormName]
        raise ValueError(f"unknown norm {name!r}; choose from {choices}") from None


def build_norm(name: str | NormName, num_channels: int, **kwargs: object) -> nn.Module:
    """Build the norm registered as ``name`` (case-insensitive) for ``num_channels`` channels."""
    return NORM_CLASSES[_resolve(name)](num_channels, **kwargs)


def norm_factory(name: str | NormName, **kwargs: object) -> Callable[[int], nn.Module]:
    """Resolve ``name`` once; return ``num_channels -> layer`` (with ``kwargs`` bound)."""
    return functools.partial(NORM_CLASSES[_resolve(name)], **kwargs)
