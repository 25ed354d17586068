"""``stylenorm video`` over a corpus of awkward clips made here with PyAV (tiny, a few frames
each): H.264 with B-frames in AVI stamped in decode order, variable frame rate, rotation as a
display matrix and as a ``rotate`` tag, odd sizes, 10-bit, no audio, two audio streams, a header
that lies about the clip's length, a frame size declared past the pixel limit; and parts of a
clip (--start, --duration, --frames) with their audio cut to match."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

av = pytest.importorskip("av", reason="PyAV (the video extra) is not installed")
pytest.importorskip("cv2", reason="OpenCV (the video extra) is not installed")

from stylenorm.choices import VIDEO_MAX_PIXELS  # noqa: E402
from stylenorm.cli.app import app  # noqa: E402
from stylenorm.errors import ImageError  # noqa: E402
from stylenorm.io.video import Retimer, Span, VideoReader  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STYLE = REPO / "samples" / "style" / "mosaic.png"
SHARED_CLIP = REPO.parent / "shared" / "video" / "big_buck_bunny_480p_30s.mp4"
H264 = "libx264" if "libx264" in av.codecs_available else None
runner = CliRunner()


@dataclass
class Case:
    """A clip to write: its frame times (in ``time_base`` ticks), size, codec and container
    details, audio tones (Hz, one stream each); ``expect`` what a reader should find."""

    name: str
    ticks: list[int]
    time_base: Fraction = Fraction(1, 25)
    size: tuple[int, int] = (64, 48)
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    options: dict = field(default_factory=dict)
    tones: tuple[int, ...] = ()
    rotation: int = 0
    tags: dict = field(default_factory=dict)

    @property
    def times(self) -> list[float]:
        return [float(t * self.time_base) for t in self.ticks]


def pattern(i: int, width: int, height: int) -> np.ndarray:
    """Frame i: a gradient whose level encodes i (read back by :func:`index_of`) and a bar."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None]
    pixels[..., 1] = 16 + 9 * i
    pixels[:, (5 * i) % width] = 255
    return pixels


def index_of(rgb: np.ndarray) -> int:
    return round((float(np.median(rgb[..., 1])) - 16) / 9)


def write_case(case: Case, path: Path) -> Path:
    fmt = "avi" if path.suffix == ".avi" else None
    rate = 1 / (case.time_base * (case.ticks[1] - case.ticks[0]))
    with av.open(str(path), "w", format=fmt) as container:
        video = container.add_stream(case.codec, rate=rate, options=case.options)
        video.width, video.height = case.size
        video.pix_fmt = case.pix_fmt
        video.codec_context.time_base = case.time_base
        if case.codec == "mpeg4":
            video.codec_context.max_b_frames = 2
        if case.rotation:
            video.set_display_rotation(case.rotation)
        video.metadata.update(case.tags)
        tones = [container.add_stream("aac", rate=16000) for _ in case.tones]
        for i, tick in enumerate(case.ticks):
            frame = av.VideoFrame.from_ndarray(pattern(i, *case.size), format="rgb24")
            frame.pts, frame.time_base = tick, case.time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
        seconds = case.times[-1] + float(case.time_base * (case.ticks[-1] - case.ticks[-2]))
        for stream, hz in zip(tones, case.tones, strict=True):
            write_tone(container, stream, hz, seconds)
    return path


def write_tone(container, stream, hz: int, seconds: float) -> None:
    rate, block = 16000, 1024
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    for start in range(0, len(samples), block):
        frame = av.AudioFrame.from_ndarray(samples[None, start : start + block], format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def halve_declared_duration(path: Path) -> None:
    """Make a Matroska file's header claim half its length (segment and stream durations)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Info/Duration, an 8-byte float in milliseconds
    (ms,) = struct.unpack(">d", data[at + 3 : at + 11])
    data[at + 3 : at + 11] = struct.pack(">d", ms / 2)
    tag = data.find(b"00:00:0")  # the DURATION tag, same length
    old = data[tag : tag + 18].decode()
    new = f"00:00:{float(old[6:]) / 2:012.9f}"
    data[tag : tag + 18] = new.encode()
    path.write_bytes(bytes(data))


def even(ticks: int, step: int = 1) -> list[int]:
    return list(range(0, ticks * step, step))


VFR = [0, 40, 80, 200, 230, 300, 340, 420, 433, 500, 540, 640, 680, 720]
CASES = {
    # the OpenCV sample's shape: B-frames in AVI, stamped in decode order, header in 1/50 s
    "avi_bframes": Case("avi_bframes", even(24, 2), Fraction(1, 50), codec=H264 or "mpeg4",
                        options={"bf": "3"} if H264 else {}),
    "avi_mpeg4_bframes": Case("avi_mpeg4_bframes", even(16), codec="mpeg4"),
    "vfr": Case("vfr", VFR, Fraction(1, 1000), tones=(440,)),
    "rotation_matrix": Case("rotation_matrix", even(10), rotation=90, tones=(440,)),
    "rotation_tag": Case("rotation_tag", even(10), tags={"rotate": "270"}),
    "odd_size": Case("odd_size", even(12), size=(63, 47), pix_fmt="yuv444p"),
    "ten_bit": Case("ten_bit", even(12), pix_fmt="yuv420p10le",
                    codec="libx264" if H264 else "ffv1"),
    "no_audio": Case("no_audio", even(12)),
    "two_audio": Case("two_audio", even(15), tones=(440, 660)),
    "lying_header": Case("lying_header", even(20), Fraction(1, 25), tones=(440,)),
}
SUFFIX = {"avi_bframes": ".avi", "avi_mpeg4_bframes": ".avi", "rotation_matrix": ".mp4",
          "no_audio": ".mp4"}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    paths = {}
    for name, case in CASES.items():
        if case.codec not in av.codecs_available:
            continue
        paths[name] = write_case(case, folder / f"{name}{SUFFIX.get(name, '.mkv')}")
    halve_declared_duration(paths["lying_header"])
    return paths


def run(*args):
    return runner.invoke(app, ["video", *map(str, args), "--no-progress", "--threads", "1"])


@dataclass
class Decoded:
    times: list[float]
    frames: list[np.ndarray]
    rotation: int
    audio: list[list[bytes]]  # per audio stream, its packets
    audio_seconds: list[float]


def decode(path: Path) -> Decoded:
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    with av.open(str(path)) as container:
        streams = container.streams.audio
        audio = {s.index: [] for s in streams}
        ends = dict.fromkeys(audio, 0.0)
        for packet in container.demux(*streams) if streams else ():
            if packet.size:
                audio[packet.stream.index].append(bytes(packet))
                end = (packet.pts + packet.duration) * packet.time_base
                ends[packet.stream.index] = max(ends[packet.stream.index], float(end))
    return Decoded([f.time for f in decoded], [f.to_ndarray(format="rgb24") for f in decoded],
                   decoded[0].rotation, list(audio.values()), list(ends.values()))


def assert_times(case: Case, times: list[float]) -> None:
    """Strictly increasing and, from the first, the case's."""
    times = np.array(times) - times[0]
    assert np.all(np.diff(times) > 0), times
    expected = np.array(case.times) - case.times[0]
    if case.name.startswith("avi"):  # FFmpeg's AVI demuxer stamps the last packet a tick early
        times, expected = times[:-1], expected[:-1]
    assert np.allclose(times, expected, atol=2e-3), times


def check_output(case: Case, out: Path) -> Decoded:
    """The output holds the case's frames, in order, at its times, with its audio streams."""
    got = decode(out)
    assert len(got.times) == len(case.ticks)
    assert_times(case, got.times)
    assert len(got.audio) == len(case.tones)
    return got


@pytest.mark.parametrize("name", list(CASES))
def test_awkward_clips_are_read_in_order_with_clean_timestamps(corpus, name):
    if name not in corpus:
        pytest.skip(f"this PyAV build has no {CASES[name].codec} encoder")
    case = CASES[name]
    with VideoReader(corpus[name]) as reader:
        frames = list(reader.frames())
        interval = reader.interval
    assert [index_of(f.rgb) for f in frames] == list(range(len(case.ticks)))
    assert_times(case, [f.time for f in frames])
    assert frames[0].rgb.shape == (case.size[1], case.size[0], 3)
    if name == "avi_bframes":
        assert interval == pytest.approx(0.04)


@pytest.mark.parametrize("name", list(CASES))
def test_awkward_clips_are_stylised_whole(corpus, tmp_path, name):
    if name not in corpus:
        pytest.skip(f"this PyAV build has no {CASES[name].codec} encoder")
    case = CASES[name]
    out = tmp_path / "out.mkv"
    result = run(corpus[name], STYLE, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"{len(case.ticks)} frames" in result.output
    got = check_output(case, out)
    width, height = case.size
    assert got.frames[0].shape == (height - height % 2, width - width % 2, 3)
    assert got.rotation % 360 == (case.rotation or int(case.tags.get("rotate", 0))) % 360
    source = decode(corpus[name])
    assert got.audio == source.audio  # every audio stream, packets copied unchanged


def test_a_progress_total_follows_the_frames_not_the_header(corpus):
    with VideoReader(corpus["avi_bframes"]) as reader:
        assert reader.info.frames == 48  # the header counts 1/50 s ticks
        assert reader.estimate_frames() == 24
    with VideoReader(corpus["lying_header"]) as reader:
        assert reader.estimate_frames() == 10
        frames = list(reader.frames())
        assert reader.estimate_frames(len(frames), frames[-1].time) == 20


def test_the_retimer_sorts_decode_order_stamps():
    retimer = Retimer(2)
    for pts in (2, 8, 6, 10, 4):  # packets as an AVI stores them
        retimer.packet(pts)
    assert [retimer.next() for _ in range(5)] == [2, 4, 6, 8, 10]
    assert retimer.next() == 12  # no packet timestamp: one interval on
    retimer.packet(12)  # a repeated stamp is not allowed to go back
    assert retimer.next() == 14


@pytest.mark.parametrize(("flags", "first", "count"), [
    (["--start", "0.4"], 10, 5),
    (["--start", "0.2", "--duration", "0.3"], 5, 8),
    (["--frames", "6"], 0, 6),
    (["--start", "0.5", "--frames", "3"], 12, 3),
])
def test_a_part_of_the_clip_with_its_audio(corpus, tmp_path, flags, first, count):
    values = dict(zip(flags[::2], flags[1::2], strict=True))
    span = Span(float(values.get("--start", 0)), float(values.get("--duration", 0)),
                int(values.get("--frames", 0)))
    with VideoReader(corpus["two_audio"], span=span) as reader:
        assert [index_of(f.rgb) for f in reader.frames()] == list(range(first, first + count))
    out = tmp_path / "part.mp4"
    result = run(corpus["two_audio"], STYLE, "-o", out, "--no-temporal", *flags)
    assert result.exit_code == 0, result.output
    assert f"{count} frames ({count / 25:.2f} s)" in result.output
    got = decode(out)
    assert len(got.times) == count and got.times[0] == pytest.approx(0, abs=1e-3)
    assert len(got.audio) == 2
    for end in got.audio_seconds:  # AAC packets of 64 ms: cut at a packet's edge
        assert count / 25 - 0.07 <= end <= count / 25 + 0.07


def test_a_part_past_the_end_is_one_line(corpus, tmp_path):
    result = run(corpus["no_audio"], STYLE, "-o", tmp_path / "out.mp4", "--start", "5")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "holds no frame it can decode from 5 s" in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not SHARED_CLIP.is_file(), reason=f"real footage not at {SHARED_CLIP}")
def test_a_part_of_real_footage(tmp_path):
    out = tmp_path / "part.mp4"
    result = run(SHARED_CLIP, STYLE, "-o", out, "--start", "10", "--duration", "1", "--size",
                 "64", "--preset", "ultrafast")
    assert result.exit_code == 0, result.output
    got = decode(out)
    assert len(got.times) == 24 and got.times[0] == pytest.approx(0, abs=1e-3)
    assert len(got.audio) == 1 and 0.95 <= got.audio_seconds[0] <= 1.05


def write_large(path: Path, width: int, height: int, frames: int = 2) -> Path:
    """A few flat frames at a large size: H.264 (ultrafast) keeps the file a few kB."""
    codec = H264 or "mpeg4"
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=25,
                                     options={"preset": "ultrafast"} if H264 else {})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane, level in zip(frame.planes, (60 + 40 * i, 100, 150), strict=True):
                plane.update(bytes([level]) * plane.buffer_size)
            frame.pts, frame.time_base = i, Fraction(1, 25)
            container.mux(video.encode(frame))
        container.mux(video.encode())
    return path


@pytest.fixture(scope="session")
def large_clip(tmp_path_factory) -> Path:
    return write_large(tmp_path_factory.mktemp("large") / "large.mkv", 2400, 1600)


def test_a_declared_frame_size_past_the_limit_is_one_line(large_clip, tmp_path):
    out = tmp_path / "out.mp4"
    result = run(large_clip, STYLE, "-o", out, "--max-pixels", "3000000", "--size", "32")
    assert result.exit_code == 1, result.output
    assert result.output == (f"error: {large_clip}: declares 2400x1600 frames (3840000 pixels); "
                             "the limit is 3000000 (raise it with --max-pixels)\n")
    assert not list(tmp_path.iterdir())


def test_the_default_limit_refuses_more_than_8k(tmp_path):
    huge = write_large(tmp_path / "huge.mkv", 8200, 4400, frames=1)  # 36 Mpx, 100 kB on disk
    assert huge.stat().st_size < 1_000_000
    result = run(huge, STYLE, "-o", tmp_path / "out.mp4")
    assert result.exit_code == 1 and "declares 8200x4400 frames" in result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "out.mp4").exists()


def test_the_declared_frame_size_is_refused_before_any_frame_is_decoded(tmp_path):
    """A header declaring 8192x4352 frames over a stream of 256x256 ones: refused as declared.
    Opening a file probes it by decoding a frame (which would allocate one of the declared
    size); had a frame been decoded first, the stream's 256x256 would have been reported."""
    honest = write_large(tmp_path / "honest.mkv", 256, 256, frames=1)
    data = honest.read_bytes()
    width, height = b"\xb0\x82\x01\x00", b"\xba\x82\x01\x00"  # Matroska's PixelWidth/Height
    assert data.count(width) == data.count(height) == 1
    liar = tmp_path / "liar.mkv"
    liar.write_bytes(data.replace(width, b"\xb0\x82\x20\x00").replace(height,
                                                                       b"\xba\x82\x11\x00"))
    with pytest.raises(ImageError) as refused:
        VideoReader(liar)
    assert str(refused.value) == (f"{liar}: declares 8192x4352 frames (35651584 pixels); the "
                                  f"limit is {VIDEO_MAX_PIXELS} (raise it with --max-pixels)")
    with VideoReader(liar, max_pixels=8192 * 4352) as reader:  # past the limit: as it decodes
        assert [f.rgb.shape for f in reader.frames()] == [(256, 256, 3)]


def test_frames_are_reduced_while_8_bit(large_clip, tmp_path):
    with VideoReader(large_clip, size=32) as reader:
        frames = [f.rgb for f in reader.frames()]
    assert [f.shape for f in frames] == [(32, 48, 3)] * 2 and frames[0].dtype == np.uint8
    assert frames[1].mean() > frames[0].mean()  # the two frames, in order
    out = tmp_path / "small.mp4"
    result = run(large_clip, STYLE, "-o", out, "--size", "32")
    assert result.exit_code == 0, result.output
    assert decode(out).frames[0].shape == (32, 48, 3)
