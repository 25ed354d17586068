"""Faint content (black frames, fades from black, near-flat images) kept faint.

A style model normalises the content's features, so a frame at 1.5/255 mean brightness, or a
still at 4 %, comes out as loud as a well-lit one (bright blotchy blocks), and a black or flat
frame as a flat colour of the style's (mauve for mosaic). :func:`keep_faint` blends the
stylisation toward the content as the content's contrast vanishes: the weight of the
stylisation is ``smoothstep((s - low) / (high - low))`` of the content's luminance standard
deviation ``s`` (in [0, 1] units), so content with ``s <= low`` is returned as it is, content
with ``s >= high`` (ordinary photos: 0.1-0.3) gets the stylisation untouched, and a fade from
black fades the style in with it.
"""

from __future__ import annotations

import torch

FAINT_CONTRAST = (2 / 255, 8 / 255)  # luminance std: content kept below, styled above
LUMA = (0.299, 0.587, 0.114)  # BT.601


def stylisation_weight(content: torch.Tensor, low: float = FAINT_CONTRAST[0],
                       high: float = FAINT_CONTRAST[1]) -> torch.Tensor:
    """How much of the stylisation each image keeps, from its luminance contrast.

    Shape: (N, 3, H, W) in [0, 1] -> (N, 1, 1, 1) in [0, 1]."""
    weights = torch.tensor(LUMA, dtype=content.dtype, device=content.device).view(1, 3, 1, 1)
    luma = (content * weights).sum(dim=1)
    contrast = luma.flatten(1).std(dim=1, unbiased=False)
    t = ((contrast - low) / (high - low)).clamp(0, 1)
    return (t * t * (3 - 2 * t)).view(-1, 1, 1, 1)


def keep_faint(content: torch.Tensor, stylised: torch.Tensor) -> torch.Tensor:
    """``stylised`` blended toward ``content`` as the content's contrast vanishes (see the
    module doc); returned unchanged (the same tensor) when every image has contrast enough.

    Shape: (N, 3, H, W) each, the same size, in [0, 1]."""
    weight = stylisation_weight(content.to(stylised.device, stylised.dtype))
    if bool((weight >= 1).all()):
        return stylised
    return torch.lerp(content.to(stylised.device, stylised.dtype), stylised, weight)
