"""Splitting a batch run among processes: torchrun ranks, or ``--shard I/N`` job-array tasks.

The split is a pure function of the planned jobs (every pair, made or not) and the number of
parts, so each part computes it alone and every re-run gives each part the same pairs: a part
killed half-way and started again makes only its missing outputs. Jobs are balanced by the
pixels they stylise (the content's size after ``--size``, read from the file header): the
largest units go first, each to the part with the fewest pixels so far (ties: the lower part).
A unit is a content with all its styles, so each content is encoded by one part only, unless
there are fewer contents than parts: then single pairs are the units.

Under torchrun the ranks' reports are gathered on rank 0 (over gloo), which prints one summary.
"""

from __future__ import annotations

import datetime
import heapq
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from PIL import Image

from ..io.images import resized_size
from ..ranks import Place
from .batchplan import Job

__all__ = ["gather_reports", "job_pixels", "share_of", "split_jobs", "start_group"]


def job_pixels(path: Path, size: int, crop: bool) -> int:
    """Pixels the model stylises for content ``path`` (0 when its header cannot be read: the
    part that gets it reports the problem)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return 0
    w, h = resized_size(width, height, size, crop)
    return w * h


def _units(jobs: Sequence[Job], parts: int) -> list[list[int]]:
    """Indices of ``jobs`` grouped by content (plan order), or one job per unit when there are
    fewer contents than parts."""
    groups: dict[Path, list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.content, []).append(index)
    if len(groups) >= parts:
        return list(groups.values())
    return [[index] for index in range(len(jobs))]


def split_jobs(jobs: Sequence[Job], parts: int, pixels: dict[Path, int]) -> list[list[Job]]:
    """``jobs`` in ``parts`` lists balanced by ``pixels`` per content; each list keeps plan
    order, and together they hold every job exactly once."""
    units = _units(jobs, parts)
    cost = [sum(max(1, pixels.get(jobs[i].content, 0)) for i in unit) for unit in units]
    order = sorted(range(len(units)), key=lambda u: (-cost[u], u))
    loads = [(0, part) for part in range(parts)]  # a heap of (pixels so far, part)
    chosen: list[list[int]] = [[] for _ in range(parts)]
    for u in order:
        load, part = heapq.heappop(loads)
        chosen[part] += units[u]
        heapq.heappush(loads, (load + cost[u], part))
    return [[jobs[i] for i in sorted(indices)] for indices in chosen]


def share_of(jobs: Sequence[Job], place: Place, size: int, crop: bool) -> list[Job]:
    """The jobs of part ``place.index`` of ``place.count``."""
    if not place.is_split:
        return list(jobs)
    contents = dict.fromkeys(job.content for job in jobs)
    pixels = {path: job_pixels(path, size, crop) for path in contents}
    return split_jobs(jobs, place.count, pixels)[place.index]


def start_group(rank: Place) -> None:
    """The process group that carries the ranks' reports (gloo: they are small Python objects;
    a generous timeout, as the slowest rank may still be stylising when the first is done), and
    on a machine with GPUs the one ``LOCAL_RANK`` names as this rank's ``cuda``."""
    if torch.cuda.is_available():
        torch.cuda.set_device(rank.local_index % torch.cuda.device_count())
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=24))


def gather_reports(report):
    """Every rank's report merged, on every rank (for rank 0's summary and exit code)."""
    reports: list = [None] * dist.get_world_size()
    dist.all_gather_object(reports, report)
    merged = type(report)()
    for part in reports:
        merged.done += part.done
        merged.skipped += part.skipped
        merged.failed.update(part.failed)
    return merged
