"""``stylenorm train``: the Typer commands over :mod:`stylenorm.training.adain`,
:mod:`stylenorm.training.lite` (its ``distill`` part, :mod:`stylenorm.training.distill`, under
``--teacher``) and :mod:`stylenorm.training.cin` (loaded by :mod:`stylenorm.cli.lazy` when a
command line names ``train``). Their shared options and option groups:
:mod:`stylenorm.cli.train_options`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from tqdm.auto import tqdm

from ..nn.norms import NormName
from ..training.adain import StyleLoss
from .errors import say, user_errors
from .helptext import TRAIN_HELP
from .options import WidthsOpt, comma_list, name_weights, parse_widths, values_of, with_options
from .train_options import (
    ContentWeight,
    Folder,
    Iterations,
    LossNetwork,
    Lr,
    LrDecay,
    Out,
    StyleWeight,
    cin_teacher_options,
    cin_teacher_settings,
    distill_options,
    distill_settings,
    given,
    loop_config,
    loop_options,
)

train_app = typer.Typer(help=TRAIN_HELP,
                        no_args_is_help=True)


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


def from_init(context: typer.Context, init: Path | None, kind: str, asked: dict,
              grow: bool = False) -> dict:
    """The architecture settings ``asked``, those not on the command line read from the
    ``--init`` file (one error line if one given differs from it)."""
    if init is None:
        return asked
    from ..training.warm_start import init_architecture

    return init_architecture(str(init), kind, asked, given(context, asked), grow)


@train_app.command("adain")
@user_errors
@with_options(loop_options)
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
HalfBlocks = Annotated[int, typer.Option(
    min=0, help="Residual blocks at the decoder's 1/2 resolution, FiLM'd by --style-mlp (0: "
    "none). --init from a model with fewer grows new ones that start as the identity.")]


@train_app.command("lite")
@user_errors
@with_options(distill_options, loop_options)
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
    half_blocks: HalfBlocks = 0,
    content_weight: Annotated[float, typer.Option(
        help="Content loss weight (without --teacher; with it, see --adain-weight).")] = 1.0,
    style_weight: StyleWeight = 10.0,
    identity_weight: Annotated[float, typer.Option(
        help="Weight of reconstructing a content from its own code.")] = 5.0,
    augment: Annotated[bool, typer.Option(help="Flip, turn and recolour styles.")] = True,
    init: Annotated[Path, typer.Option(
        exists=True, dir_okay=False, help="Start from this lite model; --widths, --res-blocks, "
        "--style-mlp, --style-deep and --half-blocks not given are read from it.")] = None,
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
                                             "style_deep": style_deep,
                                             "half_blocks": half_blocks}, grow=True)
    fields = dict(content=str(content), style=str(style), out=str(out), encoder=encoder, **arch,
                  content_weight=content_weight, style_weight=style_weight,
                  identity_weight=identity_weight, augment=augment, iterations=iterations,
                  lr=lr, lr_decay=lr_decay, **loop_config(options))
    from ..training.lite import LiteTrainConfig, train_lite

    config = LiteTrainConfig(**fields, distill=distill_settings(
        context, values_of(distill_options, options)))
    echo_result(train_lite(config, **run, init=str(init) if init else None))


StyleImages = Annotated[Path, typer.Option(
    exists=True, file_okay=False, help="Folder of style images: each image is one style "
    "(sorted by file name).")]
Extend = Annotated[Path, typer.Option(
    exists=True, dir_okay=False, help="A trained CIN model: add the --styles to it, training "
    "only their new gamma/beta rows.")]
Refine = Annotated[str, typer.Option(
    help="Style names (comma-separated): train only these styles' gamma/beta rows of the "
    "--init model, on these styles alone; the others stay bit-identical.")]
Favour = Annotated[str, typer.Option(
    help="Draw these styles more often, every style still training: NAME=WEIGHT entries "
    "(comma-separated; a style not named has weight 1), e.g. mosaic=3,candy=2.")]
StyleSize = Annotated[int, typer.Option(
    min=16, help="Style images' shorter side in px for their Gram matrices (and, with "
    "--teacher, the teacher's style codes).")]
ContentLayer = Annotated[str, typer.Option(
    help="VGG layer of the content loss (relu1_1 .. relu4_1).")]
GramWeight = Annotated[float, typer.Option(
    help="Style loss weight (of the order of 1e4 for --style-loss gram, 1-10 for meanstd).")]
CINStyleLoss = Annotated[str, typer.Option(
    help="gram (Gram matrices) or meanstd (AdaIN's channel means and stds, the distance the "
    "quality reports measure).")]
TvWeight = Annotated[float, typer.Option(help="Total-variation weight (0: off).")]
CINInit = Annotated[Path, typer.Option(
    exists=True, dir_okay=False, help="Start from this CIN model (same styles); --widths and "
    "--res-blocks not given are read from it. A larger --res-blocks grows it: the new blocks "
    "start as the identity.")]


@train_app.command("cin")
@user_errors
@with_options(cin_teacher_options, loop_options)
def cin(
    context: typer.Context,
    content: Folder,
    styles: StyleImages,
    extend: Extend = None,
    refine: Refine = "",
    favour: Favour = "",
    out: Out = Path("runs/cin"),
    encoder: LossNetwork = "vgg19-normalised",
    widths: WidthsOpt = "32,64,128",
    res_blocks: Annotated[int, typer.Option(min=1, help="Residual blocks.")] = 5,
    style_size: StyleSize = 512,
    content_layer: ContentLayer = "relu3_1",
    content_weight: ContentWeight = 1.0,
    style_weight: GramWeight = 1e4,
    style_loss: CINStyleLoss = "gram",
    tv_weight: TvWeight = 0.0,
    init: CINInit = None,
    iterations: Iterations = 40_000,
    lr: Lr = 1e-3,
    lr_decay: LrDecay = 5e-5,
    **options,
) -> None:
    """Train a multi-style CIN network (one style per image in STYLES), or --extend one."""
    from ..training.cin import CINTrainConfig, train_cin

    run = run_options(options)
    teacher = cin_teacher_settings(context, values_of(cin_teacher_options, options))
    arch = from_init(context, init, "cin", {"widths": parse_widths(widths),
                                            "res_blocks": res_blocks}, grow=True)
    config = CINTrainConfig(
        content=str(content), styles=str(styles), extend=str(extend or ""),
        refine=comma_list(refine), favour=name_weights(favour, "--favour"), out=str(out),
        encoder=encoder, **arch, style_size=style_size, content_layer=content_layer,
        content_weight=content_weight, style_weight=style_weight, style_loss=style_loss,
        tv_weight=tv_weight, **teacher, iterations=iterations, lr=lr, lr_decay=lr_decay,
        **loop_config(options))
    echo_result(train_cin(config, **run, init=str(init) if init else None))
