"""stylenorm: neural style transfer with an exact, tested library of normalization layers.

The names below load on first use (PEP 562), so that ``import stylenorm`` (and with it the
command line's ``--help`` and ``--version``) does not import torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import ImageError, StylenormError, WeightsError

# public name -> the module that defines it
_LAZY = {
    "load_model": "hub.zoo",
    **dict.fromkeys(["BatchOptions", "BatchReport", "batch_stylize", "run_batch"],
                    "inference.batch"),
    **dict.fromkeys(["StylizeOptions", "Stylizer", "stylize"], "inference.stylize"),
    "TileOptions": "inference.tiling",
    "stylize_tiled": "inference.render",
    **dict.fromkeys(["VideoOptions", "stylize_video"], "inference.video"),
    **dict.fromkeys(["AdaINModel", "StyleCode"], "models.adain"),
    **dict.fromkeys(["CINConfig", "CINTransformer"], "models.cin"),
    **dict.fromkeys(["AdaINDecoder", "DecoderConfig"], "models.decoder"),
    **dict.fromkeys(["EncoderConfig", "VGGEncoder"], "models.vgg"),
    **dict.fromkeys(["AdaIN", "ConditionalBatchNorm2d", "ConditionalInstanceNorm2d",
                     "WhiteningColoring", "adain", "mean_std", "wct"], "nn.conditional"),
    **dict.fromkeys(["NormName", "build_norm"], "nn.norms"),
    **dict.fromkeys(["AdaINTrainConfig", "train_adain"], "training.adain"),
    **dict.fromkeys(["CINTrainConfig", "train_cin"], "training.cin"),
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stylenorm' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from .hub.zoo import load_model
    from .inference.batch import BatchOptions, BatchReport, batch_stylize, run_batch
    from .inference.render import stylize_tiled
    from .inference.stylize import StylizeOptions, Stylizer, stylize
    from .inference.tiling import TileOptions
    from .inference.video import VideoOptions, stylize_video
    from .models.adain import AdaINModel, StyleCode
    from .models.cin import CINConfig, CINTransformer
    from .models.decoder import AdaINDecoder, DecoderConfig
    from .models.vgg import EncoderConfig, VGGEncoder
    from .nn.conditional import (
        AdaIN,
        ConditionalBatchNorm2d,
        ConditionalInstanceNorm2d,
        WhiteningColoring,
        adain,
        mean_std,
        wct,
    )
    from .nn.norms import NormName, build_norm
    from .training.adain import AdaINTrainConfig, train_adain
    from .training.cin import CINTrainConfig, train_cin

__all__ = [
    "AdaIN", "AdaINDecoder", "AdaINModel", "ConditionalBatchNorm2d", "ConditionalInstanceNorm2d",
    "DecoderConfig", "EncoderConfig", "ImageError", "NormName", "StyleCode", "StylenormError",
    "Stylizer", "StylizeOptions", "VGGEncoder", "WeightsError", "WhiteningColoring", "adain",
    "build_norm", "load_model", "mean_std", "stylize", "wct", "__version__",
    "AdaINTrainConfig", "CINConfig", "CINTrainConfig", "CINTransformer", "train_adain",
    "train_cin", "BatchOptions", "BatchReport", "TileOptions", "batch_stylize", "run_batch",
    "stylize_tiled", "VideoOptions", "stylize_video",
]
