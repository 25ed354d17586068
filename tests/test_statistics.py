"""The mean/std variants of stylenorm.nn.statistics compute the same statistics."""

from __future__ import annotations

import pytest
import torch

from stylenorm.nn.statistics import (
    channel_mean_std,
    global_mean_std,
    mean_std,
    two_pass_mean_std,
)


def by_definition(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """mean = sum(x) / HW, std = sqrt(sum((x - mean)^2) / (HW - 1) + eps), in float64."""
    flat = x.double().flatten(2)
    mean = flat.sum(-1) / flat.shape[-1]
    var = ((flat - mean[..., None]) ** 2).sum(-1) / (flat.shape[-1] - 1)
    return mean[..., None, None], (var + eps).sqrt()[..., None, None]


VARIANTS = {
    "mean_std": lambda x: mean_std(x),
    "channel_mean_std": channel_mean_std,
    "two_pass_mean_std": two_pass_mean_std,
    "global_mean_std": lambda x: global_mean_std(x, rows=3),  # several row chunks
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("shape", [(1, 4, 7, 5), (1, 16, 2, 1), (1, 8, 13, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_every_variant_agrees_with_the_definition(name, shape, channels_last):
    torch.manual_seed(0)
    x = torch.randn(shape) * 3 + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    before = x.clone()
    mean, std = VARIANTS[name](x)
    want_mean, want_std = by_definition(x)
    assert mean.shape == std.shape == (shape[0], shape[1], 1, 1)
    # channel_mean_std's one-pass float32 sums lose a little where the mean dwarfs the spread
    tol = 1e-4 if name == "channel_mean_std" else 1e-5
    torch.testing.assert_close(mean.double(), want_mean, atol=tol, rtol=tol)
    torch.testing.assert_close(std.double(), want_std, atol=tol, rtol=tol)
    assert torch.equal(x, before)  # inputs are never modified


@pytest.mark.parametrize("name", ["mean_std", "channel_mean_std", "two_pass_mean_std"])
def test_batched_variants_are_per_sample(name):
    torch.manual_seed(1)
    x = torch.randn(3, 4, 6, 6)
    mean, std = VARIANTS[name](x)
    for i in range(3):
        one_mean, one_std = VARIANTS[name](x[i : i + 1])
        torch.testing.assert_close(mean[i : i + 1], one_mean)
        torch.testing.assert_close(std[i : i + 1], one_std)


def test_bfloat16_maps_give_float32_statistics_close_to_the_reference():
    torch.manual_seed(2)
    x = (torch.randn(1, 8, 16, 16) * 2).bfloat16()
    want_mean, want_std = by_definition(x.float())
    for name in ("channel_mean_std", "two_pass_mean_std", "global_mean_std"):
        mean, std = VARIANTS[name](x)
        assert mean.dtype == std.dtype == torch.float32, name
        torch.testing.assert_close(mean.double(), want_mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(std.double(), want_std, atol=1e-5, rtol=1e-5)
