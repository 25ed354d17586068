"""Per-channel mean and standard deviation over (H, W): one definition per use, all equal.

Every variant computes, per sample and channel of an (N, C, H, W) map,

    mean = sum(x) / HW,   std = sqrt(sum((x - mean)^2) / (HW - 1) + eps)   (unbiased variance)

and they differ only in how, for speed or range (``tests/test_statistics.py`` checks that they
agree):

* :func:`mean_std`: torch's reductions, in the input's dtype (the reference; AdaIN's maths);
* :func:`channel_mean_std`: float32 sums of x and x^2 with a one-pass backward (training losses);
* :func:`two_pass_mean_std`: float32 mean, then the sum of squared deviations, over a channels-last
  view (about 5x faster than torch's variance on the CPU; inference);
* :func:`global_mean_std`: float64 sums over row chunks of a large stitched map (tiling).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .norms import check_nchw

__all__ = ["channel_mean_std", "global_mean_std", "mean_std", "two_pass_mean_std"]


def mean_std(x: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and std over (H, W), as in the public AdaIN code.

    mean = sum(x) / HW,  std = sqrt(sum((x - mean)^2) / (HW - 1) + eps)   (unbiased variance)

    Shape:
        (N, C, H, W) -> ((N, C, 1, 1), (N, C, 1, 1)); needs H * W >= 2.
    """
    check_nchw(x, None, "mean_std")
    if x.shape[2] * x.shape[3] < 2:
        raise ValueError(
            f"mean_std needs at least 2 spatial positions for an unbiased variance; "
            f"got shape {tuple(x.shape)}"
        )
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = (x.var(dim=(2, 3), keepdim=True) + eps).sqrt()
    return mean, std


class _ChannelMeanStd(torch.autograd.Function):
    """Forward: two float32 reductions (sum and sum of squares) instead of Welford's variance,
    which is several times slower on channels-last maps. Backward: one fused pass,
    dx = g_mu / HW + g_sigma * (x - mu) / ((HW - 1) * sigma)."""

    @staticmethod
    def forward(ctx, x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        count = x.shape[2] * x.shape[3]
        xf = x.float()
        mean = xf.mean(dim=(2, 3), keepdim=True)
        mean_sq = xf.square().mean(dim=(2, 3), keepdim=True)
        var = ((mean_sq - mean.square()) * (count / (count - 1))).clamp_min(0)
        std = (var + eps).sqrt()
        ctx.save_for_backward(x, mean, std)
        ctx.count = count
        return mean, std

    @staticmethod
    def backward(ctx, g_mean: Tensor | None, g_std: Tensor | None):
        x, mean, std = ctx.saved_tensors
        g_mean = torch.zeros_like(mean) if g_mean is None else g_mean
        g_std = torch.zeros_like(std) if g_std is None else g_std
        scale = g_std / ((ctx.count - 1) * std)
        shift = g_mean / ctx.count - scale * mean
        return torch.addcmul(shift, x, scale).to(x.dtype), None


def channel_mean_std(x: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and std in float32, equal to
    :func:`mean_std` (unbiased variance) but faster for training:

    mu = sum(x) / HW,  sigma = sqrt((sum(x^2) / HW - mu^2) * HW / (HW - 1) + eps)

    Shape:
        (N, C, H, W) -> ((N, C, 1, 1), (N, C, 1, 1)) float32; needs H * W >= 2.
    """
    check_nchw(x, None, "channel_mean_std")
    if x.shape[2] * x.shape[3] < 2:
        raise ValueError(f"channel_mean_std needs at least 2 spatial positions; "
                         f"got shape {tuple(x.shape)}")
    return _ChannelMeanStd.apply(x, eps)


def two_pass_mean_std(x: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """:func:`mean_std` in float32 by two plain passes (the mean, then the sum of squared
    deviations), about 5x faster on the CPU than torch's one-pass variance.

    Shape:
        (N, C, H, W) -> ((N, C, 1, 1), (N, C, 1, 1)) float32
    """
    n, c = x.shape[:2]
    rows = x.float().permute(0, 2, 3, 1).reshape(n, -1, c)  # a view when channels-last
    mean = rows.mean(dim=1, keepdim=True)
    deviations = rows - mean
    var = (deviations * deviations).sum(dim=1) / max(rows.shape[1] - 1, 1)
    return mean.view(n, c, 1, 1), (var + eps).sqrt().view(n, c, 1, 1)


def global_mean_std(features: Tensor, eps: float = 1e-5, rows: int = 64) -> tuple[Tensor, Tensor]:
    """:func:`mean_std` of a large map, summed in float64 row chunks.

    Shape:
        (1, C, h, w) -> ((1, C, 1, 1), (1, C, 1, 1)) float32
    """
    count = features.shape[-2] * features.shape[-1]
    chunks = [features[..., i : i + rows, :] for i in range(0, features.shape[-2], rows)]
    total = sum(c.double().sum(dim=(2, 3), keepdim=True) for c in chunks)
    mean = total / count
    sq = sum(((c.double() - mean) ** 2).sum(dim=(2, 3), keepdim=True) for c in chunks)
    std = (sq / max(count - 1, 1) + eps).sqrt()
    return mean.float(), std.float()
