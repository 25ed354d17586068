"""``stylenorm video``: stylise a clip frame by frame, stable from frame to frame.

Frames stream through three threads with bounded queues between them (``queue_frames`` frames
each way, never the whole clip): a reader decodes frames (PyAV), the calling thread runs the
model and the temporal filter (:mod:`.temporal`), a writer encodes and muxes the outputs with
the input's audio packets. The output is written to a temporary file beside it and renamed when
complete, so an interrupted run leaves no half-written video (and a rerun removes a killed
run's leftovers).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import StylenormError
from ..io.atomic import atomic_write, stale_temporaries
from ..io.images import resize_shorter_side
from ..io.video import VIDEO_MAX_PIXELS, Frame, Span, VideoReader, optional_module
from ..io.video_writer import MAX_GIF_FRAMES, EncodeOptions, VideoWriter, output_container
from ..models.protocol import FixedStyleModel
from .finite import finite_frame
from .progress import on_terminal
from .stylize import PROGRESS_DELAY_S, StylizeOptions, Stylizer
from .temporal import TemporalFilter, TemporalOptions

Log = Callable[[str], None]
_END = object()


@dataclass
class VideoReport:
    """What a run did and how fast: frames, wall seconds, and the seconds spent in the model
    and in the temporal step (flow, masks, blending) in the model's thread."""

    output: Path
    frames: int = 0
    seconds: float = 0.0
    clip_seconds: float = 0.0  # the output's duration
    model_seconds: float = 0.0
    temporal_seconds: float = 0.0
    scene_cuts: int = 0
    size: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        per = 1000 / max(self.frames, 1)
        share = self.temporal_seconds / self.model_seconds if self.model_seconds else 0.0
        return (f"{self.frames} frames ({self.clip_seconds:.2f} s) at {self.size[0]}x"
                f"{self.size[1]} in {self.seconds:.1f} s ({self.fps:.2f} fps): model "
                f"{self.model_seconds * per:.0f} ms/frame, temporal step "
                f"{self.temporal_seconds * per:.0f} ms/frame ({share:.2f}x the model)")


def in_background(items: Iterable, size: int) -> Iterator:
    """Iterate ``items`` in a thread, at most ``size`` ahead; its exceptions re-raise here.
    Closing the iterator stops the thread (and waits for it)."""
    box: queue.Queue = queue.Queue(size)
    stop = threading.Event()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_END)
        except BaseException as exc:  # handed to the consumer
            offer(exc)

    thread = threading.Thread(target=produce, name="stylenorm-decode", daemon=True)
    thread.start()
    try:
        while (item := box.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # the consumer stopped early: let the producer go before its source closes
        stop.set()
        thread.join()


class BackgroundWriter:
    """Runs ``write(item)`` in a thread over a queue of at most ``size`` items."""

    def __init__(self, write: Callable, size: int) -> None:
        self.box: queue.Queue = queue.Queue(size)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(write,), name="stylenorm-encode",
                                       daemon=True)
        self.thread.start()

    def _run(self, write: Callable) -> None:
        while (item := self.box.get()) is not _END:
            if self.error is None:
                try:
                    write(item)
                except BaseException as exc:  # re-raised in the caller's thread
                    self.error = exc

    def put(self, item) -> None:
        self._check()
        self.box.put(item)

    def close(self) -> None:
        self.box.put(_END)
        self.thread.join()
        self._check()

    def _check(self) -> None:
        if self.error is not None:
            raise self.error


@dataclass
class VideoOptions:
    """How the clip is made: stylisation (``stylize``), temporal consistency, encoding, the part
    of the clip read (``span``), the most pixels a frame may declare, and how many frames may
    wait in each queue."""

    stylize: StylizeOptions = field(default_factory=lambda: StylizeOptions(size=0))
    temporal: TemporalOptions = field(default_factory=TemporalOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    span: Span = field(default_factory=Span)
    max_pixels: int = VIDEO_MAX_PIXELS
    queue_frames: int = 4


class ClipStylizer:
    """One clip: a style code computed once, the temporal filter, the per-frame model call."""

    def __init__(self, stylizer: Stylizer, styles: list[torch.Tensor], options: VideoOptions,
                 report: VideoReport) -> None:
        self.stylizer, self.styles, self.options = stylizer, styles, options
        if styles and not isinstance(stylizer.model, FixedStyleModel):
            options.stylize.validate(len(styles))  # before the first frame is decoded
        self.filter = TemporalFilter(options.temporal)
        if options.temporal.enabled:  # OpenCV's pool as wide as torch's (--threads)
            optional_module("cv2").setNumThreads(torch.get_num_threads())
        self.report = report
        self.code = None

    def __call__(self, frame: Frame) -> np.ndarray:
        content = torch.from_numpy(frame.rgb).permute(2, 0, 1)[None].float().div(255)
        if self.options.stylize.size:
            content = resize_shorter_side(content, self.options.stylize.size)
        content = even_size(content)
        rgb = content[0].permute(1, 2, 0).numpy()
        start = time.perf_counter()
        self.filter.observe(rgb)
        middle = time.perf_counter()
        styled = self.stylise(content)
        end = time.perf_counter()
        out = self.filter.blend(styled[0].permute(1, 2, 0).numpy())
        self.report.model_seconds += end - middle
        self.report.temporal_seconds += (middle - start) + (time.perf_counter() - end)
        return out

    def stylise(self, content: torch.Tensor) -> torch.Tensor:
        """One frame through the render path, every model kind alike (a CIN model ignores the
        smoothed statistics: it normalises at every layer itself)."""
        stylizer, options = self.stylizer, self.options.stylize
        if self.code is None:  # one code for the whole clip
            self.code = stylizer.code_for(content, self.styles, options)
        return stylizer.render(content, self.code, options, adjust=self.filter.smooth)


def even_size(content: torch.Tensor) -> torch.Tensor:
    """Crop a last odd row or column: 4:2:0 video needs even sides."""
    h, w = content.shape[-2:]
    return content[..., : h - h % 2, : w - w % 2]


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def stylize_video(stylizer: Stylizer, source: str | Path, style_paths: list[Path],
                  output: str | Path, options: VideoOptions | None = None,
                  progress: bool = True, log: Log | None = None) -> VideoReport:
    """Stylise the clip ``source`` into ``output`` (container by extension); see the module
    doc. Returns what was done and how fast."""
    options = options or VideoOptions()
    options.stylize.validate_values()
    options.temporal.validate()
    options.span.validate()
    source, output = Path(source), Path(output)
    output_container(output)
    if output.exists() and output.resolve() == source.resolve():
        raise StylenormError(f"{output}: output path is the input; refusing to overwrite")
    styles = stylizer.load_styles(list(map(Path, style_paths)), options.stylize)
    for stale in stale_temporaries(output.parent if str(output.parent) else Path("."),
                                   output.name):
        stale.unlink(missing_ok=True)
    report = VideoReport(output)
    with VideoReader(source, options.max_pixels, options.stylize.size, options.span) as reader:
        frames = reader.estimate_frames() or 0
        if output.suffix.lower() == ".gif" and frames > MAX_GIF_FRAMES:
            raise StylenormError(f"{source}: about {frames} frames is too long for a GIF (at "
                                 f"most {MAX_GIF_FRAMES}); write .mp4, .webm or .mkv, or read "
                                 f"part of it (--duration, --frames)")
        if reader.info.has_audio and not options.encode.audio:
            report.notes.append("note: the audio stream is left out (--no-audio)")
        elif reader.info.has_audio and output.suffix.lower() == ".gif":
            report.notes.append("note: a GIF holds no sound; the audio stream is left out")
        clip = ClipStylizer(stylizer, styles, options, report)
        start = time.perf_counter()
        atomic_write(output, lambda tmp: _run(reader, clip, tmp, output, options, progress))
        report.seconds = time.perf_counter() - start
        report.scene_cuts = clip.filter.cuts
    for note in report.notes if log is not None else ():
        log(note)
    return report


def _run(reader: VideoReader, clip: ClipStylizer, tmp: Path, output: Path,
         options: VideoOptions, progress: bool) -> None:
    frames = in_background(reader.frames(), options.queue_frames)
    writer = sink = None
    gif = output.suffix.lower() == ".gif"
    with tqdm(total=reader.estimate_frames(), unit="frame", desc="video",
              disable=not on_terminal(progress), file=sys.stderr, dynamic_ncols=True,
              delay=PROGRESS_DELAY_S, leave=False) as bar:
        try:
            for frame in frames:
                out = to_uint8(finite_frame(clip(frame), clip.report.frames))
                if writer is None:
                    first = Frame(out, frame.pts, frame.time_base, frame.rotation, frame.time)
                    writer = VideoWriter(tmp, output, reader, first, options.encode)
                    sink = BackgroundWriter(lambda item, write=writer.write: write(*item),
                                            options.queue_frames)
                    clip.report.size = (out.shape[1], out.shape[0])
                sink.put((out, frame.pts, frame.time_base))
                _count(reader, clip.report, frame, bar, gif)
            sink.close()
            writer.finish(reader.interval)
            clip.report.clip_seconds = float((frame.pts - reader.first_pts) * frame.time_base) \
                + reader.interval
        except BaseException:
            frames.close()
            if sink is not None:
                sink.box.put(_END)
                sink.thread.join()
            if writer is not None:
                writer.abort()
            raise


def _count(reader: VideoReader, report: VideoReport, frame: Frame, bar, gif: bool) -> None:
    """One more frame written: the GIF limit, the progress bar's total corrected from the
    frames decoded so far (the header's count is only a first estimate)."""
    report.frames += 1
    if gif and report.frames > MAX_GIF_FRAMES:
        raise StylenormError(f"{reader.path}: more than {MAX_GIF_FRAMES} frames is too long "
                             f"for a GIF; write .mp4, .webm or .mkv")
    bar.total = max(report.frames, reader.estimate_frames(report.frames, frame.time) or 0)
    bar.update(1)


def stylize_frames(stylizer: Stylizer, frames: Iterable[np.ndarray], styles: list[torch.Tensor],
                   options: VideoOptions | None = None,
                   report: VideoReport | None = None) -> list[np.ndarray]:
    """Stylise in-memory frames ((H, W, 3) float in [0, 1], even sides) as :func:`stylize_video`
    does a file's, without decoding or encoding; returns float32 outputs in [0, 1]. For
    measuring (warping error, style loss, speed)."""
    options = options or VideoOptions()
    clip = ClipStylizer(stylizer, styles, options, report or VideoReport(Path()))
    outputs = []
    for rgb in frames:
        pixels = to_uint8(rgb)
        outputs.append(np.clip(clip(Frame(pixels, None, Fraction(1))), 0, 1))
    return outputs
