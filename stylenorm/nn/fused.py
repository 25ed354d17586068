"""Fused inference kernels: a 3x3 convolution and its ReLU as one oneDNN call on the CPU.

Every reflection-padded 3x3 convolution + ReLU runs as one oneDNN convolution with the ReLU fused
in and zero padding, after which only the one-pixel frame of the output is recomputed with true
reflection padding (four thin strips). That drops a padded copy and a separate ReLU pass over
every activation map; on a 2-core AMX Xeon those two passes took 37 % of a bf16 encode + decode
at 512 px. Elsewhere (CUDA, MPS, or where gradients are needed) the module runs as usual.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_POINTWISE = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)
# Maps with at least this many positions get the frame fix instead of a padded copy: it saves a
# copy of the map but costs eight small calls, which only pays on large maps (and a busy machine
# charges every call a time slice).
FRAME_MIN_POSITIONS = 256 * 256


def _onednn(x: Tensor, conv: nn.Conv2d, padding: int, relu: bool) -> Tensor:
    return _POINTWISE(x, conv.weight, conv.bias, [padding, padding], [1, 1], [1, 1], 1,
                      "relu" if relu else "none", [], "")


def _fusable(x: Tensor, conv: nn.Conv2d) -> bool:
    return (
        _POINTWISE is not None
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16)
        and not (torch.is_grad_enabled() and x.requires_grad)
        and conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
        and conv.dilation == (1, 1) and conv.groups == 1
        and min(x.shape[-2:]) >= 2
    )


def conv_act(x: Tensor, conv: nn.Conv2d, relu: bool = True, fused: bool = True) -> Tensor:
    """``relu(conv(x))`` (or ``conv(x)``) for a convolution, fused where that is possible.

    Equal to the module call. With ``fused=False`` it is exactly the module call (and
    ``torch.relu``): the reference path. With ``fused=True``, a stride-1 3x3 convolution with zero
    or reflection padding on the CPU, without gradients, is one oneDNN call with the ReLU fused in;
    with reflection padding, small maps are padded first, and large ones are convolved with zero
    padding and then have their one-pixel frame recomputed from reflection-padded strips. Other
    convolutions, devices or inputs that need gradients run the module, with the ReLU in place.

    Shape:
        (N, C, H, W) -> (N, C', H', W')
    """
    if not fused:
        out = conv(x)
        return torch.relu(out) if relu else out
    if not _fusable(x, conv):
        out = conv(x)
        return out.relu_() if relu else out
    if conv.padding_mode == "zeros":
        return _onednn(x, conv, 1, relu)
    reflect = functools.partial(F.pad, mode="reflect")
    if x.shape[-2] * x.shape[-1] < FRAME_MIN_POSITIONS:
        return _onednn(reflect(x, (1, 1, 1, 1)), conv, 0, relu)
    out = _onednn(x, conv, 1, relu)
    out[..., :1, :] = _onednn(reflect(x[..., :2, :], (1, 1, 1, 0)), conv, 0, relu)
    out[..., -1:, :] = _onednn(reflect(x[..., -2:, :], (1, 1, 0, 1)), conv, 0, relu)
    out[..., :, :1] = _onednn(reflect(x[..., :, :2], (1, 0, 1, 1)), conv, 0, relu)
    out[..., :, -1:] = _onednn(reflect(x[..., :, -2:], (0, 1, 1, 1)), conv, 0, relu)
    return out


def set_fused(module: nn.Module, enabled: bool) -> None:
    """Switch every sub-module of ``module`` that has a ``fused`` flag to the fused (inference)
    or the plain (reference) path."""
    for sub in module.modules():
        if hasattr(sub, "fused"):
            sub.fused = enabled


def to_inference_layout(images: Tensor, like: nn.Module) -> Tensor:
    """``images`` on ``like``'s device and in its dtype, channels-last (except on MPS, where
    channels-last convolutions are slower), the layout the fused kernels read fastest."""
    param = next(like.parameters())
    images = images.to(param.device, param.dtype)
    if param.device.type == "mps":
        return images
    return images.contiguous(memory_format=torch.channels_last)
