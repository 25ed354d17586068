"""The stylisation API behind ``stylenorm stylize``: files in, a stylised image out."""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..choices import DEFAULT_PRECISION
from ..errors import NonFiniteError, OptionError, StylenormError
from ..hub.zoo import DEFAULT_MODEL, load_model
from ..io.images import DEFAULT_MAX_PIXELS, LoadedImage, image_format, load_image, save_image
from ..models.protocol import FixedStyleModel, StyleCodeLike
from ..nn.colour import match_colour
from ..runtime import resolve_device, resolve_dtype
from . import render
from .faint import keep_faint
from .finite import LOW_PRECISION, PRECISION_NAMES, cast_code, count_non_finite, require_finite
from .options import StylizeOptions, parse_weights
from .progress import on_terminal, spinner
from .tiling import FeatureHook, TileHook, TileOptions, tile_count

PROGRESS_DELAY_S = 1.0  # runs shorter than this show no progress bar
MIN_IMAGE_SIZE = 16  # smaller images vanish inside the encoder's pooling layers


class Stylizer:
    """A loaded model on a device at a precision, reusable across many images.

    Every output is checked for NaN and infinite values (:mod:`.finite`): in fp16 or bf16 the
    model then moves to fp32 for good and the output is computed again (``log`` is told);
    in fp32 it is refused with :class:`~stylenorm.errors.NonFiniteError`.
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, device: str = "auto",
                 precision: str = DEFAULT_PRECISION, progress: bool = False,
                 log: Callable[[str], None] | None = None) -> None:
        self.progress = progress  # a tile progress bar on stderr once a run passes a second
        self.on_tile: Callable[[int, int], None] | None = None  # told (done, total) per tile
        self.log = log or logging.getLogger("stylenorm").warning  # notes (a retry in fp32)
        self.name = str(model)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(precision, self.device)
        self.model = load_model(model).to(self.device, self.dtype)
        if self.device.type != "mps":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.use_fast_path()  # fused inference kernels; same weights and outputs

    def use_fp32(self) -> None:
        """Move the model to fp32 for every later call (after an overflow)."""
        self.model = self.model.float()
        self.dtype = torch.float32

    def finite(self, compute: Callable[[], object]):
        """``compute()`` (an image or a style code), checked for NaN and infinite values: in
        fp16 or bf16 the model moves to fp32 and ``compute`` runs again; a non-finite result
        in fp32 raises :class:`NonFiniteError`."""
        result = compute()
        if not count_non_finite(result):
            return result
        if self.dtype in LOW_PRECISION:
            self.log(f"note: {PRECISION_NAMES[self.dtype]} overflowed (NaN or infinite values); "
                     "computing again in fp32")
            self.use_fp32()
            result = compute()
        require_finite(result, self.dtype, self.name)
        return result

    @torch.inference_mode()
    def style_code(self, styles: list[torch.Tensor], weights: list[float] | None,
                   content: torch.Tensor | None = None) -> StyleCodeLike:
        """The (mixed) code of several style images; with ``content``, styles are recoloured
        to the content's colours first (``--preserve-color``)."""
        return self.finite(lambda: self._style_code(styles, weights, content))

    def _style_code(self, styles: list[torch.Tensor], weights: list[float] | None,
                    content: torch.Tensor | None) -> StyleCodeLike:
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
    def code_for(self, content: torch.Tensor, styles: list[torch.Tensor],
                 options: StylizeOptions, mask: torch.Tensor | None = None):
        """The code :meth:`render` takes, once ``options`` are checked: a CIN model's mixing
        weights over its own styles (:meth:`fixed_code`); else the (mixed) code of the style
        images, each recoloured to ``content`` first with ``preserve_color``, or with a mask
        the two styles' codes side by side."""
        if isinstance(self.model, FixedStyleModel):
            return self.fixed_code(styles, options, mask)
        if not styles:
            raise OptionError("give at least one style image: this model takes its style "
                              "from images (style_index is for CIN models)",
                              params=("style_index",))
        if options.style_index is not None:
            raise OptionError("style_index picks a style of a CIN model; this model takes "
                              "its styles from images (mix them with style_weights)",
                              params=("style_index", "style_weights"))
        options.validate(len(styles))
        recolour = content if options.preserve_color else None
        if mask is None:
            return self.style_code(styles, options.style_weights, recolour)
        check_mask_styles(len(styles))
        codes = [self.style_code([s], None, recolour) for s in styles]
        return type(codes[0]).cat(codes)

    def fixed_code(self, styles: list[torch.Tensor], options: StylizeOptions,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
        """A CIN model holds its styles: pick one (``style_index``) or mix them by
        ``style_weights``; the code is the weights over its styles."""
        names = self.model.style_names
        listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        if styles:
            raise OptionError(f"this CIN model has its own styles ({listing}); give no style "
                              "images, and style_index K or style_weights",
                              params=("style_index", "style_weights"))
        if mask is not None or options.preserve_color or options.tile:
            raise OptionError("mask, preserve_color and tile work with the AdaIN and "
                              "lite models, not with a CIN model",
                              params=("mask", "preserve_color", "tile"))
        if (options.style_index is None) == (options.style_weights is None):
            raise OptionError(f"a CIN model needs exactly one of style_index K or "
                              f"style_weights w0,...,w{len(names) - 1} ({listing})",
                              params=("style_index", "style_weights"))
        options.validate(len(options.style_weights or []))  # their count: weights_for
        try:
            return self.model.weights_for(options.style_index, options.style_weights)
        except ValueError as exc:
            raise StylenormError(str(exc)) from None

    @torch.inference_mode()
    def stylize_tensors(self, content: torch.Tensor, styles: list[torch.Tensor],
                        options: StylizeOptions, mask: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """Stylise a (1, 3, H, W) content in [0, 1]; returns (1, 3, H, W) in [0, 1]."""
        code = self.code_for(content, styles, options, mask)
        return self.render(content, code, options, None if mask is None else
                           mask.to(self.device))

    @torch.inference_mode()
    def render(self, content: torch.Tensor, code, options: StylizeOptions,
               mask: torch.Tensor | None = None, adjust: FeatureHook | None = None
               ) -> torch.Tensor:
        """Stylise a (1, 3, H, W) content with a ready code (:meth:`code_for`) through the one
        render path (:mod:`.render`): whole, or in tiles when large. ``adjust`` may replace the
        content's features and statistics between encoding and decoding (video smooths the
        statistics over time). Checked by :meth:`finite`; faint content (dark, flat) stays
        faint (:func:`~.faint.keep_faint`)."""
        out = self.finite(lambda: self._render(content, cast_code(code, self.dtype), options,
                                               mask, adjust))
        return keep_faint(content, out)

    def _render(self, content: torch.Tensor, code, options: StylizeOptions,
                mask: torch.Tensor | None, adjust: FeatureHook | None) -> torch.Tensor:
        h, w = content.shape[-2:]
        tiles = render.tiles_for(self.model, h, w, options)
        with self.progress_for(tiles, h, w) as on_tile:
            feats = render.encode(self.model, content, options, tiles, on_tile)
            if adjust is not None:
                feats = adjust(feats)
            out = render.decode(self.model, feats, code, options.alpha, tiles, mask, on_tile)
        return out if count_non_finite(out) else out.clamp(0, 1)  # NaN and inf stay to be seen

    @contextlib.contextmanager
    def progress_for(self, tiles: TileOptions | None, height: int, width: int
                     ) -> Iterator[TileHook | None]:
        """A bar counting tiles (and the hook that counts them) for tiled work; for one model
        call, with no count to show, a spinner. On a terminal only (no \\r into logs)."""
        if tiles is None:
            with spinner(on_terminal(self.progress), delay=PROGRESS_DELAY_S):
                yield None
            return
        done = itertools.count(1)
        with tqdm(total=tile_count(self.model, height, width, tiles), unit="tile",
                  desc="stylize", disable=not on_terminal(self.progress), delay=PROGRESS_DELAY_S,
                  leave=False, file=sys.stderr) as bar:
            yield lambda stage, shape: self.tile_done(bar, done)

    def tile_done(self, bar: tqdm, done: itertools.count) -> None:
        bar.update(1)
        if self.on_tile is not None:
            self.on_tile(next(done), bar.total)

    def load_styles(self, paths: list[Path], options: StylizeOptions) -> list[torch.Tensor]:
        return [load_image(p, options.style_size, options.crop, options.max_pixels, MIN_IMAGE_SIZE,
                           result_limit=options.style_limit()).rgb for p in paths]

    def stylize_file(self, content_path: str | os.PathLike, style_paths: list,
                     output: str | os.PathLike, options: StylizeOptions | None = None,
                     mask_path: str | os.PathLike | None = None,
                     log: Callable[[str], None] | None = None) -> Path:
        """Read, stylise and atomically write one image; returns the output path. ``log``
        receives notes (a mask resized to the content)."""
        options = options or StylizeOptions()
        options.validate_values()
        output = Path(output)
        image_format(output)
        inputs = [Path(content_path), *map(Path, style_paths)]
        if mask_path is not None:
            inputs.append(Path(mask_path))
        if any(output.resolve() == p.resolve() for p in inputs if p.exists()):
            raise StylenormError(
                f"{output}: output path is one of the inputs; refusing to overwrite")
        if mask_path is not None and not isinstance(self.model, FixedStyleModel):
            check_mask_styles(len(style_paths))  # before the mask is read
        content = load_image(content_path, options.size, options.crop, options.max_pixels,
                             MIN_IMAGE_SIZE)
        styles = self.load_styles([Path(p) for p in style_paths], options)
        mask = (load_mask(mask_path, content, options.max_pixels, log) if mask_path is not None
                else None)
        previous, self.log = self.log, log or self.log
        try:
            result = self.stylize_tensors(content.rgb, styles, options, mask)
        except NonFiniteError as exc:
            raise NonFiniteError(f"{content_path}: {exc}") from None
        finally:
            self.log = previous
        return save_image(result, output, content.alpha, log)


def check_mask_styles(num_styles: int) -> None:
    if num_styles != 2:
        raise OptionError(f"mask needs exactly 2 style images; got {num_styles}",
                             params=("mask",))


def load_mask(path: str | os.PathLike, content: LoadedImage,
              max_pixels: int = DEFAULT_MAX_PIXELS,
              log: Callable[[str], None] | None = None) -> torch.Tensor:
    """A (1, 1, H, W) mask in [0, 1] (luminance) at the content's size. A mask of another
    aspect ratio than the content is refused (stretching it would move its regions); one of
    another size is resized, and ``log`` is told so."""
    rgb = load_image(path, max_pixels=max_pixels).rgb
    grey = rgb.mean(dim=1, keepdim=True)
    (mh, mw), (ch, cw) = rgb.shape[-2:], content.rgb.shape[-2:]
    if abs(math.log((mw / mh) / (cw / ch))) > 0.02:
        raise StylenormError(
            f"{path}: mask is {mw}x{mh} (aspect {mw / mh:.3g}) but the content is {cw}x{ch} "
            f"(aspect {cw / ch:.3g}); give a mask of the content's aspect ratio")
    if (mh, mw) != (ch, cw) and log is not None:
        log(f"note: mask {path} resized from {mw}x{mh} to the content's {cw}x{ch}")
    return torch.nn.functional.interpolate(grey, size=(ch, cw), mode="bilinear",
                                           align_corners=False)


def stylize(content: str | os.PathLike, styles: str | os.PathLike | list,
            output: str | os.PathLike, *, model: str | os.PathLike = DEFAULT_MODEL,
            device: str = "auto", precision: str = DEFAULT_PRECISION,
            mask: str | os.PathLike | None = None, **options) -> Path:
    """Stylise ``content`` with one style (a path) or several (a list of paths; none for a CIN
    model) and write ``output``.

    ``options`` are the fields of :class:`StylizeOptions` (alpha, style_weights, preserve_color,
    size, style_size, crop, max_pixels, max_whole_pixels, tile, tile_size, style_index); each is
    checked for type and range before anything is loaded.
    """
    if isinstance(styles, (str, os.PathLike)):
        styles = [styles]
    elif isinstance(styles, bytes) or not isinstance(styles, Iterable):
        raise OptionError(f"styles must be a path or a list of paths; got {styles!r}",
                          params=("styles",))
    styles = list(styles)
    paths = {"content": [content], "styles": styles, "output": [output],
             "mask": [] if mask is None else [mask]}
    for name, values in paths.items():
        for value in values:
            if not isinstance(value, (str, os.PathLike)):
                raise OptionError(f"{name} must be a path (str or os.PathLike); got {value!r}",
                                  params=(name,))
    unknown = sorted(set(options) - {f.name for f in fields(StylizeOptions)})
    if unknown:
        raise OptionError(f"unknown option(s) {unknown}; StylizeOptions has "
                          f"{sorted(f.name for f in fields(StylizeOptions))}")
    stylize_options = StylizeOptions(**options)
    stylize_options.validate_values()
    stylizer = Stylizer(model, device, precision)
    return stylizer.stylize_file(content, styles, output, stylize_options, mask)


__all__ = ["MIN_IMAGE_SIZE", "PROGRESS_DELAY_S", "StylizeOptions", "Stylizer", "check_mask_styles",
           "load_mask", "parse_weights", "stylize"]
