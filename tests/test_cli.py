"""The command line: stylize and weights commands, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import make_image
from PIL import Image
from typer.testing import CliRunner

from stylenorm.cli.app import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def images(tmp_path):
    return (make_image(tmp_path / "content.png", (40, 32)),
            make_image(tmp_path / "s1.png", (32, 32), seed=1),
            make_image(tmp_path / "s2.jpg", (36, 36), seed=2))


def test_stylize_writes_image(random_store, images, tmp_path):
    content, s1, _ = images
    result = run("stylize", content, s1, "-o", tmp_path / "out.png", "--size", 0)
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out.png").size == (40, 32)


@pytest.mark.parametrize("extra", [
    ["--alpha", "0.5"], ["--preserve-color"], ["--style-weights", "0.3,0.7"],
    ["--crop", "--size", "24", "--style-size", "24"], ["--precision", "bf16"],
])
@pytest.mark.slow
def test_stylize_options(random_store, images, tmp_path, extra):
    content, s1, s2 = images
    styles = [s1, s2] if "--style-weights" in extra else [s1]
    result = run("stylize", content, *styles, "-o", tmp_path / "o.jpg", *extra)
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_stylize_with_mask(random_store, images, tmp_path):
    content, s1, s2 = images
    mask = Image.new("L", (40, 32), 0)
    mask.paste(255, (0, 0, 20, 32))
    mask.save(tmp_path / "mask.png")
    result = run("stylize", content, s1, s2, "--mask", tmp_path / "mask.png", "-o",
                 tmp_path / "m.png")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args,message,code", [
    (["missing.png", "{s1}"], "missing.png: no such file", 1),
    (["{content}", "{s1}", "--style-weights", "1,2"], "has 2 values for 1 style", 2),
    (["{content}", "{s1}", "--style-weights", "a,b"], "comma-separated numbers", 2),
    (["{content}", "{s1}", "--model", "nope"], "no weights named 'nope'", 1),
    (["{content}", "{s1}", "-o", "{content}"], "output path is one of the inputs", 1),
    (["{content}", "{s1}", "-o", "x.unknownext"], "cannot tell the output format", 1),
    (["{content}", "{s1}", "--device", "cuda"], "no CUDA GPU", 1),
    (["{content}", "{s1}", "--mask", "{s2}"], "exactly 2 style images", 2),
])
@pytest.mark.slow
def test_errors_are_one_line(random_store, images, tmp_path, args, message, code):
    content, s1, s2 = images
    names = {"content": content, "s1": s1, "s2": s2}
    result = run("stylize", *(a.format(**names) for a in args))
    assert result.exit_code == code
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_missing_encoder_says_how_to_install(random_store, images, tmp_path):
    (random_store / "vgg19-normalised.safetensors").unlink()
    content, s1, _ = images
    result = run("stylize", content, s1, "-o", tmp_path / "o.png", "--model", "adain")
    assert result.exit_code == 1
    assert "`stylenorm weights fetch vgg19-normalised`" in result.output


def test_empty_store_lists_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLENORM_HOME", str(tmp_path / "empty"))
    result = run("weights", "list")
    assert result.exit_code == 0 and str(tmp_path / "empty") in result.output


def test_weights_import_and_list(tmp_path, monkeypatch, shared_weights):
    monkeypatch.setenv("STYLENORM_HOME", str(tmp_path))
    result = run("weights", "import", "--encoder", shared_weights / "vgg_normalised.pth",
                 "--decoder", shared_weights / "decoder.pth", "--name", "ref")
    assert result.exit_code == 0, result.output
    listing = run("weights", "list").output
    assert "ref" in listing and "vgg19-normalised" in listing


@pytest.mark.slow
def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "stylenorm", "--help"], capture_output=True,
                         text=True, check=True)
    assert "stylize" in out.stdout


def test_library_errors_name_python_parameters_and_the_cli_shows_flags(random_store, images,
                                                                        tmp_path):
    from stylenorm.cli.errors import as_flags
    from stylenorm.errors import StylenormError
    from stylenorm.inference.stylize import StylizeOptions

    with pytest.raises(StylenormError, match=r"^style_weights has 2 values") as caught:
        StylizeOptions(style_weights=[1.0, 2.0]).validate(1)
    assert as_flags(caught.value).startswith("--style-weights has 2 values")
    error = StylenormError("/data/tile/x.png: tile_size and tile, not tile_sizes",
                           params=("tile", "tile_size"))
    assert as_flags(error) == "/data/tile/x.png: --tile-size and --tile, not tile_sizes"
    content, s1, _ = images
    result = run("stylize", content, s1, "-o", tmp_path / "o.png", "--style-weights", "1,2")
    assert result.exit_code == 2  # a value out of range: a malformed command line
    assert "error: --style-weights has 2 values for 1 style images" in result.output


def test_train_help_mentions_every_trainer():
    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    first = " ".join(result.output.split())
    assert "lite model (lite" in first and "(adain)" in first and "(cin)" in first


def test_stylize_without_output_never_overwrites(random_store, images, tmp_path, monkeypatch):
    content, s1, _ = images
    monkeypatch.chdir(tmp_path)
    args = ["stylize", str(content), str(s1), "--size", "0", "--style-size", "0"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "wrote stylized.jpg"
    before = (tmp_path / "stylized.jpg").read_bytes()
    for n in (1, 2):
        again = runner.invoke(app, args)
        assert again.exit_code == 0, again.output
        assert again.output.strip() == f"wrote stylized-{n}.jpg"
    assert (tmp_path / "stylized.jpg").read_bytes() == before


def test_help_version_and_usage_errors_do_not_import_torch():
    """``--help``, ``--version`` and a usage error answer from the Typer app alone: no torch,
    numpy, Pillow or Gradio is imported (torch alone takes seconds and hundreds of MB)."""
    code = """
import sys
from stylenorm.cli.app import app
for args in (["--help"], ["--version"], ["stylize", "--bogus"], ["weights", "--help"],
             ["serve", "--help"]):
    try:
        app(args)
    except SystemExit:
        pass
heavy = [m for m in ("torch", "torchvision", "numpy", "PIL", "safetensors", "gradio", "fastapi")
         if m in sys.modules]
print("heavy:", heavy)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip().endswith("heavy: []"), (proc.stdout[-500:], proc.stderr[-500:])
    assert "No such option: --bogus" in proc.stderr


def test_version_option():
    from stylenorm import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"stylenorm {__version__}"


def test_public_api_names_load_on_first_use():
    import stylenorm

    for name in stylenorm.__all__:
        assert getattr(stylenorm, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        stylenorm.nope  # noqa: B018


def test_stylize_shows_tile_progress_and_takes_threads(random_store, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr("stylenorm.inference.stylize.PROGRESS_DELAY_S", 0)
    monkeypatch.setattr("stylenorm.inference.stylize.on_terminal", lambda progress: progress)
    content = make_image(tmp_path / "big.png", (160, 128))
    style = make_image(tmp_path / "s.png", (32, 32), seed=1)
    args = ["stylize", content, style, "-o", tmp_path / "o.png", "--size", 0, "--style-size", 0,
            "--tile", "--tile-size", 64, "--device", "cpu"]
    before = torch.get_num_threads()
    try:
        shown = run(*args, "--threads", 1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert shown.exit_code == 0, shown.output
    assert "stylize:" in shown.output and "/12 [" in shown.output, shown.output  # 6 + 6 tiles
    quiet = run(*args, "--no-progress")
    assert quiet.exit_code == 0 and "stylize:" not in quiet.output, quiet.output


def test_spinner_shows_only_work_that_takes_time(capsys):
    import time

    from stylenorm.inference.progress import spinner

    with spinner(True, delay=0.05, period=0.05):
        time.sleep(0.4)
    slow = capsys.readouterr().err
    assert "stylize: working" in slow and slow.endswith("\r")
    with spinner(True, delay=5):
        pass
    with spinner(False, delay=0):
        time.sleep(0.2)
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_stylizing_imports_neither_torchvision_nor_the_compiler():
    """What a 512 px stylise pays before its tenth of a second of work: torchvision (its models)
    and torch._dynamo (pulled in by building a model on the meta device) cost about a second."""
    code = ("import sys; import torch\n"
            "from stylenorm.inference.stylize import StylizeOptions, Stylizer\n"
            "s = Stylizer('lite', device='cpu')\n"
            "s.stylize_tensors(torch.rand(1, 3, 64, 64), [torch.rand(1, 3, 64, 64)], "
            "StylizeOptions())\n"
            "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_train_ctrl_c_exits_130_after_its_checkpoint(random_store, tmp_path, monkeypatch):
    """As stylize and batch: Ctrl-C ends with exit code 130 (SIGTERM: 143) and one line."""
    import os
    import signal

    from stylenorm.training import loop as train

    for folder, count in (("content", 3), ("style", 2)):
        for i in range(count):
            make_image(tmp_path / folder / f"{i}.png", (48, 40), seed=i)
    real_step = train.train_step

    def step(*args):
        losses = real_step(*args)
        if args[-1] == 1:  # the iteration  # the 2nd iteration: Ctrl-C arrives while it runs
            os.kill(os.getpid(), signal.SIGINT)
        return losses

    monkeypatch.setattr(train, "train_step", step)
    result = run("train", "adain", "--content", tmp_path / "content", "--style",
                 tmp_path / "style", "--out", tmp_path / "run", "--iterations", 5,
                 "--batch-size", 2, "--crop-size", 32, "--sample-every", 0, "--workers", 0,
                 "--no-progress", "--threads", 1)
    assert result.exit_code == 130, result.output
    assert "error: stopped at iteration 2; the checkpoint in " in result.output
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_batch_ctrl_c_says_how_many_outputs_were_written(random_store, tmp_path, monkeypatch):
    from stylenorm.inference import batch as batch_module

    for i in range(3):
        make_image(tmp_path / "c" / f"{i}.png", (40, 32), seed=i)
    make_image(tmp_path / "s" / "x.png", (32, 32), seed=9)
    real, calls = batch_module._guarded, []

    def guarded(run_, item):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(item)
        real(run_, item)

    monkeypatch.setattr(batch_module, "_guarded", guarded)
    result = run("batch", tmp_path / "c", tmp_path / "s", "-o", tmp_path / "out",
                 "--no-progress", "--model", "adain")
    assert result.exit_code == 130, result.output
    assert result.output.strip() == ("error: interrupted: 2 of 3 outputs written (each "
                                     "complete); run the same command again to make the other 1")
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_a_closed_pipe_ends_quietly():
    """``stylenorm weights list | head``: no "Broken pipe" error when the reader goes."""
    proc = subprocess.Popen([sys.executable, "-m", "stylenorm", "weights", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before it writes: importing takes longer than this
    assert proc.stderr.read() == b""
    proc.wait(timeout=60)


def test_jpeg_output_puts_transparent_areas_on_white_and_says_so(random_store, tmp_path):
    content = Image.new("RGBA", (40, 32), (200, 30, 30, 255))
    content.paste((0, 0, 255, 0), (0, 0, 20, 32))  # the left half: hidden blue, transparent
    content.save(tmp_path / "content.png")
    style = make_image(tmp_path / "style.png", (32, 32), seed=1)
    result = run("stylize", tmp_path / "content.png", style, "-o", tmp_path / "out.jpg",
                 "--size", 0)
    assert result.exit_code == 0, result.output
    assert (f"note: {tmp_path / 'out.jpg'}: JPEG has no transparency; transparent areas are on "
            "white") in result.output
    pixels = np.asarray(Image.open(tmp_path / "out.jpg").convert("RGB"), dtype=float)
    assert pixels[:, 2:18].mean() > 250  # white, not the hidden pixels' stylisation
    assert pixels[:, 24:].mean() < 240


def test_every_command_shares_one_precision_default_and_serve_takes_threads():
    import typer.main

    from stylenorm.choices import DEFAULT_PRECISION

    group = typer.main.get_command(app)
    for name in ("stylize", "batch", "video"):
        precision = next(p for p in group.commands[name].params if p.name == "precision")
        assert precision.default == DEFAULT_PRECISION, name
    assert any(p.name == "threads" for p in group.commands["serve"].params)


def test_no_progress_bar_off_a_terminal_nor_for_nothing_to_do(random_store, tmp_path):
    make_image(tmp_path / "c" / "a.png", (40, 32), seed=1)
    make_image(tmp_path / "s" / "x.png", (32, 32), seed=2)
    for _ in range(2):  # the second run has nothing to do
        result = run("batch", tmp_path / "c", tmp_path / "s", "-o", tmp_path / "out",
                     "--model", "adain")  # --progress is the default; stderr is no terminal
        assert result.exit_code == 0, result.output
        assert "image/s" not in result.output and "0image" not in result.output
        assert "\r" not in result.output


def test_max_pixels_is_pillows_cap_too(tmp_path):
    """Pillow's own cap (179 MP) would refuse a raised --max-pixels; it follows the limit."""
    import struct
    import zlib

    from stylenorm.choices import DEFAULT_MAX_PIXELS
    from stylenorm.io.images import image_size, pillow_cap

    assert DEFAULT_MAX_PIXELS == 150_000_000

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    side = 14_000  # 196 MP: over the default and over Pillow's own cap (179 MP)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    (tmp_path / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                       + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))
    with pytest.raises(ValueError, match=r"\(196000000 pixels\); the limit is 150000000 "
                                         r"\(raise it with --max-pixels\)"):
        image_size(tmp_path / "big.png")  # the limit speaks, not Pillow
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "big.png")  # Pillow alone
    with pillow_cap(4 * 10**8):  # as while `--max-pixels 400000000` reads a header
        assert Image.open(tmp_path / "big.png").size == (side, side)
