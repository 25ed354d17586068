"""How to stylise: :class:`StylizeOptions`, the options of ``stylize`` (and of ``batch``,
``video`` and the web page), each checked for type and range; style weights as typed."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from ..choices import MAX_WHOLE_PIXELS
from ..errors import OptionError, StylenormError
from ..io.images import DEFAULT_MAX_PIXELS
from .tiling import TileOptions


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


__all__ = ["StylizeOptions", "parse_weights"]
