"""The AdaIN stylisation pipeline: encoder -> AdaIN (mixed styles, mask, alpha) -> decoder.

A style is reduced once to a :class:`StyleCode` (the per-channel mean and std of its relu4_1
features), so one style can be applied to many contents without encoding it again. Mixing styles
by weights mixes their codes linearly, which equals mixing the AdaIN outputs feature by feature.

The fast path (:meth:`~.protocol.InferenceSwitch.use_fast_path`) runs the same modules with
fused convolution + ReLU kernels (:func:`~stylenorm.nn.fused.conv_act`) and the AdaIN as one
scale-and-shift (:func:`~stylenorm.nn.conditional.modulate`), compiled with ``torch.compile`` on
CUDA; the plain path is the readable reference. ``alpha`` is decided in one place,
:meth:`AdaINModel.target`.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.conditional import modulate
from ..nn.statistics import mean_std
from .decoder import AdaINDecoder
from .protocol import ContentFeatures, ContentNeeds, InferenceSwitch
from .vgg import VGGEncoder


@dataclass
class StyleCode:
    """Per-channel statistics of a style's relu4_1 features.

    Shape:
        mean, std: (S, 512, 1, 1) for S styles.
    """

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def cat(cls, codes: list[StyleCode]) -> StyleCode:
        return cls(torch.cat([c.mean for c in codes]), torch.cat([c.std for c in codes]))

    def mix(self, weights: torch.Tensor) -> StyleCode:
        """One code from S codes by weights (S,), which are normalised to sum to 1."""
        w = (weights / weights.sum()).to(self.mean).view(-1, 1, 1, 1)
        return StyleCode((self.mean * w).sum(0, keepdim=True), (self.std * w).sum(0, keepdim=True))

    def select(self, index: int) -> StyleCode:
        return StyleCode(self.mean[index : index + 1], self.std[index : index + 1])

    def take(self, rows: list[int]) -> StyleCode:
        return StyleCode(self.mean[rows], self.std[rows])

    def __len__(self) -> int:
        return self.mean.shape[0]


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (1, 1, H, W) mask in [0, 1] resized to ``size`` (bilinear, antialiased)."""
    return F.interpolate(mask.float(), size=size, mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)


@functools.cache
def compiled(function):
    """``function`` compiled for the GPU (statistics, scale and shift in a few kernels)."""
    return torch.compile(function, dynamic=True)


class AdaINModel(InferenceSwitch, nn.Module):
    """Arbitrary style transfer with AdaIN (Huang & Belongie, 2017); a
    :class:`~.protocol.StyleModel`.

    ``forward(content, code, alpha, mask)``: t = AdaIN(f(c), code); t = alpha*t + (1-alpha)*f(c);
    output = g(t) (:meth:`target`). With a mask and two styles, style 0 applies where the mask is
    1 and style 1 where it is 0.

    ``compile_adain``: on the fast path, compile the AdaIN modulation with ``torch.compile``
    (``None``: on CUDA).
    """

    kind = "adain"
    feature_scale = 8  # relu4_1 lies after three 2x2 poolings

    def __init__(self, encoder: VGGEncoder, decoder: AdaINDecoder,
                 compile_adain: bool | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.compile_adain = compile_adain

    @property
    def dtype(self) -> torch.dtype:
        return next(self.decoder.parameters()).dtype

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode(images.to(self.dtype))

    @torch.no_grad()
    def style_code(self, styles: torch.Tensor) -> StyleCode:
        """The code of each style image in a batch (N, 3, H, W)."""
        mean, std = mean_std(self.encode(styles).float())
        return StyleCode(mean, std)

    def content_needs(self, alpha: float) -> ContentNeeds:
        """Nothing but the features' statistics, at any ``alpha``: it blends features."""
        return ContentNeeds()

    def own_code(self, images: torch.Tensor) -> None:
        return None  # AdaIN's alpha blends features, not codes

    def encode_content(self, images: torch.Tensor, alpha: float = 1.0) -> ContentFeatures:
        """relu4_1 features and their per-channel statistics (float32); ``alpha`` needs no
        more."""
        feats = self.encode(images)
        mean, std = mean_std(feats.float())
        return ContentFeatures(feats, mean, std, image_size=tuple(images.shape[-2:]))

    def feature_size(self, height: int, width: int) -> tuple[int, int]:
        """relu4_1 size: three 2x2 pools, rounded up (normalised VGG) or down (torchvision)."""
        ceil = self.encoder.ceil_mode
        for _ in range(3):
            height, width = (((height + 1) // 2, (width + 1) // 2) if ceil
                             else (height // 2, width // 2))
        return height, width

    def mask_at(self, mask: torch.Tensor, feature_size: tuple[int, int]) -> torch.Tensor:
        """The mask at the feature map's size (AdaIN mixes features)."""
        return resize_mask(mask, feature_size)

    def target(self, content: ContentFeatures, code: StyleCode, alpha: float = 1.0,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's input (float32): the features normalised by the content's statistics
        and given the style's, blended with the features by ``alpha``, the model's one use of
        it::

            t = alpha * ((f - mu_c) / sigma_c * sigma_s + mu_s) + (1 - alpha) * f

        ``mask`` (any size, resized to the features') takes style 0 of a two-style code where it
        is 1 and style 1 where it is 0. The fast path computes ``t`` without a mask as one
        scale-and-shift (:func:`~stylenorm.nn.conditional.modulate`); the plain path, and a
        mask, in the readable form above.
        """
        feats, mean, std = content.features, content.mean, content.std
        if self.fast and mask is None:
            return self._modulation(modulate, feats, mean, std, code.mean, code.std, alpha)
        feat = feats.float()
        normalised = (feat - mean) / std
        if mask is None:
            target = normalised * code.std + code.mean
        else:
            if len(code) != 2:
                raise ValueError(f"a mask needs exactly 2 styles; got {len(code)}")
            m = resize_mask(mask, feat.shape[-2:]).to(feat)
            inside = normalised * code.std[:1] + code.mean[:1]
            outside = normalised * code.std[1:] + code.mean[1:]
            target = m * inside + (1 - m) * outside
        if alpha != 1.0:
            target = alpha * target + (1 - alpha) * feat
        return target

    def target_features(self, content_feat: torch.Tensor, code: StyleCode, alpha: float = 1.0,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`target` of bare features (N, 512, h, w), their statistics taken here."""
        mean, std = mean_std(content_feat.float())
        return self.target(ContentFeatures(content_feat, mean, std), code, alpha, mask)

    def _modulation(self, function, feat: torch.Tensor, *args) -> torch.Tensor:
        """``function(feat, *args)``, compiled on the fast path where ``compile_adain`` says."""
        compile_it = self.compile_adain
        if compile_it is None:
            compile_it = feat.device.type == "cuda"
        if self.fast and compile_it:
            try:
                return compiled(function)(feat, *args)
            except Exception as exc:  # e.g. no Triton: the eager kernels compute the same
                warnings.warn(f"torch.compile of the AdaIN modulation failed "
                              f"({type(exc).__name__}: {exc}); running it eagerly", stacklevel=3)
                self.compile_adain = False
        return function(feat, *args)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        return self.decoder(features.to(self.dtype)).float()

    def decode_features(self, content: ContentFeatures, code: StyleCode, alpha: float = 1.0,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
        """The image from features with given statistics (a whole content's, or a tile's
        features with the whole image's statistics): ``decode(target(...))``."""
        return self.decode(self.target(content, code, alpha, mask))

    def forward(
        self,
        content: torch.Tensor,
        code: StyleCode,
        alpha: float = 1.0,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.decode_features(self.encode_content(content, alpha), code, alpha, mask)
