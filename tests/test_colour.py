"""Colour matching for --preserve-color (stylenorm.nn.colour.match_colour), and how it differs
from CORAL."""

from __future__ import annotations

import torch

from stylenorm.nn.colour import match_colour
from stylenorm.nn.conditional import wct


def coral(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CORAL colour transfer: ``source`` recoloured to the target's channel means and 3x3
    covariance, C_t^{1/2} C_s^{-1/2} (x_s - mu_s) + mu_t; on colours that is WCT.

    Shape:
        (N, 3, H, W); target (N or 1, 3, H', W') -> (N, 3, H, W)
    """
    return wct(source, target)


def image(seed: int, shape=(1, 3, 20, 24)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=generator)
    mix = torch.rand(3, 3, generator=generator) + torch.eye(3)  # correlated channels
    return torch.einsum("ij,njhw->nihw", mix, x) / mix.sum(1).view(1, 3, 1, 1)


def stats(x: torch.Tensor):
    pixels = x.reshape(3, -1).double()
    return pixels.mean(1), pixels.std(1), torch.corrcoef(pixels), torch.cov(pixels)


def test_match_colour_gives_the_target_mean_std_and_correlations():
    """Exactly the mean; std and correlations up to the "+ I" that regularises R (about 1/HW)."""
    source, target = image(0), image(1, (1, 3, 16, 30))
    before = source.clone()
    out = match_colour(source, target)
    assert out.shape == source.shape and out.dtype == source.dtype
    assert torch.equal(source, before)  # a new tensor; the input is untouched
    got, want = stats(out), stats(target)
    torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-5)  # mean
    torch.testing.assert_close(got[1], want[1], atol=0, rtol=5 / 480)  # std; HW = 480
    torch.testing.assert_close(got[2], want[2], atol=5 / 480, rtol=0)  # correlations


def test_match_colour_takes_three_dimensional_images_and_keeps_a_matched_image():
    source = image(2)[0]
    out = match_colour(source, source)
    assert out.shape == (3, 20, 24)
    torch.testing.assert_close(out, source, atol=1e-5, rtol=1e-5)


def test_coral_matches_covariance_where_match_colour_matches_correlation():
    """Both give the target's mean and (match_colour up to its regularisation) covariance; they
    differ in the map between them, so their outputs differ."""
    source, target = image(3), image(4)
    ours, theirs = match_colour(source, target), coral(source, target)
    for out in (ours, theirs):
        torch.testing.assert_close(stats(out)[0], stats(target)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(stats(out)[3], stats(target)[3], atol=1e-3, rtol=2e-2)
    assert (ours - theirs).abs().max() > 1e-3
