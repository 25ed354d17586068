"""Options that several commands share (``stylize``, ``batch``, ``bench``, ``video``), declared
once: each command gives its own default."""

from __future__ import annotations

from typing import Annotated

import typer

from ..choices import Device

THREADS_HELP = ("CPU threads (0: one per core). On a machine where another job holds a core, "
                "1 is several times faster than 2.")

PRECISION_HELP = ("Arithmetic precision; auto = bf16 on CPUs where it is faster, fp16 on "
                  "GPUs (an overflow is computed again in fp32).")

ModelOpt = Annotated[str, typer.Option(help="Installed model name or a .safetensors path.")]
AlphaOpt = Annotated[float, typer.Option(min=0.0, max=1.0, help="Style strength, 0..1.")]
StyleWeightsOpt = Annotated[str, typer.Option(help="Mix several styles, e.g. 0.7,0.3.")]
StyleIndexOpt = Annotated[int, typer.Option(min=0, help="CIN models: which of their styles.")]
StyleSizeOpt = Annotated[int, typer.Option(
    help="Style shorter side in px (0 keeps the original).")]
TileSizeOpt = Annotated[int, typer.Option(help="Tile side in px (multiple of 8).")]
MaxWholePixelsOpt = Annotated[int, typer.Option(min=1, help="The most pixels the model runs in "
                                                "one piece (a style, a tile, a CIN content).")]
DeviceOpt = Annotated[Device, typer.Option(help="Where to run.")]
ThreadsOpt = Annotated[int, typer.Option(min=0, help=THREADS_HELP)]
