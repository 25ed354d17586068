"""Split ../shared/images into training and held-out validation folders (symbolic links).

    python benchmarks/holdout_split.py --images ../shared/images --out data

makes data/{train,val}_{content,style}/. The split is fixed (seed 2026, 8 images of each kind
held out), so every training run and report uses the same validation images.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

HELD_OUT = 8
SEED = 2026


def split(images: Path, out: Path) -> dict[str, list[str]]:
    held: dict[str, list[str]] = {}
    for kind in ("content", "style"):
        files = sorted(p.name for p in (images / kind).iterdir() if p.is_file())
        held[kind] = sorted(random.Random(SEED).sample(files, HELD_OUT))
        for part in ("train", "val"):
            folder = out / f"{part}_{kind}"
            folder.mkdir(parents=True, exist_ok=True)
            for name in files:
                link = folder / name
                if (name in held[kind]) == (part == "val") and not link.exists():
                    link.symlink_to((images / kind / name).resolve())
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=Path("../shared/images"))
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args()
    for kind, names in split(args.images, args.out).items():
        print(f"held-out {kind}: {', '.join(names)}")


if __name__ == "__main__":
    main()
