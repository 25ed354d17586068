"""The stylisation API behind ``stylenorm stylize``: files in, a stylised image out."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import StylenormError
from ..hub.zoo import DEFAULT_MODEL, load_model
from ..io.images import DEFAULT_MAX_PIXELS, LoadedImage, image_format, load_image, save_image
from ..models.protocol import FixedStyleModel, StyleCodeLike
from ..nn.colour import match_colour
from ..runtime import resolve_device, resolve_dtype
from .tiling import TileOptions, can_tile, should_tile, stylize_tiled

MIN_IMAGE_SIZE = 16  # smaller images vanish inside the encoder's pooling layers


@dataclass
class StylizeOptions:
    """How to stylise: the same options as the ``stylize`` command."""

    alpha: float = 1.0
    style_weights: list[float] | None = None
    preserve_color: bool = False
    size: int = 512
    style_size: int = 512
    crop: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    tile: bool = False  # stylise in tiles (automatic above tiling.AUTO_TILE_PIXELS)
    tile_size: int = TileOptions.tile
    style_index: int | None = None  # CIN models: which of the model's styles
    extra: dict = field(default_factory=dict)

    def validate(self, num_styles: int) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise StylenormError(f"alpha must be between 0 and 1; got {self.alpha}",
                                 params=("alpha",))
        if self.size < 0 or self.style_size < 0:
            raise StylenormError("size and style_size must be >= 0 (0 keeps the original)",
                                 params=("size", "style_size"))
        if self.style_weights is not None:
            w = self.style_weights
            if len(w) != num_styles:
                raise StylenormError(
                    f"style_weights has {len(w)} values for {num_styles} style images",
                    params=("style_weights",))
            if not all(math.isfinite(v) and v >= 0 for v in w) or sum(w) <= 0:
                raise StylenormError(f"style_weights must be >= 0 with a positive sum; got {w}",
                                     params=("style_weights",))


class Stylizer:
    """A loaded model on a device at a precision, reusable across many images."""

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto",
                 precision: str = "fp32") -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(precision, self.device)
        self.model = load_model(model).to(self.device, self.dtype)
        if self.device.type != "mps":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.use_fast_path()  # fused inference kernels; same weights and outputs

    @torch.inference_mode()
    def style_code(self, styles: list[torch.Tensor], weights: list[float] | None,
                   content: torch.Tensor | None = None) -> StyleCodeLike:
        """The (mixed) code of several style images; with ``content``, styles are recoloured
        to the content's colours first (``--preserve-color``)."""
        codes = []
        for style in styles:
            if content is not None:
                style = match_colour(style, content)
            codes.append(self.model.style_code(self.model.prepare(style)))
        code = type(codes[0]).cat(codes)
        if weights is not None or len(styles) > 1:
            w = torch.tensor(weights if weights is not None else [1.0] * len(styles))
            code = code.mix(w)
        return code

    @torch.inference_mode()
    def stylize_tensors(self, content: torch.Tensor, styles: list[torch.Tensor],
                        options: StylizeOptions, mask: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """Stylise a (1, 3, H, W) content in [0, 1]; returns (1, 3, H, W) in [0, 1]."""
        if isinstance(self.model, FixedStyleModel):
            return self.stylize_cin(content, styles, options, mask)
        if not styles:
            raise StylenormError("give at least one style image: this model takes its style "
                                 "from images (style_index is for CIN models)",
                                 params=("style_index",))
        if options.style_index is not None:
            raise StylenormError("style_index picks a style of a CIN model; this model takes "
                                 "its styles from images (mix them with style_weights)",
                                 params=("style_index", "style_weights"))
        options.validate(len(styles))
        recolour = content if options.preserve_color else None
        if mask is not None:
            if len(styles) != 2:
                raise StylenormError(f"mask needs exactly 2 style images; got {len(styles)}",
                                     params=("mask",))
            codes = [self.style_code([s], None, recolour) for s in styles]
            code = type(codes[0]).cat(codes)
            mask = mask.to(self.device)
        else:
            code = self.style_code(styles, options.style_weights, recolour)
        return self.render(content, code, options, mask)

    @torch.inference_mode()
    def stylize_cin(self, content: torch.Tensor, styles: list[torch.Tensor],
                    options: StylizeOptions, mask: torch.Tensor | None = None) -> torch.Tensor:
        """A CIN model holds its styles: pick one (``style_index``) or mix them by
        ``style_weights``; ``alpha`` blends the result with the content."""
        names = self.model.style_names
        listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        if styles:
            raise StylenormError(f"this CIN model has its own styles ({listing}); give no style "
                                 "images, and style_index K or style_weights",
                                 params=("style_index", "style_weights"))
        if mask is not None or options.preserve_color or options.tile:
            raise StylenormError("mask, preserve_color and tile work with the AdaIN and "
                                 "lite models, not with a CIN model",
                                 params=("mask", "preserve_color", "tile"))
        if (options.style_index is None) == (options.style_weights is None):
            raise StylenormError(f"a CIN model needs exactly one of style_index K or "
                                 f"style_weights w0,...,w{len(names) - 1} ({listing})",
                                 params=("style_index", "style_weights"))
        options.validate(len(options.style_weights or []))  # their count: weights_for
        try:
            weights = self.model.weights_for(options.style_index, options.style_weights)
        except ValueError as exc:
            raise StylenormError(str(exc)) from None
        out = self.model.stylize(self.model.prepare(content), weights.to(self.device, self.dtype))
        out = options.alpha * out.float().cpu() + (1 - options.alpha) * content.float().cpu()
        return out.clamp(0, 1)

    @torch.inference_mode()
    def render(self, content: torch.Tensor, code: StyleCodeLike, options: StylizeOptions,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """Stylise a (1, 3, H, W) content with a ready code; large contents go in tiles."""
        h, w = content.shape[-2:]
        if should_tile(h, w, options.tile) and (options.tile or can_tile(self.model)):
            tiles = TileOptions(tile=options.tile_size)
            return stylize_tiled(self.model, content, code, options.alpha, tiles, mask)
        out = self.model(self.model.prepare(content), code, options.alpha, mask)
        return out[..., :h, :w].clamp(0, 1).float().cpu()

    def load_styles(self, paths: list[Path], options: StylizeOptions) -> list[torch.Tensor]:
        return [
            load_image(p, options.style_size, options.crop, options.max_pixels, MIN_IMAGE_SIZE).rgb
            for p in paths
        ]

    def stylize_file(self, content_path: str | os.PathLike, style_paths: list,
                     output: str | os.PathLike, options: StylizeOptions | None = None,
                     mask_path: str | os.PathLike | None = None) -> Path:
        """Read, stylise and atomically write one image; returns the output path."""
        options = options or StylizeOptions()
        output = Path(output)
        image_format(output)
        inputs = [Path(content_path), *map(Path, style_paths)]
        if mask_path is not None:
            inputs.append(Path(mask_path))
        if any(output.resolve() == p.resolve() for p in inputs if p.exists()):
            raise StylenormError(
                f"{output}: output path is one of the inputs; refusing to overwrite")
        content = load_image(content_path, options.size, options.crop, options.max_pixels,
                             MIN_IMAGE_SIZE)
        styles = self.load_styles([Path(p) for p in style_paths], options)
        mask = (load_mask(mask_path, content, options.max_pixels) if mask_path is not None
                else None)
        result = self.stylize_tensors(content.rgb, styles, options, mask)
        return save_image(result, output, content.alpha)


def load_mask(path: str | os.PathLike, content: LoadedImage,
              max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """A (1, 1, H, W) mask in [0, 1] (luminance) at the content's size."""
    rgb = load_image(path, max_pixels=max_pixels).rgb
    grey = rgb.mean(dim=1, keepdim=True)
    size = content.rgb.shape[-2:]
    return torch.nn.functional.interpolate(grey, size=size, mode="bilinear", align_corners=False)


def stylize(content: str | os.PathLike, styles: list, output: str | os.PathLike, *,
            model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto",
            precision: str = "fp32", mask: str | os.PathLike | None = None,
            **options) -> Path:
    """Stylise ``content`` with one or more ``styles`` and write ``output``.

    ``options`` are the fields of :class:`StylizeOptions` (alpha, style_weights, preserve_color,
    size, style_size, crop, max_pixels).
    """
    stylizer = Stylizer(model, device, precision)
    return stylizer.stylize_file(content, list(styles), output, StylizeOptions(**options), mask)
