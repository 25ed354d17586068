"""stylenorm: neural style transfer with an exact, tested library of normalization layers."""

__version__ = "0.1.0"

from .batch import BatchOptions, BatchReport, batch_stylize, run_batch  # noqa: E402
from .cin import CINConfig, CINTransformer  # noqa: E402
from .conditional import (  # noqa: E402
    AdaIN,
    ConditionalBatchNorm2d,
    ConditionalInstanceNorm2d,
    WhiteningColoring,
    adain,
    mean_std,
    wct,
)
from .decoder import AdaINDecoder, DecoderConfig  # noqa: E402
from .encoder import EncoderConfig, VGGEncoder  # noqa: E402
from .errors import ImageError, StylenormError, WeightsError  # noqa: E402
from .model import AdaINModel, StyleCode  # noqa: E402
from .norms import NormName, build_norm  # noqa: E402
from .stylize import StylizeOptions, Stylizer, stylize  # noqa: E402
from .tiling import TileOptions, stylize_tiled  # noqa: E402
from .train_adain import AdaINTrainConfig, train_adain  # noqa: E402
from .train_cin import CINTrainConfig, train_cin  # noqa: E402
from .zoo import load_model  # noqa: E402

__all__ = [
    "AdaIN", "AdaINDecoder", "AdaINModel", "ConditionalBatchNorm2d", "ConditionalInstanceNorm2d",
    "DecoderConfig", "EncoderConfig", "ImageError", "NormName", "StyleCode", "StylenormError",
    "Stylizer", "StylizeOptions", "VGGEncoder", "WeightsError", "WhiteningColoring", "adain",
    "build_norm", "load_model", "mean_std", "stylize", "wct", "__version__",
    "AdaINTrainConfig", "CINConfig", "CINTrainConfig", "CINTransformer", "train_adain",
    "train_cin", "BatchOptions", "BatchReport", "TileOptions", "batch_stylize", "run_batch",
    "stylize_tiled",
]
