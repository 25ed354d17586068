"""Colour matching for ``--preserve-color``: recolour the style image to the content's palette."""

from __future__ import annotations

import torch


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive-definite matrix via its eigendecomposition."""
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T


def match_colour(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Give ``source`` the per-channel mean, std and channel correlations of ``target``.

    With x the (3, H*W) pixels of an image, mu and sigma its per-channel mean and unbiased std,
    z = (x - mu) / sigma and R = z z^T + I:

        out = sigma_t * (R_t^(1/2) R_s^(-1/2) z_s) + mu_t

    (the colour transfer used by AdaIN's ``--preserve_color``). Returns a new tensor.

    Shape:
        source (1, 3, H, W) or (3, H, W); target (1, 3, H', W') or (3, H', W'); out like source.
    """
    shape = source.shape
    src = source.reshape(3, -1).double()
    tgt = target.reshape(3, -1).double()
    eye = torch.eye(3, dtype=torch.float64)

    def standardise(x: torch.Tensor):
        mean, std = x.mean(1, keepdim=True), x.std(1, keepdim=True).clamp_min(1e-8)
        z = (x - mean) / std
        return z, mean, std, z @ z.T + eye

    z_s, _, _, r_s = standardise(src)
    _, mean_t, std_t, r_t = standardise(tgt)
    mapped = _sqrtm_psd(r_t) @ torch.linalg.inv(_sqrtm_psd(r_s)) @ z_s
    return (mapped * std_t + mean_t).reshape(shape).to(source.dtype)
