"""PSNR, SSIM and the evaluation scores."""

from __future__ import annotations

import math

import pytest
import torch

from stylenorm.inference.evaluate import evaluate, score_output
from stylenorm.inference.stylize import Stylizer
from stylenorm.models.vgg import VGGEncoder
from stylenorm.nn.metrics import grid_energy, psnr, ssim


def test_psnr_known_value():
    a = torch.zeros(1, 3, 4, 4)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-6)


def test_ssim_identity_and_ordering():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-9)
    slight = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
    heavy = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert 1.0 > ssim(x, slight) > ssim(x, heavy) > -1.0
    with pytest.raises(ValueError, match="equal shapes"):
        ssim(x, x[..., :16])


def test_grid_energy_finds_a_lattice_and_not_plain_detail():
    torch.manual_seed(0)
    photo_like = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 259, 261), 3, 1, 1)
    assert grid_energy(photo_like) < 0.08
    assert grid_energy(torch.full((1, 3, 64, 64), 0.5)) == 0.0
    dots = torch.zeros(1, 3, 256, 256)
    dots[..., 1::4, 2::4] = 1.0  # a dot every 4 px: a divisor of the 8 px grid
    assert grid_energy(dots) == pytest.approx(1.0, abs=1e-3)
    assert grid_energy(dots[..., 3:, 5:]) == pytest.approx(1.0, abs=1e-3)  # any offset
    rows, cols = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    checkerboard = ((rows + cols) % 2).float().expand(1, 3, 64, 64)
    assert grid_energy(checkerboard) == pytest.approx(1.0, abs=1e-3)
    faint = (photo_like[..., :256, :256] + 0.05 * dots).clamp(0, 1)  # faint dots over detail
    assert grid_energy(photo_like) + 0.1 < grid_energy(faint) < 1.0


def test_score_output_zero_style_loss_for_the_style_itself():
    torch.manual_seed(0)
    encoder = VGGEncoder()
    style = torch.rand(1, 3, 32, 32)
    _, loss_s, sim, _ = score_output(encoder, style, style, style)
    assert loss_s == pytest.approx(0.0, abs=1e-10) and sim == pytest.approx(1.0)


@pytest.mark.slow
def test_evaluate_scores_every_pair(random_store, tmp_path):
    from conftest import make_image

    contents = [make_image(tmp_path / f"c{i}.png", (40, 32), seed=i) for i in range(2)]
    styles = [make_image(tmp_path / f"s{i}.png", (32, 32), seed=9 + i) for i in range(2)]
    result = evaluate(Stylizer("adain", device="cpu"), VGGEncoder(), contents, styles, size=32)
    assert len(result.pairs) == 4 and set(result.summary()) == {"content_loss", "style_loss",
                                                                 "ssim", "grid"}
    per_style = result.per_style()
    assert list(per_style) == ["s0.png", "s1.png"]
    for name, means in per_style.items():
        mine = [p.style_loss for p in result.pairs if p.style == name]
        assert len(mine) == 2 and means["style_loss"] == pytest.approx(sum(mine) / 2)
    assert sum(m["ssim"] for m in per_style.values()) / 2 == pytest.approx(
        result.summary()["ssim"])
