"""Styles made for free: a style crop turned, mirrored and recoloured before the teacher sees it.

The teacher stylises with the jittered crop and the student is given the same crop, so each
jitter is one more style with its exact target. Geometry (a mirror and quarter turns) gives the
strokes and hatching of a style every orientation; colour (a hue turn about the grey axis,
saturation and contrast, sometimes grey alone) gives its texture other palettes and, with
contrast above 1, the harder edges of engravings and line art, where the student falls furthest
behind its teacher. Every jitter draws the same number of values from the pair's generator, so
a cache stays reproducible whatever was drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["StyleJitter", "draw_jitter", "jitter_style"]

LUMA = (0.299, 0.587, 0.114)
COLOUR_SHARE = 0.7  # pairs whose colours change; the rest keep the painting's own
GREY_SHARE = 0.15  # of those, pairs made grey (hue and saturation then do nothing)
SATURATION = (0.5, 1.5)
CONTRAST = (0.7, 1.6)  # skewed above 1: the gap is in high-contrast texture
DRAWS = 7


@dataclass(frozen=True)
class StyleJitter:
    mirror: bool = False
    quarter_turns: int = 0
    hue: float = 0.0  # radians about the grey axis
    saturation: float = 1.0
    contrast: float = 1.0
    grey: bool = False

    def recolours(self) -> bool:
        return self.grey or self.hue != 0 or self.saturation != 1 or self.contrast != 1


def draw_jitter(rng: np.random.Generator) -> StyleJitter:
    """One jitter from ``DRAWS`` uniform values of ``rng``."""
    u = rng.random(DRAWS)
    geometry = {"mirror": bool(u[0] < 0.5), "quarter_turns": int(u[1] * 4) % 4}
    if u[2] >= COLOUR_SHARE:
        return StyleJitter(**geometry)
    return StyleJitter(**geometry, grey=bool(u[3] < GREY_SHARE), hue=(2 * u[4] - 1) * math.pi,
                       saturation=SATURATION[0] + u[5] * (SATURATION[1] - SATURATION[0]),
                       contrast=CONTRAST[0] + u[6] * (CONTRAST[1] - CONTRAST[0]))


def hue_rotation(angle: float) -> torch.Tensor:
    """The 3x3 rotation of RGB by ``angle`` about the grey axis (1, 1, 1): greys stay put."""
    k = torch.full((3,), 1 / math.sqrt(3), dtype=torch.float64)
    cross = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]],
                         dtype=torch.float64)
    rotation = (math.cos(angle) * torch.eye(3, dtype=torch.float64)
                + (1 - math.cos(angle)) * torch.outer(k, k) + math.sin(angle) * cross)
    return rotation.float()


def recolour(image: torch.Tensor, jitter: StyleJitter) -> torch.Tensor:
    """``jitter``'s colour change of float (3, H, W) ``image`` in [0, 1], clamped to it."""
    luma_weights = torch.tensor(LUMA).view(3, 1, 1)
    if jitter.grey:
        image = (image * luma_weights).sum(0, keepdim=True).expand(3, -1, -1)
    else:
        image = torch.einsum("ij,jhw->ihw", hue_rotation(jitter.hue), image)
        luma = (image * luma_weights).sum(0, keepdim=True)
        image = luma + jitter.saturation * (image - luma)
    mean = (image * luma_weights).sum(0).mean()
    return (mean + jitter.contrast * (image - mean)).clamp(0, 1)


def jitter_style(style: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A jittered copy of uint8 (3, S, S) ``style`` (square: turns keep its shape), drawn from
    ``rng``."""
    jitter = draw_jitter(rng)
    out = style.flip(-1) if jitter.mirror else style
    out = torch.rot90(out, jitter.quarter_turns, (-2, -1))
    if jitter.recolours():
        out = recolour(out.float() / 255, jitter).mul(255).round().to(torch.uint8)
    return out.contiguous()
