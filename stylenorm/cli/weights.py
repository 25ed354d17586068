"""``stylenorm weights``: install, import, pack, list and fetch weights."""

from __future__ import annotations

from pathlib import Path

import typer

from ..choices import EncoderFamily
from ..errors import StylenormError
from .errors import fail, say, user_errors

weights_app = typer.Typer(help="Install, import, fetch and list weights.", no_args_is_help=True)


@weights_app.command("import")
@user_errors
def weights_import(
    encoder: Path = typer.Option(None, help="VGG-19 .pth (public AdaIN or torchvision layout)."),
    decoder: Path = typer.Option(None, help="Public PyTorch-AdaIN decoder .pth."),
    name: str = typer.Option("adain", help="Name to install the decoder under."),
    family: EncoderFamily = typer.Option(EncoderFamily.NORMALISED, help="Encoder family."),
    shadow_shipped: bool = typer.Option(False, help="Allow a --name of a shipped model (the "
                                        "import then hides it; `weights list` says so)."),
) -> None:
    """Convert public .pth checkpoints (loaded without unpickling code) into the store."""
    from ..hub.importers import import_decoder, import_encoder

    if encoder is None and decoder is None:
        raise StylenormError("give --encoder and/or --decoder")
    if encoder is not None:
        say(f"installed encoder {import_encoder(encoder, family.value)}")
    if decoder is not None:
        path = import_decoder(decoder, name, family.value, shadow_shipped=shadow_shipped)
        say(f"installed model {path}")


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
    from ..hub.files import pack_weights

    path = pack_weights(source, target, half=half, config=parse_entries(set_config, "--set"),
                        provenance=parse_entries(note, "--note"))
    say(f"wrote {path}")


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
    """Show installed weights (the store first, then the weights shipped with stylenorm), what
    each still needs, and what `stylenorm weights fetch` can add."""
    from ..hub.records import KNOWN_WEIGHTS, install_command
    from ..hub.store import installed_weights, search_path, shadows_shipped
    from ..hub.zoo import missing_weights

    rows = installed_weights()
    names = {path.stem for path, _ in rows}
    say("searched: " + ", ".join(str(p) for p in search_path()))
    if not rows:
        say("no weights installed")
    for path, meta in rows:
        if meta is None:
            say(f"{path.stem:<24} unreadable  {path}")
            continue
        params = meta.provenance.get("num_params", "?")
        hides = "  (hides the shipped model of this name)" if shadows_shipped(path) else ""
        needs = "".join(f"  (needs {n}: {install_command(n) or 'stylenorm weights import'})"
                        for n in missing_weights(meta, names))
        say(f"{path.stem:<24} {meta.kind:<12} {params:>10} params  {path}{hides}{needs}")
    available = [r for r in KNOWN_WEIGHTS.values() if r.name not in names]
    if available:
        say("not installed (stylenorm weights fetch NAME):")
    for record in available:
        say(f"  {record.name:<22} {record.size_text():>12}  for {record.unlocks}")


@weights_app.command("fetch")
@user_errors
def weights_fetch(
    name: str = typer.Argument(..., help="What to install: vgg19-normalised (the VGG loss "
                               "network and AdaIN encoder), adain (the reference AdaIN "
                               "decoder, with its encoder) or vgg19-torchvision."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Download without asking."),
    force: bool = typer.Option(False, help="Download again what is already installed."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Download public weights (size and licence shown first), check each file's SHA-256, and
    install it in the store as `weights import` does."""
    from ..hub.fetch import fetch, fetch_plan
    from ..hub.store import weights_home

    home = weights_home()
    plan = fetch_plan(name, home, force=force)
    if not plan:
        say(f"{name} is already installed in {home} (--force downloads it again)")
        return
    for record in plan:
        say(f"{record.name}: {record.description}, {record.size_text()}, from {record.url}")
        say(f"  licence: {record.licence}")
        say(f"  for: {record.unlocks}")
    total = sum(r.size for r in plan)
    about = "" if all(r.size_exact for r in plan) else "about "
    if not yes and not confirmed(f"download {about}{total / 1e6:.0f} MB into {home}?"):
        raise fail("nothing downloaded (--yes downloads without asking)")
    for record in plan:
        say(f"installed {fetch(record.name, progress=progress, home=home)}")


def confirmed(question: str) -> bool:
    """The user's yes (the default) to ``question``; no answer (end of input) is a no."""
    try:
        return typer.confirm(question, default=True)
    except typer.Abort:
        return False
