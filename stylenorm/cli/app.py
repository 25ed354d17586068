"""The ``stylenorm`` command line: a thin Typer layer over the library."""

from __future__ import annotations

from pathlib import Path

import typer

from ..choices import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MODEL,
    DEFAULT_PRECISION,
    DEFAULT_TILE_SIZE,
    MAX_WHOLE_PIXELS,
    Device,
    ExportFormat,
)
from .batch import batch, bench, set_threads
from .errors import say, user_errors
from .lazy import LazyTrain
from .options import (
    AlphaOpt,
    CropOpt,
    DeviceOpt,
    MaxPixelsOpt,
    MaxWholePixelsOpt,
    ModelOpt,
    PrecisionOpt,
    SizeOpt,
    StyleIndexOpt,
    StyleSizeOpt,
    StyleWeightsOpt,
    ThreadsOpt,
    TileOpt,
    TileSizeOpt,
)
from .serve import serve
from .tune import tune
from .video import video
from .weights import weights_app

app = typer.Typer(
    cls=LazyTrain,
    help="Neural style transfer with exact normalization layers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(weights_app, name="weights")


def show_version(value: bool) -> None:
    if value:
        from .._version import __version__

        say(f"stylenorm {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Neural style transfer with exact normalization layers."""


DEFAULT_OUTPUT = Path("stylized.jpg")


def free_name(path: Path) -> Path:
    """``path`` when nothing is there, else the first free ``<stem>-1<suffix>``, ``-2``, ..."""
    candidate, n = path, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


@app.command()
@user_errors
def stylize(
    content: Path = typer.Argument(..., help="Content image."),
    styles: list[Path] = typer.Argument(
        None, help="One or more style images (none for a CIN model: see --style-index)."),
    output: Path = typer.Option(None, "--output", "-o", show_default=False,
                                help="Output image; the format follows the extension. Without "
                                     "-o: stylized.jpg, or stylized-1.jpg, ... when it exists "
                                     "(never overwritten)."),
    model: ModelOpt = DEFAULT_MODEL,
    alpha: AlphaOpt = 1.0,
    style_weights: StyleWeightsOpt = None,
    style_index: StyleIndexOpt = None,
    mask: Path = typer.Option(None, help="Mask image: style 1 where white, style 2 where black."),
    preserve_color: bool = typer.Option(False, help="Keep the content's colours."),
    size: SizeOpt = 512,
    style_size: StyleSizeOpt = 512,
    crop: CropOpt = False,
    device: DeviceOpt = Device.AUTO,
    precision: PrecisionOpt = DEFAULT_PRECISION,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    max_whole_pixels: MaxWholePixelsOpt = MAX_WHOLE_PIXELS,
    tile: TileOpt = False,
    tile_size: TileSizeOpt = DEFAULT_TILE_SIZE,
    threads: ThreadsOpt = 0,
    progress: bool = typer.Option(True, help="Show a tile progress bar on stderr when a run "
                                  "takes over a second."),
) -> None:
    """Stylise CONTENT with STYLE (several styles are mixed) and write the result."""
    from ..inference.stylize import StylizeOptions, Stylizer, parse_weights

    options = StylizeOptions(alpha=alpha, style_weights=parse_weights(style_weights),
                             preserve_color=preserve_color, size=size, style_size=style_size,
                             crop=crop, max_pixels=max_pixels, max_whole_pixels=max_whole_pixels,
                             tile=tile, tile_size=tile_size, style_index=style_index)
    set_threads(threads)
    stylizer = Stylizer(model, device.value, precision.value, progress=progress)
    path = stylizer.stylize_file(content, styles or [], output or free_name(DEFAULT_OUTPUT),
                                 options, mask,
                                 log=lambda note: say(note, err=True))
    say(f"wrote {path}")


@app.command()
@user_errors
def export(
    model: str = typer.Argument(..., help="Installed model name or a .safetensors path, of a "
                                "kind that exports to ONNX."),
    output: Path = typer.Option(..., "--output", "-o", dir_okay=False,
                                help="Output file, e.g. model.onnx (written atomically)."),
    export_format: ExportFormat = typer.Option(ExportFormat.ONNX, "--format",
                                               help="Output format."),
) -> None:
    """Export MODEL for other runtimes: float32 ONNX with dynamic image sizes, inputs content,
    style, alpha and output image. A model of a kind that does not export is refused, naming
    the kinds that do."""
    from ..inference.export import export_onnx

    say(f"wrote {export_onnx(model, output)}")


app.command()(batch)
app.command()(bench)
app.command()(serve)
app.command()(video)
app.command()(tune)


def main() -> None:
    app()
