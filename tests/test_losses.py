"""Tests for stylenorm.nn.losses: known values, invariances, purity, dtypes and errors."""

from __future__ import annotations

import pytest
import torch
from conftest import unchanged_after

from stylenorm.nn.conditional import mean_std
from stylenorm.nn.losses import (
    content_loss,
    gram_loss,
    gram_matrix,
    gram_style_loss,
    mean_std_loss,
    mean_std_style_loss,
    mean_std_target_loss,
    tv_loss,
)
from stylenorm.nn.statistics import channel_mean_std


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_content_loss_is_mse():
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 2.0)
    assert unchanged_after(content_loss, a, b).item() == pytest.approx(4.0)
    x = torch.randn(2, 3, 5, 5)
    assert content_loss(x, x).item() == 0.0


def test_content_loss_rejects_other_shapes():
    with pytest.raises(ValueError, match="equal shapes"):
        content_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


def test_gram_matrix_known_value():
    # Channel 0 = [1, 2, 3, 4], channel 1 = [0, 1, 0, 1] over a 2x2 map; C*H*W = 8.
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    expected = torch.tensor([[[30.0, 6.0], [6.0, 2.0]]]) / 8
    assert torch.allclose(unchanged_after(gram_matrix, x), expected)


def test_gram_matrix_is_symmetric_float32_and_batched():
    x = torch.randn(3, 4, 5, 6, dtype=torch.bfloat16)
    g = gram_matrix(x)
    assert g.shape == (3, 4, 4) and g.dtype == torch.float32
    assert torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(g[1], gram_matrix(x[1:2])[0])


def test_gram_loss_ignores_where_features_are():
    """A Gram matrix sums over positions, so shuffling them leaves the loss at zero."""
    x = torch.randn(2, 3, 6, 6)
    shuffled = x.flatten(2)[:, :, torch.randperm(36)].reshape_as(x)
    assert gram_loss(x, shuffled).item() == pytest.approx(0.0, abs=1e-6)
    assert gram_loss(x, x * 2).item() > 0


def test_mean_std_loss_known_value():
    x = torch.randn(2, 3, 8, 8)
    assert mean_std_loss(x, x).item() == pytest.approx(0.0, abs=1e-7)
    # A shift by 1 moves every mean by 1 and leaves the stds: loss = 1.
    assert unchanged_after(mean_std_loss, x, x + 1).item() == pytest.approx(1.0, rel=1e-5)
    # Scaling by 3 triples the stds: loss = mean((3s - s)^2) + mean((3m - m)^2).
    mean, std = mean_std(x)
    expected = ((2 * mean) ** 2).mean() + ((3 * std - std) ** 2).mean()
    assert mean_std_loss(x, x * 3).item() == pytest.approx(expected.item(), rel=1e-3)


def test_style_losses_broadcast_a_single_style_and_differ_in_size():
    out, style = torch.randn(4, 3, 8, 8), torch.randn(1, 3, 16, 12)
    expanded = style.expand(4, -1, -1, -1)
    assert mean_std_loss(out, style).item() == pytest.approx(mean_std_loss(out, expanded).item())
    assert gram_loss(out, style).item() == pytest.approx(gram_loss(out, expanded).item())


def test_style_sums_over_layers():
    out = {"a": torch.randn(2, 3, 4, 4), "b": torch.randn(2, 5, 2, 2)}
    sty = {"a": torch.randn(2, 3, 4, 4), "b": torch.randn(2, 5, 2, 2)}
    total = mean_std_style_loss(out, sty, ["a", "b"])
    assert total.item() == pytest.approx(
        (mean_std_loss(out["a"], sty["a"]) + mean_std_loss(out["b"], sty["b"])).item())
    gram_total = gram_style_loss(out, sty, ["a", "b"])
    assert gram_total.item() == pytest.approx(
        (gram_loss(out["a"], sty["a"]) + gram_loss(out["b"], sty["b"])).item())
    with pytest.raises(ValueError, match="present in both"):
        mean_std_style_loss(out, sty, ["a", "c"])


def test_tv_loss_known_value():
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 3, 4)  # +1 per column
    assert unchanged_after(tv_loss, ramp).item() == pytest.approx(1.0)
    assert tv_loss(torch.ones(1, 3, 5, 5)).item() == 0.0
    with pytest.raises(ValueError, match="H, W >= 2"):
        tv_loss(torch.ones(1, 3, 1, 5))


def test_losses_have_gradients_and_float32_results_from_bf16():
    x = torch.randn(2, 3, 6, 6, dtype=torch.bfloat16, requires_grad=True)
    s = torch.randn(2, 3, 6, 6, dtype=torch.bfloat16)
    total = mean_std_loss(x, s) + gram_loss(x, s) + tv_loss(x) + content_loss(x, s)
    assert total.dtype == torch.float32
    total.backward()
    assert x.grad is not None and torch.isfinite(x.grad.float()).all()


def test_channel_mean_std_matches_mean_std_with_gradients():
    x = (torch.randn(2, 3, 5, 7, dtype=torch.float64) * 2 + 1).requires_grad_()
    mean, std = channel_mean_std(x)
    ref_mean, ref_std = mean_std(x)
    assert torch.allclose(mean, ref_mean.float(), atol=1e-6)
    assert torch.allclose(std, ref_std.float(), atol=1e-5)
    g_mean, g_std = torch.randn_like(ref_mean), torch.randn_like(ref_std)
    ours = torch.autograd.grad((mean * g_mean).sum() + (std * g_std).sum(), x)[0]
    theirs = torch.autograd.grad((ref_mean * g_mean).sum() + (ref_std * g_std).sum(), x)[0]
    assert torch.allclose(ours, theirs, atol=1e-5)
    only_std = torch.autograd.grad(channel_mean_std(x)[1].sum(), x)[0]
    assert torch.allclose(only_std, torch.autograd.grad(mean_std(x)[1].sum(), x)[0], atol=1e-5)


def test_channel_mean_std_keeps_dtype_of_gradient_and_layout():
    x = torch.randn(2, 4, 6, 6).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    mean, std = unchanged_after(channel_mean_std, x)
    assert mean.dtype == std.dtype == torch.float32
    (mean.sum() + std.sum()).backward()
    assert x.grad.dtype == torch.bfloat16 and x.grad.shape == x.shape
    with pytest.raises(ValueError, match="at least 2 spatial"):
        channel_mean_std(torch.ones(1, 3, 1, 1))


def test_mean_std_target_loss_against_given_statistics():
    torch.manual_seed(0)
    feat, style = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 5, 7)
    mean = style.mean((-2, -1), keepdim=True)
    std = (style.var((-2, -1), keepdim=True) + 1e-5).sqrt()
    o_mean = feat.mean((-2, -1), keepdim=True)
    o_std = (feat.var((-2, -1), keepdim=True) + 1e-5).sqrt()
    expected = ((o_mean - mean) ** 2).mean() + ((o_std - std) ** 2).mean()
    assert torch.allclose(mean_std_target_loss(feat, mean, std), expected, atol=1e-6)
    assert torch.allclose(mean_std_loss(feat, style), expected, atol=1e-6)
    one = mean_std_target_loss(feat, mean[:1], std[:1])  # one style's statistics for all
    assert torch.allclose(one, mean_std_loss(feat, style[:1]), atol=1e-6)
