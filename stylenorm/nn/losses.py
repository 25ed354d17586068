"""Training losses for style transfer, as pure functions (they never modify their inputs).

* `content_loss`: MSE between two feature maps (Gatys et al.; Huang & Belongie use relu4_1).
* `mean_std_loss` / `mean_std_style_loss`: MSE of per-channel means and stds (AdaIN).
* `gram_matrix` / `gram_loss` / `gram_style_loss`: MSE of normalised Gram matrices (Gatys,
  Johnson, Dumoulin).
* `tv_loss`: total variation, a smoothness prior on the output image.

Statistics are taken in float32 whatever the input dtype, so the losses are safe under bf16 and
fp16 autocast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .norms import check_nchw
from .statistics import channel_mean_std

__all__ = ["content_loss", "gram_loss", "gram_matrix", "gram_style_loss",
           "gram_target_loss", "mean_std_loss", "mean_std_target_loss", "mean_std_style_loss",
           "tv_loss"]


def content_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error: mean((output - target)^2), in float32.

    Shape:
        output (N, C, H, W), target of the same shape -> scalar
    """
    if output.shape != target.shape:
        raise ValueError(
            f"content_loss needs equal shapes; got {tuple(output.shape)} and {tuple(target.shape)}"
        )
    return F.mse_loss(output.float(), target.float())


def mean_std_loss(output: Tensor, style: Tensor, eps: float = 1e-5) -> Tensor:
    """AdaIN style loss at one layer: ||mu(o) - mu(s)||^2 + ||sigma(o) - sigma(s)||^2 (as MSEs).

    mu and sigma are the per-sample, per-channel mean and std over (H, W) of `channel_mean_std`
    (equal to `mean_std`); spatial sizes may differ. ``style`` may have batch 1 (broadcast to
    every output).

    Shape:
        output (N, C, H, W), style (N or 1, C, H', W') -> scalar
    """
    check_nchw(style, output.shape[1], "mean_std_loss style")
    return mean_std_target_loss(output, *channel_mean_std(style, eps), eps)


def mean_std_target_loss(output: Tensor, mean: Tensor, std: Tensor, eps: float = 1e-5) -> Tensor:
    """`mean_std_loss` against precomputed style statistics (as `channel_mean_std` gives
    them), so a style's statistics are computed once and cached; each sample may have its own.

    Shape:
        output (N, C, H, W), mean and std (N or 1, C, 1, 1) -> scalar
    """
    o_mean, o_std = channel_mean_std(output, eps)
    return (F.mse_loss(o_mean, mean.float().expand_as(o_mean))
            + F.mse_loss(o_std, std.float().expand_as(o_std)))


def gram_matrix(x: Tensor) -> Tensor:
    """Per-sample Gram matrix normalised by the number of entries of a feature map.

    G[n, i, j] = sum_{h, w} x[n, i, h, w] * x[n, j, h, w] / (C * H * W)

    Shape:
        (N, C, H, W) -> (N, C, C), float32
    """
    check_nchw(x, None, "gram_matrix")
    n, c, h, w = x.shape
    flat = x.float().reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def gram_loss(output: Tensor, style: Tensor) -> Tensor:
    """Gram style loss at one layer: mean((G(o) - G(s))^2); ``style`` may have batch 1.

    Shape:
        output (N, C, H, W), style (N or 1, C, H', W') -> scalar
    """
    check_nchw(style, output.shape[1], "gram_loss style")
    g_out = gram_matrix(output)
    return F.mse_loss(g_out, gram_matrix(style).expand_as(g_out))


def gram_target_loss(output: Tensor, target: Tensor) -> Tensor:
    """Gram style loss against precomputed Gram matrices: mean((G(o) - target)^2), so a style's
    Gram matrices are computed once, and each sample of a batch can have its own style.

    Shape:
        output (N, C, H, W), target (N or 1, C, C) -> scalar
    """
    g_out = gram_matrix(output)
    if target.dim() != 3 or target.shape[1:] != g_out.shape[1:] or target.shape[0] not in (
            1, g_out.shape[0]):
        raise ValueError(f"gram_target_loss target must be (N or 1, {g_out.shape[1]}, "
                         f"{g_out.shape[1]}); got {tuple(target.shape)}")
    return F.mse_loss(g_out, target.float().expand_as(g_out))


def _style_sum(layer_loss, output: Mapping[str, Tensor], style: Mapping[str, Tensor],
               layers: Sequence[str]) -> Tensor:
    missing = [name for name in layers if name not in output or name not in style]
    if missing or not layers:
        raise ValueError(
            f"style loss layers {list(layers)} must be non-empty and present in both feature "
            f"dicts; output has {sorted(output)}, style has {sorted(style)}"
        )
    return torch.stack([layer_loss(output[name], style[name]) for name in layers]).sum()


def mean_std_style_loss(output: Mapping[str, Tensor], style: Mapping[str, Tensor],
                        layers: Sequence[str]) -> Tensor:
    """Sum over ``layers`` of `mean_std_loss` (AdaIN uses relu1_1 .. relu4_1).

    Shape:
        dicts of (N, C_l, H_l, W_l) and (N or 1, C_l, H'_l, W'_l) -> scalar
    """
    return _style_sum(mean_std_loss, output, style, layers)


def gram_style_loss(output: Mapping[str, Tensor], style: Mapping[str, Tensor],
                    layers: Sequence[str]) -> Tensor:
    """Sum over ``layers`` of `gram_loss`.

    Shape:
        dicts of (N, C_l, H_l, W_l) and (N or 1, C_l, H'_l, W'_l) -> scalar
    """
    return _style_sum(gram_loss, output, style, layers)


def tv_loss(image: Tensor) -> Tensor:
    """Total variation: mean |x[h+1, w] - x[h, w]| + mean |x[h, w+1] - x[h, w]| (anisotropic L1).

    Shape:
        (N, C, H, W) with H, W >= 2 -> scalar
    """
    check_nchw(image, None, "tv_loss")
    if image.shape[2] < 2 or image.shape[3] < 2:
        raise ValueError(f"tv_loss needs H, W >= 2; got shape {tuple(image.shape)}")
    x = image.float()
    return (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean()
