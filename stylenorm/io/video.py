"""Video decoding and encoding through PyAV (FFmpeg), imported only when a video is opened.

:class:`VideoReader` yields a clip's frames as RGB arrays with their timestamps and refuses, in
one line naming the file, what is not a video, has no video stream or is cut short.
:class:`VideoWriter` encodes frames with the input's timestamps (so frame rate, frame count and
duration are kept) and its rotation, and copies the input's audio packets unchanged, interleaved
by time. The container follows the output's extension.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import ImageError, OptionError

INSTALL_HINT = 'stylenorm video needs PyAV and OpenCV: pip install "stylenorm[video]"'

# extension -> (FFmpeg muxer, video encoder, pixel format)
CONTAINERS = {
    ".mp4": ("mp4", "libx264", "yuv420p"),
    ".m4v": ("mp4", "libx264", "yuv420p"),
    ".mov": ("mov", "libx264", "yuv420p"),
    ".mkv": ("matroska", "libx264", "yuv420p"),
    ".webm": ("webm", "libvpx-vp9", "yuv420p"),
    ".gif": ("gif", "gif", "pal8"),
}
DEFAULT_CRF = {"libx264": 18, "libvpx-vp9": 30}
MAX_GIF_FRAMES = 1000  # a GIF is for short clips (no compression between frames)
SHORT_BY_FRAMES = 2  # a clip that ends this many frames before its declared end is cut short


def optional_module(name: str):
    """Import ``name`` (``av``, ``cv2``) or say in one line how to install the video extra."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImageError(INSTALL_HINT) from None


def output_container(path: Path) -> tuple[str, str, str]:
    """(muxer, encoder, pixel format) for an output path, by its extension."""
    found = CONTAINERS.get(path.suffix.lower())
    if found is None:
        raise OptionError(f"{path}: unknown video extension {path.suffix!r}; use one of "
                          f"{', '.join(sorted(CONTAINERS))}", params=("output",))
    return found


@dataclass
class VideoInfo:
    """What the input declares: frame size, rate, frame count (0: unknown), duration in seconds
    (0: unknown) and whether it has an audio stream."""

    width: int
    height: int
    rate: Fraction
    frames: int
    duration: float
    has_audio: bool


@dataclass
class Frame:
    """One decoded frame: RGB (H, W, 3) uint8, its timestamp and time base, its rotation."""

    rgb: np.ndarray
    pts: int | None
    time_base: Fraction
    rotation: int = 0


class VideoReader:
    """A video file opened for decoding (use as a context manager)."""

    def __init__(self, path: str | Path) -> None:
        av = optional_module("av")
        self.path = Path(path)
        if not self.path.is_file():
            raise ImageError(f"{self.path}: no such file")
        try:
            self.container = av.open(str(self.path))
        except av.FFmpegError as exc:
            raise ImageError(f"{self.path}: not a readable video: not a video file, or one cut "
                             f"short or damaged ({reason(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise ImageError(f"{self.path}: has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.info = self._describe()

    def _describe(self) -> VideoInfo:
        s = self.stream
        rate = s.average_rate or s.guessed_rate or Fraction(25)
        duration = float(s.duration * s.time_base) if s.duration else 0.0
        if not duration and self.container.duration:
            duration = self.container.duration / 1_000_000
        return VideoInfo(s.codec_context.width, s.codec_context.height, Fraction(rate),
                         s.frames, duration, bool(self.container.streams.audio))

    def frames(self) -> Iterator[Frame]:
        """Every frame in presentation order; an error names a clip that is cut short."""
        av = optional_module("av")
        count, last = 0, None
        try:
            for frame in self.container.decode(self.stream):
                count, last = count + 1, frame
                yield Frame(frame.to_ndarray(format="rgb24"), frame.pts,
                            frame.time_base or self.stream.time_base, frame.rotation or 0)
        except av.FFmpegError as exc:
            raise ImageError(f"{self.path}: cut short or damaged after {count} frames "
                             f"({reason(exc)})") from None
        self._check_complete(count, last)

    def _check_complete(self, count: int, last) -> None:
        if count == 0:
            raise ImageError(f"{self.path}: its video stream holds no frame it can decode")
        info = self.info
        short = info.frames and count < info.frames
        if not short and info.duration and last is not None and last.time is not None:
            start = float(self.stream.start_time * self.stream.time_base) \
                if self.stream.start_time else 0.0
            short = last.time - start < info.duration - SHORT_BY_FRAMES / float(info.rate)
        if short:
            declared = f"{info.frames} frames" if info.frames else f"{info.duration:.2f} s"
            raise ImageError(f"{self.path}: cut short: decoded {count} frames of {declared}")

    def audio_packets(self) -> Iterator:
        """The first audio stream's packets as stored (a second demuxer, for the writer)."""
        av = optional_module("av")
        with av.open(str(self.path)) as container:
            for packet in container.demux(container.streams.audio[0]):
                if packet.dts is not None:
                    yield packet

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def palette_image(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A frame as 256 colours of its own (GIF): (indices (H, W), palette (256, 4) as PyAV takes
    it, alpha first) uint8."""
    from PIL import Image

    image = Image.fromarray(rgb).quantize(256, method=Image.Quantize.MEDIANCUT)
    colours = np.array(image.getpalette()[:768], np.uint8).reshape(-1, 3)
    palette = np.zeros((256, 4), np.uint8)
    palette[:, 0] = 255
    palette[: len(colours), 1:] = colours
    return np.asarray(image), palette


def reason(exc: Exception) -> str:
    """FFmpeg's words for an error, without the file name it repeats."""
    return getattr(exc, "strerror", None) or str(exc)


@dataclass
class EncodeOptions:
    """Quality: ``crf`` (None: the encoder's default here, 18 for H.264, 30 for VP9) and the
    x264 ``preset``; ``audio`` copies the input's audio stream."""

    crf: int | None = None
    preset: str = "medium"
    audio: bool = True

    def codec_options(self, encoder: str) -> dict[str, str]:
        crf = self.crf if self.crf is not None else DEFAULT_CRF.get(encoder)
        if encoder == "libx264":
            return {"crf": str(crf), "preset": self.preset}
        if encoder == "libvpx-vp9":
            return {"crf": str(crf), "b": "0", "deadline": "good", "cpu-used": "4",
                    "row-mt": "1"}
        return {}


class VideoWriter:
    """Encodes frames to ``path`` as the container ``output_name``'s extension says."""

    def __init__(self, path: Path, output_name: Path, reader: VideoReader, first: Frame,
                 options: EncodeOptions) -> None:
        av = optional_module("av")
        muxer, encoder, self.pix_fmt = output_container(output_name)
        self.output_name = output_name
        self.container = av.open(str(path), "w", format=muxer)
        height, width = first.rgb.shape[:2]
        self.stream = self.container.add_stream(encoder, rate=reader.info.rate,
                                                options=options.codec_options(encoder))
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = self.pix_fmt
        self.stream.codec_context.time_base = first.time_base
        if first.rotation:
            self.stream.set_display_rotation(first.rotation)
        self.audio, self.audio_out = None, None
        if options.audio and reader.info.has_audio and muxer != "gif":
            self._add_audio(reader)

    def _add_audio(self, reader: VideoReader) -> None:
        template = reader.container.streams.audio[0]
        name = template.codec_context.name
        if name not in self.container.supported_codecs:
            raise ImageError(f"{reader.path}: its {name} audio cannot be copied unchanged into "
                             f"{self.output_name.suffix}; choose .mkv or .mp4, or --no-audio")
        self.audio_out = self.container.add_stream_from_template(template)
        self.audio = reader.audio_packets()
        self.pending = None

    def write(self, rgb: np.ndarray, pts: int | None, time_base: Fraction) -> None:
        av = optional_module("av")
        if self.pix_fmt == "pal8":
            frame = av.VideoFrame.from_ndarray(palette_image(rgb), format="pal8")
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame = frame.reformat(format=self.pix_fmt)
        frame.pts, frame.time_base = pts, time_base
        self._mux(self.stream.encode(frame))

    def _mux(self, packets) -> None:
        for packet in packets:
            if packet.pts is not None and packet.time_base is not None:
                self._audio_until(float(packet.pts * packet.time_base))
            self.container.mux(packet)

    def _audio_until(self, seconds: float) -> None:
        """Mux the audio packets that start before ``seconds`` (all of them for infinity)."""
        while self.audio is not None:
            if self.pending is None:
                self.pending = next(self.audio, None)
                if self.pending is None:
                    self.audio = None
                    return
            packet = self.pending
            if float(packet.dts * packet.time_base) > seconds:
                return
            packet.stream = self.audio_out
            self.container.mux(packet)
            self.pending = None

    def finish(self) -> None:
        """Flush the encoder and the rest of the audio, and close the file."""
        self._mux(self.stream.encode())
        self._audio_until(float("inf"))
        self.container.close()

    def abort(self) -> None:
        self.container.close()
