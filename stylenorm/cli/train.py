"""``stylenorm train``: the Typer commands over :mod:`stylenorm.training.adain`,
:mod:`stylenorm.training.lite` (its ``distill`` part, :mod:`stylenorm.training.distill`, under
``--teacher``) and :mod:`stylenorm.training.cin` (loaded by :mod:`stylenorm.cli.lazy` when a
command line names ``train``)."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Annotated

import typer
from tqdm.auto import tqdm

from ..choices import DEFAULT_PRECISION, Device
from ..nn.norms import NormName
from ..training.adain import StyleLoss
from ..training.config import Schedule
from ..training.data import DataMode
from .errors import say, user_errors
from .helptext import TRAIN_HELP
from .options import DeviceOpt, PrecisionOpt, ThreadsOpt, WidthsOpt, parse_widths

train_app = typer.Typer(help=TRAIN_HELP,
                        no_args_is_help=True)

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


class TqdmHandler(logging.Handler):
    """Log lines printed above the progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=None)


def setup(threads: int) -> None:
    """Log lines above the progress bar; ``threads`` CPU threads when given."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    logger = logging.getLogger("stylenorm")
    if not any(isinstance(h, TqdmHandler) for h in logger.handlers):
        logger.addHandler(TqdmHandler())


def _loop_options(
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
    """The options every ``train`` command shares (see :func:`with_options`)."""


def with_options(*groups):
    """Append the parameters of the option ``groups`` (functions such as :func:`_loop_options`)
    to a command's signature, which Typer reads; the command receives them in ``**options``
    (:func:`values_of` picks one group's)."""

    def decorate(command):
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values()
               if p.kind is not p.VAR_KEYWORD]
        shared = [p for group in groups
                  for p in inspect.signature(group, eval_str=True).parameters.values()]
        command.__signature__ = inspect.Signature([*own, *shared])
        return command

    return decorate


def values_of(group, options: dict) -> dict:
    """The values of ``group``'s options among a command's ``options``."""
    return {name: options[name] for name in inspect.signature(group).parameters}


def loop_config(options: dict) -> dict:
    """The TrainConfig fields among the shared options."""
    loop = values_of(_loop_options, options)
    values = {k: v for k, v in loop.items() if k not in ("resume", "threads", "progress")}
    for name in ("schedule", "precision", "device"):
        values[name] = values[name].value
    values["data_mode"] = values.pop("data").value
    values["num_workers"] = values.pop("workers")
    for name in ("val_content", "val_style"):
        values[name] = str(values[name] or "")
    return values


def run_options(options: dict) -> dict:
    """Set up logging and threads; the keyword arguments of the train function."""
    setup(options["threads"])
    return {"resume": options["resume"], "progress": options["progress"]}


def echo_result(result) -> None:
    """The run's outcome, printed once (by rank 0 under torchrun)."""
    from ..ranks import from_environment

    if not from_environment().is_main:
        return
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
    say(f"wrote {result.model_path} ({result.iterations} iterations, "
        f"{result.wall_time_s:.0f} s; final losses: {losses})")
    if result.report:
        typer.echo(result.report)  # several lines of figures


@train_app.command("adain")
@user_errors
@with_options(_loop_options)
def adain(
    context: typer.Context,
    content: Folder,
    style: Folder,
    out: Out = Path("runs/adain"),
    encoder: Annotated[str, typer.Option(
        help="VGG encoder: an installed name or a .safetensors path.")] = "vgg19-normalised",
    norm: Annotated[NormName, typer.Option(help="Norm layer of the decoder.")] = NormName.NONE,
    style_loss: Annotated[StyleLoss, typer.Option(
        help="mean-std (AdaIN) or gram style loss.")] = StyleLoss.MEAN_STD,
    content_weight: ContentWeight = 1.0,
    style_weight: StyleWeight = 10.0,
    mix_lr_scale: Annotated[float, typer.Option(
        min=0.0, help="Switchable norm: the mixture weights learn at lr times this.")] = 1.0,
    init: Annotated[Path, typer.Option(
        exists=True, dir_okay=False, help="Start from this AdaIN decoder.")] = None,
    iterations: Iterations = 160_000,
    lr: Lr = 1e-4,
    lr_decay: LrDecay = 5e-5,
    **options,
) -> None:
    """Train an AdaIN decoder on CONTENT and STYLE folders; writes OUT/model.safetensors."""
    from ..training.adain import AdaINTrainConfig, train_adain

    run = run_options(options)
    arch = from_init(context, init, "adain", {"norm": norm.value})
    config = AdaINTrainConfig(
        content=str(content), style=str(style), out=str(out), encoder=encoder, norm=arch["norm"],
        style_loss=style_loss.value, content_weight=content_weight, style_weight=style_weight,
        mix_lr_scale=mix_lr_scale, iterations=iterations, lr=lr, lr_decay=lr_decay,
        **loop_config(options),
    )
    echo_result(train_adain(config, **run, init=str(init) if init else None))


StyleMlp = Annotated[int, typer.Option(
    min=0, help="Hidden units of an MLP from the whole style code to a FiLM on each decoder "
    "residual block (0: none). --init from a model without it grows one.")]
StyleDeep = Annotated[int, typer.Option(
    min=0, help="Channels of a 1/8-resolution level of the style encoder, read by the "
    "--style-mlp FiLM (0: none). --init from a model without it grows one.")]
TeacherStyleSide = Annotated[int, typer.Option(
    min=320, help="With --teacher: styles enter the cache at their own shorter side up to this "
    "many px (smaller ones at 320), cropped at that scale: the texture of large paintings as a "
    "user's style image shows it.")]


def _distill_options(
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


@train_app.command("lite")
@user_errors
@with_options(_distill_options, _loop_options)
def lite(
    context: typer.Context,
    content: Folder,
    style: Folder,
    out: Out = Path("runs/lite"),
    encoder: LossNetwork = "vgg19-normalised",
    widths: WidthsOpt = "16,32,64",
    res_blocks: Annotated[int, typer.Option(min=1, help="Residual blocks per bottleneck.")] = 2,
    style_mlp: StyleMlp = 0,
    style_deep: StyleDeep = 0,
    content_weight: Annotated[float, typer.Option(
        help="Content loss weight (without --teacher; with it, see --adain-weight).")] = 1.0,
    style_weight: StyleWeight = 10.0,
    identity_weight: Annotated[float, typer.Option(
        help="Weight of reconstructing a content from its own code.")] = 5.0,
    augment: Annotated[bool, typer.Option(help="Flip, turn and recolour styles.")] = True,
    init: Annotated[Path, typer.Option(
        exists=True, dir_okay=False, help="Start from this lite model; --widths, --res-blocks, "
        "--style-mlp and --style-deep not given are read from it.")] = None,
    iterations: Iterations = 160_000,
    lr: Lr = 5e-4,
    lr_decay: LrDecay = 1e-4,
    **options,
) -> None:
    """Train the VGG-free lite model (VGG is only its loss), or distil an AdaIN teacher into it
    (--teacher); writes OUT/model.safetensors."""
    run = run_options(options)
    arch = from_init(context, init, "lite", {"widths": parse_widths(widths),
                                             "res_blocks": res_blocks, "style_mlp": style_mlp,
                                             "style_deep": style_deep}, grow=True)
    fields = dict(content=str(content), style=str(style), out=str(out), encoder=encoder, **arch,
                  content_weight=content_weight, style_weight=style_weight,
                  identity_weight=identity_weight, augment=augment, iterations=iterations,
                  lr=lr, lr_decay=lr_decay, **loop_config(options))
    from ..training.lite import LiteTrainConfig, train_lite

    config = LiteTrainConfig(**fields, distill=distill_settings(
        context, values_of(_distill_options, options)))
    echo_result(train_lite(config, **run, init=str(init) if init else None))


def distill_settings(context: typer.Context, distill: dict):
    """The ``distill`` part of ``train lite``'s config from the values of
    :func:`_distill_options`: None without ``--teacher`` (whose options are then refused)."""
    if distill["teacher"] is None:
        refuse_without_teacher(context, TEACHER_ONLY,
                               "distillation options; they need --teacher NAME|FILE")
        return None
    from ..training.distill import DistillSettings

    return DistillSettings(
        teacher=distill["teacher"], cache=str(distill["cache"] or ""),
        cache_pairs=distill["cache_pairs"], pixel_weight=distill["pixel_weight"],
        add_caches=tuple(str(f) for f in distill["add_cache"] or ()),
        style_side=distill["style_side"], val_texture=str(distill["val_texture"] or ""),
        feature_weight=distill["feature_weight"], feature_layer=distill["feature_layer"],
        code_weight=distill["code_weight"], adain_weight=distill["adain_weight"],
        style_layers=tuple(v.strip() for v in distill["style_layers"].split(",")))


TEACHER_ONLY = ("cache", "cache_pairs", "add_cache", "style_side", "val_texture", "pixel_weight",
                "feature_weight", "feature_layer", "style_layers", "code_weight", "adain_weight")


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


def from_init(context: typer.Context, init: Path | None, kind: str, asked: dict,
              grow: bool = False) -> dict:
    """The architecture settings ``asked``, those not on the command line read from the
    ``--init`` file (one error line if one given differs from it)."""
    if init is None:
        return asked
    from ..training.warm_start import init_architecture

    return init_architecture(str(init), kind, asked, given(context, asked), grow)


@train_app.command("cin")
@user_errors
@with_options(_loop_options)
def cin(
    context: typer.Context,
    content: Folder,
    styles: Annotated[Path, typer.Option(
        exists=True, file_okay=False, help="Folder of style images: each image is one style "
        "(sorted by file name).")],
    extend: Annotated[Path, typer.Option(
        exists=True, dir_okay=False, help="A trained CIN model: add the --styles to it, "
        "training only their new gamma/beta rows.")] = None,
    out: Out = Path("runs/cin"),
    encoder: LossNetwork = "vgg19-normalised",
    widths: WidthsOpt = "32,64,128",
    res_blocks: Annotated[int, typer.Option(min=1, help="Residual blocks.")] = 5,
    style_size: Annotated[int, typer.Option(
        min=16, help="Style images' shorter side in px for their Gram matrices (and, with "
        "--teacher, the teacher's style codes).")] = 512,
    content_layer: Annotated[str, typer.Option(
        help="VGG layer of the content loss (relu1_1 .. relu4_1).")] = "relu3_1",
    content_weight: ContentWeight = 1.0,
    style_weight: Annotated[float, typer.Option(help="Gram style loss weight.")] = 1e4,
    tv_weight: Annotated[float, typer.Option(help="Total-variation weight (0: off).")] = 0.0,
    teacher: Annotated[str, typer.Option(
        help="An installed AdaIN model (name or file) whose stylisations the network learns: "
        "content target and an L1 term (see --pixel-weight).")] = "",
    pixel_weight: Annotated[float, typer.Option(
        help="With --teacher: weight of the L1 to the teacher's output.")] = 10.0,
    init: Annotated[Path, typer.Option(
        exists=True, dir_okay=False, help="Start from this CIN model (same styles); --widths "
        "and --res-blocks not given are read from it.")] = None,
    iterations: Iterations = 40_000,
    lr: Lr = 1e-3,
    lr_decay: LrDecay = 5e-5,
    **options,
) -> None:
    """Train a multi-style CIN network (one style per image in STYLES), or --extend one."""
    from ..training.cin import CINTrainConfig, train_cin

    run = run_options(options)
    if not teacher:
        refuse_without_teacher(context, ("pixel_weight",), "the weight of the L1 to a "
                               "teacher's output; it needs --teacher NAME|FILE")
    arch = from_init(context, init, "cin", {"widths": parse_widths(widths),
                                            "res_blocks": res_blocks})
    config = CINTrainConfig(
        content=str(content), styles=str(styles), extend=str(extend) if extend else "",
        out=str(out), encoder=encoder, **arch,
        style_size=style_size, content_layer=content_layer, content_weight=content_weight,
        style_weight=style_weight, tv_weight=tv_weight, teacher=teacher,
        pixel_weight=pixel_weight, iterations=iterations, lr=lr, lr_decay=lr_decay,
        **loop_config(options),
    )
    echo_result(train_cin(config, **run, init=str(init) if init else None))
