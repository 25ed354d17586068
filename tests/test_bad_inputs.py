"""Bad input through the real command line: every case either works (exit 0 and a valid image)
or fails with exit code != 0 and exactly one ``error:`` line naming the file and the problem.
No traceback reaches the user, no temporary or half-written file is left, no input is
overwritten. The corpus is generated here, in ``tmp_path``."""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import re
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image
from PIL import Image
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import ImageError, StylenormError
from stylenorm.hub.files import load_weights, save_weights
from stylenorm.io.images import load_image
from stylenorm.models.decoder import AdaINDecoder, adain_decoder_key_map
from stylenorm.models.lite import LiteConfig, LiteModel
from stylenorm.training.checkpoints import load_checkpoint, save_checkpoint

runner = CliRunner()


@dataclass
class Files:
    """The good inputs every case starts from, in a fresh ``tmp_path``."""

    dir: Path
    home: Path  # the random-weight store (STYLENORM_HOME)
    content: Path
    style: Path
    style2: Path
    out: Path  # where the cases write unless they say otherwise


@dataclass
class Expect:
    """A command line and what it must do."""

    args: list  # after ``stylenorm``
    error: str | None = None  # regex the single error line must match; None: must succeed
    names: Path | str | None = None  # the file (or option) the error line must name
    code: int = 1
    output: Path | None = None  # on success, the image that must now exist
    check: Callable[[Image.Image], bool] | None = None  # a property of that image
    untouched: list[Path] = field(default_factory=list)  # files whose bytes must not change
    patch: Callable[[pytest.MonkeyPatch], None] | None = None  # a fault to inject


def stylize(f: Files, content=None, *styles, out=None, extra=()) -> list:
    styles = styles or (f.style,)
    return ["stylize", content or f.content, *styles, "-o", out or f.out,
            "--size", "0", "--style-size", "0", "--device", "cpu", *extra]


def ok(f: Files, content=None, *styles, out=None, extra=(), check=None) -> Expect:
    out = out or f.out
    return Expect(stylize(f, content, *styles, out=out, extra=extra), output=out, check=check)


def refused(f: Files, error: str, names, content=None, *styles, out=None, extra=(),
            code=1, **kw) -> Expect:
    return Expect(stylize(f, content, *styles, out=out, extra=extra), error=error, names=names,
                  code=code, **kw)


# --------------------------------------------------------------------------- corpus makers


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width x height`` but holds almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def truncated(f: Files, name: str, fmt: str) -> Path:
    path = f.dir / name
    Image.open(f.content).convert("RGB").save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header survives, the pixels do not
    return path


def sixteen_bit(f: Files) -> Path:
    ramp = (np.arange(32 * 40).reshape(32, 40) * 50).astype(np.uint16)
    Image.fromarray(ramp).save(f.dir / "deep.png")
    assert Image.open(f.dir / "deep.png").mode.startswith("I;16")
    return f.dir / "deep.png"


def converted(f: Files, name: str, mode: str) -> Path:
    Image.open(f.content).convert(mode).save(f.dir / name)
    return f.dir / name


def palette_with_transparency(f: Files) -> Path:
    """Palette PNG whose index 0 is transparent, used by the left half only."""
    quantized = Image.open(f.content).convert("RGB").quantize(16)
    index = np.array(quantized)
    index[index == 0] = 1
    index[:, :20] = 0
    image = Image.fromarray(index, "P")
    image.putpalette(quantized.getpalette())
    image.save(f.dir / "palette.png", transparency=0)
    return f.dir / "palette.png"


def alpha_kept(image: Image.Image) -> bool:
    alpha = np.array(image.convert("RGBA"))[..., 3]
    return image.mode == "RGBA" and alpha[:, :20].max() == 0 and alpha[:, 20:].min() == 255


def exif_rotated(f: Files) -> Path:
    """40x20 pixels stored, shown rotated by 90 degrees (orientation 6): 20 wide, 40 tall."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 20), (200, 30, 30)).save(f.dir / "rotated.jpg", exif=exif.tobytes())
    return f.dir / "rotated.jpg"


def animated_gif(f: Files) -> Path:
    frames = [Image.new("RGB", (40, 32), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(f.dir / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    return f.dir / "anim.gif"


def first_frame(f: Files) -> Callable[[Image.Image], bool]:
    def check(image: Image.Image) -> bool:
        rgb = load_image(f.dir / "anim.gif").rgb[0]
        return image.size == (40, 32) and rgb[0].min() > 0.9 and rgb[2].max() < 0.1  # red

    return check


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def model_file(f: Files, name: str, damage: str) -> Path:
    """A copy of the store's adain model, damaged one way."""
    tensors, meta = load_weights(f.home / "adain.safetensors")
    key = "blocks.conv1_1.conv.weight"
    kind, config = meta.kind, meta.config
    if damage == "shape":
        tensors[key] = torch.zeros(3, 3)
    elif damage == "missing":
        del tensors[key]
    elif damage == "nan":
        tensors[key] = tensors[key].clone()
        tensors[key][0, 0, 0, 0] = float("nan")
    elif damage == "lite":  # a "lite" file that carries an adain config
        kind = "lite"
    path = save_weights(f.dir / name, tensors, kind, config)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    return path


def lite_file(f: Files, name: str, **config) -> Path:
    """A lite model file of real (tiny) tensors whose metadata says ``config``."""
    model = LiteModel(LiteConfig())
    return save_weights(f.dir / name, model.state_dict(), "lite",
                        {**LiteConfig().to_dict(), **config})


CPU_ALLOCATION_FAILED = RuntimeError(
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you "
    "tried to allocate 22500000000 bytes. Error code 12 (Cannot allocate memory)")


def decoder_pth(f: Files, damage: str = "") -> Path:
    """A decoder .pth in the public PyTorch-AdaIN layout, damaged one way."""
    ours = AdaINDecoder().state_dict()
    state = {theirs: torch.randn_like(ours[key]) for key, theirs in adain_decoder_key_map().items()}
    if damage == "shape":
        state["28.weight"] = torch.zeros(2, 2)
    elif damage == "missing":
        del state["28.weight"]
    torch.save(state, f.dir / "decoder.pth")
    if damage == "truncated":
        data = (f.dir / "decoder.pth").read_bytes()
        (f.dir / "decoder.pth").write_bytes(data[: len(data) // 2])
    return f.dir / "decoder.pth"


class Payload:
    """Unpickling this runs ``os.mkdir(marker)``: what an attacker's ``.pth`` would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def evil_pth(path: Path, marker: Path, zip_format: bool) -> Path:
    payload = {"28.weight": Payload(marker)}
    if zip_format:
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    return path


def write_fails(error: BaseException, partial: bytes = b"half an image") -> Callable:
    """A fault for PIL's writer: part of the file goes out, then ``error``."""

    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        def save(self, fp, *args, **kwargs):
            Path(fp).write_bytes(partial)
            raise error

        monkeypatch.setattr(Image.Image, "save", save)

    return patch


def fail_with(target: str, error: BaseException) -> Callable:
    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        def fail(*args, **kwargs):
            raise error

        monkeypatch.setattr(target, fail)

    return patch


ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def previous_output(f: Files) -> Files:
    make_image(f.out, (16, 16), seed=9)  # an earlier result the failed run must not clobber
    return f


# --------------------------------------------------------------------------- the table

CASES: dict[str, Callable[[Files], Expect]] = {
    # unreadable inputs
    "missing_path": lambda f: refused(f, "no such file", f.dir / "absent.png",
                                      f.dir / "absent.png"),
    "directory_as_content": lambda f: refused(f, "is a directory", f.dir, f.dir),
    "empty_file": lambda f: refused(f, "the file is empty", f.dir / "empty.png",
                                    written(f.dir / "empty.png", b"")),
    "text_named_jpg": lambda f: refused(f, "not a readable image", f.dir / "notes.jpg",
                                        written(f.dir / "notes.jpg", b"shopping list\n")),
    "truncated_jpeg": lambda f: refused(f, "(?i)cannot decode image.*truncated", f.dir / "cut.jpg",
                                        truncated(f, "cut.jpg", "JPEG")),
    "truncated_png": lambda f: refused(f, "cannot decode image.*truncated", f.dir / "cut.png",
                                       truncated(f, "cut.png", "PNG")),
    "truncated_style": lambda f: refused(f, "cannot decode image", f.dir / "cut.png", None,
                                         truncated(f, "cut.png", "PNG")),
    "decompression_bomb_header": lambda f: refused(
        f, "refusing to decode.*decompression bomb", f.dir / "bomb.png",
        png_header(f.dir / "bomb.png", 100_000, 100_000)),
    "max_pixels_header_only": lambda f: refused(
        f, r"image is 5000x5000 \(25000000 pixels\); the limit is 1000000", f.dir / "big.png",
        png_header(f.dir / "big.png", 5000, 5000), extra=["--max-pixels", "1000000"]),
    "max_pixels_limit": lambda f: refused(f, r"40x32 .*the limit is 100 \(raise it",
                                          f.content, extra=["--max-pixels", "100"]),
    # memory: every size that decides it is checked before anything is allocated
    "size_enlarges_past_max_pixels": lambda f: refused(
        f, r"image is 700x390, 35897x20000 after resizing .*; the limit is 150000000 \(raise it "
        "with --max-pixels", f.dir / "photo.png", png_header(f.dir / "photo.png", 700, 390),
        extra=["--size", "20000"]),
    "style_size_past_whole_limit": lambda f: refused(
        f, r"2000x2000 after resizing .* the limit is 1000000 \(styles are encoded whole; lower "
        "--style-size or raise --max-whole-pixels", f.style,
        extra=["--style-size", "2000", "--max-whole-pixels", "1000000"]),
    "tile_past_whole_limit": lambda f: refused(
        f, r"a tile with its halo .* 4224x4224 .* the limit is 1000000 \(lower --tile-size or "
        "raise --max-whole-pixels", "--tile-size",
        extra=["--tile", "--tile-size", "4096", "--max-whole-pixels", "1000000"]),
    "cpu_allocation_failure": lambda f: refused(
        f, "^error: out of memory; try a smaller --size", "--tile-size",
        patch=fail_with("stylenorm.inference.stylize.Stylizer.render", CPU_ALLOCATION_FAILED)),
    "model_config_huge_widths": lambda f: refused(
        f, "its config describes a model of .* parameters but the file holds", "wide.safetensors",
        extra=["--model", lite_file(f, "wide.safetensors", widths=[100_000] * 3)]),
    "model_config_huge_style_size": lambda f: refused(
        f, "style_size 1000000000 is outside 16..4096", "big.safetensors",
        extra=["--model", lite_file(f, "big.safetensors", style_size=10**9)]),
    # odd but valid images: handled
    "one_by_one_upscaled": lambda f: ok(f, make_image(f.dir / "dot.png", (1, 1)),
                                        extra=["--size", "24"],
                                        check=lambda im: im.size == (24, 24)),
    "one_by_one_original_size": lambda f: refused(f, "1x1; expected at least 16x16",
                                                  f.dir / "dot.png",
                                                  make_image(f.dir / "dot.png", (1, 1))),
    "seven_by_three": lambda f: ok(f, make_image(f.dir / "sliver.png", (7, 3)),
                                   extra=["--size", "16"],
                                   check=lambda im: im.size == (37, 16)),
    "style_below_receptive_field": lambda f: refused(
        f, "8x8; expected at least 16x16", f.dir / "tiny.png", None,
        make_image(f.dir / "tiny.png", (8, 8))),
    "sixteen_bit_png": lambda f: ok(f, sixteen_bit(f), check=lambda im: im.size == (40, 32)),
    "cmyk_jpeg": lambda f: ok(f, converted(f, "cmyk.jpg", "CMYK")),
    "palette_png_transparency": lambda f: ok(f, palette_with_transparency(f),
                                             check=alpha_kept),
    "greyscale": lambda f: ok(f, converted(f, "grey.png", "L"), converted(f, "grey_s.png", "L"),
                              check=lambda im: im.mode == "RGB"),
    "exif_rotated": lambda f: ok(f, exif_rotated(f),
                                 check=lambda im: im.size == (20, 40)),
    "animated_gif_first_frame": lambda f: ok(f, animated_gif(f), check=first_frame(f)),
    "non_ascii_and_spaces": lambda f: ok(f, make_image(f.dir / "ünï cödé 画像.png", (40, 32)),
                                         make_image(f.dir / "my style.jpg", (32, 32)),
                                         out=f.dir / "résultat final.png"),
    # outputs
    "output_is_content": lambda f: refused(f, "output path is one of the inputs", f.content,
                                           out=f.content, untouched=[f.content]),
    "output_is_style_other_spelling": lambda f: refused(
        f, "output path is one of the inputs", "s1.png", out=f.dir / "." / "sub" / ".." / "s1.png",
        untouched=[f.style]),
    "output_folder_missing": lambda f: refused(f, "output folder .* does not exist",
                                               f.dir / "nowhere", out=f.dir / "nowhere" / "o.png"),
    "output_parent_is_a_file": lambda f: refused(f, "output folder .* is not a folder",
                                                 f.content, out=f.content / "o.png",
                                                 untouched=[f.content]),
    "unknown_output_extension": lambda f: refused(f, "cannot tell the output format", "o.xyz",
                                                  out=f.dir / "o.xyz"),
    "disk_full": lambda f: refused(previous_output(f), "No space left on device", f.out,
                                   untouched=[f.out], patch=write_fails(ENOSPC)),
    "disk_full_on_rename": lambda f: refused(previous_output(f), "No space left on device",
                                             f.out, untouched=[f.out],
                                             patch=fail_with("os.replace", ENOSPC)),
    "permission_denied": lambda f: refused(
        previous_output(f), "permission denied", f.out, untouched=[f.out],
        patch=fail_with("stylenorm.io.atomic._create_temporary",
                        PermissionError(errno.EACCES, "Permission denied"))),
    "interrupted_while_writing": lambda f: refused(previous_output(f), "interrupted", None,
                                                   code=130, untouched=[f.out],
                                                   patch=write_fails(KeyboardInterrupt())),
    # options
    "style_weights_not_numbers": lambda f: refused(f, "comma-separated numbers", "--style-weights",
                                                   code=2, extra=["--style-weights", "a,b"]),
    "style_weights_nan": lambda f: refused(f, ">= 0 with a positive sum", "--style-weights",
                                           code=2, extra=["--style-weights", "nan"]),
    "style_weights_wrong_count": lambda f: refused(f, "has 2 values for 1 style",
                                                   "--style-weights", code=2,
                                                   extra=["--style-weights", "1,2"]),
    "alpha_above_one": lambda f: refused(f, "Invalid value", "--alpha", code=2,
                                         extra=["--alpha", "1.5"]),
    "alpha_nan": lambda f: refused(f, "Invalid value", "--alpha", code=2,
                                   extra=["--alpha", "nan"]),
    "negative_size": lambda f: refused(f, "greater than or equal to 0", "--size", code=2,
                                       extra=["--size", "-5"]),
    "tile_size_not_a_multiple_of_8": lambda f: refused(
        f, "--tile-size must be a multiple of 8 and >= 64; got 7", "--tile-size", code=2,
        extra=["--tile-size", "7"]),
    "tile_size_below_the_halo": lambda f: refused(
        f, "^error: --tile-size must be a multiple of 8 and >= 64; got 32$", "--tile-size",
        code=2, extra=["--tile", "--tile-size", "32"]),
    "size_ten_names_both_sizes": lambda f: refused(
        f, "image is 40x32, 12x10 after resizing to a shorter side of 10 px; expected at least "
        "16x16", f.content, extra=["--size", "10"]),
    "mask_wrong_aspect": lambda f: refused(
        f, r"mask is 80x20 .* but the content is 40x32 .*; give a mask of the content's aspect",
        f.dir / "wide.png", None, f.style, f.style2,
        extra=["--mask", make_image(f.dir / "wide.png", (80, 20))]),
    "unknown_device": lambda f: refused(f, "Invalid value", "--device", code=2,
                                        extra=["--device", "quantum"]),
    "no_style_image": lambda f: Expect(["stylize", f.content, "-o", f.out], "at least one style",
                                       "style", code=2),
    "mask_with_one_style": lambda f: refused(f, "exactly 2 style images", "--mask", code=2,
                                             extra=["--mask", str(f.style2)]),
    "mask_missing": lambda f: refused(f, "no such file", f.dir / "nomask.png", None, f.style,
                                      f.style2, extra=["--mask", str(f.dir / "nomask.png")]),
    "mask_over_max_pixels": lambda f: refused(
        f, "5000x5000 .*the limit is 1000000", f.dir / "mask.png", None, f.style, f.style2,
        extra=["--mask", png_header(f.dir / "mask.png", 5000, 5000), "--max-pixels", "1000000"]),
    # models
    "unknown_model": lambda f: refused(f, "no weights named 'nope'", "nope",
                                       extra=["--model", "nope"]),
    "model_truncated": lambda f: refused(f, "not a readable safetensors file", "cut.safetensors",
                                         extra=["--model", model_file(f, "cut.safetensors",
                                                                      "truncated")]),
    "model_with_nan": lambda f: refused(f, "NaN or infinite values; the file is corrupt",
                                        "nan.safetensors",
                                        extra=["--model", model_file(f, "nan.safetensors", "nan")]),
    "model_wrong_shape": lambda f: refused(f, r"has shape \(3, 3\); expected", "s.safetensors",
                                           extra=["--model", model_file(f, "s.safetensors",
                                                                        "shape")]),
    "model_missing_key": lambda f: refused(f, r"missing \['blocks.conv1_1.conv.weight'\]",
                                           "m.safetensors",
                                           extra=["--model", model_file(f, "m.safetensors",
                                                                        "missing")]),
    "model_lite_kind_adain_config": lambda f: refused(
        f, "config does not describe a 'lite' model", "lite.safetensors",
        extra=["--model", model_file(f, "lite.safetensors", "lite")]),
    "encoder_as_model": lambda f: refused(f, "holds a 'vgg-encoder' model", "vgg19-normalised",
                                          extra=["--model", "vgg19-normalised"]),
    "image_as_model": lambda f: refused(f, "not a readable safetensors file", f.style2,
                                        extra=["--model", str(f.style2)]),
    # weights import
    "import_text_as_pth": lambda f: Expect(
        ["weights", "import", "--decoder", f.style2], "not a PyTorch .pth file", f.style2),
    "import_truncated_pth": lambda f: Expect(
        ["weights", "import", "--decoder", decoder_pth(f, "truncated")],
        "not a readable .pth file", f.dir / "decoder.pth"),
    "import_missing_pth": lambda f: Expect(
        ["weights", "import", "--encoder", f.dir / "vgg.pth"], "no such weights file",
        f.dir / "vgg.pth"),
    "import_wrong_shape": lambda f: Expect(
        ["weights", "import", "--decoder", decoder_pth(f, "shape")],
        r"tensor '28.weight' has shape \(2, 2\)", f.dir / "decoder.pth"),
    "import_missing_key": lambda f: Expect(
        ["weights", "import", "--decoder", decoder_pth(f, "missing")],
        "missing tensor '28.weight'", f.dir / "decoder.pth"),
    "import_name_escapes_the_store": lambda f: Expect(
        ["weights", "import", "--decoder", decoder_pth(f), "--name", "../../escape"],
        "--name '../../escape' is not plain", "--name"),
    "import_name_makes_folders": lambda f: Expect(
        ["weights", "import", "--decoder", decoder_pth(f), "--name", "sub/dir"],
        "--name 'sub/dir' is not plain", "--name"),
    "import_name_of_a_shipped_model": lambda f: Expect(
        ["weights", "import", "--decoder", decoder_pth(f), "--name", "lite"],
        "--name 'lite' is a model shipped with stylenorm.*pass --shadow-shipped", "--name"),
    "import_disk_full": lambda f: Expect(
        ["weights", "import", "--decoder", decoder_pth(f), "--name", "adain"],
        "cannot write weights .No space left on device", f.home / "adain.safetensors",
        untouched=[f.home / "adain.safetensors"],
        patch=fail_with("stylenorm.hub.files.save_file", ENOSPC)),
}


@pytest.fixture
def files(random_store, tmp_path) -> Files:
    data = tmp_path / "data"
    return Files(dir=data, home=random_store,
                 content=make_image(data / "c.png", (40, 32)),
                 style=make_image(data / "s1.png", (32, 32), seed=1),
                 style2=make_image(data / "s2.jpg", (36, 36), seed=2),
                 out=data / "out.png")


def leftovers(folder: Path) -> list[Path]:
    """Temporary files of atomic writes (``.<name>.<pid>.<random>.part``)."""
    return [p for p in folder.rglob("*.part")]


def assert_one_error_line(text: str, expect: Expect) -> str:
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: "), line
    assert re.search(expect.error, line), (expect.error, line)
    if expect.names is not None:
        assert str(expect.names) in line, (expect.names, line)
    return line


def test_the_table_is_big_enough():
    assert len(CASES) >= 25


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, files, monkeypatch):
    expect = CASES[name](files)
    before = {p: p.read_bytes() for p in expect.untouched}
    if expect.patch is not None:
        expect.patch(monkeypatch)
    result = runner.invoke(app, [str(a) for a in expect.args])
    monkeypatch.undo()
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    if expect.error is None:
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        with Image.open(expect.output) as image:
            image.load()
            assert expect.check is None or expect.check(image), name
    else:
        assert result.exit_code == expect.code, result.output
        assert_one_error_line(result.output, expect)
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path} was modified"
    assert leftovers(files.dir.parent) == []


# --------------------------------------------------------------------------- real processes


@pytest.mark.slow
@pytest.mark.parametrize("name", ["missing_path", "truncated_png", "decompression_bomb_header",
                                  "alpha_above_one", "model_truncated"])
def test_no_traceback_in_a_real_process(name, files):
    expect = CASES[name](files)
    proc = subprocess.run([sys.executable, "-m", "stylenorm", *map(str, expect.args)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "STYLENORM_HOME": str(files.home)})
    assert proc.returncode == expect.code, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert_one_error_line(proc.stderr, expect)


@pytest.mark.parametrize("char", ["\n", "\r", "\x85", "\u2028", "\u2029", "\x1b", "\t"])
def test_error_line_stays_one_line_whatever_the_file_name(files, char):
    """Characters that end a line (or drive the terminal) in a file name are printed escaped,
    in the library's errors and in the command line's usage errors alike."""
    absent = files.dir / f"a{char}b.png"
    escaped = char.encode("unicode_escape").decode("ascii")
    result = runner.invoke(app, [str(a) for a in stylize(files, absent)])
    assert result.exit_code == 1
    line = assert_one_error_line(result.output, Expect([], "no such file", None))
    assert f"a{escaped}b.png" in line, line
    result = runner.invoke(app, ["batch", str(absent), str(files.dir), "-o", str(files.dir)])
    assert result.exit_code == 2
    line = assert_one_error_line(result.output, Expect([], "does not exist", None))
    assert f"a{escaped}b.png" in line, line


def test_missing_encoder_message_points_to_the_encoder_that_works(files):
    (files.home / "vgg19-normalised.safetensors").unlink()
    result = runner.invoke(app, [str(a) for a in stylize(files, extra=["--model", "adain"])])
    assert result.exit_code == 1
    line = assert_one_error_line(result.output, Expect([], "encoder .* is not installed", None))
    assert line.endswith("install it with `stylenorm weights fetch vgg19-normalised`")
    assert "vgg19-torchvision`" not in line


def test_a_mask_of_another_size_is_resized_and_said(files):
    mask = make_image(files.dir / "big_mask.png", (80, 64))
    result = runner.invoke(app, [str(a) for a in stylize(files, None, files.style, files.style2,
                                                         extra=["--mask", mask])])
    assert result.exit_code == 0, result.output
    assert f"note: mask {mask} resized from 80x64 to the content's 40x32" in result.output


def test_python_api_takes_one_style_path_and_checks_its_arguments(files):
    from stylenorm import stylize as api_stylize
    from stylenorm.errors import OptionError

    out = files.dir / "api.png"
    content, style = str(files.content), str(files.style)
    assert api_stylize(content, style, out, size=0, style_size=0, device="cpu") == out
    with Image.open(out) as image:
        assert image.size == (40, 32)
    bad = [({"size": float("nan")}, "size must be an integer; got nan"),
           ({"style_size": 1.5}, "style_size must be an integer"),
           ({"size": -1}, "size must be >= 0"),
           ({"alpha": "0.5"}, "alpha must be a number between 0 and 1; got '0.5'"),
           ({"alpha": float("nan")}, "alpha must be a number between 0 and 1"),
           ({"tile_size": 100}, "tile_size must be a multiple of 8"),
           ({"style_weights": "1,2"}, "style_weights must be a list of numbers"),
           ({"crop": "yes"}, "crop must be True or False"),
           ({"sizes": 5}, r"unknown option\(s\) \['sizes'\]")]
    for options, message in bad:
        with pytest.raises(OptionError, match=message):
            api_stylize(content, style, out, **options)
    with pytest.raises(OptionError, match="styles must be a path or a list of paths; got 42"):
        api_stylize(content, 42, out)
    with pytest.raises(OptionError, match="content must be a path"):
        api_stylize(None, style, out)
    with pytest.raises(OptionError, match="styles must be a path .*; got 7"):
        api_stylize(content, [style, 7], out)


def test_debug_variable_shows_the_traceback(files, monkeypatch):
    monkeypatch.setenv("STYLENORM_DEBUG", "1")
    result = runner.invoke(app, [str(a) for a in stylize(files, files.dir / "absent.png")])
    assert isinstance(result.exception, ImageError)


# --------------------------------------------------------------------------- untrusted weights


@pytest.mark.parametrize("zip_format", [True, False], ids=["torch_save", "bare_pickle"])
def test_pickle_payload_is_refused_and_never_runs(files, zip_format):
    live = files.dir / "payload_is_live"
    with contextlib.suppress(Exception):  # unpickled the unsafe way, the payload must run
        torch.load(evil_pth(files.dir / "probe.pth", live, zip_format), weights_only=False)
    assert live.exists(), "the payload does not run even when unpickled: the test proves nothing"

    marker = files.dir / "payload_ran"
    for option in ["--decoder", "--encoder"]:
        evil = evil_pth(files.dir / "evil.pth", marker, zip_format)
        result = runner.invoke(app, ["weights", "import", option, str(evil)])
        assert not marker.exists(), "the pickle payload ran"
        assert result.exit_code == 1
        line = assert_one_error_line(result.output, Expect([], "refused to load", evil))
        assert "not a plain tensor file" in line
        assert "could run code" in line and "weights_only" not in line, line
        assert "posix.mkdir" in line or "os.mkdir" in line, line
    assert {p.name for p in files.home.iterdir()} == {"adain.safetensors",
                                                       "vgg19-normalised.safetensors"}


@pytest.mark.slow
def test_pickle_payload_in_a_real_process(files):
    marker = files.dir / "payload_ran"
    evil = evil_pth(files.dir / "evil.pth", marker, zip_format=True)
    proc = subprocess.run([sys.executable, "-m", "stylenorm", "weights", "import", "--decoder",
                           str(evil)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "STYLENORM_HOME": str(files.home)})
    assert not marker.exists(), "the pickle payload ran"
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert_one_error_line(proc.stderr, Expect([], "refused to load", evil))


def test_plain_pickle_of_tensors_is_refused_without_a_warning(files):
    """A bare pickle (protocol 4) of tensors: refused in one line; torch's warning about the
    protocol does not get through, nor its advice to unpickle unsafely."""
    plain = files.dir / "plain.pth"
    plain.write_bytes(pickle.dumps({"28.weight": torch.ones(2)}, protocol=4))
    proc = subprocess.run([sys.executable, "-W", "default", "-m", "stylenorm", "weights",
                           "import", "--decoder", str(plain)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "STYLENORM_HOME": str(files.home)})
    assert proc.returncode == 1
    line = assert_one_error_line(proc.stderr, Expect([], "refused to load", plain))
    assert "weights_only" not in line and "could run code" in line


# --------------------------------------------------------------------------- faults


def test_max_pixels_refuses_before_decoding(tmp_path, monkeypatch):
    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    big = png_header(tmp_path / "big.png", 5000, 5000)
    with pytest.raises(ImageError, match="5000x5000 .* the limit is 1000000"):
        load_image(big, max_pixels=1_000_000)
    start = time.perf_counter()
    with pytest.raises(ImageError, match="bomb.png: refusing to decode"):
        load_image(png_header(tmp_path / "bomb.png", 100_000, 100_000))
    assert time.perf_counter() - start < 1.0


def test_import_names_stay_in_the_store(files):
    for name in ["../../escape", "sub/dir", "/tmp/abs", ".hidden", "x.safetensors", ""]:
        result = runner.invoke(app, ["weights", "import", "--decoder", str(decoder_pth(files)),
                                     "--name", name])
        assert result.exit_code == 1, (name, result.output)
    assert sorted(p.name for p in files.home.rglob("*")) == ["adain.safetensors",
                                                           "vgg19-normalised.safetensors"]
    assert not list(files.dir.parent.rglob("escape*"))


def test_shadowing_a_shipped_model_takes_a_flag_and_is_listed(files):
    result = runner.invoke(app, ["weights", "import", "--decoder", str(decoder_pth(files)),
                                 "--name", "lite", "--shadow-shipped"])
    assert result.exit_code == 0, result.output
    listing = runner.invoke(app, ["weights", "list"]).output
    line = next(li for li in listing.splitlines() if li.startswith("lite ")
                and str(files.home) in li)
    assert "hides the shipped model" in line
    assert not any("hides" in li for li in listing.splitlines() if li.startswith("adain "))


def test_size_after_resizing_is_checked_before_decoding(tmp_path, monkeypatch):
    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    photo = png_header(tmp_path / "photo.png", 700, 390)
    with pytest.raises(ImageError, match="35897x20000 after resizing .* the limit is 10000000"):
        load_image(photo, size=20000, max_pixels=10_000_000)
    with pytest.raises(ImageError, match="20000x20000 after resizing"):
        load_image(photo, size=20000, crop=True, max_pixels=10_000_000)


def test_unwritable_folder_for_real(files):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the table fakes EACCES instead")
    folder = files.dir / "locked"
    folder.mkdir(mode=0o500)
    try:
        result = runner.invoke(app, [str(a) for a in stylize(files, out=folder / "o.png")])
        assert result.exit_code == 1
        assert_one_error_line(result.output, Expect([], "permission denied", folder / "o.png"))
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("fault,raised", [(ENOSPC, StylenormError),
                                          (KeyboardInterrupt(), KeyboardInterrupt)],
                         ids=["disk_full", "interrupt"])
def test_checkpoint_write_is_atomic(tmp_path, monkeypatch, fault, raised):
    path = save_checkpoint(tmp_path / "checkpoint.pt", {"iteration": 1, "w": torch.ones(3)})

    def torch_save(obj, target, *args, **kwargs):
        Path(target).write_bytes(b"half a checkpoint")
        raise fault

    monkeypatch.setattr(torch, "save", torch_save)
    with pytest.raises(raised):
        save_checkpoint(path, {"iteration": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    assert load_checkpoint(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


@pytest.mark.slow
def test_batch_survives_bad_items(files):
    folder = files.dir / "contents"
    make_image(folder / "good.png", (24, 24))
    (folder / "bad.jpg").write_text("not an image")
    truncated(files, "contents/cut.png", "PNG")
    png_header(folder / "bomb.png", 100_000, 100_000)
    make_image(files.dir / "styles" / "s.png", (20, 20))
    out = files.dir / "results"
    result = runner.invoke(app, ["batch", str(folder), str(files.dir / "styles"), "-o", str(out),
                                 "--size", "0", "--style-size", "0", "--no-progress",
                                 "--device", "cpu", "--ext", "png"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert [p.name for p in out.iterdir()] == ["good__s.png"]
    for name in ["bad.jpg", "cut.png", "bomb.png"]:
        assert str(folder / name) in result.output
    lines = result.output.splitlines()  # the summary's words are the per-file lines' words
    assert "done 1, skipped 0 (already there), failed 3 (not made)" in lines
    assert sum(line.startswith("failed: ") for line in lines) == 3
    assert not any(line.startswith("skipped") for line in lines)
    assert leftovers(files.dir) == []


def test_train_refuses_unusable_folders(files):
    empty = files.dir / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["train", "adain", "--content", str(empty), "--style",
                                 str(files.dir), "--out", str(files.dir / "run"),
                                 "--iterations", "1", "--no-progress"])
    assert result.exit_code == 1
    assert_one_error_line(result.output, Expect([], "no images found", empty))
    missing = files.dir / "absent"
    result = runner.invoke(app, ["train", "adain", "--content", str(missing), "--style",
                                 str(files.dir), "--out", str(files.dir / "run")])
    assert result.exit_code == 2
    assert_one_error_line(result.output, Expect([], "does not exist", missing))


def test_an_image_that_would_not_fit_in_memory_is_refused_before_decoding(tmp_path,
                                                                          monkeypatch):
    """Raising --max-pixels does not let an enlargement run the machine out of memory: the
    decoded and resized pixels are weighed against the memory available now."""
    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr("stylenorm.io.images.available_memory", lambda: 2 * 2**30)
    photo = png_header(tmp_path / "photo.png", 700, 390)
    with pytest.raises(ImageError, match=r"700x390, 35897x20000 after resizing .*; that needs "
                                         r"about 42\.8 GiB and 2\.0 GiB of memory is available"):
        load_image(photo, size=20000, max_pixels=10**12)
