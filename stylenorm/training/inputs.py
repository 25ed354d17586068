"""What every trainer opens with: its config checked, its device (under torchrun, the rank's),
the images of its folders, batches of random crops, and the sample and validation pairs."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import StylenormError
from ..ranks import from_environment
from ..runtime import resolve_device
from .config import TrainConfig
from .data import CropConfig, find_images, make_data, validation_images
from .distributed import join_job

__all__ = ["crop_data", "find_inputs", "paired", "sample_pairs", "validation_pairs"]


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
