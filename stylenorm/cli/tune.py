"""``stylenorm tune``: a lite model fine-tuned on one style, installed under a name. Its
options after the style, the photos and the name are one group (:func:`tune_options`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import Device, LrSchedule, Precision
from .errors import say, user_errors
from .options import DeviceOpt, PrecisionOpt, ThreadsOpt, with_options

Style = Annotated[Path, typer.Argument(help="The style image to tune for.")]
Photos = Annotated[Path, typer.Option(
    help="Folder of your own photos (or video frames) to tune on; searched recursively.")]
Name = Annotated[str, typer.Option(
    help="Install the tuned model under this name (--model NAME then uses it).")]
Teacher = Annotated[str, typer.Option(
    help="The installed AdaIN model whose rendering of the style is the target.")]
Init = Annotated[str, typer.Option(
    help="The lite model to start from: an installed name or a file.")]
Minutes = Annotated[float, typer.Option(min=0.05, help="Time to tune for.")]
Steps = Annotated[int, typer.Option(
    min=0, help="Stop after this many steps if the time is not up first (0: no limit).")]
BatchSize = Annotated[int, typer.Option(min=1, help="Photo crops per step.")]
Size = Annotated[int, typer.Option(
    min=16, help="Photos' shorter side (px) for tuning and its check: the size you will "
    "stylise at.")]
StyleSize = Annotated[int, typer.Option(
    min=16, help="The style's shorter side (px), as you will stylise with it.")]
CropSize = Annotated[int, typer.Option(
    min=16, help="Side of the square photo crops each step trains on.")]
Lr = Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")]
Schedule = Annotated[LrSchedule, typer.Option(
    help="The learning rate over the time: constant, or falling from --lr to nothing (cosine).")]
AdainWeight = Annotated[float, typer.Option(
    min=0.0, help="Weight of the content loss to the AdaIN target (more keeps more of "
    "the photo; less, more of the teacher's texture).")]
StyleWeight = Annotated[float, typer.Option(
    min=0.0, help="Weight of the style-statistics loss at the start.")]
StyleTarget = Annotated[float, typer.Option(
    min=0.0, help="The style loss to aim at, as a multiple of the teacher's: each minute's "
    "check scales the style weight by (style ratio / target), so the rest of the time goes to "
    "the content (0: the weight stays fixed).")]
ValCount = Annotated[int, typer.Option(
    min=1, help="Photos held out to check the model each minute and steer the style weight "
    "(when the folder has at least three times as many; else checked on training photos).")]
Ema = Annotated[float, typer.Option(
    min=0.0, max=0.9999, help="Decay of the moving average of the weights that are checked "
    "and installed (0: the last step's weights).")]
Overwrite = Annotated[bool, typer.Option(help="Replace an installed model of the same name.")]
Seed = Annotated[int, typer.Option(help="Seed of the crops and the initial state.")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]


def tune_options(
    teacher: Teacher = "adain",
    init: Init = "lite",
    minutes: Minutes = 10.0,
    steps: Steps = 0,
    batch_size: BatchSize = 4,
    size: Size = 512,
    style_size: StyleSize = 512,
    crop_size: CropSize = 256,
    lr: Lr = 3e-4,
    lr_schedule: Schedule = LrSchedule.CONSTANT,
    adain_weight: AdainWeight = 3.0,
    style_weight: StyleWeight = 5.0,
    style_target: StyleTarget = 0.95,
    val_count: ValCount = 2,
    ema: Ema = 0.98,
    overwrite: Overwrite = False,
    seed: Seed = 0,
    device: DeviceOpt = Device.AUTO,
    precision: PrecisionOpt = Precision.AUTO,
    threads: ThreadsOpt = 0,
    progress: Progress = True,
) -> None:
    """The options of ``stylenorm tune`` after STYLE, --content and --name."""


def tune_config(style: Path, content: Path, name: str, options: dict):
    """The :class:`~stylenorm.training.tune_inputs.TuneConfig` of a command line."""
    from ..training.tune import TuneConfig

    fields = {k: v for k, v in options.items() if k not in ("size", "threads", "progress")}
    fields.update(device=options["device"].value, precision=options["precision"].value,
                  lr_schedule=options["lr_schedule"].value)
    return TuneConfig(style=str(style), content=str(content), name=name,
                      content_size=options["size"], **fields)


def report(result, name: str, style: Path) -> None:
    """What was installed, how long it took, its figures before and after, and how to use it."""
    figures, before = result.figures, result.first_figures
    how = "stopped early, " if result.stopped else ""
    say(f"installed {name} ({result.path}): {how}{result.iterations} steps in "
        f"{result.seconds / 60:.1f} min; on held-out photos style {before['style_ratio']:.2f}x"
        f" -> {figures['style_ratio']:.2f}x and content {before['content_ratio']:.2f}x -> "
        f"{figures['content_ratio']:.2f}x the teacher's")
    say(f"use it: stylenorm stylize PHOTO {style} --model {name}")


@user_errors
@with_options(tune_options)
def tune(style: Style, content: Photos, name: Name, **options) -> None:
    """Tune a lite model on one style image over your photos for a few minutes, and install
    it: the teacher's look for that style at lite speed. The model still takes any style."""
    import torch

    from ..training.tune import tune as run_tune

    if options["threads"]:
        torch.set_num_threads(options["threads"])
    result = run_tune(tune_config(style, content, name, options), progress=options["progress"],
                      note=lambda line: say(line, err=True))
    report(result, name, style)
    if result.stopped:
        raise typer.Exit(130)
