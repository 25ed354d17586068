"""Style jitter (styles made for free for the teacher cache): reproducible, a fixed number of
draws per crop, greys kept by the hue turn, and each geometric and colour change as stated."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stylenorm.training.style_jitter import (
    DRAWS,
    StyleJitter,
    draw_jitter,
    hue_rotation,
    jitter_style,
    recolour,
)


def crop(seed=0, size=24) -> torch.Tensor:
    return torch.randint(0, 256, (3, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def test_jitter_is_reproducible_and_always_draws_the_same_count():
    style = crop()
    for seed in range(20):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        assert torch.equal(jitter_style(style, a), jitter_style(style, b))
        skipped = np.random.default_rng(seed)
        skipped.random(DRAWS)
        assert a.random() == skipped.random()  # the next crop is drawn as it would be


def test_draws_cover_every_kind_of_jitter_and_keep_some_colours():
    jitters = [draw_jitter(np.random.default_rng(seed)) for seed in range(400)]
    assert {j.quarter_turns for j in jitters} == {0, 1, 2, 3}
    assert 0.35 < np.mean([j.mirror for j in jitters]) < 0.65
    kept = np.mean([not j.recolours() for j in jitters])
    assert 0.2 < kept < 0.4  # 30 % keep the painting's colours
    assert any(j.grey for j in jitters)
    contrasts = [j.contrast for j in jitters if j.recolours()]
    assert min(contrasts) >= 0.7 and max(contrasts) <= 1.6


def test_hue_turn_is_a_rotation_that_keeps_greys_and_comes_round():
    rotation = hue_rotation(1.1)
    torch.testing.assert_close(rotation @ rotation.T, torch.eye(3), atol=1e-6, rtol=0)
    grey = torch.full((3,), 0.4)
    torch.testing.assert_close(rotation @ grey, grey)
    torch.testing.assert_close(hue_rotation(2 * math.pi / 3) @ torch.tensor([1.0, 0, 0]),
                               torch.tensor([0.0, 1, 0]), atol=1e-6, rtol=0)  # red -> green


def test_recolour_grey_saturation_and_contrast():
    image = crop(1).float() / 255
    grey = recolour(image, StyleJitter(grey=True))
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    flat = recolour(image, StyleJitter(saturation=0.0))
    torch.testing.assert_close(flat[0], flat[2])
    torch.testing.assert_close(recolour(image, StyleJitter()), image)
    harder = recolour(image * 0.5 + 0.25, StyleJitter(contrast=1.5))
    assert float(harder.std()) == pytest.approx(float((image * 0.5 + 0.25).std()) * 1.5, rel=0.02)
    assert harder.min() >= 0 and harder.max() <= 1


def test_geometry_only_moves_pixels():
    style = crop(2)
    for seed in range(12):
        jitter = draw_jitter(np.random.default_rng(seed))
        out = jitter_style(style, np.random.default_rng(seed))
        assert out.shape == style.shape and out.dtype == torch.uint8
        if not jitter.recolours():
            expected = torch.rot90(style.flip(-1) if jitter.mirror else style,
                                   jitter.quarter_turns, (-2, -1))
            assert torch.equal(out, expected)
