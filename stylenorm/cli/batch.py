"""``stylenorm batch`` and ``stylenorm bench``: Typer commands over :mod:`..inference.batch` and
:mod:`stylenorm.inference.bench` (registered on the main app by :mod:`stylenorm.cli.app`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

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
    with_options,
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


ContentDir = Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                             help="Folder of content images.")]
StyleDir = Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                           help="Folder of style images.")]
OutputDir = Annotated[Path, typer.Option("--output", "-o", file_okay=False,
                                         help="Output folder (created if needed).")]
Pairs = Annotated[Path, typer.Option(exists=True, dir_okay=False,
                                     help="File of 'content<TAB>style' or 'content,style' "
                                          "lines, instead of the two folders.")]
Recursive = Annotated[bool, typer.Option(help="Search the folders' sub-folders too.")]
Ext = Annotated[str, typer.Option(help="Output format: jpg, png, webp, ...")]
Overwrite = Annotated[bool, typer.Option(help="Redo outputs that already exist.")]
PreserveColor = Annotated[bool, typer.Option(
    help="Keep the content's colours (then each style is encoded per pair).")]
BatchSize = Annotated[int, typer.Option(
    min=0, help="Same-size contents per model call (0: 4 on GPUs, 1 on CPUs).")]
Workers = Annotated[int, typer.Option(
    min=1, help="Background threads reading/writing images.")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar with ETA.")]
Shard = Annotated[str, typer.Option(
    metavar="I/N", help="Make only part I of N (0 <= I < N) of the pairs, balanced by pixels: "
    "one task of a job array.")]


def batch_options(
    model: ModelOpt = DEFAULT_MODEL,
    alpha: AlphaOpt = 1.0,
    preserve_color: PreserveColor = False,
    size: SizeOpt = 512,
    style_size: StyleSizeOpt = 512,
    crop: CropOpt = False,
    tile: TileOpt = False,
    tile_size: TileSizeOpt = DEFAULT_TILE_SIZE,
    device: DeviceOpt = Device.AUTO,
    precision: PrecisionOpt = DEFAULT_PRECISION,
    batch_size: BatchSize = 0,
    workers: Workers = 2,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    max_whole_pixels: MaxWholePixelsOpt = MAX_WHOLE_PIXELS,
    threads: ThreadsOpt = 0,
    progress: Progress = True,
    shard: Shard = None,
) -> None:
    """The options of ``stylenorm batch`` after the folders, --pairs and how outputs are made."""


def start_ranks(options: dict):
    """This process's rank (torchrun's, or one alone) and its part of the pairs (--shard
    within the rank); the process group started when the ranks split the work."""
    from ..ranks import from_environment, parse_shard

    rank = from_environment()
    shard = options["shard"]
    part = rank.within(parse_shard(shard)) if shard is not None else rank
    if rank.is_split:
        from ..inference.shards import start_group

        start_group(rank)
    return rank, part


def batch_settings(options: dict, rank) -> dict:
    """:func:`~stylenorm.inference.batch.batch_stylize`'s settings among ``options``."""
    settings = {k: v for k, v in options.items() if k not in ("threads", "shard")}
    settings.update(device=options["device"].value, precision=options["precision"].value,
                    progress=options["progress"] and rank.is_main)
    return settings


def finish(report, rank) -> None:
    """The summary (all ranks' reports, printed by rank 0); exit code 1 if any output failed."""
    if rank.is_split:
        from ..inference.shards import gather_reports

        report = gather_reports(report)
    if rank.is_main:
        for line in report.summary_lines():
            say(line)
    if not report.ok:
        raise typer.Exit(1)


@user_errors
@with_options(batch_options)
def batch(
    content_dir: ContentDir = None,
    style_dir: StyleDir = None,
    output: OutputDir = ...,
    pairs: Pairs = None,
    recursive: Recursive = False,
    ext: Ext = "jpg",
    overwrite: Overwrite = False,
    **options,
) -> None:
    """Stylise every CONTENT_DIR image with every STYLE_DIR image (or the --pairs) into -o.

    Outputs are named <content>__<style>.<ext>; existing ones are skipped, so an interrupted run
    started again finishes only the rest. Unreadable files are reported and skipped; the exit
    code is 1 when any output failed. Under torchrun the ranks share the pairs and rank 0
    prints the summary of them all.
    """
    from ..inference.batch import batch_stylize

    set_threads(options["threads"])
    rank, part = start_ranks(options)
    report = batch_stylize(content_dir, style_dir, output, pairs=pairs, recursive=recursive,
                           ext=ext, overwrite=overwrite, log=log_line, part=part,
                           **batch_settings(options, rank))
    finish(report, rank)


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
