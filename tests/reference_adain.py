"""An independent re-statement of how the public PyTorch AdaIN port stylises, for parity tests.

It rebuilds the port's ``nn.Sequential`` layouts (so the ``.pth`` files load with plain
``load_state_dict``), its feature statistics (unbiased variance + eps), its style interpolation
(AdaIN per style, then a weighted sum of the targets), and its colour preservation (the style
image recoloured with correlation-matrix square roots). Written for this project from the
published method; it shares no code with stylenorm's modules on purpose.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.ReLU()]


def _pool() -> nn.Module:
    return nn.MaxPool2d(2, 2, 0, ceil_mode=True)


def sequential_vgg() -> nn.Sequential:
    """Indices 0..30 of the port's normalised VGG (up to relu4_1)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    layers += _conv_relu(3, 64) + _conv_relu(64, 64) + [_pool()]
    layers += _conv_relu(64, 128) + _conv_relu(128, 128) + [_pool()]
    layers += _conv_relu(128, 256)
    for _ in range(3):
        layers += _conv_relu(256, 256)
    layers += [_pool()] + _conv_relu(256, 512)
    return nn.Sequential(*layers)


def sequential_decoder() -> nn.Sequential:
    up = nn.Upsample(scale_factor=2, mode="nearest")
    layers: list[nn.Module] = _conv_relu(512, 256) + [up]
    for _ in range(3):
        layers += _conv_relu(256, 256)
    layers += _conv_relu(256, 128) + [up] + _conv_relu(128, 128) + _conv_relu(128, 64) + [up]
    layers += _conv_relu(64, 64) + [nn.ReflectionPad2d(1), nn.Conv2d(64, 3, 3)]
    return nn.Sequential(*layers)


def stats(feat: torch.Tensor, eps: float = 1e-5):
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    return flat.mean(2).view(n, c, 1, 1), (flat.var(2) + eps).sqrt().view(n, c, 1, 1)


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    c_mean, c_std = stats(content)
    s_mean, s_std = stats(style)
    return (content - c_mean) / c_std * s_std + s_mean


def _sqrt_sym(m: torch.Tensor) -> torch.Tensor:
    u, s, v = torch.svd(m)
    return u @ torch.diag(s.sqrt()) @ v.t()


def colour_transfer(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(3, H, W) source recoloured to the target's statistics (the port's preserve-colour)."""
    def normalised(x):
        flat = x.reshape(3, -1)
        mean, std = flat.mean(1, keepdim=True), flat.std(1, keepdim=True)
        z = (flat - mean) / std
        return z, mean, std, z @ z.t() + torch.eye(3)

    z_s, _, _, cov_s = normalised(source)
    _, mean_t, std_t, cov_t = normalised(target)
    out = _sqrt_sym(cov_t) @ torch.inverse(_sqrt_sym(cov_s)) @ z_s
    return (out * std_t + mean_t).reshape(source.shape)


@torch.no_grad()
def reference_stylize(vgg, decoder, content, styles, alpha=1.0, weights=None,
                      preserve_color=False) -> torch.Tensor:
    """content (1, 3, H, W); styles list of (1, 3, h, w); returns the decoder output."""
    if preserve_color:
        styles = [colour_transfer(s[0], content[0]).unsqueeze(0) for s in styles]
    content_f = vgg(content)
    if weights is None:
        feat = adain(content_f, vgg(styles[0]))
    else:
        targets = [adain(content_f, vgg(s)) for s in styles]
        feat = sum(w * t for w, t in zip(weights, targets, strict=True))
    feat = feat * alpha + content_f * (1 - alpha)
    return decoder(feat)
