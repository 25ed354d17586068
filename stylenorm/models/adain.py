"""The AdaIN stylisation pipeline: encoder -> AdaIN (mixed styles, mask, alpha) -> decoder.

A style is reduced once to a :class:`StyleCode` (the per-channel mean and std of its relu4_1
features), so one style can be applied to many contents without encoding it again. Mixing styles
by weights mixes their codes linearly, which equals mixing the AdaIN outputs feature by feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.conditional import adain_with_stats, mean_std
from .decoder import AdaINDecoder
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


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (1, 1, H, W) mask in [0, 1] resized to ``size`` (bilinear, antialiased)."""
    return F.interpolate(mask.float(), size=size, mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)


class AdaINModel(nn.Module):
    """Arbitrary style transfer with AdaIN (Huang & Belongie, 2017).

    ``forward(content, code, alpha, mask)``: t = AdaIN(f(c), code); t = alpha*t + (1-alpha)*f(c);
    output = g(t). With a mask and two styles, style 0 applies where the mask is 1 and style 1
    where it is 0.
    """

    kind = "adain"

    def __init__(self, encoder: VGGEncoder, decoder: AdaINDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

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

    def target_features(
        self,
        content_feat: torch.Tensor,
        code: StyleCode,
        alpha: float = 1.0,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """AdaIN target in float32 for content features (N, 512, h, w)."""
        feat = content_feat.float()
        if mask is None:
            target = adain_with_stats(feat, code.mean, code.std)
        else:
            if code.mean.shape[0] != 2:
                raise ValueError(f"a mask needs exactly 2 styles; got {code.mean.shape[0]}")
            m = resize_mask(mask, feat.shape[-2:]).to(feat)
            inside = adain_with_stats(feat, code.mean[:1], code.std[:1])
            outside = adain_with_stats(feat, code.mean[1:], code.std[1:])
            target = m * inside + (1 - m) * outside
        if alpha != 1.0:
            target = alpha * target + (1 - alpha) * feat
        return target

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        return self.decoder(features.to(self.dtype)).float()

    def forward(
        self,
        content: torch.Tensor,
        code: StyleCode,
        alpha: float = 1.0,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        target = self.target_features(self.encode(content), code, alpha, mask)
        return self.decode(target)
