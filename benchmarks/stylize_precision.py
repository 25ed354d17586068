"""512x512 stylisation on the CPU: fp32 against bf16, timed in one process, with the PSNR between.

    STYLENORM_HOME=... python benchmarks/stylize_precision.py [--model adain] [--repeats 5]

Needs an installed AdaIN model and encoder (see README). Prints the processor, the median time
of each precision, the speed-up, and the PSNR of the bf16 output against fp32.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.io.images import load_image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def processor_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1 / mse)).item()


def time_precision(model: str, precision: str, content, style, repeats: int):
    stylizer = Stylizer(model, device="cpu", precision=precision)
    options = StylizeOptions(size=0, style_size=0)
    stylizer.stylize_tensors(content, [style], options)  # warm-up
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = stylizer.stylize_tensors(content, [style], options)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="adain")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    content = load_image(SAMPLES / "content" / "cat.jpg", size=512, crop=True).rgb
    style = load_image(SAMPLES / "style" / "strokes.png", size=512, crop=True).rgb
    print(f"processor: {processor_name()}; torch {torch.__version__}; "
          f"threads {torch.get_num_threads()}; 512x512 content and style")
    t32, out32 = time_precision(args.model, "fp32", content, style, args.repeats)
    t16, out16 = time_precision(args.model, "bf16", content, style, args.repeats)
    print(f"fp32: {t32 * 1000:.0f} ms/image   bf16: {t16 * 1000:.0f} ms/image   "
          f"speed-up {t32 / t16:.2f}x   PSNR(bf16, fp32) {psnr(out16, out32):.1f} dB")


if __name__ == "__main__":
    main()
