"""Training data: batches of random resized crops from image folders, deterministic from (seed,
iteration).

Every crop is a pure function of ``(seed, iteration, slot in the batch)``: the image comes from a
per-epoch permutation of the folder and the crop box from a generator seeded with those numbers
(:mod:`.crops`). So a run resumed at iteration ``k`` sees exactly the batches an uninterrupted
run sees, however many DataLoader workers decode them. In a job of W processes (torchrun) the
batch of an iteration is the global one, W x ``batch_size`` slots, and process r makes slots
``r * batch_size .. (r + 1) * batch_size - 1`` of it: together they make the crops one process
makes with the global batch.

Two pipelines give the same crops:

* ``stream``: DataLoader workers decode each image (shorter side resized to ``2 * crop``), crop
  it, and hand uint8 batches over (pinned on CUDA);
* ``memory``: every image is decoded once and kept, as uint8 on the training device, and crops
  are cut there (for GPUs, which the stream pipeline could starve).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator, Sequence
from enum import Enum
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import ImageError, StylenormError
from ..ranks import Place
from .crops import CropConfig, crop_item, decode, item_rng

log = logging.getLogger("stylenorm")
WHOLE = Place()  # one process makes the whole batch

__all__ = ["CropData", "DataMode", "batch_to_float", "load_folder_images", "make_data"]


class DataMode(str, Enum):
    """How batches are made: ``auto`` is ``memory`` on a GPU the images fit on, else ``stream``."""

    AUTO = "auto"
    STREAM = "stream"
    MEMORY = "memory"


class EpochSampler:
    """Which image of a folder fills position ``iteration * batch + slot``: a fresh permutation
    of the folder every epoch, seeded by ``(seed, stream, epoch)``."""

    def __init__(self, count: int, seed: int, stream: int) -> None:
        self.count, self.seed, self.stream = count, seed, stream
        self._epoch, self._perm = -1, np.arange(0)

    def index(self, position: int) -> int:
        epoch = position // self.count
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, self.stream, epoch]).permutation(
                self.count)
        return int(self._perm[position % self.count])


class BatchItems:
    """The items of each iteration from ``start`` to ``stop``: ``(iteration, slot, indices)``,
    for this process's ``share`` of the global batch (``share.count`` x ``batch`` slots)."""

    def __init__(self, counts: Sequence[int], batch: int, seed: int, start: int, stop: int,
                 share: Place = WHOLE):
        self.samplers = [EpochSampler(n, seed, s) for s, n in enumerate(counts)]
        self.batch, self.start, self.stop = batch, start, stop
        self.global_batch = batch * share.count
        self.slots = range(share.index * batch, (share.index + 1) * batch)

    def items(self, iteration: int) -> list[tuple[int, int, tuple[int, ...]]]:
        return [
            (iteration, slot,
             tuple(s.index(iteration * self.global_batch + slot) for s in self.samplers))
            for slot in self.slots
        ]

    def __iter__(self) -> Iterator[list]:
        for iteration in range(self.start, self.stop):
            yield self.items(iteration)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class CropDataset(Dataset):
    """Decodes and crops the images of one batch item, one crop per folder ("stream").

    An unreadable image is skipped for the next one in the folder; its error message travels with
    the batch so the main process can report it once.
    """

    def __init__(self, folders: Sequence[Sequence[Path]], crop: CropConfig, seed: int) -> None:
        self.folders, self.crop, self.seed = [list(f) for f in folders], crop, seed
        self._bad: set[Path] = set()

    def __len__(self) -> int:  # items are addressed by (iteration, slot, indices), not 0..n-1
        return 0

    def _decode_from(self, paths: list[Path], index: int, errors: list[str]) -> torch.Tensor:
        for step in range(len(paths)):
            path = paths[(index + step) % len(paths)]
            if path in self._bad:
                continue
            try:
                return decode(path, self.crop.shorter_side)
            except ImageError as exc:
                self._bad.add(path)
                errors.append(str(exc))
        raise StylenormError(f"{paths[0].parent}: none of its {len(paths)} images is readable")

    def __getitem__(self, item) -> tuple[list[torch.Tensor], list[str]]:
        iteration, slot, indices = item
        crops, errors = [], []
        for stream, (paths, index) in enumerate(zip(self.folders, indices, strict=True)):
            image = self._decode_from(paths, index, errors)
            crops.append(crop_item(image, self.crop, item_rng(self.seed, iteration, slot, stream)))
        return crops, errors


def collate(samples: list) -> tuple[list[torch.Tensor], list[str]]:
    streams = len(samples[0][0])
    crops = [torch.stack([crops[k] for crops, _ in samples]) for k in range(streams)]
    return crops, [message for _, errors in samples for message in errors]


def batch_to_float(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 in [0, 1] on ``device``, channels-last."""
    batch = batch.to(device, non_blocking=True)
    return (batch.float() / 255).contiguous(memory_format=torch.channels_last)


class _Decoded(Dataset):
    """Every image of a list, decoded (for the memory pipeline's parallel first pass)."""

    def __init__(self, paths: list[Path], shorter_side: int) -> None:
        self.paths, self.shorter_side = paths, shorter_side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor | str:
        try:
            return decode(self.paths[i], self.shorter_side)
        except ImageError as exc:
            return str(exc)


def detach_worker(worker_id: int) -> None:
    """A DataLoader worker leaves the trainer's process group and ignores SIGINT and SIGTERM:
    Ctrl-C in a terminal, SIGTERM sent to the group, or to every process of the command
    (``pkill -f``, a service manager stopping it) then stops only the main process, after the
    current iteration with a checkpoint. A worker killed by it would instead make the main
    process fail at once, mid-iteration, without one. The main process still shuts its workers
    down when it exits, and a worker whose main process is gone exits by itself."""
    os.setpgid(0, 0)
    for ignored in (signal.SIGINT, signal.SIGTERM):
        signal.signal(ignored, signal.SIG_IGN)


def load_folder_images(paths: list[Path], shorter_side: int, device: torch.device,
                       num_workers: int = 0) -> list[torch.Tensor]:
    """Decode ``paths`` once (in workers) to uint8 on ``device``; unreadable ones are reported
    and dropped."""
    loader = DataLoader(_Decoded(paths, shorter_side), batch_size=None, num_workers=num_workers,
                        worker_init_fn=detach_worker)
    images = []
    for result in loader:
        if isinstance(result, str):
            log.warning("warning: skipping unreadable image: %s", result)
        else:
            images.append(result.to(device))
    if not images:
        raise StylenormError(f"{paths[0].parent}: none of its {len(paths)} images is readable")
    return images


class CropData:
    """Batches of crops, one tensor per folder, for iterations ``start .. stop - 1``.

    ``mode`` is ``stream`` (decode in DataLoader workers) or ``memory`` (decode once, keep the
    images on ``device``, crop there). ``share``: this process's part of a multi-process job.
    """

    def __init__(self, folders: Sequence[Sequence[Path]], crop: CropConfig, batch_size: int,
                 seed: int, device: torch.device, mode: str = "stream",
                 num_workers: int | None = None, share: Place = WHOLE) -> None:
        if mode not in ("stream", "memory"):
            raise StylenormError(f"data mode must be 'stream' or 'memory'; got {mode!r}")
        self.crop, self.batch_size, self.seed, self.device = crop, batch_size, seed, device
        self.share = share
        self.mode = mode
        self.num_workers = min(2, os.cpu_count() or 1) if num_workers is None else num_workers
        self.folders = [list(f) for f in folders]
        self._reported: set[str] = set()
        self.images: list[list[torch.Tensor]] = []
        if mode == "memory":
            self.images = [load_folder_images(p, crop.shorter_side, device, self.num_workers)
                           for p in self.folders]

    def _report(self, errors: list[str]) -> None:
        for message in errors:
            if message not in self._reported:
                self._reported.add(message)
                log.warning("warning: skipping unreadable image: %s", message)

    def batches(self, start: int, stop: int) -> Iterator[list[torch.Tensor]]:
        """Float [0, 1] channels-last batches on the device, one list per iteration."""
        if self.mode == "memory":
            yield from self._memory_batches(start, stop)
            return
        items = BatchItems([len(p) for p in self.folders], self.batch_size, self.seed, start, stop,
                           self.share)
        loader = DataLoader(
            CropDataset(self.folders, self.crop, self.seed), batch_sampler=items,
            num_workers=self.num_workers, collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if self.num_workers else None, worker_init_fn=detach_worker,
        )
        for crops, errors in loader:
            self._report(errors)
            yield [batch_to_float(c, self.device) for c in crops]

    def _memory_batches(self, start: int, stop: int) -> Iterator[list[torch.Tensor]]:
        items = BatchItems([len(i) for i in self.images], self.batch_size, self.seed, start, stop,
                           self.share)
        for batch in items:
            crops = []
            for stream, images in enumerate(self.images):
                crops.append(torch.stack([
                    crop_item(images[indices[stream]], self.crop,
                              item_rng(self.seed, iteration, slot, stream))
                    for iteration, slot, indices in batch
                ]))
            yield [batch_to_float(c, self.device) for c in crops]


def memory_fits(folders: Sequence[Sequence[Path]], crop: CropConfig, device: torch.device) -> bool:
    """Whether the decoded images (about 4:3 at the crop's shorter side) fit in a quarter of the
    GPU's free memory."""
    if device.type != "cuda":
        return False
    count = sum(len(f) for f in folders)
    need = count * 3 * crop.shorter_side ** 2 * 4 / 3
    free, _ = torch.cuda.mem_get_info(device)
    return need < free / 4


def make_data(folders: Sequence[Sequence[Path]], crop: CropConfig, batch_size: int, seed: int,
              device: torch.device, mode: str = "auto", num_workers: int | None = None,
              share: Place = WHOLE) -> CropData:
    """``auto`` keeps the images in GPU memory when they fit, and streams them otherwise."""
    if mode == "auto":
        mode = "memory" if memory_fits(folders, crop, device) else "stream"
    return CropData(folders, crop, batch_size, seed, device, mode, num_workers, share)
