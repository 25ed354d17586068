"""Image I/O: decoding with EXIF orientation, alpha and odd modes; atomic writing."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from ..choices import DEFAULT_MAX_PIXELS
from ..errors import DiskFullError, ImageError
from .atomic import atomic_write

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}


@dataclass
class LoadedImage:
    """RGB pixels in [0, 1] as (1, 3, H, W), the alpha channel (1, 1, H, W) if any, the source."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    path: Path


def resized_size(width: int, height: int, size: int = 0, crop: bool = False) -> tuple[int, int]:
    """The (width, height) that :func:`load_image` gives a ``width x height`` image: the shorter
    side becomes ``size`` (torchvision's rule), then ``crop`` keeps a ``size x size`` square."""
    if size <= 0:
        return width, height
    if crop:
        return size, size
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def resize_to(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize of float images (torchvision's ``resize`` for tensors,
    without importing torchvision on the inference path). Shape: (N, C, H, W) -> (N, C, *size)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def resize_shorter_side(images: torch.Tensor, size: int) -> torch.Tensor:
    """The shorter side resized to ``size`` by :func:`resized_size`'s rule (torchvision's)."""
    h, w = images.shape[-2:]
    new_w, new_h = resized_size(w, h, size)
    return resize_to(images, (new_h, new_w))


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The centred ``size x size`` square (offsets rounded as torchvision's ``center_crop``) of
    images at least that large. Shape: (..., H, W) -> (..., size, size)."""
    h, w = images.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return images[..., top : top + size, left : left + size]


# Working bytes per pixel: decoding holds Pillow's image, float32 RGBA and a copy (about 40
# bytes per source pixel, measured: 4.2 GiB peak for a 100 MP JPEG read at 512 px); after
# resizing, the resized tensor, its clamped copy, the RGB and alpha, the stylised output and its
# 8-bit encoding (about 64 per result pixel).
DECODE_BYTES, RESULT_BYTES = 40, 64


PILLOW_CAP = threading.Lock()


@contextlib.contextmanager
def pillow_cap(max_pixels: int):
    """Pillow's decompression-bomb cap agreeing with ``max_pixels`` while a header is read:
    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and refuses above twice it, so with the cap at
    the limit (never under the default) the limit's own message, naming --max-pixels, speaks
    for any image up to twice it, and Pillow's refusal is the backstop beyond. A raised
    ``max_pixels`` raises the cap with it (Pillow's fixed 179 MP would otherwise refuse)."""
    with PILLOW_CAP:
        before = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max(max_pixels, DEFAULT_MAX_PIXELS)
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = before


def available_memory() -> int | None:
    """Bytes of memory the kernel says are available now (Linux), or None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(path: Path, width: int, height: int, w: int, h: int, size: int) -> None:
    """Refuse an image whose decoding and resizing would not fit in the available memory."""
    need = width * height * DECODE_BYTES + w * h * RESULT_BYTES
    free = available_memory()
    if free is not None and need > free:
        resized = f", {w}x{h} after resizing to a shorter side of {size} px" if size > 0 else ""
        raise ImageError(
            f"{path}: image is {width}x{height}{resized}; that needs about {need / 2**30:.1f} "
            f"GiB and {free / 2**30:.1f} GiB of memory is available (lower --size)")


def _check_limits(path: Path, width: int, height: int, size: int, crop: bool, max_pixels: int,
                  result_limit: tuple[int, str] | None) -> None:
    """Refuse an image whose decoded or resized pixels pass their limits (before decoding)."""
    if width * height > max_pixels:
        raise ImageError(
            f"{path}: image is {width}x{height} ({width * height} pixels); the limit is "
            f"{max_pixels} (raise it with --max-pixels)"
        )
    limit, hint = result_limit or (max_pixels, "raise it with --max-pixels")
    w, h = resized_size(width, height, size, crop)
    if w * h > limit:
        raise ImageError(
            f"{path}: image is {width}x{height}, {w}x{h} after resizing to a shorter side of "
            f"{size} px ({w * h} pixels); the limit is {limit} ({hint})"
        )
    _check_memory(path, width, height, w, h, size)


def _open(path: Path, max_pixels: int, size: int = 0, crop: bool = False,
          result_limit: tuple[int, str] | None = None, decode: bool = True) -> Image.Image:
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, expected an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: not a readable image (the file is empty)")
    try:
        with warnings.catch_warnings():
            # max_pixels is the limit (Pillow's DecompressionBombError stays as a backstop); the
            # other warnings are about odd metadata (corrupt EXIF, long tags): the pixels decide
            warnings.simplefilter("ignore")
            with pillow_cap(max_pixels):
                image = Image.open(path)
            _check_limits(path, *image.size, size, crop, max_pixels, result_limit)
            image.seek(0)  # first frame of animations
            if decode:
                image.load()
    except (ImageError, MemoryError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: refusing to decode: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (unknown or damaged format)") from None
    except Exception as exc:  # decoders of untrusted bytes raise all sorts (struct.error, ...)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageError(f"{path}: cannot decode image ({reason})") from None
    return image


def _to_rgba_array(image: Image.Image) -> np.ndarray:
    """Float32 (H, W, 4) array in [0, 1] from any PIL mode, 16-bit included."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(image, dtype=np.float32)
        grey = grey / (65535.0 if grey.max() > 255 else 255.0)
        alpha = np.ones_like(grey)
        return np.stack([grey, grey, grey, alpha], axis=-1).clip(0, 1)
    if image.mode == "F":
        grey = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0).clip(0, 1)
        return np.stack([grey, grey, grey, np.ones_like(grey)], axis=-1)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    image = image.convert("RGBA" if has_alpha else "RGB")
    array = np.asarray(image, dtype=np.float32) / 255.0
    if not has_alpha:
        array = np.concatenate([array, np.ones_like(array[..., :1])], axis=-1)
    return array


def load_image(
    path: str | os.PathLike,
    size: int = 0,
    crop: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int = 1,
    *,
    result_limit: tuple[int, str] | None = None,
) -> LoadedImage:
    """Read an image as RGB in [0, 1], honouring EXIF orientation.

    ``size > 0`` resizes the shorter side to ``size`` (bilinear, antialiased); ``crop`` then
    takes the central ``size x size`` square. ``size == 0`` keeps the original size.

    Both the declared size and the size after resizing are checked before any pixel is
    decoded: the first against ``max_pixels``, the second against ``result_limit`` (pixels and
    how to raise them; ``max_pixels`` when None).

    Shape:
        rgb (1, 3, H, W); alpha (1, 1, H, W) or None when the image is fully opaque.
    """
    path = Path(path)
    image = _open(path, max_pixels, size, crop, result_limit)
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a corrupt EXIF block is not worth refusing pixels for
        image = ImageOps.exif_transpose(image)
    tensor = torch.from_numpy(_to_rgba_array(image)).permute(2, 0, 1).unsqueeze(0)
    opaque = bool((tensor[:, 3:] >= 1).all())  # decided before resizing, which rounds
    if opaque:
        tensor = tensor[:, :3]
    if size > 0:
        tensor = resize_shorter_side(tensor, size)
        if crop:
            tensor = centre_crop(tensor, size)
    tensor = tensor.clamp(0, 1)
    h, w = tensor.shape[-2:]
    if min(h, w) < min_size:
        if size > 0:
            raise ImageError(f"{path}: image is {image.width}x{image.height}, {w}x{h} after "
                             f"resizing to a shorter side of {size} px; expected at least "
                             f"{min_size}x{min_size}")
        raise ImageError(f"{path}: image is {w}x{h}; expected at least {min_size}x{min_size}")
    return LoadedImage(rgb=tensor[:, :3].contiguous(), alpha=None if opaque else tensor[:, 3:],
                       path=path)


def image_size(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """The (width, height) an image file declares, checked as :func:`load_image` checks it
    (readable header, ``max_pixels``, memory) without decoding its pixels."""
    with _open(Path(path), max_pixels, decode=False) as image:
        return image.size


def image_format(path: str | os.PathLike) -> str:
    """PIL format name for ``path``'s extension, or a clear error."""
    suffix = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise ImageError(f"{path}: cannot tell the output format from the extension {suffix!r}")
    return fmt


def to_pil(rgb: torch.Tensor, alpha: torch.Tensor | None = None) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> 8-bit PIL image (RGBA when alpha is given)."""
    rgb = rgb.detach().float().cpu()
    if rgb.dim() == 4:
        rgb = rgb[0]
    channels = [rgb]
    if alpha is not None:
        alpha = alpha.detach().float().cpu().reshape(1, *alpha.shape[-2:])
        if alpha.shape[-2:] != rgb.shape[-2:]:
            alpha = resize_to(alpha[None], tuple(rgb.shape[-2:]))[0]
        channels.append(alpha)
    array = torch.cat(channels).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).numpy())


def on_white(rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``rgb`` composited over white by ``alpha`` (resized to it). Shape: (1, 3, H, W),
    (1, 1, h, w) -> (1, 3, H, W)."""
    rgb = rgb.detach().float().cpu().reshape(1, 3, *rgb.shape[-2:])
    alpha = alpha.detach().float().cpu().reshape(1, 1, *alpha.shape[-2:])
    alpha = resize_to(alpha, tuple(rgb.shape[-2:])).clamp(0, 1)
    return rgb * alpha + (1 - alpha)


def save_image(
    rgb: torch.Tensor, path: str | os.PathLike, alpha: torch.Tensor | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Write an image atomically; the format follows the extension. With ``alpha``, a format
    without transparency (JPEG, BMP, ...) gets the image composited on white (the pixels under
    transparent areas are hidden, not shown), and ``log`` is told so."""
    path = Path(path)
    fmt = image_format(path)
    if alpha is not None and fmt not in ALPHA_FORMATS:
        rgb, alpha = on_white(rgb, alpha), None
        if log is not None:
            log(f"note: {path}: {fmt} has no transparency; transparent areas are on white "
                "(write .png or .webp to keep them)")
    image = to_pil(rgb, alpha)
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    try:
        atomic_write(path, lambda tmp: image.save(tmp, format=fmt, **options))
    except PermissionError:
        raise ImageError(f"{path}: permission denied writing the output") from None
    except OSError as exc:
        error = DiskFullError if exc.errno == errno.ENOSPC else ImageError
        raise error(f"{path}: cannot write output ({exc.strerror or exc})") from None
    return path


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files in ``folder`` (by extension), sorted, hidden files excluded."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a folder")
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in folder.glob(pattern)
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
