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
    config = ServeConfig(host=host, port=port, model=model, max_pixels=max_pixels,
                         max_upload_bytes=max_upload_mb * 2**20, max_size=max_size,
                         queue_size=queue_size, max_models=max_models, device=device.value,
                         samples=samples)
    run_server(config, say=say)
