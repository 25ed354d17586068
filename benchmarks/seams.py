"""Measuring seams in tiled outputs (tests/test_tiling.py and batch_speed.py): where tiles
meet, and how much stronger the gradient is across those lines than across their neighbours."""

from __future__ import annotations

import torch
from torch import Tensor

from stylenorm.inference.tiling import GRID, TileOptions, spans


def tile_borders(height: int, width: int, options: TileOptions) -> tuple[list[int], list[int]]:
    """Pixel rows and columns where neighbouring cores meet (where a seam would show)."""
    rows = [a for a, _ in spans(height, options.tile, GRID)[1:]]
    cols = [a for a, _ in spans(width, options.tile, GRID)[1:]]
    return rows, cols


def seam_ratio(image: Tensor, rows: list[int], cols: list[int], period: int = GRID,
               neighbours: int = 4) -> float:
    """How much stronger the gradient is across tile borders than across nearby lines.

    For each border line, the mean squared gradient across it is divided by the mean over the
    ``neighbours`` lines of the same phase on each side (``period`` pixels apart: the decoder's
    upsampling and JPEG blocks give the 8-pixel grid a faint structure of its own); the ratios are
    averaged. About 1 when the borders are invisible; a seam raises it.

    Shape:
        image (1, 3, H, W) or (3, H, W)
    """
    img = image.reshape(-1, *image.shape[-2:]).double()
    gy = (img[:, 1:, :] - img[:, :-1, :]).pow(2).mean(dim=(0, 2))  # across row r: gy[r - 1]
    gx = (img[:, :, 1:] - img[:, :, :-1]).pow(2).mean(dim=(0, 1))
    ratios = []
    for grad, borders in ((gy, rows), (gx, cols)):
        for b in borders:
            near = [b + k * period for k in range(-neighbours, neighbours + 1) if k]
            near = [grad[p - 1] for p in near if 1 <= p <= grad.shape[0] and p not in borders]
            if near:
                ratios.append(grad[b - 1] / torch.stack(near).mean().clamp_min(1e-12))
    if not ratios:
        raise ValueError("seam_ratio needs at least one tile border inside the image")
    return torch.stack(ratios).mean().item()
