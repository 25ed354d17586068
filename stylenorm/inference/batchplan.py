"""Planning a batch run: which content x style pairs to make, under which output names.

Outputs are named ``<content-stem>__<style-stem>.<ext>``; with ``--recursive`` each content's
sub-folder is mirrored under the output folder. Names that would collide are refused up front,
and outputs that already exist are skipped unless ``overwrite`` is set, so an interrupted run
started again does only what is left.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StylenormError
from ..io.atomic import stale_temporaries
from ..io.images import image_format, list_images


@dataclass(frozen=True)
class Job:
    """One output image: a content, a style and where the result goes."""

    content: Path
    style: Path
    output: Path


@dataclass
class BatchPlan:
    """The jobs to run and those whose outputs already exist."""

    todo: list[Job] = field(default_factory=list)
    existing: list[Job] = field(default_factory=list)


def output_name(content: Path, style: Path, ext: str) -> str:
    return f"{content.stem}__{style.stem}.{ext.lstrip('.')}"


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _images(folder: Path, recursive: bool, exclude: Path, what: str) -> list[Path]:
    found = [p for p in list_images(folder, recursive) if not _inside(p, exclude)]
    if not found:
        raise StylenormError(f"{folder}: no {what} images found (looked for {what} files with "
                             "image extensions" + ("" if recursive else "; try --recursive") + ")")
    return found


def read_pairs(path: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Pairs from a text file: one ``content<TAB>style`` or ``content,style`` per line.

    Blank lines and lines starting with ``#`` are ignored; relative paths are taken relative to
    the pairs file's folder.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise StylenormError(f"{path}: cannot read the pairs file ({exc})") from None
    pairs = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = [f.strip() for f in text.split("\t" if "\t" in text else ",")]
        if len(fields) != 2 or not all(fields):
            raise StylenormError(
                f"{path}:{number}: expected 'content<TAB>style' or 'content,style'; got {line!r}"
            )
        pairs.append(tuple(path.parent / f for f in fields))
    if not pairs:
        raise StylenormError(f"{path}: the pairs file lists no pairs")
    return pairs


def _check_unique(jobs: list[Job]) -> list[Job]:
    """Drop repeated jobs; refuse two different pairs that would write one file."""
    seen: dict[Path, Job] = {}
    for job in jobs:
        other = seen.setdefault(job.output, job)
        if other != job:
            raise StylenormError(
                f"{job.output}: both ({other.content}, {other.style}) and ({job.content}, "
                f"{job.style}) would be written here; rename one of the files"
            )
    return list(seen.values())


def plan_folders(content_dir: str | os.PathLike, style_dir: str | os.PathLike,
                 out_dir: str | os.PathLike, ext: str = "jpg",
                 recursive: bool = False) -> list[Job]:
    """Every content x style combination, contents in the outer loop."""
    content_dir, style_dir, out_dir = Path(content_dir), Path(style_dir), Path(out_dir)
    image_format(f"x.{ext.lstrip('.')}")
    contents = _images(content_dir, recursive, out_dir, "content")
    styles = _images(style_dir, recursive, out_dir, "style")
    jobs = []
    for content in contents:
        folder = out_dir / content.parent.relative_to(content_dir)
        jobs += [Job(content, style, folder / output_name(content, style, ext)) for style in styles]
    return _check_unique(jobs)


def plan_pairs(pairs: list[tuple[Path, Path]], out_dir: str | os.PathLike,
               ext: str = "jpg") -> list[Job]:
    """The listed pairs, written flat into ``out_dir``."""
    image_format(f"x.{ext.lstrip('.')}")
    out_dir = Path(out_dir)
    jobs = [Job(c, s, out_dir / output_name(c, s, ext)) for c, s in pairs]
    return _check_unique(jobs)


def split_existing(jobs: list[Job], overwrite: bool = False) -> BatchPlan:
    """Separate the jobs whose output file already exists (kept unless ``overwrite``)."""
    plan = BatchPlan()
    for job in jobs:
        (plan.existing if job.output.exists() and not overwrite else plan.todo).append(job)
    return plan


def remove_partial(jobs: list[Job]) -> int:
    """Delete temporary files that a killed run left beside these jobs' outputs (written by
    :func:`~stylenorm.io.atomic.atomic_write`); those of a live process, such as a second run
    writing into the same folder now, are kept. Returns how many were deleted."""
    removed = 0
    names_by_folder: dict[Path, set[str]] = {}
    for job in jobs:
        names_by_folder.setdefault(job.output.parent, set()).add(job.output.name)
    for folder, names in names_by_folder.items():
        if not folder.is_dir():
            continue
        for name in names:
            for part in stale_temporaries(folder, name):
                part.unlink(missing_ok=True)
                removed += 1
    return removed
