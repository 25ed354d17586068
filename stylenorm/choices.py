"""The names the command line offers (devices, precisions, formats, encoder families) and the
defaults it shows, in a module that imports no torch: ``stylenorm --help`` and ``--version``
answer from here without loading the library's heavy parts."""

from __future__ import annotations

from enum import Enum

DEFAULT_MODEL = "lite"  # shipped in weights/ (stylenorm.bundled); needs no VGG
# The most pixels an input image may declare: decoding takes about 40 bytes a source pixel
# (measured peak: 4.2 GiB for a 100 MP JPEG read at --size 512), so 150 MP needs about 6 GiB,
# a quarter of a 24 GB machine. Pillow's decompression-bomb cap is set to agree (io.images).
DEFAULT_MAX_PIXELS = 150_000_000
# The most pixels a model runs on in one piece (a style, a tile with its halo, a CIN content):
# a 64-channel float32 activation of 8 MP is 2 GB, and the encoder holds several at once.
MAX_WHOLE_PIXELS = 8_000_000
DEFAULT_TILE_SIZE = 768  # core tile side in px
# stylenorm serve: the most pixels an upload may declare, the largest upload, the largest output
# shorter side, and how many requests may wait while one runs.
SERVE_MAX_PIXELS = 40_000_000
SERVE_MAX_UPLOAD_MB = 32
SERVE_MAX_SIZE = 4096
SERVE_QUEUE_SIZE = 4
VIDEO_MAX_PIXELS = 8192 * 4320  # 8K: the most pixels a video may declare per frame by default


class Device(str, Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


class LrSchedule(str, Enum):
    """How ``stylenorm tune``'s learning rate moves over its budget."""
    CONSTANT = "constant"
    COSINE = "cosine"


class Precision(str, Enum):
    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


# Every command's and API's precision (stylize, batch, video, serve): auto is bf16 on CPUs with
# native bf16 (1.8x faster than fp32 for lite at 512 px on a 2-core AMD EPYC, mean difference
# 1.2/255), fp16 on CUDA GPUs, fp32 elsewhere; an overflow is computed again in fp32.
DEFAULT_PRECISION = Precision.AUTO


class ExportFormat(str, Enum):
    ONNX = "onnx"


class EncoderFamily(str, Enum):
    NORMALISED = "normalised"
    TORCHVISION = "torchvision"
