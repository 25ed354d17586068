"""The perceptual objective the trainers share: the frozen VGG loss network and the AdaIN
objective (used by the AdaIN and lite tasks; distillation adds its own terms, :mod:`.distill`)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import torch

from ..models.vgg import TAPS, VGGEncoder
from ..nn.conditional import adain
from ..nn.losses import content_loss, gram_style_loss, mean_std_style_loss

__all__ = ["AdaINObjective", "FrozenEncoder", "StyleLoss"]


class StyleLoss(str, Enum):
    MEAN_STD = "mean-std"
    GRAM = "gram"


class FrozenEncoder:
    """The frozen VGG encoder as a loss network. It is cast to the training dtype once and runs
    outside autocast (which would run every reflection pad in float32, copying each activation
    map twice)."""

    def __init__(self, encoder: VGGEncoder) -> None:
        self.module = encoder
        self.dtype = torch.float32

    def prepare(self, device: torch.device, dtype: torch.dtype,
                memory_format: torch.memory_format) -> None:
        self.module.to(device, dtype=dtype, memory_format=memory_format)
        self.dtype = dtype

    def __call__(self, images: torch.Tensor, upto: str = "relu4_1") -> dict[str, torch.Tensor]:
        with torch.autocast(images.device.type, enabled=False):
            return self.module(images.to(self.dtype), upto)


class AdaINObjective:
    """The AdaIN training objective (see :mod:`.adain`): the AdaIN target of a content and a
    style, and the content and style losses of an output against them."""

    def __init__(self, encoder: FrozenEncoder, content_weight: float, style_weight: float,
                 gram: bool = False) -> None:
        self.encode = encoder
        self.content_weight, self.style_weight = content_weight, style_weight
        self.style_loss: Callable = gram_style_loss if gram else mean_std_style_loss

    @torch.no_grad()
    def targets(self, content: torch.Tensor, style: torch.Tensor):
        """AdaIN(f(c), f(s)) at relu4_1 (float32) and the style's features at every tap."""
        content_feat = self.encode(content)["relu4_1"]
        style_feats = self.encode(style)
        return adain(content_feat.float(), style_feats["relu4_1"].float()), style_feats

    def losses(self, output: torch.Tensor, target: torch.Tensor,
               style_feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        output_feats = self.encode(output)
        loss_c = content_loss(output_feats["relu4_1"], target)
        loss_s = self.style_loss(output_feats, style_feats, TAPS)
        total = self.content_weight * loss_c + self.style_weight * loss_s
        return {"total": total, "content": loss_c, "style": loss_s}
