"""Device and precision choices, with ``auto`` picking what is fastest on the machine at hand."""

from __future__ import annotations

import functools
import time
from enum import Enum

import torch

from .errors import StylenormError


class Device(str, Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


class Precision(str, Enum):
    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


DTYPES = {Precision.FP32: torch.float32, Precision.BF16: torch.bfloat16,
          Precision.FP16: torch.float16}


def resolve_device(name: str | Device = Device.AUTO) -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; an unavailable device is a clear error."""
    choice = Device(name)
    mps_ok = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if choice is Device.AUTO:
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    if choice is Device.CUDA and not torch.cuda.is_available():
        raise StylenormError("--device cuda requested, but no CUDA GPU is available here")
    if choice is Device.MPS and not mps_ok:
        raise StylenormError("--device mps requested, but Apple MPS is not available here")
    return torch.device(choice.value)


@functools.lru_cache(maxsize=None)
def cpu_bf16_is_faster() -> bool:
    """Time a VGG-sized convolution in fp32 and bf16 on this CPU (about a tenth of a second)."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1)
    x = torch.randn(1, 128, 64, 64)

    def best_of(module, inp) -> float:
        times = []
        with torch.inference_mode():
            for _ in range(4):
                start = time.perf_counter()
                module(inp)
                times.append(time.perf_counter() - start)
        return min(times[1:])

    fp32 = best_of(conv, x)
    bf16 = best_of(conv.to(torch.bfloat16), x.to(torch.bfloat16))
    return bf16 < 0.8 * fp32


def resolve_dtype(precision: str | Precision, device: torch.device) -> torch.dtype:
    """``auto`` -> fp16 on CUDA, bf16 on a CPU where it is measurably faster, else fp32."""
    choice = Precision(precision)
    if choice is Precision.AUTO:
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_bf16_is_faster():
            return torch.bfloat16
        return torch.float32
    if choice is Precision.FP16 and device.type == "cpu":
        raise StylenormError("--precision fp16 is for GPUs; on the CPU use bf16 or fp32")
    return DTYPES[choice]
