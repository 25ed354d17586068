"""Video decoding through PyAV (FFmpeg), imported only when a video is opened.

:class:`VideoReader` yields a clip's frames as RGB arrays, reduced to the working size while
still 8-bit, with clean presentation timestamps, and refuses in one line naming the file what
is not a video, has no video stream, declares frames larger than its pixel limit or is cut
short. What a container's header says (frame count, duration, rate) is a hint: counts and
durations come from what decodes. :mod:`.video_writer` encodes the results.

Timestamps. Some containers stamp frames in decode order (AVI with B-frames: 2, 8, 6, 10, 4,
...), so the decoder hands back frames in presentation order with shuffled timestamps. The
packets' timestamps are the same set in another order, and a decoder cannot output frame k
before it has read the packets of every frame shown before it, so the smallest timestamp not
yet given out, over the packets read so far, is frame k's (:class:`Retimer`). A timestamp that
is missing or not after the previous one becomes the previous plus the clip's typical frame
interval, so the output's timestamps always increase.
"""

from __future__ import annotations

import heapq
import importlib
import re
import statistics
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..choices import VIDEO_MAX_PIXELS
from ..errors import ImageError, OptionError, install_hint
from .images import resized_size

INSTALL_HINT = f"stylenorm video needs PyAV and OpenCV: {install_hint('video')}"
SHORT_BY_FRAMES = 2  # a clip that ends this many frames before its declared end is cut short
INT_MAX = 2**31 - 1  # FFmpeg's largest max_pixels (the probing decoders refuse larger frames)


def optional_module(name: str):
    """Import ``name`` (``av``, ``cv2``) or say in one line how to install the video extra."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImageError(INSTALL_HINT) from None


def reason(exc: Exception) -> str:
    """FFmpeg's words for an error, without the file name it repeats."""
    return getattr(exc, "strerror", None) or str(exc)


@dataclass
class Span:
    """The part of a clip to read: from ``start`` seconds, at most ``duration`` seconds (0: to
    the end) and at most ``frames`` frames (0: all)."""

    start: float = 0.0
    duration: float = 0.0
    frames: int = 0

    @property
    def whole(self) -> bool:
        return not (self.start or self.duration or self.frames)

    def validate(self) -> None:
        for name in ("start", "duration", "frames"):
            if getattr(self, name) < 0:
                raise OptionError(f"--{name} must be >= 0; got {getattr(self, name)}",
                                  params=(name,))


@dataclass
class VideoInfo:
    """What the input's header declares (hints, not promises): frame size, rate, frame count
    (0: unknown), duration in seconds (0: unknown), the number of audio streams."""

    width: int
    height: int
    rate: Fraction
    frames: int
    duration: float
    audio_streams: int

    @property
    def has_audio(self) -> bool:
        return self.audio_streams > 0


@dataclass
class Frame:
    """One decoded frame: RGB (H, W, 3) uint8, its clean timestamp ``pts`` in ``time_base``
    ticks, its time in seconds from the clip's start, its rotation in degrees."""

    rgb: np.ndarray
    pts: int | None
    time_base: Fraction
    rotation: int = 0
    time: float = 0.0


class Retimer:
    """Presentation timestamps for decoded frames, from their packets' (see the module doc).

    ``interval`` is the expected frame interval in ticks, a hint until frames arrive."""

    def __init__(self, interval: float) -> None:
        self.pending: list[int] = []
        self.steps: deque[int] = deque(maxlen=64)
        self.hint = max(interval, 1.0)
        self.last: int | None = None

    def packet(self, pts: int | None) -> None:
        if pts is not None:
            heapq.heappush(self.pending, pts)

    @property
    def interval(self) -> float:
        """The typical frame interval in ticks (the median of recent ones)."""
        return float(statistics.median(self.steps)) if self.steps else self.hint

    def next(self) -> int:
        """The next decoded frame's timestamp."""
        found = heapq.heappop(self.pending) if self.pending else None
        if self.last is None:
            value = found if found is not None else 0
        else:
            value = found if found is not None and found > self.last \
                else self.last + max(1, round(self.interval))
            self.steps.append(value - self.last)
        self.last = value
        return value


def _stream_duration(stream, container) -> float:
    """The video stream's declared duration in seconds: its own, its DURATION tag (Matroska),
    else the container's (0 when none is known)."""
    if stream.duration:
        return float(stream.duration * stream.time_base)
    tag = next((v for k, v in stream.metadata.items() if k.lower() == "duration"), "")
    found = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", tag.strip())
    if found:
        hours, minutes, seconds = found.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return container.duration / 1_000_000 if container.duration else 0.0


class VideoReader:
    """A video file opened for decoding (use as a context manager): frames of ``span`` with
    the shorter side ``size`` (0: as decoded), after checking the declared frame size against
    ``max_pixels``."""

    def __init__(self, path: str | Path, max_pixels: int = VIDEO_MAX_PIXELS, size: int = 0,
                 span: Span | None = None) -> None:
        av = optional_module("av")
        self.path, self.max_pixels, self.size = Path(path), max_pixels, size
        self.span = span or Span()
        if not self.path.is_file():
            raise ImageError(f"{self.path}: no such file")
        self._check_header(av)
        self.container = self._open(av, {"max_pixels": str(min(max_pixels, INT_MAX))})
        if not self.container.streams.video:
            self.container.close()
            raise ImageError(f"{self.path}: has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.info = self._describe()
        try:
            self._check_pixels(self.info.width, self.info.height, "declares")
        except ImageError:
            self.container.close()
            raise
        tb = self.stream.time_base or Fraction(1, 90000)
        self.time_base = Fraction(tb)
        self.start_pts = self.stream.start_time or 0
        self.retimer = Retimer(1 / float(self.info.rate * self.time_base))
        self.out_size: tuple[int, int] | None = None
        self.first_pts: int | None = None

    def _open(self, av, options: dict[str, str]):
        """The container opened with ``options`` for it and its streams' probing decoders."""
        try:
            return av.open(str(self.path), options=options)
        except av.FFmpegError as exc:
            raise ImageError(f"{self.path}: not a readable video: not a video file, or one cut "
                             f"short or damaged ({reason(exc)})") from None

    def _check_header(self, av) -> None:
        """Refuse a frame size past ``max_pixels`` as the header declares it, before any frame
        is decoded: opening a file probes it by decoding a frame at that size, so the header
        is read first with decoding skipped (FFmpeg's ``skip_frame=all``)."""
        with self._open(av, {"skip_frame": "all"}) as container:
            streams = container.streams.video
            if streams and streams[0].codec_context is not None:
                context = streams[0].codec_context
                self._check_pixels(context.width, context.height, "declares")

    def _describe(self) -> VideoInfo:
        s = self.stream
        rate = s.average_rate or s.guessed_rate or Fraction(25)
        if s.guessed_rate and s.average_rate and s.guessed_rate < s.average_rate:
            rate = s.guessed_rate  # AVI counting ticks finer than its frames
        return VideoInfo(s.codec_context.width, s.codec_context.height, Fraction(rate),
                         s.frames, _stream_duration(s, self.container),
                         len(self.container.streams.audio))

    def _check_pixels(self, width: int, height: int, verb: str) -> None:
        if width * height > self.max_pixels:
            raise ImageError(f"{self.path}: {verb} {width}x{height} frames ({width * height} "
                             f"pixels); the limit is {self.max_pixels} (raise it with "
                             f"--max-pixels)")

    @property
    def rate(self) -> Fraction:
        """The frame rate measured on the frames decoded so far (the header's before)."""
        ticks = Fraction(self.retimer.interval).limit_denominator(1000)
        return Fraction(1) / (ticks * self.time_base)

    @property
    def interval(self) -> float:
        """The typical frame interval in seconds."""
        return float(self.retimer.interval * self.time_base)

    def estimate_frames(self, count: int = 0, time: float | None = None) -> int | None:
        """How many frames this read will give: from the header before any frame, then from
        ``count`` frames decoded up to ``time`` (seconds) and the declared end."""
        span, info = self.span, self.info
        end = info.duration or None
        if span.duration:
            end = min(end or float("inf"), span.start + span.duration)
        if end is None:
            estimate = max(info.frames, count) or None
        elif time is None:
            estimate = round((end - span.start) / self.interval)
        else:
            estimate = count + max(0, round((end - time) / self.interval) - 1)
        if span.frames:
            estimate = min(estimate or span.frames, span.frames)
        return estimate

    def frames(self) -> Iterator[Frame]:
        """The span's frames in presentation order; an error names a clip cut short."""
        span, count, last = self.span, 0, None
        rotation = self._rotation()
        for decoded in self._decoded():
            pts = self.retimer.next()
            time = float((pts - self.start_pts) * self.time_base)
            if time < span.start - self.interval / 2:
                continue
            if span.frames and count >= span.frames or \
                    span.duration and time >= span.start + span.duration - 1e-6:
                return
            if self.first_pts is None:
                self.first_pts = pts
            self._check_pixels(decoded.width, decoded.height, "holds")
            yield Frame(self._pixels(decoded), pts, self.time_base,
                        decoded.rotation or rotation, time)
            count, last = count + 1, time
        self._check_complete(count, last)

    def _decoded(self) -> Iterator:
        """Decoded PyAV frames, each packet's timestamp handed to the retimer first."""
        av = optional_module("av")
        count = 0
        try:
            if self.span.start > 0:
                target = self.start_pts + int(self.span.start / self.time_base)
                self.container.seek(target, stream=self.stream, backward=True)
            for packet in self.container.demux(self.stream):
                if packet.size:
                    self.retimer.packet(packet.pts)
                for frame in packet.decode():
                    count += 1
                    yield frame
        except av.FFmpegError as exc:
            raise ImageError(f"{self.path}: cut short or damaged after {count} frames "
                             f"({reason(exc)})") from None

    def _rotation(self) -> int:
        """The clip's rotation from a ``rotate`` tag (frames' display matrices win)."""
        tag = next((v for k, v in self.stream.metadata.items() if k.lower() == "rotate"), "0")
        try:
            return int(float(tag)) % 360
        except ValueError:
            return 0

    def _pixels(self, frame) -> np.ndarray:
        """RGB uint8 at the working size, resized by FFmpeg before any float conversion."""
        if self.out_size is None:
            self.out_size = resized_size(frame.width, frame.height, self.size)
        width, height = self.out_size
        if (frame.width, frame.height) != (width, height) or frame.format.name != "rgb24":
            shrink = width * height < frame.width * frame.height
            frame = frame.reformat(width=width, height=height, format="rgb24",
                                   interpolation="AREA" if shrink else "BICUBIC")
        return frame.to_ndarray()

    def _check_complete(self, count: int, last: float | None) -> None:
        if count == 0 or last is None:
            where = f" from {self.span.start:g} s" if self.span.start else ""
            raise ImageError(f"{self.path}: its video stream holds no frame it can decode"
                             f"{where}")
        declared = self.info.duration
        end = last + self.interval
        if declared and end < declared - SHORT_BY_FRAMES * self.interval:
            raise ImageError(f"{self.path}: cut short: decoded {count} frames, {end:.2f} s of "
                             f"the {declared:.2f} s it declares")

    def audio_packets(self) -> Iterator:
        """The audio streams' packets as stored, in file order (a second demuxer)."""
        av = optional_module("av")
        with av.open(str(self.path)) as container:
            for packet in container.demux(*container.streams.audio):
                if packet.dts is not None and packet.size:
                    yield packet

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
