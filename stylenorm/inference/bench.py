"""``stylenorm bench``: throughput, peak memory and achieved FLOP rate of stylisation.

Two pipelines run in the same process on the same inputs:

* **stylenorm**: the model (AdaIN through its fused fast path, or the lite model) at the
  chosen precision, channels-last, the style encoded once, contents ``batch`` at a time, under
  inference mode; contents above the tiling threshold go through :mod:`stylenorm.inference.tiling`.
* **reference**: how the public reference implementations run AdaIN: the plain eager VGG AdaIN
  model in fp32 with contiguous tensors, under ``no_grad``, one image at a time, encoding the
  content *and* the style for every image. For an AdaIN model it is the same model; for the lite
  model it is ``reference_model`` (an installed AdaIN model), skipped with a note when absent.

Sizes are squares (``512``) or ``WIDTHxHEIGHT`` (``3840x2160``).

FLOPs are counted once per pipeline with :class:`torch.utils.flop_counter.FlopCounterMode` on
meta tensors (no arithmetic is done) and include, per image, the style encoding that pipeline
performs. Peak memory is the process's peak resident set while a pipeline runs (the kernel's
``VmHWM``, reset before each pipeline; where that cannot be reset, the lifetime ``ru_maxrss``,
marked ``*``), or ``torch.cuda.max_memory_allocated`` on CUDA.
"""

from __future__ import annotations

import copy
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..choices import DEFAULT_MODEL
from ..errors import StylenormError
from ..hub.zoo import KINDS, is_reference, load_model
from ..models.protocol import StyleModel
from ..runtime import processor_name
from . import render
from .finite import cast_code
from .stylize import StylizeOptions, Stylizer

Size = int | tuple[int, int]  # a square side, or (width, height)


def dims(size: Size) -> tuple[int, int]:
    """(height, width) of a bench size."""
    return (size, size) if isinstance(size, int) else (size[1], size[0])


def size_label(size: Size) -> int | str:
    return size if isinstance(size, int) else f"{size[0]}x{size[1]}"


@dataclass
class BenchConfig:
    sizes: list[Size] = field(default_factory=lambda: [512])  # contents, px
    batch: int = 1  # contents per model call in the stylenorm pipeline
    images: int = 8  # contents timed per pipeline and size (after one warm-up batch)
    style_size: int = 512
    precision: str = "auto"
    device: str = "auto"
    model: str | Path = DEFAULT_MODEL
    reference: bool = True
    reference_model: str | Path = "adain"  # the plain pipeline's model when ``model`` is lite

    def validate(self) -> None:
        if not self.sizes or min(min(dims(s)) for s in self.sizes) < 16:
            raise StylenormError(f"sizes must be >= 16 px; got {self.sizes}", params=("sizes",))
        if self.batch < 1 or self.images < 1:
            raise StylenormError(f"batch and images must be >= 1; got {self.batch}, "
                                 f"{self.images}", params=("batch", "images"))


@dataclass
class BenchRow:
    pipeline: str
    size: int | str
    batch: int
    seconds_per_image: float
    peak_mib: float
    peak_exact: bool
    gflop_per_image: float

    @property
    def images_per_second(self) -> float:
        return 1.0 / self.seconds_per_image

    @property
    def gflops(self) -> float:
        return self.gflop_per_image / self.seconds_per_image


# --------------------------------------------------------------------------- peak memory


def _reset_peak(device: torch.device) -> bool:
    """Start a new peak-memory window; False when only the lifetime peak can be read."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


# --------------------------------------------------------------------------- pipelines


Step = Callable[[torch.Tensor], torch.Tensor]


def fast_step(stylizer: Stylizer, code) -> Step:
    """stylenorm: contents (B, 3, H, W) -> images through the render path (:mod:`.render`),
    with a style code computed beforehand; contents it tiles go one at a time."""
    model, options = stylizer.model, StylizeOptions()
    code = cast_code(code, stylizer.dtype)  # as Stylizer.render passes it

    def step(contents: torch.Tensor) -> torch.Tensor:
        tiles = render.tiles_for(model, *contents.shape[-2:], options)
        outs = []
        with torch.inference_mode():
            for part in contents.split(1) if tiles else [contents]:
                feats = render.encode(model, part, options, tiles)
                outs.append(render.decode(model, feats, code, options.alpha, tiles).clamp(0, 1))
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    return step


def reference_step(model: StyleModel, style: torch.Tensor, device: torch.device) -> Step:
    """The reference way: per image, encode content and style, AdaIN, decode; a plain (not
    fused) fp32 model, eager."""

    def step(contents: torch.Tensor) -> torch.Tensor:
        outs = []
        with torch.no_grad():
            for content in contents.split(1):
                code = model.style_code(style.to(device))
                outs.append(model(content.to(device), code).clamp(0, 1).cpu())
        return torch.cat(outs)

    return step


def count_gflop(model: torch.nn.Module, size: Size, style_size: int) -> tuple[float, float]:
    """GFLOP (2 per multiply-add) of (stylising one ``size`` content, encoding one
    ``style_size`` square style), counted on meta tensors (whole images: tiling adds its halos)."""
    meta = copy.deepcopy(model).float().to("meta")
    content = torch.empty(1, 3, *dims(size), device="meta")
    style = torch.empty(1, 3, style_size, style_size, device="meta")
    with torch.no_grad():
        with FlopCounterMode(display=False) as style_counter:
            code = meta.style_code(style)
        with FlopCounterMode(display=False) as content_counter:
            meta(content, code)
    return content_counter.get_total_flops() / 1e9, style_counter.get_total_flops() / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(step: Step, contents: torch.Tensor, batch: int,
            device: torch.device) -> tuple[float, float, bool]:
    """Seconds per image, peak MiB and whether the peak is this window's, for ``step`` over
    ``contents`` in batches of ``batch`` (after one warm-up batch)."""
    step(contents[:batch])
    exact = _reset_peak(device)
    _sync(device)
    start = time.perf_counter()
    for chunk in contents.split(batch):
        step(chunk)
    _sync(device)
    seconds = (time.perf_counter() - start) / contents.shape[0]
    return seconds, _peak_mib(device), exact


def run_bench(config: BenchConfig, log: Callable[[str], None] | None = None) -> list[BenchRow]:
    """Measure both pipelines at every size; ``log`` hears about each as it finishes."""
    config.validate()
    stylizer = Stylizer(config.model, config.device, config.precision)
    if not isinstance(stylizer.model, StyleModel):
        kinds = " and ".join(name for name, kind in KINDS.items() if kind.styles_from_images)
        raise StylenormError(f"bench measures models that take their styles from images "
                             f"({kinds}); {config.model} is a {stylizer.model.kind!r} model")
    reference = reference_model(config, stylizer, log)
    generator = torch.Generator().manual_seed(0)
    style = torch.rand(1, 3, config.style_size, config.style_size, generator=generator)
    code = stylizer.style_code([style], None)
    short = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    fast_name = f"stylenorm {short.get(stylizer.dtype, stylizer.dtype)} channels-last"
    rows = []
    for size in config.sizes:
        contents = torch.rand(config.images, 3, *dims(size), generator=generator)
        content_gflop, _ = count_gflop(stylizer.model, size, config.style_size)
        runs = [(fast_name, fast_step(stylizer, code), config.batch, content_gflop)]
        if reference is not None:
            step = reference_step(reference, style, stylizer.device)
            gflop = sum(count_gflop(reference, size, config.style_size))
            runs.append(("reference fp32 eager", step, 1, gflop))
        for name, step, batch, gflop in runs:
            seconds, peak, exact = measure(step, contents, batch, stylizer.device)
            rows.append(BenchRow(name, size_label(size), batch, seconds, peak, exact, gflop))
            if log is not None:
                log(format_row(rows[-1]))
    return rows


def reference_model(config: BenchConfig, stylizer: Stylizer,
                    log: Callable[[str], None] | None) -> StyleModel | None:
    """The plain fp32 AdaIN model the reference pipeline runs, or None (not wanted or, for the
    lite model, no AdaIN model installed: a note says so)."""
    if not config.reference:
        return None
    if is_reference(stylizer.model):
        return load_model(config.model).to(stylizer.device)
    try:
        model = load_model(config.reference_model)
    except StylenormError as exc:
        if log is not None:
            log(f"note: no reference pipeline ({exc})")
        return None
    if not is_reference(model):
        kinds = " or ".join(name for name, kind in KINDS.items() if kind.reference)
        raise StylenormError(f"reference_model must be a model of kind {kinds}, as the public "
                             f"implementations run; {config.reference_model} is a "
                             f"{model.kind!r} model", params=("reference_model",))
    return model.to(stylizer.device)


HEADER = (f"{'size':>9}  {'pipeline':<30} {'batch':>5} {'img/s':>8} {'ms/img':>9} "
          f"{'peak MiB':>9} {'GFLOP/img':>10} {'GFLOP/s':>8}")


def format_row(row: BenchRow) -> str:
    peak = f"{row.peak_mib:.0f}{'' if row.peak_exact else '*'}"
    return (f"{row.size!s:>9}  {row.pipeline:<30} {row.batch:>5} {row.images_per_second:>8.3f} "
            f"{row.seconds_per_image * 1e3:>9.1f} {peak:>9} {row.gflop_per_image:>10.1f} "
            f"{row.gflops:>8.1f}")


def describe_machine(device: str | torch.device = "cpu") -> str:
    device = torch.device(device)
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    return f"{processor_name(device)} ({device.type}{threads}), torch {torch.__version__}"


def speedups(rows: list[BenchRow]) -> list[str]:
    """One line per size: stylenorm's throughput over the reference's."""
    lines = []
    for size in dict.fromkeys(r.size for r in rows):
        fast = [r for r in rows if r.size == size and not r.pipeline.startswith("reference")]
        ref = [r for r in rows if r.size == size and r.pipeline.startswith("reference")]
        if fast and ref:
            ratio = ref[0].seconds_per_image / fast[0].seconds_per_image
            lines.append(f"{size!s:>9}  stylenorm is {ratio:.2f}x the reference's images/s")
    return lines
