"""Video encoding through PyAV (FFmpeg): :class:`VideoWriter` encodes frames with the reader's
clean timestamps (so frame rate, frame count and duration are kept) and its rotation, and
copies the input's audio packets unchanged, interleaved by time, cut to the frames written when
only part of the clip is read. The container follows the output's extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageError, OptionError
from .video import Frame, VideoReader, optional_module

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


def output_container(path: Path) -> tuple[str, str, str]:
    """(muxer, encoder, pixel format) for an output path, by its extension."""
    found = CONTAINERS.get(path.suffix.lower())
    if found is None:
        raise OptionError(f"{path}: unknown video extension {path.suffix!r}; use one of "
                          f"{', '.join(sorted(CONTAINERS))}", params=("output",))
    return found


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


@dataclass
class EncodeOptions:
    """Quality: ``crf`` (None: the encoder's default here, 18 for H.264, 30 for VP9) and the
    x264 ``preset``; ``audio`` copies the input's audio streams."""

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
    """Encodes frames to ``path`` as the container ``output_name``'s extension says.

    When the reader reads part of the clip, the output starts at 0 (timestamps shifted by the
    first frame's) and the audio is cut to the frames written."""

    def __init__(self, path: Path, output_name: Path, reader: VideoReader, first: Frame,
                 options: EncodeOptions) -> None:
        av = optional_module("av")
        muxer, encoder, self.pix_fmt = output_container(output_name)
        self.output_name = output_name
        self.whole = reader.span.whole
        self.origin = 0 if self.whole else first.pts  # ticks subtracted from every timestamp
        self.origin_s = float(self.origin * first.time_base)
        self.container = av.open(str(path), "w", format=muxer)
        height, width = first.rgb.shape[:2]
        self.stream = self.container.add_stream(encoder, rate=reader.rate,
                                                options=options.codec_options(encoder))
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = self.pix_fmt
        self.stream.codec_context.time_base = first.time_base
        if first.rotation:
            self.stream.set_display_rotation(first.rotation)
        self.audio, self.audio_out, self.pending = None, {}, None
        self.last_s = self.origin_s
        if options.audio and reader.info.has_audio and muxer != "gif":
            self._add_audio(reader)

    def _add_audio(self, reader: VideoReader) -> None:
        for template in reader.container.streams.audio:
            name = template.codec_context.name
            if name not in self.container.supported_codecs:
                raise ImageError(f"{reader.path}: its {name} audio cannot be copied unchanged "
                                 f"into {self.output_name.suffix}; choose .mkv or .mp4, or "
                                 f"--no-audio")
            self.audio_out[template.index] = self.container.add_stream_from_template(template)
        self.audio = reader.audio_packets()

    def write(self, rgb: np.ndarray, pts: int, time_base) -> None:
        av = optional_module("av")
        if self.pix_fmt == "pal8":
            frame = av.VideoFrame.from_ndarray(palette_image(rgb), format="pal8")
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame = frame.reformat(format=self.pix_fmt)
        frame.pts, frame.time_base = pts - self.origin, time_base
        self.last_s = float(pts * time_base)
        self._mux(self.stream.encode(frame))

    def _mux(self, packets) -> None:
        for packet in packets:
            if packet.pts is not None and packet.time_base is not None:
                self._audio_until(self.origin_s + float(packet.pts * packet.time_base))
            self.container.mux(packet)

    def _audio_until(self, seconds: float) -> None:
        """Mux the audio packets that start before ``seconds`` (input time); those before the
        first frame of a part are left out."""
        while self.audio is not None:
            if self.pending is None:
                self.pending = next(self.audio, None)
                if self.pending is None:
                    self.audio = None
                    return
            packet = self.pending
            start = float(packet.pts * packet.time_base) if packet.pts is not None \
                else float(packet.dts * packet.time_base)
            if start >= seconds:
                return
            self.pending = None
            if not self.whole and start < self.origin_s - 1e-6:
                continue
            if self.origin:
                shift = round(self.origin_s / packet.time_base)
                packet.dts -= shift
                if packet.pts is not None:
                    packet.pts -= shift
            packet.stream = self.audio_out[packet.stream.index]
            self.container.mux(packet)

    def finish(self, interval: float) -> None:
        """Flush the encoder and the audio (all of it for a whole clip; up to the end of the
        last frame, ``interval`` seconds long, for a part), and close the file."""
        self._mux(self.stream.encode())
        self._audio_until(float("inf") if self.whole else self.last_s + interval)
        self.container.close()

    def abort(self) -> None:
        self.container.close()
