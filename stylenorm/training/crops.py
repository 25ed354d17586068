"""One random resized crop: where it lies in an image (torchvision's rule), cut and resized, and
the decoded image it is cut from.

A crop is a pure function of the image and a generator; training data seeds that generator with
``(seed, iteration, slot, stream)`` (:func:`item_rng`), so every crop can be made again
(:mod:`.data`, :mod:`.teacher_cache`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..io.images import load_image

__all__ = ["CropConfig", "crop_box", "crop_item", "decode", "item_rng", "resized_crop"]


@dataclass
class CropConfig:
    """Random resized crops: an area fraction in ``scale`` of the image (after its shorter side is
    resized to ``resize_to``, 0 meaning ``2 * size``) at an aspect ratio in ``ratio``, resized to
    ``size x size``. With the defaults the smallest crop is ``size`` px: no upsampling."""

    size: int = 256
    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    resize_to: int = 0

    @property
    def shorter_side(self) -> int:
        return self.resize_to or 2 * self.size


def item_rng(seed: int, iteration: int, slot: int, stream: int) -> np.random.Generator:
    """The generator of one crop: that of folder ``stream`` in ``slot`` of ``iteration``."""
    return np.random.default_rng([seed, iteration, slot, stream])


def crop_box(h: int, w: int, config: CropConfig, rng: np.random.Generator
             ) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random resized crop, as torchvision's RandomResizedCrop
    picks it (ten tries, then the largest centred box of an allowed aspect ratio)."""
    area = h * w
    log_ratio = (math.log(config.ratio[0]), math.log(config.ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*config.scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    aspect = min(max(w / h, config.ratio[0]), config.ratio[1])
    cw, ch = (w, round(w / aspect)) if w / h < aspect else (round(h * aspect), h)
    cw, ch = min(cw, w), min(ch, h)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def resized_crop(image: torch.Tensor, box: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """Cut ``box`` from a uint8 (3, H, W) image and resize it to (3, size, size) uint8
    (bilinear, antialiased), on the image's device."""
    top, left, ch, cw = box
    patch = image[None, :, top:top + ch, left:left + cw].float()
    patch = F.interpolate(patch, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
    return patch[0].round().clamp(0, 255).to(torch.uint8)


def crop_item(image: torch.Tensor, crop: CropConfig, rng: np.random.Generator) -> torch.Tensor:
    """A random resized crop of a uint8 (3, H, W) image, (3, size, size) uint8."""
    return resized_crop(image, crop_box(*image.shape[1:], crop, rng), crop.size)


def decode(path: Path, shorter_side: int) -> torch.Tensor:
    """uint8 (3, H, W) with the shorter side resized to ``shorter_side``."""
    rgb = load_image(path, size=shorter_side).rgb[0]
    return rgb.mul(255).round().to(torch.uint8)
