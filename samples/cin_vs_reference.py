"""Draw a CIN model's styles beside the reference AdaIN decoder's rendering of the same styles.

    python samples/cin_vs_reference.py --styles data/cin_styles    # docs/cin_vs_reference.jpg

``--styles`` is a folder with the image of each of the model's styles, named after it
(``afremov.jpg`` ... ``wave.jpg`` for ``cin-8styles``): the images the model was trained on,
which the project does not ship. Without it the grid is skipped, with the reason. The grid has
one column per style (labelled ``index name``) and, for each of the project's sample photos
given (``--contents``), two rows: the CIN model (``--style-index i``) and the reference
(``--reference``, with style i's image). The style images themselves are not drawn. Each
tile is rendered at ``--render`` px (a square centre crop; the style image at the same size, as
``benchmarks/cin_report.py`` measures) and shrunk to ``--tile`` px.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from stylenorm.errors import StylenormError
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.io.images import list_images, load_image, to_pil

SAMPLES = Path(__file__).resolve().parent
OUTPUT = SAMPLES.parent / "docs" / "cin_vs_reference.jpg"
LABEL_WIDTH, HEADER, GAP = 104, 22, 6


def style_images(names: list[str], folder: Path | None) -> list[Path] | str:
    """The image of each style name in ``folder``, or why there are none."""
    if folder is None or not folder.is_dir():
        return (f"no folder of style images ({folder or 'give --styles'}); it should hold "
                f"one image per style of the model, named after it: {', '.join(names)}")
    by_stem = {path.stem: path for path in list_images(folder)}
    missing = [name for name in names if name not in by_stem]
    if missing:
        return f"{folder} has no image for the styles {', '.join(missing)}"
    return [by_stem[name] for name in names]


def renderings(cin: Stylizer, reference: Stylizer, content: Path, styles: list[Path],
               render: int, tile: int) -> tuple[list[Image.Image], list[Image.Image]]:
    """The CIN model's and the reference's rendering of ``content`` in each style, as tiles."""
    image = load_image(content, render, crop=True).rgb
    options = StylizeOptions(size=render, style_size=render)
    rows = ([], [])
    for i, path in enumerate(styles):
        style = load_image(path, render).rgb
        outputs = (cin.stylize_tensors(image, [], StylizeOptions(style_index=i)),
                   reference.stylize_tensors(image, [style], options))
        for row, output in zip(rows, outputs, strict=True):
            row.append(to_pil(output).resize((tile, tile), Image.LANCZOS))
    return rows


def draw_grid(names: list[str], row_labels: list[str], rows: list[list[Image.Image]],
              tile: int) -> Image.Image:
    """Style names above the columns, a label left of each row, a gap after every pair."""
    pairs = len(rows) // 2
    height = HEADER + len(rows) * tile + (pairs - 1) * GAP
    canvas = Image.new("RGB", (LABEL_WIDTH + len(names) * tile, height), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=14)
    for i, name in enumerate(names):
        draw.text((LABEL_WIDTH + i * tile + tile // 2, HEADER // 2), f"{i} {name}",
                  fill="black", font=font, anchor="mm")
    for r, (label, row) in enumerate(zip(row_labels, rows, strict=True)):
        top = HEADER + r * tile + (r // 2) * GAP
        draw.multiline_text((6, top + tile // 2), label, fill="black", font=font, anchor="lm")
        for i, tile_image in enumerate(row):
            canvas.paste(tile_image, (LABEL_WIDTH + i * tile, top))
    return canvas


def cin_vs_reference(model: str, styles_folder: Path | None, contents: list[str],
                     reference: str = "adain", render: int = 384, tile: int = 168,
                     output: Path = OUTPUT) -> Path | None:
    """Draw the grid to ``output`` (JPEG, quality 85); without the style images or the
    reference's weights, say why and return None."""
    cin = Stylizer(model, device="cpu", precision="fp32")
    names = cin.model.style_names
    styles = style_images(names, styles_folder)
    try:
        ref = Stylizer(reference, device="cpu", precision="fp32")
    except StylenormError as exc:
        styles = styles if isinstance(styles, str) else f"the reference model: {exc}"
    if isinstance(styles, str):
        print(f"skipped {output.name}: {styles}")
        return None
    rows, labels = [], []
    for content in contents:
        rows += renderings(cin, ref, SAMPLES / "content" / f"{content}.jpg", styles, render, tile)
        labels += [f"{content}\n{model}", f"{content}\nreference\n({reference})"]
    output.parent.mkdir(parents=True, exist_ok=True)
    draw_grid(names, labels, rows, tile).save(output, quality=85, optimize=True)
    print(f"wrote {output} ({output.stat().st_size / 1024:.0f} KB; columns: "
          f"{', '.join(names)}; rows: {model} and {reference} for {', '.join(contents)})")
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cin-8styles", help="a CIN model, name or file")
    parser.add_argument("--styles", type=Path, help="the folder of the model's style images")
    parser.add_argument("--reference", default="adain")
    parser.add_argument("--contents", default="cat,rocket",
                        help="sample photos of samples/content, by name")
    parser.add_argument("--render", type=int, default=384, help="rendering size (px)")
    parser.add_argument("--tile", type=int, default=168, help="tile size in the grid (px)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cin_vs_reference(args.model, args.styles, args.contents.split(","), args.reference,
                     args.render, args.tile, args.output)


if __name__ == "__main__":
    main()
