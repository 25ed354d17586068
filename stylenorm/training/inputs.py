"""What every trainer opens with: its config checked, its device (under torchrun, the rank's),
the images of its folders, batches of random crops, and the sample and validation pairs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import ImageError, StylenormError
from ..io.images import list_images, load_image
from ..ranks import from_environment
from ..runtime import resolve_device
from .config import TrainConfig
from .crops import CropConfig
from .data import make_data
from .distributed import join_job

__all__ = ["crop_data", "find_images", "find_inputs", "paired", "sample_pairs",
           "validation_images", "validation_pairs"]


def find_images(folder: str | os.PathLike, what: str) -> list[Path]:
    """All images under ``folder`` (recursive), or an error that says what was expected."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StylenormError(f"--{what} {folder}: not a folder of images")
    paths = list_images(folder)
    if not paths:
        raise StylenormError(
            f"--{what} {folder}: no images found (looked recursively for .jpg, .png, .webp, ...)"
        )
    return paths


def validation_images(paths: Sequence[Path], size: int, count: int, device: torch.device
                      ) -> torch.Tensor:
    """The first ``count`` readable images of ``paths``, centre-cropped to ``size`` squares.

    Shape:
        (count or fewer, 3, size, size) float in [0, 1] on ``device``
    """
    images = []
    for path in paths:
        if len(images) == count:
            break
        try:
            images.append(load_image(path, size=size, crop=True).rgb)
        except ImageError:
            continue
    if not images:
        raise StylenormError(f"{Path(paths[0]).parent}: no readable image for the sample grids")
    return torch.cat(images).to(device)


def paired(contents: torch.Tensor, styles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n of each, n the smaller count."""
    n = min(contents.shape[0], styles.shape[0])
    return contents[:n], styles[:n]


def sample_pairs(contents: list[Path], styles: list[Path], crop_size: int, count: int,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre crops of the first ``count`` contents and styles, for the sample grids."""
    return paired(validation_images(contents, crop_size, count, device),
                  validation_images(styles, crop_size, count, device))


def validation_pairs(config: TrainConfig, device: torch.device
                     ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``config.val_count`` held-out contents and styles, centre crops at the crop size, or None
    when no ``--val-content``/``--val-style`` folders are given."""
    if not (config.val_content and config.val_style):
        if config.val_content or config.val_style:
            raise StylenormError("val_content and val_style go together; got only one",
                                 params=("val_content", "val_style"))
        return None
    folders = (find_images(config.val_content, "val-content"),
               find_images(config.val_style, "val-style"))
    return paired(*(validation_images(f, config.crop_size, config.val_count, device)
                    for f in folders))


def find_inputs(config: TrainConfig, content: str = "content", style: str = "style"
                ) -> tuple[torch.device, list[Path], list[Path]]:
    """``config`` validated, its device (under torchrun: the rank's, with the process group
    started), and the images of its content and style folders (the config fields named
    ``content`` and ``style``)."""
    config.validate()
    _, device = join_job(resolve_device(config.device))
    contents = find_images(getattr(config, content), content)
    styles = find_images(getattr(config, style), style)
    return device, contents, styles


def crop_data(config: TrainConfig, device: torch.device, folders: list[list[Path]]):
    """Training batches of random crops from ``folders``, deterministic from (seed, iteration);
    under torchrun, this rank's share of each global batch."""
    return make_data(folders, CropConfig(config.crop_size), config.batch_size, config.seed, device,
                     config.data_mode, config.num_workers, from_environment())
