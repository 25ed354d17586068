"""The stylisation API behind ``stylenorm stylize``: files in, a stylised image out."""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..choices import DEFAULT_PRECISION, MAX_WHOLE_PIXELS
from ..errors import NonFiniteError, OptionError, StylenormError
from ..hub.zoo import DEFAULT_MODEL, load_model
from ..io.images import DEFAULT_MAX_PIXELS, LoadedImage, image_format, load_image, save_image
from ..models.protocol import FixedStyleModel, StyleCodeLike
from ..nn.colour import match_colour
from ..runtime import resolve_device, resolve_dtype
from .faint import keep_faint
from .finite import LOW_PRECISION, PRECISION_NAMES, cast_code, count_non_finite, require_finite
from .progress import on_terminal, spinner
from .tiling import (
    FeatureHook,
    TileOptions,
    can_tile,
    should_tile,
    stylize_tiled,
    tile_count,
)

PROGRESS_DELAY_S = 1.0  # runs shorter than this show no progress bar
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
    max_whole_pixels: int = MAX_WHOLE_PIXELS  # the most pixels the model runs in one piece

    def check_whole(self, what: str, height: int, width: int, lower: str) -> None:
        """Refuse ``what`` (run by the model in one piece) above ``max_whole_pixels``."""
        if height * width > self.max_whole_pixels:
            raise StylenormError(
                f"{what} is {width}x{height} ({width * height} pixels), run by the model in one "
                f"piece; the limit is {self.max_whole_pixels} (lower {lower} or raise "
                "max_whole_pixels)", params=("max_whole_pixels", lower))

    def style_limit(self) -> tuple[int, str]:
        """The pixel limit of a style image after resizing, and how to change it."""
        return self.max_whole_pixels, "styles are encoded whole; lower --style-size or raise " \
            "--max-whole-pixels"

    def validate_values(self) -> None:
        """Types and ranges of every option (the count of style weights: :meth:`validate`)."""
        for name in ("size", "style_size", "max_pixels", "max_whole_pixels", "style_index"):
            value = getattr(self, name)
            if name == "style_index" and value is None:
                continue
            least = 1 if name.startswith("max_") else 0
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise OptionError(f"{name} must be an integer; got {value!r}", params=(name,))
            if value < least:
                keeps = " (0 keeps the original)" if name.endswith("size") else ""
                raise OptionError(f"{name} must be >= {least}{keeps}; got {value}",
                                  params=(name,))
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
            raise OptionError(f"alpha must be a number between 0 and 1; got {alpha!r}",
                              params=("alpha",))
        for name in ("preserve_color", "crop", "tile"):
            if not isinstance(getattr(self, name), bool):
                raise OptionError(f"{name} must be True or False; got {getattr(self, name)!r}",
                                  params=(name,))
        TileOptions(tile=self.tile_size).validate()
        w = self.style_weights
        if w is not None and (isinstance(w, (str, bytes)) or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in w)):
            raise OptionError(f"style_weights must be a list of numbers; got {w!r}",
                              params=("style_weights",))

    def validate(self, num_styles: int) -> None:
        self.validate_values()
        if self.style_weights is not None:
            w = list(self.style_weights)
            if len(w) != num_styles:
                raise OptionError(
                    f"style_weights has {len(w)} values for {num_styles} style images",
                    params=("style_weights",))
            if not all(math.isfinite(v) and v >= 0 for v in w) or sum(w) <= 0:
                raise OptionError(f"style_weights must be >= 0 with a positive sum; got {w}",
                                  params=("style_weights",))


def parse_weights(text: str | None) -> list[float] | None:
    """Style weights as typed: ``"0.7, 0.3"`` -> ``[0.7, 0.3]``; None or blank -> None."""
    if text is None or not text.strip():
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise OptionError(f"style_weights must be comma-separated numbers like 0.7,0.3; got "
                          f"{text!r}", params=("style_weights",)) from None


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
    def stylize_tensors(self, content: torch.Tensor, styles: list[torch.Tensor],
                        options: StylizeOptions, mask: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """Stylise a (1, 3, H, W) content in [0, 1]; returns (1, 3, H, W) in [0, 1]."""
        if isinstance(self.model, FixedStyleModel):
            options.check_whole("the content", *content.shape[-2:], "size")
            return self.stylize_cin(content, styles, options, mask)
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
        if mask is not None:
            check_mask_styles(len(styles))
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
            weights = self.model.weights_for(options.style_index, options.style_weights)
        except ValueError as exc:
            raise StylenormError(str(exc)) from None
        out = self.finite(lambda: self.model.stylize(self.model.prepare(content),
                                                     weights.to(self.device, self.dtype)))
        out = options.alpha * out.float().cpu() + (1 - options.alpha) * content.float().cpu()
        return out.clamp(0, 1)

    @torch.inference_mode()
    def render(self, content: torch.Tensor, code: StyleCodeLike, options: StylizeOptions,
               mask: torch.Tensor | None = None, adjust: FeatureHook | None = None
               ) -> torch.Tensor:
        """Stylise a (1, 3, H, W) content with a ready code; large contents go in tiles.
        ``adjust`` may replace the content's features and statistics between encoding and
        decoding (video smooths the statistics over time). Checked by :meth:`finite`; faint
        content (dark, flat) stays faint (:func:`~.faint.keep_faint`)."""
        out = self.finite(lambda: self._render(content, cast_code(code, self.dtype), options,
                                               mask, adjust))
        return keep_faint(content, out)

    def _render(self, content: torch.Tensor, code: StyleCodeLike, options: StylizeOptions,
                mask: torch.Tensor | None, adjust: FeatureHook | None) -> torch.Tensor:
        h, w = content.shape[-2:]
        if should_tile(h, w, options.tile) and (options.tile or can_tile(self.model)):
            tiles = TileOptions(tile=options.tile_size)
            side = tiles.tile + 2 * tiles.halo
            options.check_whole(f"a tile with its halo ({tiles.halo} px each side)", side, side,
                                "tile_size")
            done = itertools.count(1)
            with tqdm(total=tile_count(self.model, h, w, tiles), unit="tile", desc="stylize",
                      disable=not on_terminal(self.progress), delay=PROGRESS_DELAY_S, leave=False,
                      file=sys.stderr) as bar:
                return stylize_tiled(self.model, content, code, options.alpha, tiles, mask,
                                     on_tile=lambda stage, shape: self.tile_done(bar, done),
                                     adjust=adjust)
        options.check_whole("the content", h, w, "size")
        # one model call, no count to show: a spinner, on a terminal only (no \r into logs)
        with spinner(on_terminal(self.progress), delay=PROGRESS_DELAY_S):
            if adjust is None:
                out = self.model(self.model.prepare(content), code, options.alpha, mask)
            else:
                prepared = self.model.prepare(content)
                feats = adjust(self.model.encode_content(prepared, options.alpha != 1.0))
                mask = None if mask is None else self.model.mask_at(
                    mask, feats.features.shape[-2:])
                out = self.model.decode_features(feats, code, options.alpha, mask)
        out = out[..., :h, :w].float().cpu()
        return out if count_non_finite(out) else out.clamp(0, 1)  # NaN and inf stay to be seen

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
