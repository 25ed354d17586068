"""``stylenorm serve``: the page and the API in one FastAPI app, served by uvicorn, with every
temporary file in one private folder that goes when the server stops."""

from __future__ import annotations

import functools
import ipaddress
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..hub.records import install_command
from .service import ServeConfig, StyleService, unavailable_models

REPO_SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def offline_gradio_settings(cache: Path) -> None:
    """No analytics, no update check, no share link, uploads and results under ``cache``
    (read by Gradio when the app is built)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(cache)


def system_font_theme():
    """Gradio's default look with the system's fonts (its own come from the internet)."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def build_app(config: ServeConfig, cache: Path, load: Callable | None = None):
    """The FastAPI app: ``/api/...`` routes, then the Gradio page at ``/``."""
    offline_gradio_settings(cache)
    import gradio as gr
    from fastapi import FastAPI

    from .api import add_error_handlers, api_router, refuse_huge_requests
    from .page import build_page
    from .sessions import SessionFiles

    service = StyleService(config, **({"load": load} if load else {}))
    # no interactive docs page: it loads its scripts from a CDN
    app = FastAPI(title="stylenorm", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.middleware("http")(functools.partial(refuse_huge_requests, config=config))
    add_error_handlers(app)
    app.include_router(api_router(service))
    app.state.service = service  # for tests and tools in the same process
    demo = build_page(service, SessionFiles(cache))
    demo.queue(max_size=config.queue_size, default_concurrency_limit=1)
    allowed = [str(config.samples)] if config.samples else []
    return gr.mount_gradio_app(app, demo, path="/", allowed_paths=allowed,
                               max_file_size=config.max_upload_bytes, show_error=False,
                               ssr_mode=False, mcp_server=False, footer_links=["api"],
                               theme=system_font_theme())


def unavailable_notes() -> list[str]:
    """One line for the operator per installed model the page leaves out for want of weights,
    with the command that installs them."""
    lines = []
    for name, missing in unavailable_models().items():
        how = "; ".join(install_command(n) or "stylenorm weights import" for n in missing)
        lines.append(f"note: {name} is not offered: it needs {', '.join(missing)} ({how})")
    return lines


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def exit_on_sigterm(signum, frame) -> None:
    """uvicorn shuts down gracefully on SIGTERM, then raises it again: this handler turns it
    into SystemExit, so ``finally`` blocks run (the default one ends the process at once)."""
    raise SystemExit(0)


def serve(config: ServeConfig, say: Callable[[str], None] = print) -> None:
    """Serve until Ctrl-C or SIGTERM; the private temporary folder is removed at the end."""
    import uvicorn

    cache = Path(tempfile.mkdtemp(prefix="stylenorm-web-"))
    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        app = build_app(config, cache)
        if not is_loopback(config.host):
            say(f"warning: listening on {config.host}: other machines can use this server")
        for line in unavailable_notes():
            say(line)
        say(f"stylenorm web app on http://{config.host}:{config.port}/ (Ctrl-C stops it); "
            f"API: POST http://{config.host}:{config.port}/api/stylize")
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
    except (KeyboardInterrupt, SystemExit):
        pass  # a normal way to stop a server
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(cache, ignore_errors=True)
    say("stopped; temporary files removed")
