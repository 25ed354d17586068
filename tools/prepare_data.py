"""Make the training folders of the journal's runs (symbolic links, in the ignored data/).

    python benchmarks/holdout_split.py --images ../shared/images --out data
    python tools/prepare_data.py --shared ../shared --out data

makes, beside the held-out split's folders:

- data/all_content: the split's training contents plus ../shared/train/content;
- data/all_style: the split's training styles plus ../shared/train/style, less the texture set;
- data/val_texture: 8 full-resolution paintings and drawings of ../shared/train/style held out
  as a second validation set (fine, high-contrast texture and line: hatching, pointillism,
  strokes), never trained on;
- data/style_weighted: all_style with each image linked several times, so that draws lean
  toward styles of strong texture and full resolution (see WEIGHTS).
"""

from __future__ import annotations

import argparse
from pathlib import Path

TEXTURE_VAL = (
    "vangoghgan-hr__Van-Gogh-Drawings-Olive-Orchard.jpg",
    "vangoghgan-hr__Van-Gogh-Drawings-Sun-over-Walled-Wheat-Field.jpg",
    "vangoghgan-hr__Van-Gogh-Drawings-Rocks-with-Oak-Tree.jpg",
    "vangoghgan-hr__Seurat-village-road-1883.jpg",
    "vangoghgan-hr__Lucien-Pissarro-fishpond-bottom.jpg",
    "vangoghgan-hr__Matisse-view-of-belle-le-1897.jpg",
    "vangoghgan-hr__Drawings-landscape_sketch_by_t1mmmm-d5vnbtu.jpg",
    "vangoghgan-hr__Constable-cottage-rainbow-mill.jpg",
)

# Copies per image, by the source prefix of its name (before "__"); any other source (the
# style-transfer repositories' styles and ../shared/images) gets DEFAULT_WEIGHT.
WEIGHTS = {
    "vangoghgan-hr": 6,
    "dtd": 2,
    "krita": 2,
    "pacs-sketch": 2,
    "vangogh2photo": 2,
    "wikiart224": 2,
    "pacs-art": 1,
    "pacs-cartoon": 1,
    "wesnoth": 1,
    "chinesepainting": 1,
    "plasmabg": 1,
    "ukuibg": 1,
    "gnomebg": 1,
    "matebg": 1,
}
DEFAULT_WEIGHT = 4


def link_all(sources: list[Path], folder: Path, skip: frozenset[str] = frozenset()) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for source in sources:
        for image in sorted(source.iterdir()):
            if image.name in skip:
                continue
            link = folder / image.name
            if not link.exists():
                link.symlink_to(image.resolve())
            count += 1
    return count


def weighted(style_folder: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for image in sorted(style_folder.iterdir()):
        copies = WEIGHTS.get(image.name.split("__")[0], DEFAULT_WEIGHT)
        for k in range(1, copies + 1):
            link = out / f"w{k}__{image.name}"
            if not link.exists():
                link.symlink_to(image.resolve())
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args()
    train = args.shared / "train"
    if not (args.out / "train_style").is_dir():
        raise SystemExit(f"error: {args.out / 'train_style'} is missing: run "
                         "benchmarks/holdout_split.py first")
    texture = frozenset(TEXTURE_VAL)
    out = args.out
    counts = {
        "all_content": link_all([out / "train_content", train / "content"], out / "all_content"),
        "all_style": link_all([out / "train_style", train / "style"], out / "all_style", texture),
    }
    (args.out / "val_texture").mkdir(parents=True, exist_ok=True)
    for name in TEXTURE_VAL:
        link = args.out / "val_texture" / name
        if not link.exists():
            link.symlink_to((train / "style" / name).resolve())
    counts["val_texture"] = len(TEXTURE_VAL)
    counts["style_weighted"] = weighted(args.out / "all_style", args.out / "style_weighted")
    for name, count in counts.items():
        print(f"{args.out / name}: {count} images")


if __name__ == "__main__":
    main()
