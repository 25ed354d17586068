"""Texture energy kept when video frames are blended: averaging two frames' stylisations, whose
textures differ, softens the result, and the softening grows with the frequency. Each band of a
Laplacian pyramid of the blend is brought back to the fresh stylisation's energy.
"""

from __future__ import annotations

import numpy as np

from ..io.video import optional_module

LEVELS = 3  # bands: about 2-4, 4-8 and 8-16 px per cycle
MAX_GAIN = 2.0


def laplacian(image: np.ndarray, levels: int = LEVELS) -> list[np.ndarray]:
    """The band-pass levels of ``image``'s Laplacian pyramid, finest first (each half the size
    of the one before; the low-pass rest is left out). Shape: (H, W, C) -> [(H_k, W_k, C)]."""
    cv2 = optional_module("cv2")
    bands, current = [], image
    for _ in range(levels):
        if min(current.shape[:2]) < 4:
            break
        smaller = cv2.pyrDown(current)
        bands.append(current - cv2.pyrUp(smaller, dstsize=current.shape[1::-1]))
        current = smaller
    return bands


def collapse(bands: list[np.ndarray]) -> np.ndarray:
    """The sum of pyramid levels, finest first, at the finest level's size."""
    cv2 = optional_module("cv2")
    total = bands[-1]
    for band in reversed(bands[:-1]):
        total = band + cv2.pyrUp(total, dstsize=band.shape[1::-1])
    return total


def restore_detail(blended: np.ndarray, fresh: np.ndarray, weight: np.ndarray,
                   levels: int = LEVELS) -> np.ndarray:
    """``blended`` with each Laplacian band scaled back toward the fresh stylisation's energy
    where the two were blended: the gain of band k is ``sqrt(E_fresh / E_blended)`` over the
    pixels, weighted by ``weight``, in [1, 2], and is applied in proportion to ``weight``
    (relative to its largest value). Shape: blended, fresh (H, W, 3); weight (H, W, 1)."""
    cv2 = optional_module("cv2")
    top = float(weight.max())
    if top <= 0:
        return blended
    share = np.ascontiguousarray(weight[..., 0] / top)
    terms = []
    for soft, sharp in zip(laplacian(blended, levels), laplacian(fresh, levels), strict=True):
        if share.shape != soft.shape[:2]:
            share = cv2.resize(share, soft.shape[1::-1], interpolation=cv2.INTER_AREA)
        w = share[..., None]
        gain = np.sqrt(float((w * sharp**2).sum()) / max(float((w * soft**2).sum()), 1e-12))
        terms.append(np.float32(min(max(gain, 1.0), MAX_GAIN) - 1) * w * soft)
    return blended + collapse(terms) if terms else blended
