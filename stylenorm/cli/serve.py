"""``stylenorm serve``: the local web app (Gradio, imported only when the command runs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

from ..choices import (
    DEFAULT_MODEL,
    SERVE_MAX_PIXELS,
    SERVE_MAX_SIZE,
    SERVE_MAX_UPLOAD_MB,
    SERVE_QUEUE_SIZE,
    Device,
)
from ..errors import install_hint
from .batch import set_threads
from .errors import fail, say, user_errors
from .options import DeviceOpt, MaxPixelsOpt, ModelOpt, ThreadsOpt

WEB_EXTRA = f"the web app needs Gradio: {install_hint('web')}"


def served_model(model: str) -> tuple[str, dict[str, Path]]:
    """The name the page starts with, and the model file offered under that name beside the
    installed models (none when ``model`` is an installed one, by name or by its file).
    A file is named after its stem, or ``stem (folder)`` when an installed model has that
    name. A model the page cannot use (a CIN model, one lacking weights) is refused here."""
    from ..hub.files import read_meta
    from ..hub.records import install_command
    from ..hub.store import installed_weights, resolve_weights
    from ..hub.zoo import missing_weights, takes_style_images
    from ..web.service import model_choices

    path = resolve_weights(model).resolve()
    meta = read_meta(path)
    if not takes_style_images(meta):
        raise fail(f"--model {model}: a {meta.kind} model holds its own styles; the web page "
                   f"stylises with uploaded style images (models: {model_choices()})", 2)
    missing = missing_weights(meta)
    if missing:
        how = "; ".join(install_command(n) or "stylenorm weights import" for n in missing)
        raise fail(f"--model {model} needs {', '.join(missing)} ({how})", 2)
    installed = {p.stem: p.resolve() for p, _ in installed_weights()}
    if installed.get(path.stem) == path:
        return path.stem, {}
    name = f"{path.stem} ({path.parent.name})" if path.stem in installed else path.stem
    return name, {name: path}


@user_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (127.0.0.1: this machine "
                             "only; 0.0.0.0 opens it to the network)."),
    port: int = typer.Option(7860, min=1, max=65535, help="Port to listen on."),
    model: ModelOpt = DEFAULT_MODEL,
    max_pixels: MaxPixelsOpt = SERVE_MAX_PIXELS,
    max_upload_mb: int = typer.Option(SERVE_MAX_UPLOAD_MB, min=1,
                                   help="Refuse uploaded files over this size (MiB)."),
    max_size: int = typer.Option(SERVE_MAX_SIZE, min=16,
                                 help="The largest output shorter side (px)."),
    queue_size: int = typer.Option(SERVE_QUEUE_SIZE, min=1,
                                   help="Requests that may wait while one runs; more are "
                                        "refused as busy (HTTP 503)."),
    max_models: int = typer.Option(2, min=1, help="Models kept loaded at once."),
    device: DeviceOpt = Device.AUTO,
    samples: Path = typer.Option(None, file_okay=False, help="Folder with content/ and style/ "
                                 "sample images (default: the repository's samples/)."),
    threads: ThreadsOpt = 0,
) -> None:
    """Start a local web page (and an HTTP API) to stylise images by dropping them in."""
    if importlib.util.find_spec("gradio") is None:
        raise fail(WEB_EXTRA)
    from ..web.server import REPO_SAMPLES
    from ..web.server import serve as run_server
    from ..web.service import ServeConfig

    set_threads(threads)
    samples = samples or (REPO_SAMPLES if REPO_SAMPLES.is_dir() else None)
    model, files = served_model(model)
    config = ServeConfig(host=host, port=port, model=model, model_files=files,
                         max_pixels=max_pixels,
                         max_upload_bytes=max_upload_mb * 2**20, max_size=max_size,
                         queue_size=queue_size, max_models=max_models, device=device.value,
                         samples=samples)
    run_server(config, say=say)
