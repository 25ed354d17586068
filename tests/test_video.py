"""``stylenorm video``: streams kept, temporal consistency, atomic output and one-line errors, on
tiny clips made here (a sample photo panned and zoomed under a sliding sprite, with a tone)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

av = pytest.importorskip("av", reason="PyAV (the video extra) is not installed")
pytest.importorskip("cv2", reason="OpenCV (the video extra) is not installed")

from known_motion import CameraPath, pan_zoom_clip, save_clip  # noqa: E402

from stylenorm.cli.app import app  # noqa: E402
from stylenorm.inference.flow import clip_warping_error  # noqa: E402
from stylenorm.inference.stylize import StylizeOptions, Stylizer  # noqa: E402
from stylenorm.inference.temporal import TemporalFilter, TemporalOptions  # noqa: E402
from stylenorm.inference.video import VideoOptions, stylize_frames  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
STYLE = SAMPLES / "style" / "mosaic.png"
runner = CliRunner()


def rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    image = Image.open(path).convert("RGB")
    if size is not None:
        image = image.resize(size)
    return np.asarray(image, dtype=np.float32) / 255


def make_clip(size=(96, 64), frames=12):
    photo = rgb(SAMPLES / "content" / "rocket.jpg")
    sprite = rgb(SAMPLES / "content" / "cat.jpg", (size[0] // 4, size[1] // 4))
    return pan_zoom_clip(photo, sprite, CameraPath(size, frames, pan=(2.5, 0.8), scale=2.0))


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory) -> Path:
    return save_clip(make_clip().frames, tmp_path_factory.mktemp("clip") / "in.mp4", fps=12)


def run(*args):
    return runner.invoke(app, ["video", *map(str, args), "--no-progress", "--threads", "1"])


def streams(path: Path) -> dict:
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        audio = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size] \
            if container.streams.audio else []
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return {"frames": len(frames), "rate": rate, "rotation": frames[0].rotation,
            "duration": float(frames[-1].time - frames[0].time), "audio": audio,
            "size": (frames[0].width, frames[0].height)}


def test_frame_count_rate_duration_and_audio_are_kept(clip_file, tmp_path):
    out = tmp_path / "out.mp4"
    result = run(clip_file, STYLE, "-o", out)
    assert result.exit_code == 0, result.output
    assert "12 frames" in result.output and "fps" in result.output
    before, after = streams(clip_file), streams(out)
    assert after["frames"] == before["frames"] == 12
    assert after["rate"] == before["rate"] == 12
    assert after["duration"] == pytest.approx(before["duration"], abs=1e-3)
    assert after["size"] == before["size"]
    assert before["audio"] and after["audio"] == before["audio"]  # packets copied unchanged


@pytest.mark.parametrize("extension", [".mkv", ".webm", ".gif"])
def test_containers_follow_the_extension(clip_file, tmp_path, extension):
    out = tmp_path / f"out{extension}"
    result = run(clip_file, STYLE, "-o", out, "--no-audio", "--size", "32")
    assert result.exit_code == 0, result.output
    after = streams(out)
    assert after["frames"] == 12 and min(after["size"]) == 32
    with av.open(str(out)) as container:
        assert container.format.name.split(",")[0] in {"matroska", "gif"}


def test_rotation_is_kept(tmp_path):
    source = save_clip(make_clip(frames=3).frames, tmp_path / "rotated.mp4", rotation=90)
    out = tmp_path / "out.mkv"
    assert run(source, STYLE, "-o", out).exit_code == 0
    assert streams(source)["rotation"] == 90 and streams(out)["rotation"] == 90


def test_audio_that_the_container_cannot_hold_is_one_line(clip_file, tmp_path):
    out = tmp_path / "out.webm"
    result = run(clip_file, STYLE, "-o", out)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "aac audio cannot be copied" in result.output
    assert not out.exists() and not list(tmp_path.iterdir())


def bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    text = folder / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    sound = folder / "tone.m4a"
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    whole = save_clip(make_clip(frames=24).frames, folder / "whole.mkv")
    cut = folder / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return {"text": (text, "not a readable video"), "audio only": (sound, "no video stream"),
            "cut short": (cut, "cut short")}


def test_bad_inputs_are_one_line_and_leave_nothing(tmp_path):
    cases = bad_inputs(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for source, expected in cases.values():
        result = run(source, STYLE, "-o", out_dir / "out.mp4")
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"error: {source}") and expected in result.output
        assert result.output.count("\n") == 1
        assert not list(out_dir.iterdir())


def test_a_missing_extra_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "av", None)
    result = run(tmp_path / "x.mp4", STYLE, "-o", tmp_path / "out.mp4")
    assert result.exit_code == 1
    assert 'pip install -e ".[video]"' in result.output


def test_temporal_step_halves_the_warping_error():
    clip = make_clip(size=(192, 112), frames=10)  # 0.38x here; 0.45x at 128x80 (DIS needs room)
    stylizer = Stylizer("lite", "cpu", "fp32")
    style = [rgb_tensor(STYLE)]
    errors = {}
    for enabled in (False, True):
        options = VideoOptions(StylizeOptions(size=0), TemporalOptions(enabled=enabled))
        outputs = stylize_frames(stylizer, clip.frames, style, options)
        errors[enabled] = clip_warping_error(outputs, clip.motions)
    assert errors[True] <= 0.5 * errors[False], errors


def rgb_tensor(path: Path):
    import torch

    return torch.from_numpy(rgb(path)).permute(2, 0, 1)[None]


def test_a_scene_cut_restarts_the_filter():
    clip = make_clip(frames=2)
    other = np.ascontiguousarray(clip.frames[0][::-1, ::-1])
    temporal = TemporalFilter()
    for frame in (clip.frames[0], clip.frames[1], other):
        temporal.observe(frame)
    assert temporal.cuts == 1 and temporal.weight is None


def test_an_interrupted_run_leaves_no_file(clip_file, tmp_path, monkeypatch):
    from stylenorm.io.video_writer import VideoWriter

    write, written = VideoWriter.write, []

    def interrupt_after_five(self, *args):
        if len(written) == 5:
            raise KeyboardInterrupt
        written.append(write(self, *args))

    monkeypatch.setattr(VideoWriter, "write", interrupt_after_five)
    result = run(clip_file, STYLE, "-o", tmp_path / "out.mp4")
    assert result.exit_code == 130 and result.output == "error: interrupted\n"
    assert len(written) == 5 and not list(tmp_path.iterdir())


@pytest.mark.slow  # two processes that import torch: 3 to 12 s here, with the machine shared
def test_killed_run_leaves_no_output_and_a_rerun_finishes(tmp_path):
    source = save_clip(make_clip(size=(128, 96), frames=48).frames, tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    command = [sys.executable, "-m", "stylenorm", "video", str(source), str(STYLE), "-o",
               str(out), "--no-progress", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.mp4.*.part")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists() and list(tmp_path.glob(".out.mp4.*.part"))
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert streams(out)["frames"] == 48 and not list(tmp_path.glob("*.part"))


def test_tiled_frames_match_whole_frames(clip_file, tmp_path):
    outputs = {}
    tiles = ["--tile", "--tile-size", "64"]
    temporal = tmp_path / "temporal.mkv"  # the statistics hook through the tiled path
    assert run(clip_file, STYLE, "-o", temporal, *tiles).exit_code == 0
    assert streams(temporal)["frames"] == 12
    for name, flags in (("whole", []), ("tiled", tiles)):
        out = tmp_path / f"{name}.mkv"
        result = run(clip_file, STYLE, "-o", out, "--precision", "fp32", "--no-temporal",
                     "--crf", "0", *flags)  # lossless: no encoder noise on a 1-level change
        assert result.exit_code == 0, result.output
        with av.open(str(out)) as container:
            outputs[name] = np.stack([f.to_ndarray(format="rgb24") for f in
                                      container.decode(video=0)]).astype(np.float32)
    assert outputs["tiled"].shape == outputs["whole"].shape
    assert np.abs(outputs["tiled"] - outputs["whole"]).mean() < 0.1  # of 255


@pytest.mark.parametrize(("styles", "flags", "code", "message"), [
    ([STYLE], ["--style-weights", "1,2"], 2, "--style-weights has 2 values for 1 style"),
    ([], [], 2, "give at least one style image"),  # a usage error (OptionError)
    ([STYLE], ["--blend", "2"], 2, "--blend"),
])
def test_bad_options_are_one_line(clip_file, tmp_path, styles, flags, code, message):
    result = run(clip_file, *styles, "-o", tmp_path / "out.mp4", *flags)
    assert result.exit_code == code and message in result.output
    assert result.output.count("\n") == 1 and not list(tmp_path.iterdir())


def test_an_unknown_extension_is_refused(clip_file, tmp_path):
    result = run(clip_file, STYLE, "-o", tmp_path / "out.avi")
    assert result.exit_code == 2 and "unknown video extension '.avi'" in result.output


def test_content_statistics_follow_a_moving_average():
    import torch

    from stylenorm.models.protocol import ContentFeatures

    temporal = TemporalFilter(TemporalOptions(stats_momentum=0.75))
    frame = make_clip(frames=1).frames[0]
    means = []
    for value in (0.0, 1.0, 1.0):
        temporal.observe(frame)
        feats = ContentFeatures(torch.zeros(1, 2, 4, 4), torch.full((1, 2, 1, 1), value),
                                torch.ones(1, 2, 1, 1))
        means.append(temporal.smooth(feats).mean.flatten()[0].item())
    assert means == pytest.approx([0.0, 0.25, 0.4375])
    off = TemporalFilter(TemporalOptions(enabled=False)).smooth(feats)
    assert off is feats
