"""The options of ``stylenorm train``: one typed alias per option its commands share, and the
groups of options several take, each declared once: the loop's (every command), distillation's
(``train lite --teacher``) and the CIN teacher's (``train cin --teacher``). A group is a
function whose parameters :func:`.options.with_options` appends to a command's signature; the
command reads their values back with :func:`.options.values_of`. Options that need
``--teacher`` are refused without it (:func:`refuse_without_teacher`), not ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import DEFAULT_PRECISION, Device
from ..training.config import Schedule
from ..training.data import DataMode
from .options import DeviceOpt, PrecisionOpt, ThreadsOpt, comma_list, values_of

Folder = Annotated[Path, typer.Option(exists=True, file_okay=False, dir_okay=True,
                                      help="Folder of images (searched recursively).")]
Iterations = Annotated[int, typer.Option(min=1, help="Training iterations (batches).")]
BatchSize = Annotated[int, typer.Option(min=1, help="Images per batch.")]
CropSize = Annotated[int, typer.Option(min=16, help="Random-resized-crop size in px.")]
Lr = Annotated[float, typer.Option(help="Adam learning rate.")]
LrDecay = Annotated[float, typer.Option(help="Inverse-time decay: lr / (1 + decay * iter).")]
ScheduleOpt = Annotated[Schedule, typer.Option(help="Learning-rate schedule.")]
CheckpointEvery = Annotated[int, typer.Option(min=1, help="Checkpoint every N iterations.")]
SampleEvery = Annotated[int, typer.Option(min=0, help="Sample grid every N iterations (0: off).")]
LogEvery = Annotated[int, typer.Option(min=1, help="Log the losses every N iterations.")]
Out = Annotated[Path, typer.Option(help="Run folder: checkpoint, log, samples, final model.")]
Resume = Annotated[bool, typer.Option(help="Continue the run in --out from its checkpoint.")]
Seed = Annotated[int, typer.Option(help="Seed for initialisation and data sampling.")]
ChannelsLast = Annotated[bool, typer.Option(help="Channels-last memory format.")]
Compile = Annotated[bool, typer.Option(help="torch.compile the trained network.")]
Data = Annotated[DataMode, typer.Option(
    "--data", help="stream: decode in workers; memory: keep images on the device.")]
Workers = Annotated[int, typer.Option(min=0, help="DataLoader workers (default: min(2, CPUs)).")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]
ValFolder = Annotated[Path, typer.Option(
    exists=True, file_okay=False, help="Held-out images for validation losses (with --val-every).")]
ValEvery = Annotated[int, typer.Option(
    min=0, help="Losses on the held-out pairs every N iterations (0: off).")]
ValCount = Annotated[int, typer.Option(min=1, help="Held-out pairs (content i with style i).")]
LossNetwork = Annotated[str, typer.Option(
    help="VGG loss network: an installed name or a .safetensors path.")]
ContentWeight = Annotated[float, typer.Option(help="Content loss weight.")]
StyleWeight = Annotated[float, typer.Option(help="Style loss weight.")]


def loop_options(
    batch_size: BatchSize = 8,
    crop_size: CropSize = 256,
    schedule: ScheduleOpt = Schedule.INVERSE_TIME,
    checkpoint_every: CheckpointEvery = 1000,
    sample_every: SampleEvery = 1000,
    log_every: LogEvery = 10,
    resume: Resume = False,
    seed: Seed = 0,
    precision: PrecisionOpt = DEFAULT_PRECISION,
    device: DeviceOpt = Device.AUTO,
    channels_last: ChannelsLast = True,
    compile: Compile = False,
    data: Data = DataMode.AUTO,
    workers: Workers = None,
    val_content: ValFolder = None,
    val_style: ValFolder = None,
    val_every: ValEvery = 0,
    val_count: ValCount = 8,
    ema: Annotated[float, typer.Option(
        min=0.0, max=0.9999, help="Keep an exponential moving average of the weights with this "
        "decay (e.g. 0.999); validation, samples and the model use it (0: off).")] = 0.0,
    time_limit: Annotated[float, typer.Option(
        min=0.0, help="Minutes of training, then finish as if --iterations were reached: "
        "checkpoint and model (0: no limit; e.g. a leased GPU).")] = 0.0,
    threads: ThreadsOpt = 0,
    progress: Progress = True,
) -> None:
    """The options every ``train`` command shares (see :func:`.options.with_options`)."""


def loop_config(options: dict) -> dict:
    """The TrainConfig fields among the shared options."""
    loop = values_of(loop_options, options)
    values = {k: v for k, v in loop.items() if k not in ("resume", "threads", "progress")}
    for name in ("schedule", "precision", "device"):
        values[name] = values[name].value
    values["data_mode"] = values.pop("data").value
    values["num_workers"] = values.pop("workers")
    for name in ("val_content", "val_style"):
        values[name] = str(values[name] or "")
    return values


TeacherStyleSide = Annotated[int, typer.Option(
    min=320, help="With --teacher: styles enter the cache at their own shorter side up to this "
    "many px (smaller ones at 320), cropped at that scale: the texture of large paintings as a "
    "user's style image shows it.")]

TeacherStyleJitter = Annotated[bool, typer.Option(
    help="With --teacher: each cached style crop is mirrored, turned by quarter turns and "
    "mostly recoloured (hue, saturation, contrast, sometimes grey) before the teacher stylises "
    "it: more styles from the same images.")]


def distill_options(
    teacher: Annotated[str, typer.Option(
        help="Distil this installed AdaIN model (name or .safetensors file): its outputs on "
        "cached crops become the targets.")] = None,
    cache: Annotated[Path, typer.Option(
        help="Teacher-output cache folder, reusable across runs [default: OUT/teacher-cache].")
    ] = None,
    cache_pairs: Annotated[int, typer.Option(
        min=0, help="(content, style) crops the teacher stylises once, with --teacher; 0: no "
        "cache, the teacher runs on every batch (for a GPU).")] = 2000,
    add_cache: Annotated[list[Path], typer.Option(
        help="With --teacher: a further teacher cache, already built (other images, styles "
        "or seed; the same teacher, crop size and loss network), drawn from together with "
        "--cache. Repeat for more.")] = None,
    style_side: TeacherStyleSide = 320,
    style_jitter: TeacherStyleJitter = False,
    val_texture: Annotated[Path, typer.Option(
        help="With --teacher: a folder of further held-out styles (e.g. large paintings of "
        "fine texture and line), read at --style-side; validation reports every held-out "
        "style's student/teacher style-loss ratio and names the highest.")] = None,
    pixel_weight: Annotated[float, typer.Option(
        help="With --teacher: weight of the L1 distance to the teacher's output.")] = 10.0,
    feature_weight: Annotated[float, typer.Option(
        help="With --teacher: weight of the VGG feature distance to the teacher's output.")
    ] = 1.0,
    feature_layer: Annotated[str, typer.Option(
        help="With --teacher: VGG layer of that feature distance.")] = "relu2_1",
    style_layers: Annotated[str, typer.Option(
        help="With --teacher: VGG layers whose statistics must match the style's.")
    ] = "relu1_1,relu2_1",
    code_weight: Annotated[float, typer.Option(
        min=0.0, help="With --teacher: weight of a linear probe that reads the style's VGG "
        "statistics (at --style-layers) from the style code (training only).")] = 0.0,
    adain_weight: Annotated[float, typer.Option(
        min=0.0, help="With --teacher: weight of the content loss to the AdaIN target at "
        "relu4_1 (the teacher's own objective; 0: off). --content-weight applies without "
        "--teacher only.")] = 0.0,
) -> None:
    """The options of distillation, ``train lite --teacher`` (see :func:`distill_settings`)."""


def distill_settings(context: typer.Context, distill: dict):
    """The ``distill`` part of ``train lite``'s config from the values of
    :func:`distill_options`: None without ``--teacher`` (whose options are then refused)."""
    if distill["teacher"] is None:
        refuse_without_teacher(context, TEACHER_ONLY,
                               "distillation options; they need --teacher NAME|FILE")
        return None
    from ..training.distill import DistillSettings

    return DistillSettings(
        teacher=distill["teacher"], cache=str(distill["cache"] or ""),
        cache_pairs=distill["cache_pairs"], pixel_weight=distill["pixel_weight"],
        add_caches=tuple(str(f) for f in distill["add_cache"] or ()),
        style_side=distill["style_side"], style_jitter=distill["style_jitter"],
        val_texture=str(distill["val_texture"] or ""),
        feature_weight=distill["feature_weight"], feature_layer=distill["feature_layer"],
        code_weight=distill["code_weight"], adain_weight=distill["adain_weight"],
        style_layers=comma_list(distill["style_layers"]))


TEACHER_ONLY = ("cache", "cache_pairs", "add_cache", "style_side", "style_jitter", "val_texture",
                "pixel_weight", "feature_weight", "feature_layer", "style_layers", "code_weight",
                "adain_weight")


def given(context: typer.Context, names) -> list[str]:
    """Those of ``names`` (parameter names) given on the command line, not left at defaults."""
    return [name for name in names
            if getattr(context.get_parameter_source(name), "name", "") == "COMMANDLINE"]


def refuse_without_teacher(context: typer.Context, names, why: str) -> None:
    """One error line (the options, then ``why``) if an option of ``names`` that needs
    ``--teacher`` was given without it, rather than training without it."""
    from ..errors import StylenormError

    options = ", ".join("--" + name.replace("_", "-") for name in given(context, names))
    if options:
        raise StylenormError(f"{options}: {why}")


def cin_teacher_options(
    teacher: Annotated[str, typer.Option(
        help="An installed AdaIN model (name or file) whose stylisations the network learns: "
        "content target and an L1 term (see --pixel-weight).")] = "",
    pixel_weight: Annotated[float, typer.Option(
        help="With --teacher: weight of the L1 to the teacher's output.")] = 10.0,
) -> None:
    """The options of ``train cin --teacher`` (see :func:`cin_teacher_settings`)."""


def cin_teacher_settings(context: typer.Context, values: dict) -> dict:
    """``train cin``'s ``teacher`` and ``pixel_weight`` from the values of
    :func:`cin_teacher_options`; ``--pixel-weight`` without ``--teacher`` is refused."""
    if not values["teacher"]:
        refuse_without_teacher(context, ("pixel_weight",), "the weight of the L1 to a "
                               "teacher's output; it needs --teacher NAME|FILE")
    return values
