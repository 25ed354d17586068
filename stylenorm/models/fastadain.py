"""Inference fast path for AdaIN: the same weights and maths, fewer passes over memory.

Convolutions run through :func:`~stylenorm.nn.fused.conv_act` (one oneDNN call with the ReLU
fused on the CPU), activations stay channels-last, and on CUDA the AdaIN modulation (statistics,
scale and shift) is compiled with ``torch.compile`` into a couple of kernels instead of a dozen.

:func:`accelerate` turns a loaded :class:`~stylenorm.models.adain.AdaINModel` into a
:class:`FastAdaINModel` sharing its modules; the plain model stays the readable reference.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.conditional import mean_std
from ..nn.fused import conv_act
from ..nn.norms import Identity2d
from .adain import AdaINModel, StyleCode
from .decoder import DECODER_LAYERS, AdaINDecoder
from .vgg import TAPS, VGG_LAYERS, VGGEncoder

_UPSAMPLE_AFTER = frozenset(name for name, _, _, up in DECODER_LAYERS if up)


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
