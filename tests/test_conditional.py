"""Tests for stylenorm.nn.conditional: the pure statistics functions and the conditional modules."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import unchanged_after

from stylenorm.nn.conditional import (
    AdaIN,
    ConditionalBatchNorm2d,
    ConditionalInstanceNorm2d,
    WhiteningColoring,
    adain,
    adain_with_stats,
    mean_std,
    one_hot_weights,
    wct,
)

C = 3
f64 = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _channel_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample channel mean (N, C) and unbiased covariance (N, C, C) of an NCHW tensor."""
    feats = x.flatten(2)
    centred = feats - feats.mean(2, keepdim=True)
    return feats.mean(2), centred @ centred.transpose(1, 2) / (feats.shape[2] - 1)



# --- mean_std / adain -----------------------------------------------------------------------


def test_mean_std_is_unbiased_with_eps_inside_the_root():
    x = torch.randn(2, C, 4, 5)
    mean, std = unchanged_after(lambda t: mean_std(t, eps=1e-3), x)
    assert mean.shape == std.shape == (2, C, 1, 1)
    flat = x.view(2, C, -1)
    torch.testing.assert_close(mean[..., 0, 0], flat.mean(2))
    torch.testing.assert_close(std[..., 0, 0], (flat.var(2, unbiased=True) + 1e-3).sqrt())


def test_mean_std_explains_bad_input():
    with pytest.raises(ValueError, match="at least 2 spatial positions"):
        mean_std(torch.randn(2, C, 1, 1))
    with pytest.raises(ValueError, match="4-D"):
        mean_std(torch.randn(C, 4, 4))


@pytest.mark.parametrize("style_batch", [2, 1])
def test_adain_output_has_the_style_statistics(style_batch):
    content = torch.randn(2, C, 6, 5) * 3 + 2
    style = torch.randn(style_batch, C, 4, 7) * 0.5 - 1
    out = unchanged_after(adain, content, style)
    assert out.shape == content.shape
    out_mean, out_std = mean_std(out)
    s_mean, s_std = mean_std(style)
    torch.testing.assert_close(out_mean, s_mean.expand_as(out_mean), atol=1e-4, rtol=0)
    torch.testing.assert_close(out_std, s_std.expand_as(out_std), atol=1e-4, rtol=0)


def test_adain_with_stats_and_module_agree_with_adain():
    content, style = torch.randn(2, C, 4, 4), torch.randn(2, C, 5, 5)
    s_mean, s_std = mean_std(style)
    expected = adain(content, style)
    torch.testing.assert_close(adain_with_stats(content, s_mean, s_std), expected)
    torch.testing.assert_close(
        adain_with_stats(content, s_mean[..., 0, 0], s_std[..., 0, 0]), expected)
    torch.testing.assert_close(AdaIN()(content, style), expected)
    one = adain_with_stats(content, s_mean[0, :, 0, 0], s_std[0, :, 0, 0])
    torch.testing.assert_close(one[:1], expected[:1])


def test_adain_explains_mismatched_inputs():
    content = torch.randn(3, C, 4, 4)
    with pytest.raises(ValueError, match="batch must be 1 or match"):
        adain(content, torch.randn(2, C, 4, 4))
    with pytest.raises(ValueError, match="expects 3 channels"):
        adain(content, torch.randn(3, C + 1, 4, 4))
    with pytest.raises(ValueError, match="style_mean must have shape"):
        adain_with_stats(content, torch.zeros(C + 1), torch.ones(C))


def test_gradcheck_mean_std_and_adain():
    x = torch.randn(2, C, 3, 3, dtype=f64, requires_grad=True)
    s = torch.randn(1, C, 4, 2, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: mean_std(t), (x,))
    assert torch.autograd.gradcheck(adain, (x, s))
    assert torch.autograd.gradcheck(AdaIN(), (x, s))


# --- wct ----------------------------------------------------------------------------------


@pytest.mark.parametrize("style_batch", [2, 1])
def test_wct_matches_style_mean_and_covariance(style_batch):
    content = torch.randn(2, C, 5, 6, dtype=f64) * 2 + 1
    style = torch.randn(style_batch, C, 4, 4, dtype=f64)
    style = style + 0.8 * style[:, :1]  # correlated channels
    out = unchanged_after(lambda c, s: wct(c, s, eps=1e-12), content, style)
    assert out.shape == content.shape and out.dtype == f64
    out_mean, out_cov = _channel_moments(out)
    s_mean, s_cov = _channel_moments(style)
    torch.testing.assert_close(out_mean, s_mean.expand_as(out_mean), atol=1e-10, rtol=0)
    torch.testing.assert_close(out_cov, s_cov.expand_as(out_cov), atol=1e-8, rtol=0)


def test_wct_keeps_float32_and_explains_tiny_inputs():
    out = wct(torch.randn(1, C, 4, 4), torch.randn(1, C, 3, 3))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="at least 2 pixels in the target"):
        wct(torch.randn(1, C, 4, 4), torch.randn(1, C, 1, 1))


def test_gradcheck_wct():
    content = torch.randn(1, C, 3, 4, dtype=f64, requires_grad=True)
    style = torch.randn(1, C, 4, 3, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(wct, (content, style))


def test_whitening_coloring_blends_with_alpha():
    content, style = torch.randn(2, C, 4, 4, dtype=f64), torch.randn(1, C, 5, 5, dtype=f64)
    module = WhiteningColoring(alpha=0.25)
    full = wct(content, style)
    torch.testing.assert_close(module(content, style), 0.25 * full + 0.75 * content)
    torch.testing.assert_close(module(content, style, alpha=1.0), full)
    torch.testing.assert_close(module(content, style, alpha=0.0), content)
    with pytest.raises(ValueError, match="alpha"):
        module(content, style, alpha=1.5)


# --- conditional instance norm ---------------------------------------------------------------


def _random_tables(module):
    with torch.no_grad():
        module.gamma.copy_(torch.randn_like(module.gamma))
        module.beta.copy_(torch.randn_like(module.beta))
    return module


def test_cin_one_hot_selects_a_row():
    cin = _random_tables(ConditionalInstanceNorm2d(C, num_styles=4))
    x = torch.randn(2, C, 4, 4)
    normalised = F.instance_norm(x, eps=cin.norm.eps)
    for k in range(4):
        out = unchanged_after(cin, x, cin.one_hot(k, 4))
        expected = normalised * cin.gamma[k].view(1, -1, 1, 1) + cin.beta[k].view(1, -1, 1, 1)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    per_sample = cin(x, one_hot_weights(torch.tensor([1, 3]), 4))
    torch.testing.assert_close(per_sample[0], cin(x[:1], cin.one_hot(1, 4))[0])
    torch.testing.assert_close(per_sample[1], cin(x[1:], cin.one_hot(3, 4))[0])


def test_cin_even_mix_interpolates_gamma_and_beta():
    cin = _random_tables(ConditionalInstanceNorm2d(C, num_styles=2))
    x = torch.randn(2, C, 4, 4)
    gamma, beta = cin.gamma.mean(0).view(1, -1, 1, 1), cin.beta.mean(0).view(1, -1, 1, 1)
    expected = F.instance_norm(x) * gamma + beta
    torch.testing.assert_close(cin(x, torch.tensor([0.5, 0.5])), expected, atol=1e-5, rtol=1e-4)


def test_cin_add_styles_keeps_old_rows():
    cin = _random_tables(ConditionalInstanceNorm2d(C, num_styles=2))
    old_gamma, old_beta = cin.gamma.detach().clone(), cin.beta.detach().clone()
    cin.add_styles(3)
    assert cin.num_styles == 5 and cin.gamma.shape == (5, C)
    torch.testing.assert_close(cin.gamma[:2], old_gamma)
    torch.testing.assert_close(cin.beta[:2], old_beta)
    torch.testing.assert_close(cin.gamma[4], old_gamma.mean(0))
    assert cin.gamma.requires_grad and "gamma" in dict(cin.named_parameters())
    assert cin(torch.randn(1, C, 3, 3), cin.one_hot(4, 5)).shape == (1, C, 3, 3)


@pytest.mark.parametrize(
    "weights", [torch.ones(3), torch.ones(3, 2), torch.ones(2, 4, dtype=torch.long)]
)
def test_cin_explains_bad_weights(weights):
    cin = ConditionalInstanceNorm2d(C, num_styles=2)
    with pytest.raises(ValueError, match="style weights must be a float tensor"):
        cin(torch.randn(2, C, 3, 3), weights)


def test_one_hot_weights_validates_the_index():
    assert one_hot_weights(2, 4).tolist() == [0.0, 0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        one_hot_weights(4, 4)


def test_gradcheck_cin():
    cin = ConditionalInstanceNorm2d(C, num_styles=2).double()
    x = torch.randn(2, C, 3, 3, dtype=f64, requires_grad=True)
    w = torch.tensor([[0.3, 0.7], [0.9, 0.1]], dtype=f64, requires_grad=True)
    gamma = torch.randn(2, C, dtype=f64, requires_grad=True)
    beta = torch.randn(2, C, dtype=f64, requires_grad=True)

    def f(x, w, gamma, beta):
        params = {"gamma": gamma, "beta": beta}
        return torch.func.functional_call(cin, params, (x, w))

    assert torch.autograd.gradcheck(f, (x, w, gamma, beta))


# --- conditional batch norm -----------------------------------------------------------------


def test_cbn_uses_batch_stats_in_training_and_running_stats_in_eval():
    cbn = _random_tables(ConditionalBatchNorm2d(C, num_classes=3, momentum=0.5))
    weights = cbn.one_hot(torch.tensor([0, 2]), 3)
    gamma = (weights @ cbn.gamma)[:, :, None, None]
    beta = (weights @ cbn.beta)[:, :, None, None]
    run_mean, run_var = torch.zeros(C), torch.ones(C)
    x = torch.randn(2, C, 4, 4) * 2 + 1
    expected = F.batch_norm(x, run_mean, run_var, None, None, True, 0.5, 1e-5) * gamma + beta
    torch.testing.assert_close(cbn(x, weights), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cbn.norm.running_mean, run_mean)
    torch.testing.assert_close(cbn.norm.running_var, run_var)
    x = torch.randn(2, C, 4, 4)
    expected = F.batch_norm(x, run_mean, run_var, None, None, False, 0.0, 1e-5) * gamma + beta
    torch.testing.assert_close(cbn.eval()(x, weights), expected, atol=1e-5, rtol=1e-4)
    cbn.add_classes(1)
    assert cbn.num_classes == 4


def test_gradcheck_cbn():
    cbn = _random_tables(ConditionalBatchNorm2d(C, num_classes=2)).double().train()
    x = torch.randn(3, C, 2, 2, dtype=f64, requires_grad=True)
    w = torch.tensor([0.25, 0.75], dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(cbn, (x, w))
