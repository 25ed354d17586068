"""The ``stylenorm`` command line: a thin Typer layer over the library."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import StylenormError
from ..hub.zoo import DEFAULT_MODEL
from ..inference.export import ExportFormat
from ..io.images import DEFAULT_MAX_PIXELS
from ..models.vgg import EncoderFamily
from ..runtime import Device, Precision
from .batch import batch, bench
from .errors import OneLineErrors, user_errors
from .train import train_app

app = typer.Typer(
    cls=OneLineErrors,
    help="Neural style transfer with exact normalization layers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
weights_app = typer.Typer(help="Install, import, fetch and list weights.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


def parse_weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise StylenormError(
            f"--style-weights must be comma-separated numbers like 0.7,0.3; got {text!r}"
        ) from None


@app.command()
@user_errors
def stylize(
    content: Path = typer.Argument(..., help="Content image."),
    styles: list[Path] = typer.Argument(
        None, help="One or more style images (none for a CIN model: see --style-index)."),
    output: Path = typer.Option(Path("stylized.jpg"), "--output", "-o",
                                help="Output image; the format follows the extension."),
    model: str = typer.Option(DEFAULT_MODEL, help="Installed model name or a .safetensors path."),
    alpha: float = typer.Option(1.0, min=0.0, max=1.0, help="Style strength, 0..1."),
    style_weights: str = typer.Option(None, help="Mix several styles, e.g. 0.7,0.3."),
    style_index: int = typer.Option(None, min=0, help="CIN models: which of their styles."),
    mask: Path = typer.Option(None, help="Mask image: style 1 where white, style 2 where black."),
    preserve_color: bool = typer.Option(False, help="Keep the content's colours."),
    size: int = typer.Option(512, help="Content shorter side in px (0 keeps the original)."),
    style_size: int = typer.Option(512, help="Style shorter side in px (0 keeps the original)."),
    crop: bool = typer.Option(False, help="Centre-crop content and style to squares."),
    device: Device = typer.Option(Device.AUTO, help="Where to run."),
    precision: Precision = typer.Option(Precision.FP32, help="Arithmetic precision."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, min=1,
                                   help="Refuse larger inputs (checked before decoding)."),
    tile: bool = typer.Option(False, help="Stylise in tiles (automatic above 2.5 MP)."),
    tile_size: int = typer.Option(768, help="Tile side in px (multiple of 8)."),
) -> None:
    """Stylise CONTENT with STYLE (several styles are mixed) and write the result."""
    from ..inference.stylize import StylizeOptions, Stylizer

    options = StylizeOptions(alpha=alpha, style_weights=parse_weights(style_weights),
                             preserve_color=preserve_color, size=size, style_size=style_size,
                             crop=crop, max_pixels=max_pixels, tile=tile, tile_size=tile_size,
                             style_index=style_index)
    stylizer = Stylizer(model, device.value, precision.value)
    path = stylizer.stylize_file(content, styles or [], output, options, mask)
    typer.echo(f"wrote {path}")


@weights_app.command("import")
@user_errors
def weights_import(
    encoder: Path = typer.Option(None, help="VGG-19 .pth (public AdaIN or torchvision layout)."),
    decoder: Path = typer.Option(None, help="Public PyTorch-AdaIN decoder .pth."),
    name: str = typer.Option("adain", help="Name to install the decoder under."),
    family: EncoderFamily = typer.Option(EncoderFamily.NORMALISED, help="Encoder family."),
) -> None:
    """Convert public .pth checkpoints (loaded without unpickling code) into the store."""
    from ..hub.zoo import import_decoder, import_encoder

    if encoder is None and decoder is None:
        raise StylenormError("give --encoder and/or --decoder")
    if encoder is not None:
        typer.echo(f"installed encoder {import_encoder(encoder, family.value)}")
    if decoder is not None:
        typer.echo(f"installed model {import_decoder(decoder, name, family.value)}")


@weights_app.command("pack")
@user_errors
def weights_pack(
    source: Path = typer.Argument(..., help="A trained model file (e.g. RUN/model.safetensors)."),
    target: Path = typer.Argument(..., help="Where to write the packed copy."),
    half: bool = typer.Option(True, help="Store floating-point tensors in fp16."),
    set_config: list[str] = typer.Option(
        None, "--set", help="Change a config entry, e.g. style_size=256 (JSON value)."),
    note: list[str] = typer.Option(None, help="Add a provenance entry, e.g. data=\"...\"."),
) -> None:
    """Copy a trained model for shipping (fp16, changed config, added provenance)."""
    from ..hub.weights import pack_weights

    path = pack_weights(source, target, half=half, config=parse_entries(set_config, "--set"),
                        provenance=parse_entries(note, "--note"))
    typer.echo(f"wrote {path}")


def parse_entries(items: list[str] | None, option: str) -> dict:
    """``["a=1", "b=text"]`` -> ``{"a": 1, "b": "text"}`` (values parsed as JSON when they are)."""
    import json

    entries = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StylenormError(f"{option} takes KEY=VALUE; got {item!r}")
        try:
            entries[key] = json.loads(value)
        except json.JSONDecodeError:
            entries[key] = value
    return entries


@weights_app.command("list")
@user_errors
def weights_list() -> None:
    """Show installed weights (the store first, then the weights shipped with stylenorm)."""
    from ..hub.weights import installed_weights, search_path

    rows = installed_weights()
    typer.echo("searched: " + ", ".join(str(p) for p in search_path()))
    if not rows:
        typer.echo("no weights installed")
    for path, meta in rows:
        if meta is None:
            typer.echo(f"{path.stem:<24} unreadable  {path}")
            continue
        params = meta.provenance.get("num_params", "?")
        typer.echo(f"{path.stem:<24} {meta.kind:<12} {params:>10} params  {path}")


@weights_app.command("fetch")
@user_errors
def weights_fetch(
    name: str = typer.Argument(..., help="A known weights name (see --help)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Download a known public checkpoint, verify its hash, and install it."""
    from ..hub.fetch import fetch

    typer.echo(f"installed {fetch(name, progress=progress)}")


@app.command()
@user_errors
def export(
    model: str = typer.Argument(..., help="Installed lite model name or a .safetensors path."),
    output: Path = typer.Option(..., "--output", "-o", dir_okay=False,
                                help="Output file, e.g. model.onnx (written atomically)."),
    export_format: ExportFormat = typer.Option(ExportFormat.ONNX, "--format",
                                               help="Output format."),
) -> None:
    """Export a lite MODEL for other runtimes: float32 ONNX with dynamic image sizes, inputs
    content, style, alpha and output image."""
    from ..inference.export import export_onnx

    typer.echo(f"wrote {export_onnx(model, output)}")


app.add_typer(train_app, name="train")
app.command()(batch)
app.command()(bench)


def main() -> None:
    app()
