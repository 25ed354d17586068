"""Training pictures drawn with PIL alone: loss curves, switchable-norm mixtures, sample grids."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

from ..io.atomic import atomic_write
from ..io.images import save_image

__all__ = ["loss_curve", "mixture_chart", "mixture_table", "save_grid", "smooth"]

COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))
GREY, BLACK, WHITE = (200, 200, 200), (0, 0, 0), (255, 255, 255)


def _save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    path = Path(path)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    return path


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` values (shorter at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _log_ticks(low: float, high: float) -> list[float]:
    return [10.0 ** e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]


def loss_curve(records: Sequence[Mapping], keys: Sequence[str], path: str | os.PathLike,
               size: tuple[int, int] = (800, 450), x_key: str = "iter",
               x_label: str = "iteration") -> Path:
    """Plot ``keys`` of the JSONL ``records`` against ``x_key`` (the iteration), log-scale y,
    each smoothed over a window of about 2% of the points."""
    width, height = size
    left, right, top, bottom = 70, 20, 20, 40
    image = Image.new("RGB", size, WHITE)
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    xs = [r[x_key] for r in records]
    series = {k: smooth([max(float(r[k]), 1e-12) for r in records], max(1, len(records) // 50))
              for k in keys if records and k in records[0]}
    values = [v for s in series.values() for v in s]
    if not xs or not values:
        draw.text((left, top), "no losses logged yet", fill=BLACK, font=font)
        return _save_png(image, path)
    ylo, yhi = math.log10(min(values)), math.log10(max(values))
    margin = max(0.05 * (yhi - ylo), 0.02)  # keep the lines off the frame
    ylo, yhi = ylo - margin, yhi + margin
    xlo, xhi = xs[0], max(xs[-1], xs[0] + 1)

    def point(x: float, y: float) -> tuple[float, float]:
        px = left + (x - xlo) / (xhi - xlo) * (width - left - right)
        py = height - bottom - (math.log10(y) - ylo) / (yhi - ylo) * (height - top - bottom)
        return px, py

    for tick in _log_ticks(10 ** ylo, 10 ** yhi):
        if ylo <= math.log10(tick) <= yhi:
            _, py = point(xlo, tick)
            draw.line([(left, py), (width - right, py)], fill=GREY)
            draw.text((5, py - 6), f"{tick:.0e}", fill=BLACK, font=font)
    draw.rectangle([left, top, width - right, height - bottom], outline=BLACK)
    draw.text((left, height - bottom + 8), f"{xlo:.4g}", fill=BLACK, font=font)
    draw.text((width - right - 60, height - bottom + 8), f"{xhi:.4g}", fill=BLACK, font=font)
    draw.text((width // 2 - 30, height - bottom + 8), x_label, fill=BLACK, font=font)
    for i, (key, ys) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        draw.line([point(x, y) for x, y in zip(xs, ys, strict=True)], fill=colour, width=2)
        draw.text((width - right - 120, top + 8 + 14 * i), key, fill=colour, font=font)
    return _save_png(image, path)


def mixture_table(weights: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """A text table of switchable-norm mixtures: one row per layer, IN/LN/BN for mean and var."""
    name_width = max([5, *map(len, weights)])
    header = f"{'layer':<{name_width}}  mean: IN    LN    BN   | var: IN    LN    BN"
    lines = [header, "-" * len(header)]
    for layer, mix in weights.items():
        mean = "  ".join(f"{mix['mean'][k]:.2f}" for k in ("in", "ln", "bn"))
        var = "  ".join(f"{mix['var'][k]:.2f}" for k in ("in", "ln", "bn"))
        lines.append(f"{layer:<{name_width}}        {mean} |      {var}")
    return "\n".join(lines)


def mixture_chart(weights: Mapping[str, Mapping[str, Mapping[str, float]]],
                  path: str | os.PathLike) -> Path:
    """Stacked horizontal bars (IN, LN, BN shares) for each layer's mean and variance mix."""
    row, bar_width, label_width = 22, 300, max([60, *(7 * len(k) for k in weights)])
    width = label_width + 2 * bar_width + 60
    height = 50 + row * max(1, len(weights))
    image = Image.new("RGB", (width, height), WHITE)
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    for col, stat in enumerate(("mean", "var")):
        draw.text((label_width + 20 + col * (bar_width + 20), 8), stat, fill=BLACK, font=font)
    for j, branch in enumerate(("IN", "LN", "BN")):
        draw.rectangle([width - 150 + 45 * j, 8, width - 140 + 45 * j, 18], fill=COLOURS[j])
        draw.text((width - 137 + 45 * j, 7), branch, fill=BLACK, font=font)
    for i, (layer, mix) in enumerate(weights.items()):
        y = 30 + i * row
        draw.text((5, y + 3), layer, fill=BLACK, font=font)
        for col, stat in enumerate(("mean", "var")):
            x = label_width + 20 + col * (bar_width + 20)
            for j, branch in enumerate(("in", "ln", "bn")):
                share = mix[stat][branch] * bar_width
                draw.rectangle([x, y, x + share, y + row - 6], fill=COLOURS[j])
                x += share
    return _save_png(image, path)


def save_grid(rows: Sequence[Sequence[torch.Tensor]], path: str | os.PathLike) -> Path:
    """Save equally sized (1, 3, H, W) or (3, H, W) images in [0, 1] as a grid, row by row."""
    flat = [t.reshape(3, *t.shape[-2:]).float().cpu().clamp(0, 1) for r in rows for t in r]
    grid = make_grid(torch.stack(flat), nrow=len(rows[0]), padding=2, pad_value=1.0)
    return save_image(grid[None], path)
