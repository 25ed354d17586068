"""Property-based tests (hypothesis), bounded so the file runs in well under 30 s on two cores.

* ``load_image`` on random bytes, on valid small images of every mode and format Pillow can
  write, and on truncated or bit-flipped copies of them: it returns a (1, 3, H, W) tensor in
  [0, 1] or raises ``ImageError`` naming the file; never anything else.
* ``stylenorm stylize`` with random option values: exit code 0 (and an image), 1 or 2 (one
  ``error:`` line), never a traceback or an internal error.

The number of examples each test tried is printed in the terminal summary (``fuzz_cases``).
"""

from __future__ import annotations

import io
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import ImageError
from stylenorm.hub.files import save_weights
from stylenorm.io.images import load_image
from stylenorm.models.lite import LiteConfig, LiteModel

MAX_PIXELS = 1 << 20  # mutated headers may declare anything; keep the decoders small
MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16",
         "F"]
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif",
           "WEBP": ".webp", "PPM": ".ppm", "TGA": ".tga", "ICO": ".ico"}
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
         b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"P6\n", b""]


def fuzz_settings(examples: int):
    # derandomize: the same examples on every run, so a failure is reproducible
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def random_image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(-70000, 70000, (height, width), dtype=np.int32))
    if mode == "F":  # out of range, and some NaN
        values = rng.uniform(-1, 2, (height, width)).astype(np.float32)
        values[rng.random(values.shape) < 0.1] = np.nan
        return Image.fromarray(values)
    rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    return Image.fromarray(rgba, "RGBA").convert(mode)


def encode(image: Image.Image, fmt: str) -> bytes | None:
    """``image`` in ``fmt``, or None where Pillow cannot write it or cannot read back what it
    wrote (Pillow 12.3 writes 16-bit ICO files that it then cannot identify): only files that
    Pillow itself reads are valid images (the corpus is probed at 16x16: smaller ICO files
    are among those it cannot read back)."""
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
        with Image.open(io.BytesIO(buffer.getvalue())) as again:
            again.load()
    except (OSError, ValueError, KeyError, TypeError):
        return None  # this format cannot hold this mode
    return buffer.getvalue()


# (mode, format) pairs Pillow can write and read back: the corpus of valid images.
WRITABLE = [(m, f) for m in MODES for f in FORMATS if encode(random_image(m, 16, 16, 0), f)]


def check_load(path: Path, **kwargs):
    """The property: a valid tensor or an ImageError that names the file on one line (and no
    warning escapes: on the command line it would be more lines on stderr)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loaded = load_image(path, max_pixels=MAX_PIXELS, **kwargs)
    except ImageError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc), str(exc)
        return None
    rgb = loaded.rgb
    assert rgb.dim() == 4 and rgb.shape[:2] == (1, 3) and rgb.dtype == torch.float32
    assert bool(torch.isfinite(rgb).all()) and rgb.min() >= 0 and rgb.max() <= 1
    if loaded.alpha is not None:
        assert loaded.alpha.shape == (1, 1, *rgb.shape[-2:])
        assert loaded.alpha.min() >= 0 and loaded.alpha.max() <= 1
    return loaded


def outcome(loaded) -> str:
    return "ImageError" if loaded is None else "loaded"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@fuzz_settings(400)
@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=1024),
       suffix=st.sampled_from([*FORMATS.values(), ".bin"]))
def test_random_bytes(workdir, fuzz_cases, magic, body, suffix):
    path = workdir / f"random{suffix}"
    path.write_bytes(magic + body)
    fuzz_cases[f"load_image, random bytes: {outcome(check_load(path))}"] += 1


@fuzz_settings(300)
@given(kind=st.sampled_from(WRITABLE), width=st.integers(1, 40), height=st.integers(1, 40),
       seed=st.integers(0, 2**16), size=st.integers(0, 32), crop=st.booleans())
def test_valid_images_always_load(workdir, fuzz_cases, kind, width, height, seed, size, crop):
    mode, fmt = kind
    data = encode(random_image(mode, width, height, seed), fmt)
    assume(data is not None)  # a size that Pillow writes but cannot read back
    path = workdir / f"valid{FORMATS[fmt]}"
    path.write_bytes(data)
    loaded = check_load(path, size=size, crop=crop)
    assert loaded is not None, f"a valid {mode} {fmt} image {width}x{height} did not load"
    fuzz_cases[f"load_image, valid images: {outcome(loaded)}"] += 1
    h, w = loaded.rgb.shape[-2:]
    if size == 0:
        assert (w, h) == Image.open(path).size
    else:
        assert min(h, w) == size and (not crop or h == w == size)


@fuzz_settings(400)
@given(kind=st.sampled_from(WRITABLE), width=st.integers(1, 40), height=st.integers(1, 40),
       seed=st.integers(0, 2**16), keep=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      max_size=4))
def test_damaged_images(workdir, fuzz_cases, kind, width, height, seed, keep, flips):
    mode, fmt = kind
    encoded = encode(random_image(mode, width, height, seed), fmt)
    assume(encoded is not None)
    data = bytearray(encoded)
    data = data[: int(len(data) * keep)]
    for where, value in flips:
        if data:
            data[int(where * len(data))] = value
    path = workdir / f"damaged{FORMATS[fmt]}"
    path.write_bytes(bytes(data))
    fuzz_cases[f"load_image, truncated or bit-flipped: {outcome(check_load(path))}"] += 1


# --------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def cli_store(random_store_template, workdir):
    """The random store plus a tiny "lite" model (fast enough for many examples), as
    STYLENORM_HOME, and the images the examples stylise."""
    home = workdir / "home"
    shutil.copytree(random_store_template, home)
    torch.manual_seed(0)
    lite = LiteModel(LiteConfig(widths=(4, 8, 8), res_blocks=1, style_size=32))
    save_weights(home / "lite.safetensors", lite.state_dict(), "lite", lite.config.to_dict())
    images = [make_image(workdir / "c.png", (24, 20)),
              make_image(workdir / "s1.png", (20, 20), seed=1),
              make_image(workdir / "s2.jpg", (20, 24), seed=2)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STYLENORM_HOME", str(home))
        yield images


ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
NUMBER = st.one_of(st.floats(-1, 3), st.sampled_from([0.0, 1.0, float("nan"), float("inf")]))

# Well-formed values of every option, some of them out of range: they reach the library.
TYPED = {
    "--alpha": st.one_of(st.floats(0, 1), st.floats(0, 1),
                         st.floats(allow_nan=True, allow_infinity=True)),
    "--size": st.one_of(st.just(0), st.integers(-2, 40)),  # small: a large one is only slow
    "--style-size": st.one_of(st.just(0), st.integers(-2, 40)),
    "--style-weights": st.lists(NUMBER, max_size=3).map(lambda v: ",".join(map(str, v))),
    "--precision": st.sampled_from(["auto", "fp32", "bf16", "fp16"]),
    "--device": st.sampled_from(["auto", "cpu", "cuda", "mps"]),
    "--max-pixels": st.one_of(st.integers(1000, 10**6), st.integers(-2, 1000)),
    "--style-index": st.integers(-1, 2),
    "--tile-size": st.integers(-8, 64),
}
FLAGS = ["--tile", "--crop", "--preserve-color", "--no-crop"]


@st.composite
def typed_options(draw, sizes: bool = True) -> list[str]:
    """Up to four options with well-formed values, and flags; ``sizes=False`` leaves the image
    sizes alone (each new size costs the AdaIN fast path a new oneDNN plan: seconds)."""
    keys = sorted(k for k in TYPED if sizes or k not in ("--size", "--style-size"))
    names = draw(st.lists(st.sampled_from(keys), max_size=4, unique=True))
    args = [str(v) for name in names for v in (name, draw(TYPED[name]))]
    return args + draw(st.lists(st.sampled_from(FLAGS), max_size=2))


@st.composite
def garbage_options(draw) -> list[str]:
    """Any text for one to three options (digits excluded where a number means a size)."""
    names = draw(st.lists(st.sampled_from([*TYPED, "--output", "--model", "--mask", "--bogus"]),
                          min_size=1, max_size=3))
    return [str(v) for name in names for v in (name, draw(ANY_TEXT.filter(no_big_number)))]


def no_big_number(text: str) -> bool:
    try:
        return abs(float(text)) < 64
    except (ValueError, OverflowError):
        return True


def cli_case(model: str, options):
    """(model, number of style images, output suffix, mask?, options), mostly usable."""
    return st.tuples(st.just(model), st.sampled_from([1, 2] * 3 + [0]),
                     st.sampled_from([".png", ".jpg", ".webp", ".bmp"] * 2 + [".xyz"]),
                     st.sampled_from([False] * 4 + [True]), options)


def check_cli(images: list[Path], workdir: Path, case) -> int:
    model, num_styles, suffix, mask, options = case
    content, *styles = images
    out = workdir / f"out{suffix}"
    out.unlink(missing_ok=True)
    args = ["stylize", content, *styles[:num_styles], "-o", out, "--model", model,
            "--size", "0", "--style-size", "0"]  # small images unless the case sets a size
    if mask:
        args += ["--mask", styles[0]]
    args += options
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, repr(result.exception))
    assert "Traceback" not in result.output and "internal error" not in result.output, args
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    if result.exit_code == 0:
        with Image.open(out) as image:
            image.load()
    else:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, lines)
    assert not list(workdir.glob(".*.part"))
    return result.exit_code


@pytest.mark.slow
@fuzz_settings(60)
@given(case=cli_case("lite", typed_options()))
def test_cli_option_values(cli_store, workdir, fuzz_cases, case):
    code = check_cli(cli_store, workdir, case)
    fuzz_cases[f"stylize option values, lite model: exit {code}"] += 1


@fuzz_settings(40)
@given(case=cli_case("lite", garbage_options()))
def test_cli_option_garbage(cli_store, workdir, fuzz_cases, case):
    code = check_cli(cli_store, workdir, case)
    fuzz_cases[f"stylize option text, lite model: exit {code}"] += 1


@pytest.mark.slow
@fuzz_settings(6)
@given(case=cli_case("adain", typed_options(sizes=False)))
def test_cli_option_values_adain(cli_store, workdir, fuzz_cases, case):
    code = check_cli(cli_store, workdir, case)
    fuzz_cases[f"stylize option values, adain model: exit {code}"] += 1
