"""``stylenorm batch``: stylise many content x style pairs with N + M encoder passes, not 2NM.

How the work flows:

* **Styles** are read (by background threads) and each is encoded once to a
  :class:`~..models.adain.StyleCode`. With ``preserve_color`` a style is first recoloured to each
  content's palette, so its code depends on the content: then the style is read once but encoded
  once per pair.
* **Contents** are read and decoded by background threads ahead of the model, grouped by shape
  into batches of up to ``batch_size`` and encoded once each; every style they are paired with
  reuses those features. Contents above the tiling threshold (or all, with ``tile``) are encoded
  in tiles, one at a time. Encoding and decoding go through the render path every command
  shares (:mod:`stylenorm.inference.render`), which asks the model what ``alpha`` needs.
* **Outputs** are encoded and written atomically by background threads while the model works on
  the next batch (a bounded queue), so a killed run leaves only complete images and a rerun
  skips them (:func:`~stylenorm.inference.batchplan.split_existing`).

A file that cannot be read or written is reported once (one line naming it and the problem), its
outputs are counted as failed, and the run goes on.
"""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..choices import DEFAULT_PRECISION
from ..errors import DiskFullError, Interrupted, NonFiniteError, OptionError, StylenormError
from ..hub.zoo import DEFAULT_MODEL
from ..io.images import LoadedImage, load_image, save_image
from ..models.protocol import FixedStyleModel, StyleCodeLike
from ..ranks import Place
from .batchplan import (
    BatchPlan,
    Job,
    plan_folders,
    plan_pairs,
    read_pairs,
    remove_partial,
    split_existing,
)
from .faint import keep_faint
from .finite import LOW_PRECISION, PRECISION_NAMES, require_finite
from .progress import on_terminal
from .render import decode, encode, tiles_for
from .shards import share_of
from .stylize import MIN_IMAGE_SIZE, StylizeOptions, Stylizer

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
class _Content:
    image: LoadedImage
    jobs: list[Job]


def _read(path: Path, options: StylizeOptions, style: bool) -> LoadedImage:
    size = options.style_size if style else options.size
    limit = options.style_limit() if style else None
    return load_image(path, size, options.crop, options.max_pixels, MIN_IMAGE_SIZE,
                      result_limit=limit)


class _Run:
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
        futures = {p: self.readers.submit(_read, p, self.options, True) for p in paths}
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

    def contents(self, jobs: list[Job]) -> Iterator[_Content]:
        """Contents decoded ahead by the reader threads, in plan order, unreadable ones failed."""
        groups: dict[Path, list[Job]] = {}
        for job in jobs:
            if job.style in self.styles:
                groups.setdefault(job.content, []).append(job)
        ahead: deque[tuple[Path, Future]] = deque()
        for path in groups:
            ahead.append((path, self.readers.submit(_read, path, self.options, False)))
            if len(ahead) <= self.batch_size + 1:
                continue
            yield from self._take(ahead.popleft(), groups)
        while ahead:
            yield from self._take(ahead.popleft(), groups)

    def _take(self, item: tuple[Path, Future], groups: dict) -> Iterator[_Content]:
        path, future = item
        try:
            yield _Content(future.result(), groups[path])
        except StylenormError as exc:
            self.fail(groups[path], str(exc))

    def code(self, style: Path, content: torch.Tensor) -> StyleCodeLike:
        entry = self.styles[style]
        if not isinstance(entry, torch.Tensor):
            return entry  # a ready code
        return self.stylizer.style_code([entry], None, content)  # colours preserved: per pair

    def process(self, batch: list[_Content]) -> None:
        """Encode same-size contents once (several whole, or one in tiles) and decode them once
        per style they need, through the render path (:mod:`.render`)."""
        model, options = self.stylizer.model, self.options
        rgb = batch[0].image.rgb if len(batch) == 1 else torch.cat([c.image.rgb for c in batch])
        tiles = tiles_for(model, *rgb.shape[-2:], options)
        feats = encode(model, rgb, options, tiles)
        for style in dict.fromkeys(j.style for c in batch for j in c.jobs if j.style in
                                   self.styles):  # a style may fail on the way (in fp32)
            pick = [(i, j) for i, c in enumerate(batch) for j in c.jobs if j.style == style]
            rows = [i for i, _ in pick]
            codes = [self.code(style, batch[i].image.rgb) for i in rows]
            code = type(codes[0]).cat(codes)
            part = feats if rows == list(range(len(batch))) else feats.select(rows)
            out = self.checked(decode(model, part, code, options.alpha, tiles))
            out = keep_faint(rgb[rows], out)
            for k, (i, job) in enumerate(pick):
                self.write(job, out[k : k + 1], batch[i].image.alpha)

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


def _batches(run: _Run, contents: Iterator[_Content]) -> Iterator[list[_Content]]:
    """Same-shape contents grouped up to the batch size; tiled contents one by one."""
    buckets: dict[tuple[int, ...], list[_Content]] = {}
    for content in contents:
        h, w = content.image.rgb.shape[-2:]
        if tiles_for(run.stylizer.model, h, w, run.options) is not None:
            yield [content]
            continue
        bucket = buckets.setdefault((h, w), [])
        bucket.append(content)
        if len(bucket) >= run.batch_size:
            yield buckets.pop((h, w))
    yield from buckets.values()


def run_batch(stylizer: Stylizer, plan: BatchPlan, options: StylizeOptions | None = None,
              batch: BatchOptions | None = None, progress: bool = True,
              log: Log | None = None) -> BatchReport:
    """Make every job of ``plan`` (``plan.existing`` are counted as skipped); see module doc.

    ``log`` receives one line per unreadable or unwritable file as it is met.
    """
    options = options or StylizeOptions()
    options.validate(1)
    if isinstance(stylizer.model, FixedStyleModel):
        raise OptionError("batch takes its styles from images; a CIN model holds its own "
                             "(use `stylenorm stylize --style-index K` for it)")
    for folder in {job.output.parent for job in plan.todo}:
        folder.mkdir(parents=True, exist_ok=True)
    shown = on_terminal(progress) and bool(plan.todo)  # no "0image" bar for nothing to do
    with tqdm(total=len(plan.todo), unit="image", disable=not shown, desc="batch",
              file=sys.stderr) as bar:
        run = _Run(stylizer, options, batch or BatchOptions(), bar, log)
        run.report.skipped = [job.output for job in plan.existing]
        interrupted = False
        try:
            with torch.inference_mode():
                run.load_styles(plan.todo)
                for item in _batches(run, run.contents(plan.todo)):
                    _guarded(run, item)
        except DiskFullError:
            pass  # kept in run.disk_full: reported below, after the writes in flight
        except KeyboardInterrupt:
            interrupted = True
        finally:
            run.close()
    if interrupted:
        done, total = len(run.report.done), len(plan.todo)
        raise Interrupted(f"interrupted: {done} of {total} outputs written (each complete); run "
                          f"the same command again to make the other {total - done}")
    if run.disk_full is not None:
        done, total = len(run.report.done), len(plan.todo)
        raise DiskFullError(
            f"{run.disk_full}; stopped: {done} of {total} outputs written before the disk "
            "filled up. Free some space and run the same command again: it makes only the "
            f"{total - done} missing")
    return run.report


def _guarded(run: _Run, contents: list[_Content]) -> None:
    """Process one batch; a model failure (e.g. out of memory) fails its jobs, not the run."""
    names = ", ".join(str(c.image.path) for c in contents)
    for attempt in range(2):
        try:
            run.process(contents)
            return
        except DiskFullError:
            raise  # stops the run
        except NonFiniteError as exc:
            if attempt == 0 and run.stylizer.dtype in LOW_PRECISION:
                run.use_fp32()  # and once more
                continue
            run.fail([j for c in contents for j in c.jobs], f"{names}: {exc}")
        except (RuntimeError, MemoryError, StylenormError) as exc:
            run.fail([j for c in contents for j in c.jobs], f"{names}: {type(exc).__name__}: "
                     f"{exc}")
        return


def batch_stylize(contents: str | Path | None, styles: str | Path | None, out_dir: str | Path, *,
                  pairs: str | Path | None = None, model: str | Path = DEFAULT_MODEL,
                  device: str = "auto", precision: str = DEFAULT_PRECISION, recursive: bool = False,
                  ext: str = "jpg", overwrite: bool = False, batch_size: int = 0,
                  workers: int = 2, progress: bool = True, log: Log | None = None,
                  part: Place | None = None, **options) -> BatchReport:
    """Stylise every image of folder ``contents`` with every image of folder ``styles`` (or the
    pairs listed in the file ``pairs``) into ``out_dir``; see :func:`run_batch`. With ``part``
    (a torchrun rank or a ``--shard``), only that part's pairs (:mod:`.shards`).

    ``options`` are the fields of :class:`~stylenorm.inference.stylize.StylizeOptions`.
    """
    if pairs is not None:
        if contents is not None or styles is not None:
            raise OptionError("give either CONTENT_DIR and STYLE_DIR or --pairs, not both")
        jobs = plan_pairs(read_pairs(pairs), out_dir, ext)
    elif contents is None or styles is None:
        raise OptionError("give a content folder and a style folder (or --pairs FILE)")
    else:
        jobs = plan_folders(contents, styles, out_dir, ext, recursive)
    stylize_options = StylizeOptions(**options)
    jobs = share_of(jobs, part or Place(), stylize_options.size, stylize_options.crop)
    plan = split_existing(jobs, overwrite)
    remove_partial(plan.todo)
    stylizer = Stylizer(model, device, precision, log=log)
    return run_batch(stylizer, plan, stylize_options, BatchOptions(batch_size, workers),
                     progress, log)
