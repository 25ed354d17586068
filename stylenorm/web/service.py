"""The web app's engine, free of any web framework: the server's limits, the loaded models, a
bounded queue of requests and the stylisation of uploaded files into a PNG."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..choices import (
    DEFAULT_MODEL,
    SERVE_MAX_PIXELS,
    SERVE_MAX_SIZE,
    SERVE_MAX_UPLOAD_MB,
    SERVE_QUEUE_SIZE,
)
from ..errors import ImageError, OptionError, StylenormError
from ..hub.store import installed_weights
from ..hub.zoo import missing_weights, takes_style_images
from ..inference.stylize import StylizeOptions, Stylizer
from ..io.images import image_size

MAX_STYLES = 8


@dataclass
class ServeConfig:
    """What ``stylenorm serve`` listens on and the limits it holds every request to."""

    host: str = "127.0.0.1"
    port: int = 7860
    model: str = DEFAULT_MODEL  # the model the page starts with
    # models given as files (``serve --model FILE``), offered by name beside the installed ones
    model_files: dict[str, Path] = field(default_factory=dict)
    max_pixels: int = SERVE_MAX_PIXELS  # the most pixels an uploaded image may declare
    max_upload_bytes: int = SERVE_MAX_UPLOAD_MB * 2**20  # the largest uploaded file
    max_size: int = SERVE_MAX_SIZE  # the largest output shorter side a request may ask for
    queue_size: int = SERVE_QUEUE_SIZE  # requests that may wait while one runs; more get "busy"
    max_models: int = 2  # models kept loaded (least recently used dropped first)
    device: str = "auto"
    samples: Path | None = None  # a folder with content/ and style/ sample images
    # Gradio's temporary files older than this are swept even from pages never closed.
    cache_max_age_s: int = 3600

    def max_request_bytes(self) -> int:
        """The largest whole API request: a content, MAX_STYLES styles and a mask."""
        return (MAX_STYLES + 2) * self.max_upload_bytes + 2**20


class ServerBusy(Exception):
    """Every place in the queue is taken: the client should retry later."""


class UploadTooLarge(StylenormError):
    """An uploaded file is larger than the server accepts."""


class RequestGate:
    """At most ``workers`` requests run at once and ``waiting`` more wait their turn; any more
    are refused at once with :class:`ServerBusy` instead of piling up in memory."""

    def __init__(self, workers: int = 1, waiting: int = 4) -> None:
        self.workers, self.waiting = workers, waiting
        self.admitted = 0
        self.lock = threading.Lock()
        self.running = threading.Semaphore(workers)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self.lock:
            if self.admitted >= self.workers + self.waiting:
                raise ServerBusy(f"the server is busy: {self.admitted} requests are running or "
                                 "waiting; try again in a moment")
            self.admitted += 1
        try:
            with self.running:
                yield
        finally:
            with self.lock:
                self.admitted -= 1


class ModelCache:
    """Loaded :class:`Stylizer` objects by model name, the least recently used dropped when
    more than ``capacity`` are held: one copy of a model serves every request."""

    def __init__(self, capacity: int = 2, device: str = "auto",
                 load: Callable[[str, str], Stylizer] = Stylizer) -> None:
        self.capacity, self.device, self.load = capacity, device, load
        self.loaded: OrderedDict[str, Stylizer] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, name: str) -> Stylizer:
        with self.lock:
            if name in self.loaded:
                self.loaded.move_to_end(name)
                return self.loaded[name]
            stylizer = self.load(name, self.device)
            self.loaded[name] = stylizer
            while len(self.loaded) > self.capacity:
                self.loaded.popitem(last=False)
            return stylizer


def style_image_models() -> dict[str, list[str]]:
    """Installed models that take their styles from images (the CIN models hold their own),
    each with the weights it needs that are not installed (an AdaIN decoder's VGG encoder)."""
    rows = installed_weights()
    installed = {path.stem for path, _ in rows}
    return {path.stem: missing_weights(meta, installed) for path, meta in rows
            if meta is not None and takes_style_images(meta)}


def model_choices() -> list[str]:
    """The models the page and the API offer: those of :func:`style_image_models` that have
    every weights file they need."""
    return [name for name, missing in style_image_models().items() if not missing]


def unavailable_models() -> dict[str, list[str]]:
    """Models left out of :func:`model_choices`, with the weights each lacks (for the server's
    operator; a visitor cannot install weights)."""
    return {name: missing for name, missing in style_image_models().items() if missing}


@dataclass
class WebRequest:
    """One stylisation asked for by the page or the API (files already on disk)."""

    content: Path
    styles: list[Path]
    model: str = DEFAULT_MODEL
    mask: Path | None = None
    options: StylizeOptions = field(default_factory=StylizeOptions)

    def files(self) -> list[Path]:
        return [self.content, *self.styles, *([self.mask] if self.mask else [])]


def safe_message(exc: BaseException, folders: list[Path]) -> str:
    """The error's one line with the server's temporary folders taken out of file names."""
    message = str(exc)
    for folder in folders:
        message = message.replace(str(folder) + os.sep, "")
    return re.sub(r"\s+", " ", message).strip()


# A folder path (two parts or more) before a file name: the server's folders stay private.
SERVER_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:'\"()]+/)+(?=[^\s/:'\"()]*)")
# Advice for the command line ("(raise it with --max-pixels)", "(lower --size)"): a visitor
# cannot change the server's options.
CLI_HINT = re.compile(r" \((?:[^()]*--[a-z]|raise |lower |styles are encoded)[^()]*\)")


def visitor_message(exc: BaseException, folders: list[Path]) -> str:
    """The error's one line as a web visitor should read it: no server folders (the temporary
    ones, the weights store), no advice about the server's command-line options."""
    message = safe_message(SERVER_PATH.sub("", str(exc)), folders)
    message = CLI_HINT.sub("", message)
    return message.replace("; the limit is", "; this server's limit is")


class StyleService:
    """Stylises requests one at a time through the :class:`RequestGate`, with models from the
    :class:`ModelCache`."""

    def __init__(self, config: ServeConfig, load: Callable[[str, str], Stylizer] = Stylizer
                 ) -> None:
        self.config = config
        files = config.model_files
        self.models = ModelCache(config.max_models, config.device,
                                 lambda name, device: load(files.get(name, name), device))
        self.gate = RequestGate(workers=1, waiting=config.queue_size)

    def choices(self) -> list[str]:
        """The models offered: :func:`model_choices`, then those given as files."""
        return model_choices() + list(self.config.model_files)

    def check(self, request: WebRequest) -> None:
        """Refuse what breaks the server's limits before any model runs."""
        choices = self.choices()
        if request.model not in choices:
            lacking = unavailable_models().get(request.model)
            why = (f"model {request.model!r} needs weights this server has not installed "
                   f"({', '.join(lacking)})" if lacking else f"unknown model {request.model!r}")
            raise OptionError(f"{why}; choose from {choices}", params=("model",))
        if not request.styles:
            raise StylenormError("give at least one style image")
        if len(request.styles) > MAX_STYLES:
            raise StylenormError(f"{len(request.styles)} style images; the limit is {MAX_STYLES}")
        for path in request.files():
            if not path.is_file():
                raise ImageError(f"{path.name}: no such upload")
            if path.stat().st_size > self.config.max_upload_bytes:
                raise UploadTooLarge(
                    f"{path.name}: file is {path.stat().st_size / 2**20:.1f} MiB; the limit is "
                    f"{self.config.max_upload_bytes / 2**20:.0f} MiB")
        self.check_output_size(request.content, request.options.size)

    def check_output_size(self, content: Path, size: int) -> None:
        """Refuse an output whose shorter side would pass ``max_size``."""
        if size > self.config.max_size:
            raise OptionError(f"size {size} is above the server's limit of "
                              f"{self.config.max_size} px", params=("size",))
        if size != 0:
            return
        width, height = image_size(content, self.config.max_pixels)
        if min(width, height) > self.config.max_size:
            raise OptionError(f"{content.name}: keeping the original size gives a shorter side "
                              f"of {min(width, height)} px, above the server's limit of "
                              f"{self.config.max_size}; choose a size", params=("size",))

    def stylize(self, request: WebRequest, output: Path,
                on_tile: Callable[[int, int], None] | None = None) -> Path:
        """Stylise ``request`` into the PNG ``output`` once a place in the queue frees up."""
        request.options.max_pixels = min(request.options.max_pixels, self.config.max_pixels)
        self.check(request)
        with self.gate.slot():
            stylizer = self.models.get(request.model)
            stylizer.on_tile = on_tile  # one request at a time uses a model (workers=1)
            try:
                return stylizer.stylize_file(request.content, request.styles, output,
                                             request.options, request.mask)
            finally:
                stylizer.on_tile = None
