"""Image-quality metrics as pure functions: PSNR, SSIM and grid energy."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> float:
    """10 log10(peak^2 / MSE) in dB (infinite for identical images).

    Shape:
        a, b: any equal shapes.
    """
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes; got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(peak**2 / mse)).item()


def _luma(image: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma in float64. Shape: (1, 3, H, W) or (3, H, W) -> (1, 1, H, W)."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    return (image.double().reshape(1, 3, *image.shape[-2:]) * weights).sum(1, keepdim=True)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004) of the luma of two RGB images in [0, 1].

    With Gaussian-weighted local means mu, variances s^2 and covariance s_ab,
    SSIM = ((2 mu_a mu_b + C1)(2 s_ab + C2)) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2)),
    C1 = 0.01^2, C2 = 0.03^2, averaged over valid (unpadded) positions.

    Shape:
        a, b: (1, 3, H, W) or (3, H, W), equal shapes, H and W >= ``window``.
    """
    if a.shape != b.shape:
        raise ValueError(f"ssim needs equal shapes; got {tuple(a.shape)} and {tuple(b.shape)}")
    x, y = _luma(a), _luma(b)
    g = _gaussian_window(window, sigma)
    kernel_h, kernel_w = g.view(1, 1, 1, -1), g.view(1, 1, -1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kernel_h), kernel_w)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return float((num / den).mean())


def grid_energy(image: torch.Tensor, period: int = 8) -> float:
    """How much of an image's fine detail is one pattern repeated in every cell of a
    ``period`` px grid (a dot lattice or a checkerboard, as upsampling by 2, 4 or 8 can
    leave): the luma's high-pass (the image minus its ``period`` x ``period`` box mean) is
    averaged over each of the ``period``^2 grid phases (y mod period, x mod period), and the
    std of those phase means is divided by the std of the high-pass. 1 for a pure lattice of
    the period or a divisor of it, at any offset; near 0 for detail with no repeated pattern
    (noise alone gives about ``period / sqrt(H * W)``; so do blocks of unrelated values).

    Shape:
        image: (1, 3, H, W) or (3, H, W) in [0, 1], H and W >= ``period``.
    """
    y = _luma(image)
    before, after = (period - 1) // 2, period // 2
    local = F.avg_pool2d(F.pad(y, (before, after, before, after), mode="reflect"), period, 1)
    detail = y - local
    h, w = (n // period * period for n in detail.shape[-2:])
    detail = detail[..., :h, :w]
    spread = detail.std(correction=0)
    if spread == 0:
        return 0.0
    phases = detail.reshape(h // period, period, w // period, period).mean((0, 2))
    return float(phases.std(correction=0) / spread)
