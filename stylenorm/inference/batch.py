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

import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..choices import DEFAULT_PRECISION
from ..errors import DiskFullError, Interrupted, NonFiniteError, OptionError, StylenormError
from ..hub.zoo import DEFAULT_MODEL
from ..models.protocol import FixedStyleModel
from ..ranks import Place
from .batchplan import (
    BatchPlan,
    plan_folders,
    plan_pairs,
    read_pairs,
    remove_partial,
    split_existing,
)
from .batchrun import Batch, BatchOptions, BatchReport, BatchRun, Log, batches
from .finite import LOW_PRECISION
from .progress import on_terminal
from .shards import share_of
from .stylize import StylizeOptions, Stylizer


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
        run = BatchRun(stylizer, options, batch or BatchOptions(), bar, log)
        run.report.skipped = [job.output for job in plan.existing]
        interrupted = False
        try:
            with torch.inference_mode():
                run.load_styles(plan.todo)
                for item in batches(run, run.contents(plan.todo)):
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


def _guarded(run: BatchRun, batch: Batch) -> None:
    """Process one batch; a model failure (e.g. out of memory) fails its jobs, not the run."""
    contents = batch.contents
    names = ", ".join(str(c.image.path) for c in contents)
    for attempt in range(2):
        try:
            run.process(batch)
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


__all__ = ["BatchOptions", "BatchReport", "batch_stylize", "run_batch"]
