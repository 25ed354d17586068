"""``stylenorm video``: a Typer command over :mod:`stylenorm.inference.video` (registered on the
main app by :mod:`stylenorm.cli.app`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..choices import (
    DEFAULT_MODEL,
    DEFAULT_PRECISION,
    DEFAULT_TILE_SIZE,
    MAX_WHOLE_PIXELS,
    VIDEO_MAX_PIXELS,
    Device,
)
from .batch import log_line, set_threads
from .errors import say, user_errors
from .options import (
    AlphaOpt,
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


@user_errors
def video(
    source: Path = typer.Argument(..., help="Input video (anything FFmpeg reads)."),
    styles: list[Path] = typer.Argument(
        None, help="One or more style images (none for a CIN model: see --style-index)."),
    output: Path = typer.Option(..., "--output", "-o", dir_okay=False,
                                help="Output video: .mp4, .mkv, .mov (H.264), .webm (VP9) or "
                                     ".gif (short clips); written atomically."),
    model: ModelOpt = DEFAULT_MODEL,
    alpha: AlphaOpt = 1.0,
    style_weights: StyleWeightsOpt = None,
    style_index: StyleIndexOpt = None,
    preserve_color: bool = typer.Option(False, help="Keep the colours (of the first frame)."),
    size: SizeOpt = 0,
    style_size: StyleSizeOpt = 512,
    temporal: bool = typer.Option(True, help="Tie frames together (smoothed statistics, "
                                  "flow-guided blending); --no-temporal stylises each frame "
                                  "on its own."),
    blend: float = typer.Option(0.7, min=0.0, max=1.0, help="Weight of the previous output, "
                                "carried along the optical flow, where it is trusted."),
    crf: int = typer.Option(None, min=0, max=63, help="Quality (lower is better): H.264 "
                            "default 18, VP9 default 30."),
    preset: str = typer.Option("medium", help="H.264 speed preset (ultrafast .. veryslow)."),
    audio: bool = typer.Option(True, help="Copy the input's audio streams unchanged."),
    start: float = typer.Option(0.0, min=0.0, help="Start this many seconds into the clip "
                                "(to try settings on a part; the audio is cut to match)."),
    duration: float = typer.Option(0.0, min=0.0, help="Stylise at most this many seconds "
                                   "(0: to the end)."),
    frames: int = typer.Option(0, min=0, help="Stylise at most this many frames (0: all)."),
    max_pixels: MaxPixelsOpt = VIDEO_MAX_PIXELS,
    device: DeviceOpt = Device.AUTO,
    precision: PrecisionOpt = DEFAULT_PRECISION,
    tile: TileOpt = False,
    tile_size: TileSizeOpt = DEFAULT_TILE_SIZE,
    max_whole_pixels: MaxWholePixelsOpt = MAX_WHOLE_PIXELS,
    threads: ThreadsOpt = 0,
    progress: bool = typer.Option(True, help="Show a progress bar (frames, fps, ETA)."),
) -> None:
    """Stylise the video SOURCE with STYLE (several styles are mixed), stable from frame to
    frame; frame rate, frame count, duration, rotation and audio are kept (--start,
    --duration and --frames stylise a part, to try settings)."""
    from ..inference.stylize import StylizeOptions, Stylizer, parse_weights
    from ..inference.temporal import TemporalOptions
    from ..inference.video import EncodeOptions, Span, VideoOptions, stylize_video

    options = VideoOptions(
        StylizeOptions(alpha=alpha, style_weights=parse_weights(style_weights),
                       preserve_color=preserve_color, size=size, style_size=style_size,
                       tile=tile, tile_size=tile_size, style_index=style_index,
                       max_whole_pixels=max_whole_pixels),
        TemporalOptions(enabled=temporal, blend=blend),
        EncodeOptions(crf=crf, preset=preset, audio=audio),
        Span(start=start, duration=duration, frames=frames), max_pixels=max_pixels)
    set_threads(threads)
    stylizer = Stylizer(model, device.value, precision.value)
    report = stylize_video(stylizer, source, styles or [], output, options, progress,
                           log=log_line)
    say(f"wrote {report.output}: {report.summary()}")
