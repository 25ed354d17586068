"""One ``stylenorm batch`` run's work (see :mod:`.batch`): the reader and writer threads, each
style's code, contents grouped into batches and each batch encoded once and decoded per style
through the render path (:mod:`.render`), outputs written atomically, the report."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import DiskFullError, NonFiniteError, StylenormError
from ..io.images import LoadedImage, load_image, save_image
from ..models.protocol import StyleCodeLike
from . import render
from .batchplan import Job
from .faint import keep_faint
from .finite import PRECISION_NAMES, require_finite
from .stylize import MIN_IMAGE_SIZE, StylizeOptions, Stylizer
from .tiling import TileOptions

Log = Callable[[str], None]


@dataclass
class BatchOptions:
    """How the batch runs (what to make is in :class:`~stylenorm.inference.batchplan.BatchPlan`)."""

    batch_size: int = 0  # same-size contents per model call; 0: 4 on GPUs, 1 on CPUs
    workers: int = 2  # background threads reading and writing images

    def resolved_batch_size(self, device: torch.device) -> int:
        if self.batch_size < 0 or self.workers < 1:
            raise StylenormError(
                f"batch_size must be >= 0 and workers >= 1; got {self.batch_size}, "
                f"{self.workers}", params=("batch_size", "workers")
            )
        # On a 2-core CPU a batch of 4 at 512 px ran 9 % slower per image than single images.
        return self.batch_size or (4 if device.type == "cuda" else 1)


@dataclass
class BatchReport:
    """What a run did: outputs written, outputs already there, and failures with reasons."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return "\n".join(self.summary_lines())

    def summary_lines(self) -> list[str]:
        lines = [f"done {len(self.done)}, skipped {len(self.skipped)} (already there), "
                 f"failed {len(self.failed)} (not made)"]
        reasons: dict[str, int] = {}
        for reason in self.failed.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        lines += [f"  failed: {r} ({n} output{'s' * (n != 1)})" for r, n in reasons.items()]
        return lines


@dataclass
class Content:
    image: LoadedImage
    jobs: list[Job]


def read(path: Path, options: StylizeOptions, style: bool) -> LoadedImage:
    size = options.style_size if style else options.size
    limit = options.style_limit() if style else None
    return load_image(path, size, options.crop, options.max_pixels, MIN_IMAGE_SIZE,
                      result_limit=limit)


class BatchRun:
    """One batch run: the model, the reader and writer threads, the report and progress bar."""

    def __init__(self, stylizer: Stylizer, options: StylizeOptions, batch: BatchOptions,
                 bar: tqdm, log: Log | None) -> None:
        self.stylizer, self.options, self.bar, self.log = stylizer, options, bar, log
        self.batch_size = batch.resolved_batch_size(stylizer.device)
        self.readers = ThreadPoolExecutor(batch.workers, thread_name_prefix="stylenorm-read")
        self.writers = ThreadPoolExecutor(batch.workers, thread_name_prefix="stylenorm-write")
        self.writes: deque[tuple[Job, Future]] = deque()
        self.max_writes = 2 * batch.workers + self.batch_size
        self.report = BatchReport()
        self.submitted: set[Path] = set()
        self.styles: dict[Path, StyleCodeLike | torch.Tensor] = {}
        self.style_images: dict[Path, torch.Tensor] = {}  # to encode again in fp32
        self.disk_full: DiskFullError | None = None  # the first "no space": the run stops
        self.noted = False
        self.jobs: list[Job] = []  # every job of the run

    def note_once(self, message: str) -> None:
        """The first note of the image writer (one JPEG output with transparency is enough to
        say what happens to them all)."""
        if self.log is not None and not self.noted:
            self.noted = True
            self.log(message)

    def fail(self, jobs: Iterable[Job], reason: str) -> None:
        skip = self.submitted.union(self.report.failed)
        jobs = [j for j in jobs if j.output not in skip]
        if self.log is not None and jobs:
            self.log(f"failed: {reason} ({len(jobs)} output{'s' * (len(jobs) != 1)} not made)")
        for job in jobs:
            self.report.failed[job.output] = reason
        self.bar.update(len(jobs))

    def load_styles(self, jobs: list[Job]) -> None:
        """Read every style once and, unless colours are preserved, encode it once."""
        self.jobs = jobs
        paths = list(dict.fromkeys(j.style for j in jobs))
        futures = {p: self.readers.submit(read, p, self.options, True) for p in paths}
        for path, future in futures.items():
            try:
                self.style_images[path] = future.result().rgb
            except StylenormError as exc:
                self.fail([j for j in jobs if j.style == path], str(exc))
                continue
            self.encode_style(path, jobs)

    def encode_style(self, path: Path, jobs: list[Job]) -> None:
        """A style's code (checked by :meth:`Stylizer.style_code`), or its pixels when colours
        are preserved (then it is encoded per pair); a code that is not finite fails its jobs."""
        rgb = self.style_images[path]
        try:
            keep = self.options.preserve_color
            self.styles[path] = rgb if keep else self.stylizer.style_code([rgb], None)
        except NonFiniteError as exc:
            self.styles.pop(path, None)
            self.fail([j for j in jobs if j.style == path], f"{path}: {exc}")

    def use_fp32(self) -> None:
        """After an overflow in fp16 or bf16: the model in fp32, every style encoded again."""
        if self.log is not None:
            self.log(f"note: {PRECISION_NAMES[self.stylizer.dtype]} overflowed (NaN or "
                     "infinite values); going on in fp32")
        self.stylizer.use_fp32()
        for path in list(self.styles):
            self.encode_style(path, self.jobs)

    def contents(self, jobs: list[Job]) -> Iterator[Content]:
        """Contents decoded ahead by the reader threads, in plan order, unreadable ones failed."""
        groups: dict[Path, list[Job]] = {}
        for job in jobs:
            if job.style in self.styles:
                groups.setdefault(job.content, []).append(job)
        ahead: deque[tuple[Path, Future]] = deque()
        for path in groups:
            ahead.append((path, self.readers.submit(read, path, self.options, False)))
            if len(ahead) <= self.batch_size + 1:
                continue
            yield from self.take(ahead.popleft(), groups)
        while ahead:
            yield from self.take(ahead.popleft(), groups)

    def take(self, item: tuple[Path, Future], groups: dict) -> Iterator[Content]:
        path, future = item
        try:
            yield Content(future.result(), groups[path])
        except StylenormError as exc:
            self.fail(groups[path], str(exc))

    def code(self, style: Path, content: torch.Tensor) -> StyleCodeLike:
        entry = self.styles[style]
        if not isinstance(entry, torch.Tensor):
            return entry  # a ready code
        return self.stylizer.style_code([entry], None, content)  # colours preserved: per pair

    def process(self, batch: Batch) -> None:
        """Encode same-size contents once (several whole, or one in tiles) and decode them once
        per style they need, through the render path (:mod:`.render`)."""
        model, options, contents = self.stylizer.model, self.options, batch.contents
        rgb = contents[0].image.rgb if len(contents) == 1 else torch.cat(
            [c.image.rgb for c in contents])
        feats = render.encode(model, rgb, options, batch.tiles)
        for style in dict.fromkeys(j.style for c in contents for j in c.jobs if j.style in
                                   self.styles):  # a style may fail on the way (in fp32)
            pick = [(i, j) for i, c in enumerate(contents) for j in c.jobs if j.style == style]
            rows = [i for i, _ in pick]
            codes = [self.code(style, contents[i].image.rgb) for i in rows]
            code = type(codes[0]).cat(codes)
            part = feats if rows == list(range(len(contents))) else feats.select(rows)
            out = self.checked(render.decode(model, part, code, options.alpha, batch.tiles))
            out = keep_faint(rgb[rows], out)
            for k, (i, job) in enumerate(pick):
                self.write(job, out[k : k + 1], contents[i].image.alpha)

    def checked(self, out: torch.Tensor) -> torch.Tensor:
        """``out`` in [0, 1], or :class:`NonFiniteError` when it holds NaN or infinite values."""
        require_finite(out, self.stylizer.dtype, self.stylizer.name)
        return out.clamp(0, 1)

    def write(self, job: Job, rgb: torch.Tensor, alpha: torch.Tensor | None) -> None:
        if job.output in self.submitted:
            return  # made before a retry in fp32
        self.submitted.add(job.output)
        self.writes.append((job, self.writers.submit(save_image, rgb, job.output, alpha,
                                                     self.note_once)))
        while self.writes and (len(self.writes) > self.max_writes or self.writes[0][1].done()):
            self.finish_write(*self.writes.popleft())

    def finish_write(self, job: Job, future: Future) -> None:
        try:
            self.report.done.append(future.result())
            self.bar.update(1)
        except DiskFullError as exc:
            self.submitted.discard(job.output)
            self.disk_full = self.disk_full or exc
            raise self.disk_full from None
        except StylenormError as exc:
            self.submitted.discard(job.output)
            self.fail([job], str(exc))

    def close(self) -> None:
        while self.writes:
            with contextlib.suppress(DiskFullError):  # the first one is kept in disk_full
                self.finish_write(*self.writes.popleft())
        self.readers.shutdown(cancel_futures=True)
        self.writers.shutdown()


@dataclass
class Batch:
    """Same-size contents encoded together, whole, or one content in ``tiles``."""

    contents: list[Content]
    tiles: TileOptions | None = None


def batches(run: BatchRun, contents: Iterator[Content]) -> Iterator[Batch]:
    """Same-shape contents grouped up to the batch size; those the render path tiles, one by
    one (the one decision, :func:`~.render.tiles_for`, made here once per content)."""
    buckets: dict[tuple[int, ...], list[Content]] = {}
    for content in contents:
        h, w = content.image.rgb.shape[-2:]
        tiles = render.tiles_for(run.stylizer.model, h, w, run.options)
        if tiles is not None:
            yield Batch([content], tiles)
            continue
        bucket = buckets.setdefault((h, w), [])
        bucket.append(content)
        if len(bucket) >= run.batch_size:
            yield Batch(buckets.pop((h, w)))
    yield from map(Batch, buckets.values())
