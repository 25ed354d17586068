"""Options that several commands share, each declared once: its type, check and help here,
its default in :mod:`stylenorm.choices` (or given by the command where commands differ, as the
content size: 512 px for images, the input's for video frames). A command's group of options
is a function whose parameters :func:`with_options` appends to the command's signature (train's
groups: :mod:`stylenorm.cli.train_options`). No torch is imported here."""

from __future__ import annotations

import inspect
from typing import Annotated

import typer

from ..choices import Device, Precision
from ..errors import StylenormError

THREADS_HELP = ("CPU threads (0: one per core). On a machine where another job holds a core, "
                "1 is several times faster than 2.")

PRECISION_HELP = ("Arithmetic precision; auto = bf16 on CPUs where it is faster; on GPUs fp16 "
                  "to stylise (an overflow is computed again in fp32), bf16 to train where the "
                  "GPU has it.")

ModelOpt = Annotated[str, typer.Option(help="Installed model name or a .safetensors path.")]
AlphaOpt = Annotated[float, typer.Option(min=0.0, max=1.0, help="Style strength, 0..1.")]
StyleWeightsOpt = Annotated[str, typer.Option(help="Mix several styles, e.g. 0.7,0.3.")]
StyleIndexOpt = Annotated[int, typer.Option(min=0, help="CIN models: which of their styles.")]
SizeOpt = Annotated[int, typer.Option(
    min=0, help="Content (or frame) shorter side in px (0 keeps the original).")]
StyleSizeOpt = Annotated[int, typer.Option(
    help="Style shorter side in px (0 keeps the original).")]
CropOpt = Annotated[bool, typer.Option(help="Centre-crop content and style to squares.")]
TileOpt = Annotated[bool, typer.Option(help="Stylise in tiles (automatic above 2.5 MP).")]
TileSizeOpt = Annotated[int, typer.Option(help="Tile side in px (multiple of 8).")]
MaxPixelsOpt = Annotated[int, typer.Option(
    min=1, help="Refuse inputs declaring more pixels (checked before decoding).")]
MaxWholePixelsOpt = Annotated[int, typer.Option(min=1, help="The most pixels the model runs in "
                                                "one piece (a style, a tile, a CIN content).")]
DeviceOpt = Annotated[Device, typer.Option(help="Where to run.")]
PrecisionOpt = Annotated[Precision, typer.Option(help=PRECISION_HELP)]
ThreadsOpt = Annotated[int, typer.Option(min=0, help=THREADS_HELP)]
WidthsOpt = Annotated[str, typer.Option(help="Channels at full, 1/2 and 1/4 resolution.")]


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ("a", "b", "c"): the names of a comma-separated option."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def name_weights(text: str, option: str) -> dict[str, float]:
    """``"mosaic=3, candy=2"`` -> {"mosaic": 3.0, "candy": 2.0}; one error line for an entry
    that is not NAME=NUMBER."""
    weights = {}
    for entry in comma_list(text):
        name, _, value = (part.strip() for part in entry.partition("="))
        try:
            weight = float(value)
        except ValueError:
            weight = None
        if not name or weight is None:
            raise StylenormError(f"{option} takes NAME=WEIGHT entries separated by commas; got "
                                 f"{entry!r}", params=(option.lstrip("-"),))
        weights[name] = weight
    return weights


def parse_widths(text: str) -> tuple[int, int, int]:
    """``--widths 16,32,64`` -> (16, 32, 64); one error line for anything but three positive
    integers."""
    parts = text.replace(" ", "").split(",")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise StylenormError(f"--widths must be three positive integers like 16,32,64; "
                             f"got {text!r}")
    return tuple(int(p) for p in parts)


def with_options(*groups):
    """Append the parameters of the option ``groups`` (functions such as
    :func:`.train_options.loop_options`) to a command's signature, which Typer reads; the
    command receives them in ``**options`` (:func:`values_of` picks one group's)."""

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
