"""The one render path, for every model kind and every caller: ``stylize`` and the web page
(:meth:`~.stylize.Stylizer.render`), ``video`` (a hook between encoding and decoding),
``batch`` (one encoding decoded for several styles) and ``bench``.

1. :func:`tiles_for`: whether a content goes in tiles (asked for with ``tile``, or above
   :data:`~.tiling.AUTO_TILE_PIXELS` for a model that can be tiled), the one place it is decided;
2. :func:`encode`: the model's encoding of the content with what the model says ``alpha``
   needs (:class:`~stylenorm.models.protocol.Renderable`), whole or tile by tile with the whole
   image's statistics (:mod:`.tiling`);
3. :func:`decode`: the image for one code, float32 on the CPU at the content's size.

Nothing here looks at ``alpha``: what it means is each model's own concern. The callers finish
the image the same way: clamped to [0, 1] and faint content kept faint (:mod:`.faint`), as
:func:`stylize_tiled` does for a model and a code in hand (the library's one-call tiling).
"""

from __future__ import annotations

import torch

from ..models.protocol import ContentFeatures, Renderable, StyleCodeLike
from .faint import keep_faint
from .options import StylizeOptions
from .tiling import (
    FeatureHook,
    TileHook,
    TileOptions,
    can_tile,
    check_tileable,
    decode_tiled,
    should_tile,
)
from .tiling import encode_content as encode_tiles


def tiles_for(model: Renderable, height: int, width: int,
              options: StylizeOptions) -> TileOptions | None:
    """The tiles a ``height x width`` content is stylised in, or None for one piece: tiles when
    ``options.tile`` asks for them (refused for a model that cannot be tiled) or, for a model
    that can, above the automatic threshold."""
    if not should_tile(height, width, options.tile):
        return None
    if options.tile:
        check_tileable(model)
    return TileOptions(tile=options.tile_size) if can_tile(model) else None


def encode(model: Renderable, contents: torch.Tensor, options: StylizeOptions,
           tiles: TileOptions | None = None, on_tile: TileHook | None = None) -> ContentFeatures:
    """Contents (N, 3, H, W) in [0, 1] encoded for ``options.alpha``: whole (any N), or with
    ``tiles`` tile by tile (N = 1). A content, or a tile with its halo, above
    ``options.max_whole_pixels`` is refused first."""
    height, width = contents.shape[-2:]
    if tiles is None:
        options.check_whole("the content", height, width, "size")
        return model.encode_content(model.prepare(contents), options.alpha)
    side = tiles.tile + 2 * tiles.halo
    options.check_whole(f"a tile with its halo ({tiles.halo} px each side)", side, side,
                        "tile_size")
    return encode_tiles(model, contents, tiles, on_tile, options.alpha)


def decode(model: Renderable, content: ContentFeatures, code, alpha: float,
           tiles: TileOptions | None = None, mask: torch.Tensor | None = None,
           on_tile: TileHook | None = None) -> torch.Tensor:
    """The image of ``content`` in the style ``code`` (one per content, or one for all):
    float32 on the CPU at the content's size, not clamped (NaN and infinite values stay to be
    seen). ``mask`` (1, 1, H, W) in [0, 1] takes style 0 of a two-style code where it is 1."""
    if tiles is not None:
        return decode_tiled(model, content, code, alpha, tiles, mask, on_tile)
    height, width = content.image_size
    return model.decode_features(content, code, alpha, mask)[..., :height, :width].float().cpu()


@torch.inference_mode()
def stylize_tiled(model: Renderable, content: torch.Tensor, code: StyleCodeLike,
                  alpha: float = 1.0, options: TileOptions | None = None,
                  mask: torch.Tensor | None = None, on_tile: TileHook | None = None,
                  adjust: FeatureHook | None = None) -> torch.Tensor:
    """Stylise a (1, 3, H, W) content in [0, 1] in tiles (``options``, default
    :class:`~.tiling.TileOptions`) through this render path: :func:`encode`, ``adjust`` (which
    may replace the encoded features and statistics), :func:`decode`, then clamped to [0, 1]
    with faint content kept faint, as every command finishes. A tile with its halo above
    :data:`~stylenorm.choices.MAX_WHOLE_PIXELS` is refused. Returns (1, 3, H, W) in [0, 1]."""
    tiles = options or TileOptions()
    settings = StylizeOptions(alpha=alpha, tile=True, tile_size=tiles.tile)
    feats = encode(model, content, settings, tiles, on_tile)
    if adjust is not None:
        feats = adjust(feats)
    out = decode(model, feats, code, alpha, tiles, mask, on_tile).clamp(0, 1)
    return keep_faint(content, out)


__all__ = ["decode", "encode", "stylize_tiled", "tiles_for"]
