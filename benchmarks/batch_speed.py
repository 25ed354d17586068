"""Batch throughput, precision and parity, and 4K tiling memory, with real weights on this machine.

    STYLENORM_HOME=... python benchmarks/batch_speed.py [--count 17] [--size 512] [--no-4k]

1. ``--count`` contents x 1 style at ``--size`` px, end to end (read, stylise, write), in one
   process: the plain reference pipeline (eager fp32, contiguous, content and style read and
   encoded for every image, one image at a time) against ``stylenorm batch`` at ``auto``
   precision (bf16 on CPUs with native bf16).
2. The same batch in fp32 compared pixel for pixel with ``stylenorm stylize`` of each pair, and
   the bf16 outputs' PSNR against the fp32 ones.
3. A 3840x2160 photo (a shared photo upscaled) through ``stylenorm stylize --size 0`` (tiled
   automatically) in a child process: peak resident memory from ``ru_maxrss`` of the child, and
   the seam ratio at the tile borders beside that of the input at the same lines.

Contents and styles default to ``../shared/images``; outputs go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from seams import seam_ratio, tile_borders  # benchmarks/seams.py

from stylenorm.hub.zoo import load_model
from stylenorm.inference.batch import BatchOptions, run_batch
from stylenorm.inference.batchplan import plan_pairs, split_existing
from stylenorm.inference.bench import describe_machine
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.inference.tiling import TileOptions
from stylenorm.io.images import load_image, save_image
from stylenorm.models.adain import StyleCode
from stylenorm.nn.conditional import mean_std

# Runs the CLI, then prints the child's own peak resident set in KiB: VmHWM, which starts afresh
# at exec (Linux keeps ru_maxrss across execve, so a child of a big parent would inherit its peak).
PEAK_CHILD = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module("stylenorm", run_name="__main__")
finally:
    try:
        status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
    except (OSError, IndexError):
        status = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("peak_kib", status, file=sys.stderr)
"""
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "images"


def reference_run(model_name: str, pairs, out: Path, size: int) -> float:
    """The public implementations' way, end to end; returns seconds."""
    model = load_model(model_name)  # fp32, contiguous, eager
    start = time.perf_counter()
    with torch.no_grad():
        for content, style in pairs:
            c = model.encoder.encode(load_image(content, size).rgb)
            s = model.encoder.encode(load_image(style, size).rgb)
            image = model.decoder(model.target_features(c, StyleCode(*mean_std(s))))
            h, w = c.shape[-2] * 8, c.shape[-1] * 8
            save_image(image[..., :h, :w].clamp(0, 1), out / f"{content.stem}.jpg")
    return time.perf_counter() - start


def batch_run(model_name: str, pairs, out: Path, size: int, precision: str, ext: str):
    stylizer = Stylizer(model_name, "cpu", precision)
    plan = split_existing(plan_pairs(pairs, out, ext))
    options = StylizeOptions(size=size, style_size=size)
    start = time.perf_counter()
    report = run_batch(stylizer, plan, options, BatchOptions(), progress=False)
    assert report.ok, report.summary()
    return time.perf_counter() - start, stylizer.dtype


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def throughput(args, pairs, tmp: Path) -> None:
    n = len(pairs)
    print(f"\n[1] {n} contents x 1 style at {args.size} px, end to end (read, stylise, write)")
    ref = reference_run(args.model, pairs, _mk(tmp / "ref"), args.size)
    fast, dtype = batch_run(args.model, pairs, _mk(tmp / "fast"), args.size, "auto", "png")
    print(f"reference (eager fp32, contiguous, per image): {n / ref:.3f} img/s ({ref:.1f} s)")
    print(f"stylenorm batch ({dtype}, channels-last, fused): {n / fast:.3f} img/s ({fast:.1f} s)")
    print(f"speed-up: {ref / fast:.2f}x")


def parity(args, pairs, tmp: Path) -> None:
    print(f"\n[2] fp32 batch against `stylenorm stylize`; bf16 against fp32 ({args.size} px)")
    fp32_dir = _mk(tmp / "fp32")
    seconds, _ = batch_run(args.model, pairs, fp32_dir, args.size, "fp32", "png")
    print(f"stylenorm batch fp32: {len(pairs) / seconds:.3f} img/s")
    stylizer = Stylizer(args.model, "cpu", "fp32")
    options = StylizeOptions(size=args.size, style_size=args.size)
    same = 0
    for content, style in pairs:
        single = stylizer.stylize_file(content, [style], tmp / "single.png", options)
        batched = fp32_dir / f"{content.stem}__{style.stem}.png"
        same += np.array_equal(pixels(single), pixels(batched))
    print(f"fp32 batch identical to stylize: {same}/{len(pairs)} images")
    if not (tmp / "fast").is_dir():
        batch_run(args.model, pairs, _mk(tmp / "fast"), args.size, "auto", "png")
    values = [psnr(pixels(p), pixels(tmp / "fast" / p.name)) for p in sorted(fp32_dir.iterdir())]
    print(f"bf16 vs fp32 PSNR: min {min(values):.2f} dB, mean {np.mean(values):.2f} dB")


def four_k(args, tmp: Path) -> None:
    print("\n[3] 3840x2160 photo, `stylenorm stylize --size 0` (tiled automatically)")
    sizes = {p: Image.open(p).size for p in sorted((SHARED / "content").iterdir())}
    wide = [p for p, (w, h) in sizes.items() if w >= 1.6 * h]  # a 16:9-like photo
    source = max(wide, key=lambda p: sizes[p][0])
    big = tmp / "4k.jpg"
    Image.open(source).convert("RGB").resize((3840, 2160), Image.BICUBIC).save(big, quality=95)
    style = sorted((SHARED / "style").iterdir())[0]
    for precision in args.precisions_4k:
        out = tmp / f"4k_{precision}.jpg"
        argv = ["stylenorm", "stylize", str(big), str(style), "-o", str(out), "--size", "0",
                "--precision", precision]
        start = time.perf_counter()
        env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
        done = subprocess.run([sys.executable, "-c", PEAK_CHILD, *argv], check=True,
                              capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        peak = int(done.stderr.strip().splitlines()[-1].split()[-1])  # KiB
        rows, cols = tile_borders(2160, 3840, TileOptions())
        ratio = seam_ratio(torch.from_numpy(pixels(out)).permute(2, 0, 1), rows, cols)
        base = seam_ratio(torch.from_numpy(pixels(big)).permute(2, 0, 1), rows, cols)
        print(f"{precision}: {seconds:.1f} s, peak RSS {peak / 2**20:.2f} GiB; seam ratio "
              f"{ratio:.3f} (the input at the same lines: {base:.3f})")


def _mk(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="adain")
    parser.add_argument("--count", type=int, default=17)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--contents", type=Path, default=SHARED / "content")
    parser.add_argument("--styles", type=Path, default=SHARED / "style")
    parser.add_argument("--no-4k", dest="four_k", action="store_false")
    parser.add_argument("--no-parity", dest="parity", action="store_false")
    parser.add_argument("--no-throughput", dest="throughput", action="store_false")
    parser.add_argument("--precisions-4k", nargs="+", default=["bf16", "fp32"])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: one per core)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"processor: {describe_machine('cpu')}; load average {os.getloadavg()}")
    contents = sorted(args.contents.iterdir())[: args.count]
    style = sorted(args.styles.iterdir())[0]
    pairs = [(c, style) for c in contents]
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.throughput:
            throughput(args, pairs, tmp)
        if args.parity:
            parity(args, pairs, tmp)
        if args.four_k:
            four_k(args, tmp)
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
