"""The lite model's building blocks: micro encoder, modulators and decoder (see :mod:`.lite`).

A FiLM pair ``(scale, shift)`` acts on a convolution's output as ``relu(out * (1 + scale) +
shift)``; (0, 0) leaves it unchanged, so every modulator that is added to a trained model starts
at zero and the model computes what it did before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.fused import conv_act

Film = tuple[torch.Tensor, torch.Tensor]  # (scale, shift), each (N, C, 1, 1) or (N, C, H, W)


def conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode="reflect")


def modulate(out: torch.Tensor, film: Film, fused: bool) -> torch.Tensor:
    """``relu(out * (1 + scale) + shift)``; ``fused``: one multiply-add and a ReLU in place."""
    scale, shift = film
    if fused:
        return torch.addcmul(shift.to(out.dtype), out, (1 + scale).to(out.dtype)).relu_()
    return F.relu(out * (1 + scale.to(out.dtype)) + shift.to(out.dtype))


class ResBlock(nn.Module):
    """``x + conv2(relu(conv1(x)))``; with a ``film``, conv1's output is modulated by it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = conv(channels, channels), conv(channels, channels)
        self.fused = False  # fused kernels for inference (see nn.fused.conv_act)

    def forward(self, x: torch.Tensor, film: Film | None = None) -> torch.Tensor:
        if self.fused:  # the sum in place
            h = (conv_act(x, self.conv1) if film is None
                 else modulate(conv_act(x, self.conv1, relu=False), film, fused=True))
            return conv_act(h, self.conv2, relu=False).add_(x)
        h = self.conv1(x)
        h = F.relu(h) if film is None else modulate(h, film, fused=False)
        return x + self.conv2(h)


class LiteEncoder(nn.Module):
    """Features at full, 1/2 and 1/4 resolution and, with ``deep`` channels, at 1/8.
    Shape: (N, 3, H, W) -> [(N, w_l, ...)].

    The deep level serves the style encoder only (it runs once per style, so it may be wide):
    the statistics of the shallow levels hold little of what VGG's relu3_1/relu4_1 statistics
    of a style hold, and those layers are where the style loss is lost."""

    def __init__(self, widths: tuple[int, int, int], res_blocks: int, deep: int = 0) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.stem = conv(3, w1)
        self.down1, self.down2 = conv(w1, w2, 2), conv(w2, w3, 2)
        self.res = nn.Sequential(*(ResBlock(w3) for _ in range(res_blocks)))
        if deep:
            self.down3 = conv(w3, deep, 2)
            self.deep = nn.Sequential(*(ResBlock(deep) for _ in range(res_blocks)))
        self.fused = False  # fused kernels for inference (see nn.fused.conv_act)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = conv_act(x, self.stem, fused=self.fused)
        f2 = conv_act(f1, self.down1, fused=self.fused)
        f3 = self.res(conv_act(f2, self.down2, fused=self.fused))
        if not hasattr(self, "down3"):
            return [f1, f2, f3]
        return [f1, f2, f3, self.deep(conv_act(f3, self.down3, fused=self.fused))]


class Modulator(nn.Module):
    """Style statistics (mean, std) of one level -> (scale, shift) for ``channels`` channels.

    ``identity=True`` starts as (std, mean), i.e. plain AdaIN; otherwise it starts at (0, 0),
    which FiLM reads as "no change"."""

    def __init__(self, channels: int, identity: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * channels, 2 * channels)
        nn.init.zeros_(self.linear.bias)
        if identity and not self.linear.weight.is_meta:  # a meta build (sizing) holds no values
            with torch.no_grad():
                self.linear.weight.copy_(torch.eye(2 * channels).roll(channels, dims=0))
        else:
            nn.init.zeros_(self.linear.weight)

    def forward(self, mean: torch.Tensor, std: torch.Tensor) -> Film:
        stats = torch.cat([mean.flatten(1), std.flatten(1)], dim=1).float()
        scale, shift = self.linear(stats.to(self.linear.weight.dtype)).chunk(2, dim=1)
        return scale[..., None, None], shift[..., None, None]


class StyleFilm(nn.Module):
    """The whole style code (every level's means and stds) -> one FiLM pair per decoder residual
    block, through a two-layer MLP (``hidden`` units). Its output layer starts at zero.

    Where the per-level :class:`Modulator` sees only its own level's statistics and acts on the
    decoder's upsampling layers, this one lets the texture-making residual blocks at the
    bottleneck depend on the style.

    With ``half_blocks``, a second output layer (also at zero) gives one FiLM pair of
    ``half_channels`` to each of the decoder's residual blocks at 1/2 resolution; they follow
    the bottleneck's in the returned list."""

    def __init__(self, code_channels: int, hidden: int, channels: int, blocks: int,
                 half_channels: int = 0, half_blocks: int = 0) -> None:
        super().__init__()
        self.channels, self.blocks = channels, blocks
        self.half_channels, self.half_blocks = half_channels, half_blocks
        self.hidden = nn.Linear(2 * code_channels, hidden)
        self.out = nn.Linear(hidden, 2 * channels * blocks)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        if half_blocks:
            self.half_out = nn.Linear(hidden, 2 * half_channels * half_blocks)
            nn.init.zeros_(self.half_out.weight)
            nn.init.zeros_(self.half_out.bias)

    def forward(self, means: list[torch.Tensor], stds: list[torch.Tensor]) -> list[Film]:
        stats = torch.cat([t.flatten(1) for t in (*means, *stds)], dim=1).float()
        hidden = F.relu(self.hidden(stats.to(self.hidden.weight.dtype)))
        films = _pairs(self.out(hidden), self.blocks, self.channels)
        if self.half_blocks:
            films += _pairs(self.half_out(hidden), self.half_blocks, self.half_channels)
        return films


def _pairs(flat: torch.Tensor, blocks: int, channels: int) -> list[Film]:
    """(N, blocks * 2 * channels) -> one (scale, shift) pair of (N, channels, 1, 1) per block."""
    films = flat.view(-1, blocks, 2, channels, 1, 1)
    return [(films[:, b, 0], films[:, b, 1]) for b in range(blocks)]


class LiteDecoder(nn.Module):
    """Residual blocks at the bottleneck (1/4), an upsampling convolution to 1/2, ``half_blocks``
    residual blocks there (the texture of VGG's relu2_1/relu3_1 is made at these two levels),
    and one to full resolution, each upsampling convolution FiLM-modulated."""

    def __init__(self, widths: tuple[int, int, int], res_blocks: int, half_blocks: int = 0
                 ) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.res = nn.Sequential(*(ResBlock(w3) for _ in range(res_blocks)))
        if half_blocks:
            self.half_res = nn.Sequential(*(ResBlock(w2) for _ in range(half_blocks)))
        self.up2, self.up1 = conv(w3, w2), conv(w2, w1)
        self.out = conv(w1, 3)
        self.fused = False  # fused kernels for inference (see nn.fused.conv_act)

    def film(self, h: torch.Tensor, conv: nn.Conv2d, film: Film) -> torch.Tensor:
        """``relu(conv(h) * (1 + scale) + shift)``."""
        out = conv_act(h, conv, relu=False) if self.fused else conv(h)
        return modulate(out, film, self.fused)

    def forward(self, h: torch.Tensor, films: list[Film],
                res_films: list[Film] | None = None) -> torch.Tensor:
        """``films``: for the full and 1/2 levels; ``res_films``: one per residual block (those
        at the bottleneck, then those at 1/2), or None (unmodulated blocks)."""
        half, n = list(getattr(self, "half_res", ())), len(self.res)
        films_of = [None] * (n + len(half)) if res_films is None else res_films
        for block, film in zip(self.res, films_of[:n], strict=True):
            h = block(h, film)
        h = self.film(F.interpolate(h, scale_factor=2, mode="nearest"), self.up2, films[1])
        for block, film in zip(half, films_of[n:], strict=True):
            h = block(h, film)
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.film(h, self.up1, films[0])
        return conv_act(h, self.out, relu=False, fused=self.fused)
