"""``stylenorm tune``: a lite model fine-tuned on one style, installed under a name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import Device, Precision
from .errors import say, user_errors
from .options import DeviceOpt, PrecisionOpt, ThreadsOpt


@user_errors
def tune(
    style: Annotated[Path, typer.Argument(help="The style image to tune for.")],
    content: Annotated[Path, typer.Option(
        help="Folder of your own photos (or video frames) to tune on; searched recursively.")],
    name: Annotated[str, typer.Option(
        help="Install the tuned model under this name (--model NAME then uses it).")],
    teacher: Annotated[str, typer.Option(
        help="The installed AdaIN model whose rendering of the style is the target.")
    ] = "adain",
    init: Annotated[str, typer.Option(
        help="The lite model to start from: an installed name or a file.")] = "lite",
    minutes: Annotated[float, typer.Option(min=0.05, help="Time to tune for.")] = 10.0,
    steps: Annotated[int, typer.Option(
        min=0, help="Stop after this many steps if the time is not up first (0: no limit).")
    ] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Photo crops per step.")] = 4,
    size: Annotated[int, typer.Option(
        min=16, help="Photos' shorter side (px) for tuning and its check: the size you will "
        "stylise at.")] = 512,
    style_size: Annotated[int, typer.Option(
        min=16, help="The style's shorter side (px), as you will stylise with it.")] = 512,
    crop_size: Annotated[int, typer.Option(
        min=16, help="Side of the square photo crops each step trains on.")] = 256,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")] = 1e-4,
    adain_weight: Annotated[float, typer.Option(
        min=0.0, help="Weight of the content loss to the AdaIN target (more keeps more of "
        "the photo; less, more of the teacher's texture).")] = 3.0,
    style_weight: Annotated[float, typer.Option(
        min=0.0, help="Weight of the style-statistics loss.")] = 5.0,
    overwrite: Annotated[bool, typer.Option(
        help="Replace an installed model of the same name.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the crops and the initial state.")] = 0,
    device: DeviceOpt = Device.AUTO,
    precision: PrecisionOpt = Precision.AUTO,
    threads: ThreadsOpt = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Tune a lite model on one style image over your photos for a few minutes, and install
    it: the teacher's look for that style at lite speed. The model still takes any style."""
    import torch

    from ..training.tune import TuneConfig
    from ..training.tune import tune as run_tune

    if threads:
        torch.set_num_threads(threads)
    config = TuneConfig(style=str(style), content=str(content), name=name, teacher=teacher,
                        init=init, minutes=minutes, steps=steps, batch_size=batch_size,
                        content_size=size, style_size=style_size, crop_size=crop_size, lr=lr,
                        adain_weight=adain_weight, style_weight=style_weight,
                        overwrite=overwrite, seed=seed, device=device.value,
                        precision=precision.value)
    result = run_tune(config, progress=progress)
    figures, before = result.figures, result.first_figures
    how = "stopped early, " if result.stopped else ""
    say(f"installed {name} ({result.path}): {how}{result.iterations} steps in "
        f"{result.seconds / 60:.1f} min; on held-out photos style {before['style_ratio']:.2f}x"
        f" -> {figures['style_ratio']:.2f}x and content {before['content_ratio']:.2f}x -> "
        f"{figures['content_ratio']:.2f}x the teacher's")
    say(f"use it: stylenorm stylize PHOTO {style} --model {name}")
    if result.stopped:
        raise typer.Exit(130)
