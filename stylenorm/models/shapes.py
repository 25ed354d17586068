"""Shape arithmetic that traces: sizes computed from a tensor's shape and crops, written so that
``torch.export`` keeps height and width dynamic (no Python decision on a size, so no shape
guard). The models use them in their one definition; the ONNX export traces that definition."""

from __future__ import annotations

import torch


def round_ratio(numerator, denominator):
    """``round(numerator / denominator)`` (half to even, as Python's ``round``) of two positive
    ints or SymInts, in exact integer arithmetic.

    Python's float ``round(h * (size / shorter))`` agrees with it but on a few exact ties,
    where the float product lands off the half: for sides 16..16384, none with sizes 64, 128,
    256, 512 (the shipped lite model's), 1024 or 2048, a few with 16, 32, 192, 320, 384, 448."""
    quotient, twice_rest = numerator // denominator, 2 * (numerator % denominator)
    tie_to_odd = (twice_rest == denominator) & (quotient % 2 == 1)
    return (quotient + torch.sym_ite(twice_rest > denominator, 1, 0)
            + torch.sym_ite(tie_to_odd, 1, 0))


def crop(images: torch.Tensor, h, w) -> torch.Tensor:
    """``images[..., :h, :w]`` by gathering rows and columns: a slice would make the exporter
    assume (guard) that a decoder's padded size is not H or W, true only for some sizes.

    Shape: (N, C, H', W') with H' >= h, W' >= w -> (N, C, h, w)."""
    rows, cols = torch.arange(h, device=images.device), torch.arange(w, device=images.device)
    return images.index_select(-2, rows).index_select(-1, cols)


__all__ = ["crop", "round_ratio"]
