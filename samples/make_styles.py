"""Draw the project's own style images (samples/style/{mosaic,ripples,strokes}.png).

Run from the repository root: ``python samples/make_styles.py``. Deterministic (fixed seeds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 384
OUT = Path(__file__).resolve().parent / "style"


def mosaic(rng: np.random.Generator) -> Image.Image:
    """Voronoi tiles in a warm palette with dark grout."""
    seeds = rng.uniform(0, SIZE, (140, 2))
    palette = np.array([[214, 69, 65], [245, 171, 53], [38, 166, 154], [30, 60, 114],
                        [236, 236, 214], [142, 68, 173]], dtype=np.float32)
    colours = palette[rng.integers(0, len(palette), len(seeds))] + rng.normal(0, 12, (140, 3))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    d = (xx[..., None] - seeds[:, 0]) ** 2 + (yy[..., None] - seeds[:, 1]) ** 2
    order = np.argsort(d, axis=-1)
    nearest, second = order[..., 0], order[..., 1]
    gap = np.sqrt(np.take_along_axis(d, second[..., None], -1)[..., 0]) - np.sqrt(
        np.take_along_axis(d, nearest[..., None], -1)[..., 0])
    image = colours[nearest] * np.clip(gap / 3.0, 0.15, 1.0)[..., None]
    return Image.fromarray(image.clip(0, 255).astype(np.uint8))


def ripples(rng: np.random.Generator) -> Image.Image:
    """Interfering waves mapped through a blue-gold colour ramp."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    field = np.zeros_like(xx)
    for _ in range(5):
        cx, cy, freq = rng.uniform(-0.2, 1.2), rng.uniform(-0.2, 1.2), rng.uniform(60, 140)
        field += np.sin(freq * np.hypot(xx - cx, yy - cy) + rng.uniform(0, 6.3))
    t = (field - field.min()) / (field.max() - field.min())
    low, mid, high = np.array([16, 32, 90]), np.array([40, 140, 200]), np.array([250, 210, 90])
    image = np.where(t[..., None] < 0.5, low + (mid - low) * (2 * t[..., None]),
                     mid + (high - mid) * (2 * t[..., None] - 1))
    return Image.fromarray(image.astype(np.uint8))


def strokes(rng: np.random.Generator) -> Image.Image:
    """Short thick brush strokes that follow a smooth swirling flow field."""
    image = Image.new("RGB", (SIZE, SIZE), (40, 30, 25))
    draw = ImageDraw.Draw(image)
    palette = [(230, 180, 60), (200, 80, 40), (70, 120, 170), (240, 230, 200), (90, 150, 80)]
    for _ in range(3500):
        x, y = rng.uniform(0, SIZE, 2)
        angle = 3 * np.sin(x / 57.0) + 2 * np.cos(y / 41.0)
        length, width = rng.uniform(8, 22), int(rng.integers(2, 6))
        colour = tuple(int(c + rng.normal(0, 15)) for c in palette[rng.integers(len(palette))])
        end = (x + length * np.cos(angle), y + length * np.sin(angle))
        draw.line([(x, y), end], fill=colour, width=width)
    return image.filter(ImageFilter.SMOOTH)


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for seed, make in enumerate((mosaic, ripples, strokes)):
        make(np.random.default_rng(seed)).save(OUT / f"{make.__name__}.png")
        print(f"wrote {OUT / (make.__name__ + '.png')}")
