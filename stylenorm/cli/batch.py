"""``stylenorm batch`` and ``stylenorm bench``: Typer commands over :mod:`..inference.batch` and
:mod:`stylenorm.inference.bench` (registered on the main app by :mod:`stylenorm.cli.app`)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..choices import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MODEL,
    DEFAULT_PRECISION,
    DEFAULT_TILE_SIZE,
    MAX_WHOLE_PIXELS,
    Device,
)
from .errors import printable, say, user_errors
from .options import (
    AlphaOpt,
    CropOpt,
    DeviceOpt,
    MaxPixelsOpt,
    MaxWholePixelsOpt,
    ModelOpt,
    PrecisionOpt,
    SizeOpt,
    StyleSizeOpt,
    ThreadsOpt,
    TileOpt,
    TileSizeOpt,
)


def set_threads(threads: int) -> None:
    """``threads`` CPU threads for torch (0 keeps its default, one per core)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def log_line(message: str) -> None:
    """One line on stderr that does not tear the progress bar."""
    from tqdm.auto import tqdm

    tqdm.write(printable(message), file=sys.stderr)


@user_errors
def batch(
    content_dir: Path = typer.Argument(None, exists=True, file_okay=False,
                                       help="Folder of content images."),
    style_dir: Path = typer.Argument(None, exists=True, file_okay=False,
                                     help="Folder of style images."),
    output: Path = typer.Option(..., "--output", "-o", file_okay=False,
                                help="Output folder (created if needed)."),
    pairs: Path = typer.Option(None, exists=True, dir_okay=False,
                               help="File of 'content<TAB>style' or 'content,style' lines, "
                                    "instead of the two folders."),
    recursive: bool = typer.Option(False, help="Search the folders' sub-folders too."),
    ext: str = typer.Option("jpg", help="Output format: jpg, png, webp, ..."),
    overwrite: bool = typer.Option(False, help="Redo outputs that already exist."),
    model: ModelOpt = DEFAULT_MODEL,
    alpha: AlphaOpt = 1.0,
    preserve_color: bool = typer.Option(False, help="Keep the content's colours "
                                                    "(then each style is encoded per pair)."),
    size: SizeOpt = 512,
    style_size: StyleSizeOpt = 512,
    crop: CropOpt = False,
    tile: TileOpt = False,
    tile_size: TileSizeOpt = DEFAULT_TILE_SIZE,
    device: DeviceOpt = Device.AUTO,
    precision: PrecisionOpt = DEFAULT_PRECISION,
    batch_size: int = typer.Option(0, min=0, help="Same-size contents per model call "
                                   "(0: 4 on GPUs, 1 on CPUs)."),
    workers: int = typer.Option(2, min=1, help="Background threads reading/writing images."),
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    max_whole_pixels: MaxWholePixelsOpt = MAX_WHOLE_PIXELS,
    threads: ThreadsOpt = 0,
    progress: bool = typer.Option(True, help="Show a progress bar with ETA."),
    shard: str = typer.Option(None, metavar="I/N", help="Make only part I of N (0 <= I < N) of "
                              "the pairs, balanced by pixels: one task of a job array."),
) -> None:
    """Stylise every CONTENT_DIR image with every STYLE_DIR image (or the --pairs) into -o.

    Outputs are named <content>__<style>.<ext>; existing ones are skipped, so an interrupted run
    started again finishes only the rest. Unreadable files are reported and skipped; the exit
    code is 1 when any output failed. Under torchrun the ranks share the pairs and rank 0
    prints the summary of them all.
    """
    from ..inference.batch import batch_stylize
    from ..ranks import from_environment, parse_shard

    rank = from_environment()
    part = rank.within(parse_shard(shard)) if shard is not None else rank
    set_threads(threads)
    if rank.is_split:
        from ..inference.shards import start_group

        start_group(rank)
    report = batch_stylize(
        content_dir, style_dir, output, pairs=pairs, model=model, device=device.value,
        precision=precision.value, recursive=recursive, ext=ext, overwrite=overwrite,
        batch_size=batch_size, workers=workers, log=log_line, alpha=alpha,
        preserve_color=preserve_color, size=size, style_size=style_size, crop=crop,
        max_pixels=max_pixels, max_whole_pixels=max_whole_pixels,
        tile=tile, tile_size=tile_size, part=part, progress=progress and rank.is_main,
    )
    if rank.is_split:
        from ..inference.shards import gather_reports

        report = gather_reports(report)
    if rank.is_main:
        for line in report.summary_lines():
            say(line)
    if not report.ok:
        raise typer.Exit(1)


def parse_sizes(text: str) -> list[int | tuple[int, int]]:
    """``512,3840x2160`` -> [512, (3840, 2160)]: squares, or WIDTHxHEIGHT."""
    sizes: list[int | tuple[int, int]] = []
    try:
        for value in text.replace(" ", "").lower().split(","):
            if "x" in value:
                width, height = value.split("x")
                sizes.append((int(width), int(height)))
            elif value:
                sizes.append(int(value))
    except ValueError:
        raise typer.BadParameter(f"expected sizes like 512,3840x2160; got {text!r}") from None
    return sizes


@user_errors
def bench(
    sizes: str = typer.Option("512", help="Content sizes in px: squares or WIDTHxHEIGHT, "
                              "e.g. 512,3840x2160."),
    batch: int = typer.Option(1, min=1, help="Contents per model call (stylenorm pipeline)."),
    images: int = typer.Option(8, min=1, help="Contents timed per pipeline and size."),
    style_size: int = typer.Option(512, min=16, help="Style side in px."),
    precision: PrecisionOpt = DEFAULT_PRECISION,
    device: DeviceOpt = Device.AUTO,
    model: ModelOpt = DEFAULT_MODEL,
    reference: bool = typer.Option(True, help="Also run the plain fp32 eager pipeline."),
    reference_model: str = typer.Option(
        "adain", help="AdaIN model of the plain pipeline when --model is the lite model."),
    threads: ThreadsOpt = 0,
) -> None:
    """Images/s, peak memory and GFLOP/s: stylenorm beside the plain reference pipeline."""
    from ..inference.bench import HEADER, BenchConfig, describe_machine, run_bench, speedups

    config = BenchConfig(parse_sizes(sizes), batch, images, style_size, precision.value,
                         device.value, model, reference, reference_model)
    from ..runtime import resolve_device

    set_threads(threads)
    say(f"processor: {describe_machine(resolve_device(device.value))}")
    say(HEADER)
    rows = run_bench(config, log=say)
    for line in speedups(rows):
        say(line)
    if any(not r.peak_exact for r in rows):
        say("* lifetime peak of the process (the per-pipeline peak is not readable here)")
