"""Device and precision choices, with ``auto`` picking what is fastest on the machine at hand."""

from __future__ import annotations

import contextlib
import functools
import sys
import time

import torch

from .choices import Device, Precision
from .errors import StylenormError

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


def cpu_has_native_bf16() -> bool | None:
    """Whether the CPU has bf16 matrix instructions (AMX or AVX512-BF16); None if torch cannot
    tell."""
    probes = [getattr(torch.cpu, name, None)
              for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if any(p is None for p in probes):
        return None
    return any(p() for p in probes)


@functools.cache
def cpu_bf16_is_faster() -> bool:
    """bf16 on CPUs with native bf16 instructions, where oneDNN runs VGG convolutions several
    times faster than fp32 (4.5x for a whole 512 px stylisation on a 2-core AMX Xeon); elsewhere
    it is emulated and slower. When torch cannot tell, time a channels-last convolution in both
    (best of 7 runs, a few tenths of a second). Timing alone is not trusted first: on a busy
    machine a parallel region waits for a descheduled thread and both precisions time alike.
    """
    native = cpu_has_native_bf16()
    if native is not None:
        return native
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.randn(1, 128, 64, 64).contiguous(memory_format=torch.channels_last)

    def best_of(module, inp) -> float:
        times = []
        with torch.inference_mode():
            for _ in range(8):
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


def processor_name(device: torch.device | None = None) -> str:
    """The GPU's name for a CUDA device, else the CPU model from /proc/cpuinfo (or platform)."""
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def training_dtype(precision: str, device: torch.device) -> torch.dtype:
    """For training, ``auto`` is bf16 on CUDA GPUs that have it (no loss scaling needed; fp16
    otherwise), fp32 on MPS, and as `resolve_dtype` on the CPU (bf16 where it is native).
    A resumed run reuses the dtype its checkpoint records, whatever ``auto`` says now."""
    if Precision(precision) is Precision.AUTO and device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if Precision(precision) is Precision.AUTO and device.type == "mps":
        return torch.float32
    return resolve_dtype(precision, device)


def autocast(device: torch.device, dtype: torch.dtype):
    """Autocast to ``dtype`` (nothing for float32)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def on_terminal(progress: bool) -> bool:
    """Whether to draw progress: asked for, and stderr is a terminal (a bar's carriage returns
    in a log file are noise)."""
    return progress and sys.stderr.isatty()
