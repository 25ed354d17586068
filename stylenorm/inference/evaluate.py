"""Measure stylisation quality with the VGG definitions training uses.

For content c, style s and output o, with f the normalised VGG-19 encoder:

* content loss: mean((f(o)_relu4_1 - AdaIN(f(c), f(s))_relu4_1)^2), the AdaIN target's error;
* style loss: sum over relu1_1..relu4_1 of the mean-std loss between f(o) and f(s);
* SSIM of o to c (luma), how much of the content's structure survives;
* grid energy of o (:func:`~stylenorm.nn.metrics.grid_energy`, period 8): how much of its
  fine detail is locked to an 8 px grid (a lattice or checkerboard from upsampling).
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..io.images import load_image
from ..models.vgg import TAPS, VGGEncoder
from ..nn.conditional import adain
from ..nn.losses import content_loss, mean_std_style_loss
from ..nn.metrics import grid_energy, ssim
from .stylize import StylizeOptions, Stylizer


@dataclass
class PairScore:
    content: str
    style: str
    content_loss: float
    style_loss: float
    ssim: float
    grid: float


@dataclass
class Evaluation:
    """Per-pair scores and their means."""

    pairs: list[PairScore] = field(default_factory=list)

    def mean(self, name: str) -> float:
        return statistics.fmean(getattr(p, name) for p in self.pairs)

    def summary(self) -> dict[str, float]:
        return {k: self.mean(k) for k in ("content_loss", "style_loss", "ssim", "grid")}

    def per_style(self) -> dict[str, dict[str, float]]:
        """The means over each style's pairs, by style file name (in the order first met)."""
        by_style: dict[str, Evaluation] = {}
        for pair in self.pairs:
            by_style.setdefault(pair.style, Evaluation()).pairs.append(pair)
        return {name: part.summary() for name, part in by_style.items()}


@torch.inference_mode()
def score_output(encoder: VGGEncoder, content: torch.Tensor, style: torch.Tensor,
                 output: torch.Tensor) -> tuple[float, float, float, float]:
    """(content loss, style loss, SSIM, grid energy) of one output. Shape: all (1, 3, H, W)
    in [0, 1]."""
    f_c, f_s, f_o = encoder(content), encoder(style), encoder(output)
    target = adain(f_c["relu4_1"], f_s["relu4_1"])
    loss_c = content_loss(f_o["relu4_1"], target).item()
    loss_s = mean_std_style_loss(f_o, f_s, TAPS).item()
    return loss_c, loss_s, ssim(output, content), grid_energy(output)


def evaluate(stylizer: Stylizer, encoder: VGGEncoder, contents: list[os.PathLike],
             styles: list[os.PathLike], size: int = 512) -> Evaluation:
    """Stylise every content with every style at ``size`` (alpha 1) and score each output."""
    options = StylizeOptions(size=size, style_size=size)
    result = Evaluation()
    style_images = [load_image(p, size).rgb for p in styles]
    for content_path in contents:
        content = load_image(content_path, size).rgb
        for style_path, style in zip(styles, style_images, strict=True):
            output = stylizer.stylize_tensors(content, [style], options)
            scores = score_output(encoder, content, style, output)
            result.pairs.append(PairScore(Path(content_path).name, Path(style_path).name,
                                          *scores))
    return result
