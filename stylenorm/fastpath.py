"""Inference fast paths for AdaIN: the same weights and maths, fewer passes over memory.

* CPU (oneDNN): every reflection-padded 3x3 convolution + ReLU runs as one oneDNN convolution
  with the ReLU fused in and zero padding, after which only the one-pixel frame of the output is
  recomputed with true reflection padding (four thin strips). That drops a padded copy and a
  separate ReLU pass over every activation map; on a 2-core AMX Xeon those two passes took 37 %
  of a bf16 encode + decode at 512 px. Activations stay channels-last throughout.
* Elsewhere (CUDA, MPS) the convolutions run as usual with the ReLU applied in place, and on
  CUDA the AdaIN modulation (statistics, scale and shift) is compiled with ``torch.compile`` into
  a couple of kernels instead of a dozen.

:func:`accelerate` turns a loaded :class:`~stylenorm.model.AdaINModel` into a
:class:`FastAdaINModel` sharing its modules; the plain model stays the readable reference.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conditional import mean_std
from .decoder import DECODER_LAYERS, AdaINDecoder
from .encoder import TAPS, VGG_LAYERS, VGGEncoder
from .model import AdaINModel, StyleCode
from .norms import Identity2d

_POINTWISE = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)
# Maps with at least this many positions get the frame fix instead of a padded copy: it saves a
# copy of the map but costs eight small calls, which only pays on large maps (and a busy machine
# charges every call a time slice).
FRAME_MIN_POSITIONS = 256 * 256
_UPSAMPLE_AFTER = frozenset(name for name, _, _, up in DECODER_LAYERS if up)


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


def conv_act(x: Tensor, conv: nn.Conv2d, relu: bool = True) -> Tensor:
    """``relu(conv(x))`` (or ``conv(x)``) for a 3x3 conv with zero or reflection padding.

    Equal to the module call. On the CPU it is one oneDNN call with the ReLU fused in; with
    reflection padding, small maps are padded first, and large ones are convolved with zero
    padding and then have their one-pixel frame recomputed from reflection-padded strips.

    Shape:
        (N, C, H, W) -> (N, C', H, W)
    """
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


def fast_encode(encoder: VGGEncoder, x: Tensor, upto: str = "relu4_1") -> dict[str, Tensor]:
    """:meth:`VGGEncoder.forward` for inference, with fused convolutions."""
    if upto not in TAPS:
        raise ValueError(f"unknown tap {upto!r}; choose from {list(TAPS)}")
    feats: dict[str, Tensor] = {}
    h = encoder.preprocess(x)
    for name, _, _ in VGG_LAYERS:
        if name == "pool":
            h = F.max_pool2d(h, 2, 2, ceil_mode=encoder._ceil_mode)
            continue
        h = conv_act(h, encoder.convs[name])
        tap = name.replace("conv", "relu")
        if tap in TAPS:
            feats[tap] = h
            if tap == upto:
                break
    return feats


def fast_decode(decoder: AdaINDecoder, features: Tensor) -> Tensor:
    """:meth:`AdaINDecoder.forward` for inference; norm-free blocks get conv and ReLU fused."""
    h = features
    for name, block in decoder.blocks.items():
        plain = isinstance(block.norm, (nn.Identity, Identity2d))
        relu = isinstance(block.act, nn.ReLU)
        if plain:
            h = conv_act(h, block.conv, relu)
        else:
            h = block.act(block.norm(conv_act(h, block.conv, relu=False)))
        if name in _UPSAMPLE_AFTER:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
    return h


def modulate(feat: Tensor, content_mean: Tensor, content_std: Tensor, code: StyleCode,
             alpha: float = 1.0) -> Tensor:
    """AdaIN with given content statistics, blended with the content by ``alpha``, as one
    scale-and-shift:

        alpha * ((f - mu_c) / sigma_c * sigma_s + mu_s) + (1 - alpha) * f  =  f * a + b,
        a = alpha * sigma_s / sigma_c + 1 - alpha,   b = alpha * (mu_s - mu_c * sigma_s / sigma_c)

    Shape:
        feat (N, C, h, w); statistics (N or 1, C, 1, 1) -> (N, C, h, w), float32.
    """
    ratio = code.std / content_std
    scale = alpha * ratio + (1.0 - alpha)
    shift = alpha * (code.mean - content_mean * ratio)
    return torch.addcmul(shift, feat.float(), scale)


def adain_target(feat: Tensor, code: StyleCode, alpha: float = 1.0) -> Tensor:
    """:meth:`AdaINModel.target_features` without a mask: the content's own statistics."""
    f = feat.float()
    mean, std = mean_std(f)
    return modulate(f, mean, std, code, alpha)


@functools.cache
def compiled_adain_target():
    """``adain_target`` compiled for the GPU (statistics, scale and shift in a few kernels)."""
    return torch.compile(adain_target, dynamic=True)


class FastAdaINModel(AdaINModel):
    """An :class:`AdaINModel` for inference: same modules and outputs, fused kernels.

    ``compile_adain`` compiles the AdaIN modulation with ``torch.compile`` (default: on CUDA).
    """

    def __init__(self, encoder: VGGEncoder, decoder: AdaINDecoder,
                 compile_adain: bool | None = None) -> None:
        super().__init__(encoder, decoder)
        self.compile_adain = compile_adain

    def encode(self, images: Tensor) -> Tensor:
        return fast_encode(self.encoder, images.to(self.dtype))["relu4_1"]

    def decode(self, features: Tensor) -> Tensor:
        return fast_decode(self.decoder, features.to(self.dtype)).float()

    def target_features(self, content_feat: Tensor, code: StyleCode, alpha: float = 1.0,
                        mask: Tensor | None = None) -> Tensor:
        if mask is not None:
            return super().target_features(content_feat, code, alpha, mask)
        compile_it = self.compile_adain
        if compile_it is None:
            compile_it = content_feat.device.type == "cuda"
        if compile_it:
            try:
                return compiled_adain_target()(content_feat, code, alpha)
            except Exception as exc:  # e.g. no Triton: the eager kernels compute the same
                warnings.warn(f"torch.compile of the AdaIN modulation failed "
                              f"({type(exc).__name__}: {exc}); running it eagerly", stacklevel=2)
                self.compile_adain = False
        return adain_target(content_feat, code, alpha)


def accelerate(model: nn.Module, compile_adain: bool | None = None) -> nn.Module:
    """The fast inference twin of an AdaIN or lite model (sharing its weights); other models
    unchanged."""
    from .lite import LiteModel

    if type(model) is LiteModel:
        from .fastlite import accelerate_lite

        return accelerate_lite(model)
    if type(model) is not AdaINModel:
        return model
    fast = FastAdaINModel(model.encoder, model.decoder, compile_adain)
    if hasattr(model, "weights_meta"):
        fast.weights_meta = model.weights_meta
    return fast.eval()
