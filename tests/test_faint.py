"""Faint content stays faint: black and near-black frames, fades from black and flat images are
not painted as loud blocks (inference/faint.py, applied by Stylizer.render to stills and
video frames alike, for every model kind: the CIN network too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylenorm.inference.faint import keep_faint, stylisation_weight
from stylenorm.inference.render import stylize_tiled
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.inference.tiling import TileOptions

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def load(path: Path, side: int = 96) -> torch.Tensor:
    image = Image.open(path).convert("RGB")
    image.thumbnail((side, side))
    return torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]


def luma(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


@pytest.fixture(scope="module")
def stylise():
    stylizer = Stylizer("lite", "cpu", "fp32")
    style = [load(SAMPLES / "style" / "mosaic.png", 128)]
    return lambda content: stylizer.stylize_tensors(content, style, StylizeOptions())


def test_black_and_flat_frames_stay_as_they_are(stylise):
    for level in (0.0, 0.5):  # black (was flat mauve, 104/255), mid grey
        content = torch.full((1, 3, 64, 96), level)
        assert torch.allclose(stylise(content), content, atol=1e-6)


def test_a_near_black_frame_stays_dark(stylise):
    photo = load(SAMPLES / "content" / "rocket.jpg")
    content = photo * (1.5 / 255 / float(luma(photo).mean()))  # mean 1.5/255
    out = stylise(content)
    assert float(luma(out).mean()) * 255 < 3  # was 118/255 with std 43: bright blocks
    assert float(luma(out).std()) * 255 < 2


def test_a_fade_from_black_brings_the_style_in_smoothly(stylise):
    photo = load(SAMPLES / "content" / "rocket.jpg")
    means = [float(luma(stylise(photo * f)).mean()) for f in np.linspace(0, 0.4, 9)]
    assert means[0] == 0  # the style's own brightness varies by a level or two when full
    assert all(b >= a - 2 / 255 for a, b in zip(means, means[1:], strict=False)), means
    assert max(np.diff(means)) < 0.2  # brought in over several steps (measured 0.15 at most)
    assert means[1] < 5 / 255 and means[-1] > 100 / 255  # 1 % bright: dark; 7 %: styled


def test_a_cin_model_keeps_dark_and_flat_content_as_the_others_do():
    stylizer = Stylizer("cin-8styles", "cpu", "fp32")
    options = StylizeOptions(style_index=0)
    for level in (0.0, 0.5):  # black and mid grey: the network alone paints them its colours
        content = torch.full((1, 3, 64, 96), level)
        assert torch.allclose(stylizer.stylize_tensors(content, [], options), content, atol=1e-6)
    photo = load(SAMPLES / "content" / "rocket.jpg")
    out = stylizer.stylize_tensors(photo * (1.5 / 255 / float(luma(photo).mean())), [], options)
    assert float(luma(out).mean()) * 255 < 3 and float(luma(out).std()) * 255 < 2
    assert (stylizer.stylize_tensors(photo, [], options) - photo).abs().mean() > 0.05  # styled


def test_the_one_call_tiling_keeps_faint_content_faint():
    """stylize_tiled (the library's tiling of a model in hand) finishes as the commands do."""
    stylizer = Stylizer("lite", "cpu", "fp32")
    code = stylizer.style_code([load(SAMPLES / "style" / "mosaic.png", 128)], None)
    tiles = TileOptions(tile=48, halo=16)
    for level in (0.0, 0.5):
        content = torch.full((1, 3, 80, 112), level)
        out = stylize_tiled(stylizer.model, content, code, 1.0, tiles)
        assert torch.allclose(out, content, atol=1e-6)
    photo = load(SAMPLES / "content" / "rocket.jpg", 112)
    out = stylize_tiled(stylizer.model, photo * (1.5 / 255 / float(luma(photo).mean())), code,
                        1.0, tiles)
    assert float(luma(out).mean()) * 255 < 3 and float(luma(out).std()) * 255 < 2


def test_ordinary_photos_are_untouched():
    for name in ("rocket.jpg", "cat.jpg", "astronaut.jpg", "coffee.jpg"):
        content = load(SAMPLES / "content" / name)
        assert float(stylisation_weight(content)) == 1.0
        stylised = torch.rand_like(content)
        assert keep_faint(content, stylised) is stylised


def test_batch_keeps_a_dark_content_dark_as_stylize_does(tmp_path):
    from stylenorm.inference.batch import batch_stylize

    dark = np.full((64, 80, 3), 3, np.uint8)
    dark[20:40, 30:50] = 5
    (tmp_path / "c").mkdir()
    Image.fromarray(dark).save(tmp_path / "c" / "dark.png")
    (tmp_path / "s").mkdir()
    Image.open(SAMPLES / "style" / "mosaic.png").save(tmp_path / "s" / "mosaic.png")
    batch_stylize(tmp_path / "c", tmp_path / "s", tmp_path / "out", model="lite",
                  device="cpu", precision="fp32", size=0)
    out = np.asarray(Image.open(next((tmp_path / "out").iterdir())), np.float32)
    assert out.mean() < 8, out.mean()  # lite alone paints it at about 117/255
