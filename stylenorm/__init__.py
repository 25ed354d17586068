"""stylenorm: neural style transfer with an exact, tested library of normalization layers."""

from ._version import __version__
from .errors import ImageError, StylenormError, WeightsError
from .hub.zoo import load_model
from .inference.batch import BatchOptions, BatchReport, batch_stylize, run_batch
from .inference.stylize import StylizeOptions, Stylizer, stylize
from .inference.tiling import TileOptions, stylize_tiled
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
    "stylize_tiled",
]
