"""High-resolution stylisation in overlapping tiles, in bounded working memory, with no seams.

Works for every :class:`~stylenorm.models.protocol.StyleModel` (the AdaIN model: VGG relu4_1
features, an 8-pixel grid; the lite model: its bottleneck, a 4-pixel grid) through the protocol:
``encode``, ``feature_size``, ``content_needs``, ``own_code``, ``mask_at`` and
``decode_features``. The render path (:mod:`.render`) decides when to tile. The image is
processed in three steps, one tile at a time:

1. **Encode in tiles.** The image is cut into core tiles whose edges lie on the encoder's
   grid; each is encoded with ``halo`` pixels of context on every side and only the core's
   features are kept, so the stitched feature map (1/64 or 1/16 of the pixels, in the model's
   dtype) equals the whole-image encoding away from the halo's reach.
2. **Global statistics.** The content mean and std of the features are taken once over the
   whole stitched map and the style code is computed once, so every tile shares one
   normalisation and one style, and what the model says ``alpha`` needs from the content
   (``content_needs``: for the lite model, its own code and lost detail) from the whole image.
3. **Decode in tiles.** Feature tiles with a halo are modulated and decoded; each output tile is
   weighted by a raised-cosine ramp ``r = halo / 2`` pixels either side of its core edges. The
   ramps of neighbouring tiles sum to exactly 1, and they vanish before the pixels that the tile's
   own borders disturb, so no seam is left.

Peak working memory is one tile's activations (set by ``tile`` and ``halo``) plus the image, its
feature map and the output; it does not grow with the image beyond those.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..choices import DEFAULT_TILE_SIZE
from ..errors import OptionError, StylenormError
from ..hub.zoo import KINDS
from ..models.protocol import ContentFeatures, StyleCodeLike, StyleModel
from ..nn.statistics import global_mean_std

AUTO_TILE_PIXELS = 2_500_000  # larger contents are tiled even without --tile
GRID = 8  # tile edges lie on multiples of 8 pixels: a feature edge for both codecs


@dataclass
class TileOptions:
    """Core tile side and context halo in pixels (both multiples of 8)."""

    tile: int = DEFAULT_TILE_SIZE
    halo: int = 64

    def validate(self) -> None:
        least = max(2 * GRID, self.halo)  # a tile is at least as wide as its context
        if isinstance(self.tile, bool) or not isinstance(self.tile, int) or self.tile < least \
                or self.tile % GRID:
            raise OptionError(f"tile_size must be a multiple of 8 and >= {least}; got "
                              f"{self.tile!r}", params=("tile_size",))
        if self.halo < 0 or self.halo % GRID or self.halo > self.tile:
            raise StylenormError(
                f"tile halo must be a multiple of 8 between 0 and the tile size {self.tile}; "
                f"got {self.halo}"
            )


def can_tile(model: nn.Module) -> bool:
    """Whether ``model`` can be tiled: every :class:`~stylenorm.models.protocol.StyleModel` (a
    model that takes its styles from images) can."""
    return isinstance(model, StyleModel)


def check_tileable(model: nn.Module) -> StyleModel:
    """``model``, or an error for a model that cannot be tiled."""
    if not can_tile(model):
        kinds = " and ".join(name for name, kind in KINDS.items() if kind.styles_from_images)
        raise StylenormError(f"tile works with the {kinds} models (styles from images); this "
                             f"is a {type(model).__name__}", params=("tile",))
    return model


TileHook = Callable[[str, tuple[int, ...]], None]
FeatureHook = Callable[[ContentFeatures], ContentFeatures]


def should_tile(height: int, width: int, force: bool = False,
                threshold: int = AUTO_TILE_PIXELS) -> bool:
    """Tile when asked to, or when the image has more than ``threshold`` pixels."""
    return force or (threshold > 0 and height * width > threshold)


def spans(length: int, core: int, grid: int = 1) -> list[tuple[int, int]]:
    """Split ``[0, length)`` into ``ceil(length / core)`` near-equal pieces (each under
    ``core + grid``) whose inner edges are multiples of ``grid``."""
    count = max(1, math.ceil(length / core))
    step = math.ceil(length / count / grid) * grid
    edges = [min(i * step, length) for i in range(count)] + [length]
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a]


def _core(p0: int, p1: int, start: int, length: int, flen: int, scale: int
          ) -> tuple[slice, slice]:
    """Feature indices of the pixel core ``[p0, p1)``: globally, and in a window from ``start``
    (``scale`` pixels per feature)."""
    f0, f1 = p0 // scale, (p1 // scale if p1 < length else flen)
    return slice(f0, f1), slice(f0 - start // scale, f1 - start // scale)


@torch.inference_mode()
def encode_tiled(model: nn.Module, image: Tensor, options: TileOptions,
                 on_tile: TileHook | None = None) -> Tensor:
    """Features of a (1, 3, H, W) image, encoded tile by tile with a halo of context.

    Shape:
        (1, 3, H, W) -> (1, C, h, w) with (h, w) = :func:`feature_size`, in the model's dtype.
    """
    options.validate()
    model = check_tileable(model)
    height, width = image.shape[-2:]
    fh, fw = model.feature_size(height, width)
    feats = None
    for y0, y1 in spans(height, options.tile, GRID):
        a, b = max(0, y0 - options.halo), min(height, y1 + options.halo)
        rows, tile_rows = _core(y0, y1, a, height, fh, model.feature_scale)
        for x0, x1 in spans(width, options.tile, GRID):
            c, d = max(0, x0 - options.halo), min(width, x1 + options.halo)
            cols, tile_cols = _core(x0, x1, c, width, fw, model.feature_scale)
            if on_tile is not None:
                on_tile("encode", (b - a, d - c))
            out = model.encode(model.prepare(image[..., a:b, c:d]))
            if feats is None:
                feats = out.new_empty((1, out.shape[1], fh, fw))
            feats[..., rows, cols] = out[..., tile_rows, tile_cols]
    return feats


def encode_content(model: nn.Module, image: Tensor, options: TileOptions,
                   on_tile: TileHook | None = None, alpha: float = 1.0) -> ContentFeatures:
    """Encode once in tiles and take the global statistics and what the model says ``alpha``
    needs (``content_needs``) from the whole content: its own code and the detail the tiled
    rebuild from that code loses; reusable for many styles."""
    feats = encode_tiled(model, image, options, on_tile)
    mean, std = global_mean_std(feats)
    size = (image.shape[-2], image.shape[-1])
    needs = model.content_needs(alpha)
    own = model.own_code(model.prepare(image)) if needs.own_code else None
    content = ContentFeatures(feats, mean, std, own, size)
    if needs.detail:
        content.detail = image.float().cpu() - decode_tiled(model, content, own, 1.0, options)
    return content


def _raised_cosine(pos: Tensor, edge: float, radius: int) -> Tensor:
    """0 before ``edge - radius``, 1 after ``edge + radius``, a raised cosine in between."""
    t = ((pos - (edge - radius)) / (2 * radius)).clamp(0, 1)
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def window_weights(start: int, stop: int, core: tuple[int, int], full: int,
                   radius: int) -> Tensor:
    """Weights over output pixels ``[start, stop)`` of a tile whose core is ``core`` in
    ``[0, full)``: ramps up across an inner left core edge and down across an inner right one."""
    pos = torch.arange(start, stop, dtype=torch.float64) + 0.5
    weight = torch.ones_like(pos)
    if radius == 0:
        inside = (pos >= core[0]) & (pos < core[1])
        return inside.to(torch.float32)
    if core[0] > 0:
        weight = weight * _raised_cosine(pos, core[0], radius)
    if core[1] < full:
        weight = weight * (1 - _raised_cosine(pos, core[1], radius))
    return weight.to(torch.float32)


@torch.inference_mode()
def decode_tiled(model: nn.Module, feats: ContentFeatures, code: StyleCodeLike, alpha: float,
                 options: TileOptions, mask: Tensor | None = None,
                 on_tile: TileHook | None = None) -> Tensor:
    """Modulate and decode the features tile by tile and blend the tiles into one float32 image
    on the CPU.

    ``mask`` (1, 1, H, W) in [0, 1] picks style 0 where 1 and style 1 where 0 (two-style codes).

    Shape:
        (1, C, h, w) features -> (1, 3, H, W), cropped to the content's size.
    """
    options.validate()
    model = check_tileable(model)
    if mask is not None and len(code) != 2:
        raise StylenormError(f"a mask needs exactly 2 styles; got {len(code)}")
    s = model.feature_scale
    fh, fw = feats.features.shape[-2:]
    rows, cols = spans(fh, options.tile // s, GRID // s), spans(fw, options.tile // s, GRID // s)
    shortest = min(b - a for a, b in rows + cols) * s
    halo, radius = options.halo // s, min(options.halo, shortest) // 2  # ramps never overlap
    if mask is not None:  # at the resolution the model reads it, r values per feature
        mask = model.mask_at(mask, (fh, fw)).to(feats.features.device)
        r = mask.shape[-2] // fh
    out = torch.zeros(1, 3, fh * s, fw * s)
    for y0, y1 in rows:
        a, b = max(0, y0 - halo), min(fh, y1 + halo)
        wy = window_weights(a * s, b * s, (y0 * s, y1 * s), fh * s, radius)
        for x0, x1 in cols:
            c, d = max(0, x0 - halo), min(fw, x1 + halo)
            if on_tile is not None:
                on_tile("decode", ((b - a) * s, (d - c) * s))
            tile = feats.region(slice(a, b), slice(c, d), s)
            tile_mask = None if mask is None else mask[..., a * r : b * r, c * r : d * r]
            image = model.decode_features(tile, code, alpha, tile_mask).float().cpu()
            wx = window_weights(c * s, d * s, (x0 * s, x1 * s), fw * s, radius)
            region = out[..., a * s : b * s, c * s : d * s]
            region.addcmul_(image[..., : region.shape[-2], : region.shape[-1]],
                            wy.view(-1, 1) * wx.view(1, -1))
    height, width = feats.image_size or (fh * s, fw * s)
    return out[..., :height, :width]


def tile_count(model: StyleModel, height: int, width: int, options: TileOptions) -> int:
    """How many tiles a ``height x width`` content runs in (encode and decode), as the
    ``on_tile`` hook of :func:`encode_content` and :func:`decode_tiled` counts them."""
    fh, fw = model.feature_size(height, width)
    s = model.feature_scale
    encode = len(spans(height, options.tile, GRID)) * len(spans(width, options.tile, GRID))
    decode = (len(spans(fh, options.tile // s, GRID // s))
              * len(spans(fw, options.tile // s, GRID // s)))
    return encode + decode
