"""Where this process stands in a multi-process job: its rank among ``world_size`` processes.

``torchrun`` (and ``python -m torch.distributed.run``) start one process per GPU or CPU slot and
tell each its place through the environment: ``RANK`` (0 .. WORLD_SIZE - 1 over all machines),
``WORLD_SIZE`` and ``LOCAL_RANK`` (its index on its own machine, which picks its GPU). Without
them the process is rank 0 of 1, and nothing about a run changes.

A scheduler job array (SLURM ``--array``, a Kubernetes indexed Job) starts independent processes
instead; ``--shard I/N`` gives each its part (:func:`parse_shard`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from .errors import OptionError, StylenormError

__all__ = ["Place", "from_environment", "leave_group", "parse_shard"]


@dataclass(frozen=True)
class Place:
    """Part ``index`` of ``count`` (a rank of a torchrun job, or a shard of a job array)."""

    index: int = 0
    count: int = 1
    local_index: int = 0

    @property
    def is_main(self) -> bool:
        """The one process that prints summaries and writes a run's files."""
        return self.index == 0

    @property
    def is_split(self) -> bool:
        return self.count > 1

    def within(self, outer: Place) -> Place:
        """This place inside part ``outer``: the I-th of N shards, split again among W ranks,
        is part ``I * W + rank`` of ``N * W``."""
        return Place(outer.index * self.count + self.index, outer.count * self.count,
                     self.local_index)


def _integer(environ, name: str, default: int) -> int:
    text = environ.get(name, "")
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise StylenormError(f"environment variable {name}={text!r} is not an integer "
                             "(torchrun sets it)") from None


def from_environment(environ=None) -> Place:
    """This process's place from ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (rank 0 of 1
    when they are unset)."""
    environ = os.environ if environ is None else environ
    place = Place(_integer(environ, "RANK", 0), _integer(environ, "WORLD_SIZE", 1),
                  _integer(environ, "LOCAL_RANK", 0))
    if not 0 <= place.index < place.count:
        raise StylenormError(f"RANK={place.index} and WORLD_SIZE={place.count} do not fit "
                             "(0 <= RANK < WORLD_SIZE); start the job with torchrun")
    return place


def parse_shard(text: str) -> Place:
    """``"I/N"`` (0 <= I < N) as a place, or an error naming ``--shard`` and the problem."""
    index, slash, count = text.strip().partition("/")
    if not slash or not index.strip().isdigit() or not count.strip().isdigit():
        raise OptionError(f"--shard must be I/N with whole numbers, e.g. 0/4; got {text!r}",
                             params=("shard",))
    index_value, count_value = int(index), int(count)
    if count_value < 1 or index_value >= count_value:
        raise OptionError(f"--shard {text}: I must be in 0..N-1 (shards count from 0) and "
                             f"N >= 1; got I={index_value}, N={count_value}", params=("shard",))
    return Place(index_value, count_value)


def leave_group() -> None:
    """Tear down the process group, if one was started, before the process exits: left to the
    interpreter's exit, gloo's threads can abort the process after its work is done
    ("terminate called without an active exception"). Imports nothing new."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
