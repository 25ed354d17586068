"""Tiled stylisation: the tiles cover the image, blend to weight 1, share global statistics, match
the whole-image result, leave no seam, and keep every model call to one tile's size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_image
from PIL import Image
from seams import seam_ratio, tile_borders
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import StylenormError
from stylenorm.inference.render import stylize_tiled
from stylenorm.inference.stylize import Stylizer
from stylenorm.inference.tiling import (
    GRID,
    TileOptions,
    encode_content,
    should_tile,
    spans,
    tile_count,
    window_weights,
)
from stylenorm.models.adain import StyleCode
from stylenorm.nn.conditional import mean_std
from stylenorm.nn.metrics import psnr

pytestmark = pytest.mark.usefixtures("one_thread")

OPTIONS = TileOptions(tile=64, halo=48)


@pytest.fixture
def stylizer(random_store):
    return Stylizer("adain", precision="fp32")


@pytest.fixture
def content():
    torch.manual_seed(0)
    smooth = torch.rand(1, 3, 12, 10)
    return torch.nn.functional.interpolate(smooth, size=(184, 152), mode="bicubic").clamp(0, 1)


@pytest.fixture
def code(stylizer):
    torch.manual_seed(1)
    return stylizer.style_code([torch.rand(1, 3, 48, 48)], None)


def untiled(stylizer: Stylizer, content: torch.Tensor, code: StyleCode) -> torch.Tensor:
    with torch.inference_mode():
        out = stylizer.model(stylizer.model.prepare(content), code)
    return out[..., : content.shape[-2], : content.shape[-1]].clamp(0, 1)


@pytest.mark.parametrize("length,core,grid", [(184, 64, 8), (100, 100, 8), (7, 3, 1), (513, 64, 8)])
def test_spans_partition_the_axis_on_the_grid(length, core, grid):
    parts = spans(length, core, grid)
    assert parts[0][0] == 0 and parts[-1][1] == length
    assert all(a == prev_b for (_, prev_b), (a, _) in zip(parts, parts[1:], strict=False))
    assert all(b - a <= core + grid and a % grid == 0 for a, b in parts)


def test_blending_weights_sum_to_one():
    full, radius = 23 * GRID, 24
    total = torch.zeros(full)
    for a, b in spans(full, 64, GRID):
        start, stop = max(0, a - 48), min(full, b + 48)
        total[start:stop] += window_weights(start, stop, (a, b), full, radius)
    torch.testing.assert_close(total, torch.ones(full))


def test_global_statistics_match_the_whole_image(stylizer, content):
    feats = encode_content(stylizer.model, content, OPTIONS)
    with torch.inference_mode():
        whole = stylizer.model.encode(stylizer.model.prepare(content)).float()
    mean, std = mean_std(whole)
    assert feats.features.shape == whole.shape
    torch.testing.assert_close(feats.mean, mean, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(feats.std, std, rtol=1e-3, atol=1e-4)


def test_tiled_output_matches_untiled_and_has_no_seams(stylizer, content, code):
    tiled = stylize_tiled(stylizer.model, content, code, 1.0, OPTIONS)
    whole = untiled(stylizer, content, code)
    assert psnr(tiled, whole) > 40
    rows, cols = tile_borders(*content.shape[-2:], OPTIONS)
    assert rows and cols
    seams = seam_ratio(tiled, rows, cols)
    assert abs(seams - seam_ratio(whole, rows, cols)) < 0.1
    naive = stylize_tiled(stylizer.model, content, code, 1.0, TileOptions(tile=64, halo=0))
    assert seam_ratio(naive, rows, cols) > seams + 0.5  # hard cuts without context do show


def test_tile_count_is_what_the_hook_sees(stylizer, content, code):
    calls: list = []
    stylize_tiled(stylizer.model, content, code, 1.0, OPTIONS,
                  on_tile=lambda stage, size: calls.append(stage))
    assert tile_count(stylizer.model, *content.shape[-2:], OPTIONS) == len(calls) > 2


def test_every_model_call_is_one_tile(stylizer, code):
    small = TileOptions(tile=24, halo=16)
    sizes: dict[tuple[int, int], list] = {}
    for shape in [(48, 40), (96, 80)]:
        image = torch.rand(1, 3, *shape)
        calls: list = []
        stylize_tiled(stylizer.model, image, code, 1.0, small,
                      on_tile=lambda stage, size, calls=calls: calls.append(size))
        sizes[shape] = calls
    limit = small.tile + 2 * small.halo + GRID
    for calls in sizes.values():
        assert max(max(size) for size in calls) <= limit
    assert len(sizes[(96, 80)]) > 2 * len(sizes[(48, 40)])  # more tiles, not bigger ones


def test_masked_tiling_matches_untiled(stylizer, content):
    torch.manual_seed(2)
    styles = [torch.rand(1, 3, 48, 48), torch.rand(1, 3, 40, 40)]
    two = StyleCode.cat([stylizer.style_code([s], None) for s in styles])
    mask = torch.zeros(1, 1, *content.shape[-2:])
    mask[..., :, : content.shape[-1] // 2] = 1
    tiled = stylize_tiled(stylizer.model, content, two, 0.7, OPTIONS, mask=mask)
    with torch.inference_mode():
        whole = stylizer.model(stylizer.model.prepare(content), two, 0.7, mask)[..., :184, :152]
    assert psnr(tiled, whole.clamp(0, 1)) > 40


def test_auto_threshold_and_option_checks():
    assert should_tile(2160, 3840) and not should_tile(1080, 1920)
    assert should_tile(32, 32, force=True)
    with pytest.raises(StylenormError, match="multiple of 8"):
        TileOptions(tile=100).validate()
    with pytest.raises(StylenormError, match="halo"):
        TileOptions(tile=64, halo=12).validate()


def test_stylize_command_tiles(random_store, tmp_path):
    content = make_image(tmp_path / "c.png", (150, 120))
    style = make_image(tmp_path / "s.png", (40, 40), seed=3)
    args = ["stylize", str(content), str(style), "--size", "0", "--style-size", "0"]
    runner = CliRunner()
    tiled = runner.invoke(app, [*args, "-o", str(tmp_path / "t.png"), "--tile", "--tile-size",
                                "64"])
    assert tiled.exit_code == 0, tiled.output
    plain = runner.invoke(app, [*args, "-o", str(tmp_path / "p.png")])
    assert plain.exit_code == 0, plain.output

    def pixels(name):
        return torch.from_numpy(np.asarray(Image.open(tmp_path / name), dtype=np.float64))

    assert psnr(pixels("t.png") / 255, pixels("p.png") / 255) > 40


@pytest.fixture
def lite_stylizer(tmp_path):
    from stylenorm.hub.files import save_weights
    from stylenorm.models.lite import LiteConfig, LiteModel

    torch.manual_seed(3)
    model = LiteModel(LiteConfig(widths=(8, 12, 16), res_blocks=1, style_size=48, style_mlp=8,
                                 style_deep=8))
    with torch.no_grad():  # weights that make the output vary with the content and the style
        for modulator in model.modulators[:2]:
            modulator.linear.weight.normal_(0, 0.2)  # FiLM starts as "no change"
        model.style_film.out.weight.normal_(0, 0.2)
        for conv in model.modules():
            if isinstance(conv, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        model.decoder.out.weight.mul_(0.1)
        model.decoder.out.bias.fill_(0.5)
    path = save_weights(tmp_path / "lite.safetensors", model.state_dict(), "lite",
                        model.config.to_dict(), {})
    return Stylizer(path, device="cpu", precision="fp32")


@pytest.mark.parametrize("alpha", [1.0, 0.6, 0.0])
def test_lite_tiled_output_matches_untiled(lite_stylizer, content, alpha):
    torch.manual_seed(4)
    styles = [torch.rand(1, 3, 48, 48), torch.rand(1, 3, 40, 56)]
    one = lite_stylizer.style_code(styles[:1], None)
    two = type(one).cat([lite_stylizer.style_code([s], None) for s in styles])
    mask = torch.zeros(1, 1, *content.shape[-2:])
    mask[..., : content.shape[-2] // 2, :] = 1
    model = lite_stylizer.model
    for code, m in ((one, None), (two, mask)):
        tiled = stylize_tiled(model, content, code, alpha, OPTIONS, mask=m)
        with torch.inference_mode():
            whole = model(lite_stylizer.model.prepare(content), code, alpha, m)[..., :184, :152]
        assert tiled.shape == (1, 3, 184, 152) and whole.std() > 0.05
        assert psnr(tiled, whole.clamp(0, 1)) > 40
        if alpha == 0.0:  # the content itself, tile by tile (add_detail)
            assert psnr(tiled, content.clamp(0, 1)) > 60
    if alpha == 0.0:
        return
    naive = stylize_tiled(model, content, one, alpha, TileOptions(tile=64, halo=0))
    assert psnr(naive, stylize_tiled(model, content, one, alpha, OPTIONS)) < 40


def test_lite_tiles_are_one_tile_each(lite_stylizer):
    calls: list = []
    code = lite_stylizer.style_code([torch.rand(1, 3, 48, 48)], None)
    stylize_tiled(lite_stylizer.model, torch.rand(1, 3, 96, 80), code, 1.0,
                  TileOptions(tile=24, halo=16), on_tile=lambda stage, size: calls.append(size))
    assert len(calls) > 8 and max(max(size) for size in calls) <= 24 + 2 * 16 + GRID


def test_cin_models_refuse_tiling():
    from stylenorm.inference.tiling import can_tile, check_tileable

    assert not can_tile(torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(StylenormError, match="^tile works with the adain and lite models "
                       r"\(styles from images\)"):
        check_tileable(torch.nn.Conv2d(3, 3, 1))
