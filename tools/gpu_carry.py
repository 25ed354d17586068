"""Pack what a leased GPU needs to distil the lite model into one small, git-ignored folder.

    python tools/gpu_carry.py --contents data/all_content --styles data/all_style \
        --val-contents data/val_content --val-styles data/val_style [--out gpu_carry]

A leased GPU machine receives the working tree and the ignored paths a call names, 64 MiB in all,
and reaches nothing else: not ``../shared``, not the weights store. This writes ``OUT/``:

    home/      the teacher and its VGG encoder from the weights store, in fp16
               (``STYLENORM_HOME`` there; third-party weights: never commit them)
    content/   training photos, shorter side ``--side`` px (JPEG)
    style/     training styles, likewise
    val_content/, val_style/   the held-out pairs, likewise

The images are drawn in a seeded random order, content and style in turn, until the folder
would pass ``--budget-mib``. ``tools/gpu_distill.sh`` trains on the result; ``--side`` is twice
its crop size, the scale the CPU runs crop at (crops of 256 px from images of 512 px).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageOps

from stylenorm.hub.files import pack_weights, read_meta
from stylenorm.hub.store import resolve_weights
from stylenorm.hub.zoo import encoder_name
from stylenorm.io.images import list_images

MIB = 1 << 20


def shrink(source: Path, target: Path, side: int, quality: int) -> int:
    """``source`` with its shorter side at most ``side`` px, as a JPEG; the bytes written."""
    with Image.open(source) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        scale = side / min(image.size)
        if scale < 1:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        image.save(target, "JPEG", quality=quality)
    return target.stat().st_size


def copy_images(sources: list[Path], folder: Path, side: int, quality: int) -> int:
    """Shrink ``sources`` into ``folder``; the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for index, path in enumerate(sources):
        try:
            written += shrink(path, folder / f"{index:05d}.jpg", side, quality)
        except (OSError, ValueError) as exc:
            print(f"skipped {path}: {exc}", file=sys.stderr)
    return written


def interleave(contents: list[Path], styles: list[Path], out: Path, side: int, quality: int,
               budget: int) -> tuple[int, int, int]:
    """Content and style images in turn until ``budget`` bytes: (contents, styles, bytes)."""
    folders = {"content": out / "content", "style": out / "style"}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    counts = {"content": 0, "style": 0}
    written = 0
    queues = {"content": iter(contents), "style": iter(styles)}
    while queues:
        for kind in list(queues):
            path = next(queues[kind], None)
            if path is None:
                del queues[kind]
                continue
            target = folders[kind] / f"{counts[kind]:05d}.jpg"
            try:
                size = shrink(path, target, side, quality)
            except (OSError, ValueError) as exc:
                print(f"skipped {path}: {exc}", file=sys.stderr)
                continue
            if written + size > budget:
                target.unlink()
                return counts["content"], counts["style"], written
            written += size
            counts[kind] += 1
    return counts["content"], counts["style"], written


def tracked_bytes() -> int:
    """The size of the files git tracks here: the working tree travels with the carried paths."""
    names = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout
    paths = [Path(n) for n in names.decode().split("\0") if n]
    return sum(p.stat().st_size for p in paths if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contents", type=Path, required=True)
    parser.add_argument("--styles", type=Path, required=True)
    parser.add_argument("--val-contents", type=Path, required=True)
    parser.add_argument("--val-styles", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("gpu_carry"))
    parser.add_argument("--teacher", default="adain")
    parser.add_argument("--side", type=int, default=384)
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument("--budget-mib", type=float, default=0.0,
                        help="the whole folder, weights included [default: 64 MiB less the "
                        "tracked files, which travel too, less 2 MiB]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.budget_mib:
        args.budget_mib = 62 - tracked_bytes() / MIB
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out}: exists and is not empty; remove it first")

    home = args.out / "home"
    home.mkdir(parents=True, exist_ok=True)
    teacher = resolve_weights(args.teacher)
    encoder = resolve_weights(encoder_name(read_meta(teacher).config["encoder"]["family"]))
    for source in (teacher, encoder):
        pack_weights(source, home / source.name)
    written = sum(p.stat().st_size for p in home.iterdir())

    written += copy_images(list_images(args.val_contents), args.out / "val_content", args.side,
                           args.quality)
    written += copy_images(list_images(args.val_styles), args.out / "val_style", args.side,
                           args.quality)
    contents, styles = list_images(args.contents), list_images(args.styles)
    for paths in (contents, styles):
        random.Random(args.seed).shuffle(paths)
    budget = int(args.budget_mib * MIB) - written
    n_content, n_style, images = interleave(contents, styles, args.out, args.side, args.quality,
                                            budget)
    print(f"{args.out}: {n_content} contents and {n_style} styles at {args.side} px, weights "
          f"and held-out pairs: {(written + images) / MIB:.1f} MiB")


if __name__ == "__main__":
    main()
