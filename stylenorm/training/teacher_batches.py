"""Batches of teacher pairs for distillation, in one form whichever way they are made: drawn
reproducibly from a teacher cache (:class:`CacheData`), from several caches as one
(:class:`CachePool`), or made on the fly, the teacher run on every batch
(:class:`OnlineTeacherData`). A batch is [content, style, the teacher's output] in [0, 1] and
the style's VGG statistics (:func:`.teacher_cache.flat_stats`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..errors import StylenormError
from ..models.vgg import VGGEncoder
from .teacher import teacher_output
from .teacher_cache import TeacherCache, flat_stats, spec_changes, style_statistics

__all__ = ["CacheData", "CachePool", "OnlineTeacherData"]

POOLED = ("teacher_sha256", "encoder_sha256", "crop_size")  # what pooled caches must share
SAME_PAIRS = ("seed", "contents", "styles")  # with POOLED equal: taken for the same pairs


class CachePool:
    """Several teacher caches drawn from as one: pool index ``i`` is pair ``i`` of the first
    cache, then the second's pairs follow, and so on. The caches stay separate in memory."""

    def __init__(self, caches: Sequence[TeacherCache]) -> None:
        self.caches = list(caches)
        self.starts = np.cumsum([0] + [len(c) for c in self.caches]).tolist()

    @classmethod
    def load(cls, first: TeacherCache, folders: Sequence[str | Path]) -> CachePool:
        """``first`` and the caches in ``folders``; refuses, naming the folder, one of another
        teacher, loss network or crop size, and one with the seed and image counts of a cache
        already in the pool: a copy or the same folder twice, whose pairs would be drawn twice
        as often. (The spec does not name the images, so caches of other folders with the same
        counts are refused too; another seed tells them apart.)"""
        caches = [first]
        for folder in folders:
            cache = TeacherCache.load(folder)
            changed = spec_changes(asdict(first.spec), asdict(cache.spec), POOLED)
            if changed:
                raise StylenormError(f"{folder}: cannot join the teacher cache, it was built "
                                     f"with another teacher, loss network or crop size "
                                     f"({'; '.join(changed)})")
            if any(not spec_changes(asdict(c.spec), asdict(cache.spec), SAME_PAIRS)
                   for c in caches):
                raise StylenormError(f"{folder}: holds the same pairs as a cache already given "
                                     f"(seed {cache.spec.seed}, {cache.spec.contents} contents, "
                                     f"{cache.spec.styles} styles); build it with another seed")
            caches.append(cache)
        return cls(caches)

    def __len__(self) -> int:
        return self.starts[-1]

    def batch(self, indices: torch.Tensor, flips: torch.Tensor) -> list[torch.Tensor]:
        """As :meth:`TeacherCache.batch`, for pool indices."""
        out: list[torch.Tensor] | None = None
        for cache, start, stop in zip(self.caches, self.starts, self.starts[1:], strict=False):
            mine = (indices >= start) & (indices < stop)
            if not mine.any():
                continue
            part = cache.batch(indices[mine] - start, flips[mine])
            if out is None:
                out = [t.new_empty((len(indices), *t.shape[1:])) for t in part]
            for whole, piece in zip(out, part, strict=True):
                whole[mine] = piece
        return out


class CacheData:
    """Batches drawn from a teacher cache for iterations ``start .. stop - 1``, reproducibly:
    iteration ``k`` draws its pairs and flips from a generator seeded by ``(seed, k)``."""

    def __init__(self, cache: TeacherCache | CachePool, batch_size: int, seed: int,
                 device: torch.device) -> None:
        self.cache, self.batch_size, self.seed, self.device = cache, batch_size, seed, device

    def batches(self, start: int, stop: int) -> Iterator[list[torch.Tensor]]:
        for iteration in range(start, stop):
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + iteration)
            indices = torch.randint(len(self.cache), (self.batch_size,), generator=generator)
            flips = torch.rand(self.batch_size, generator=generator) < 0.5
            yield [t.to(self.device) for t in self.cache.batch(indices, flips)]


class OnlineTeacherData:
    """Batches in :class:`CacheData`'s form made on the fly: random crops (``crops``, e.g. kept
    in GPU memory and cropped there) and, per batch, the teacher's output and the styles' VGG
    statistics. For a GPU, where the teacher costs little beside the student's step and every
    batch can be a new pair; reproducible as far as the device's kernels are."""

    def __init__(self, crops, teacher, encoder: VGGEncoder) -> None:
        self.crops, self.teacher, self.encoder = crops, teacher, encoder

    def batches(self, start: int, stop: int) -> Iterator[list[torch.Tensor]]:
        for content, style in self.crops.batches(start, stop):
            with torch.no_grad():  # not inference mode: the loss keeps these for its backward
                target = teacher_output(self.teacher, content, style)
                stats = style_statistics(self.encoder, style)
            yield [content, style, target.contiguous(memory_format=torch.channels_last),
                   *flat_stats(stats)]
