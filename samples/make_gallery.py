"""Make the README gallery from the project's own sample inputs.

    python samples/make_gallery.py                     # samples/outputs/ with the default model
    python samples/make_gallery.py --cin cin-8styles   # also docs/cin_styles.jpg
    python samples/make_gallery.py --cin cin-8styles --cin-styles data/cin_styles
                                    # also docs/cin_vs_reference.jpg (cin_vs_reference.py)

Outputs are ``samples/outputs/<content>__<style>.jpg`` at 384 px (fp32), plus the cat with the
strokes style and its own colours (``--preserve-color``) and with a 50/50 mix of mosaic and
ripples. With ``--cin``, every style of that CIN model on the cat and the rocket, one grid;
with ``--cin-styles`` too (the folder of the images its styles were trained on, not shipped),
those styles beside the reference AdaIN decoder's rendering of the same images
(``samples/cin_vs_reference.py``; skipped, with the reason, when the folder is absent).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from stylenorm.hub.zoo import DEFAULT_MODEL
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.io.images import load_image, save_image

SAMPLES = Path(__file__).resolve().parent
DOCS = SAMPLES.parent / "docs"
CONTENTS = ("cat", "coffee", "rocket", "astronaut")
STYLES = {"mosaic": "mosaic.png", "strokes": "strokes.png", "hubble": "hubble.jpg"}


def gallery(model: str, size: int) -> None:
    stylizer = Stylizer(model, device="cpu", precision="fp32")
    out = SAMPLES / "outputs"
    style_dir = SAMPLES / "style"
    for content in CONTENTS:
        for name, file in STYLES.items():
            stylizer.stylize_file(SAMPLES / "content" / f"{content}.jpg", [style_dir / file],
                                  out / f"{content}__{name}.jpg", StylizeOptions(size=size))
    cat = SAMPLES / "content" / "cat.jpg"
    stylizer.stylize_file(cat, [style_dir / "strokes.png"], out / "cat__strokes_preserve.jpg",
                          StylizeOptions(size=size, preserve_color=True))
    stylizer.stylize_file(cat, [style_dir / "mosaic.png", style_dir / "ripples.png"],
                          out / "cat__mosaic_ripples_mix.jpg",
                          StylizeOptions(size=size, style_weights=[0.5, 0.5]))
    print(f"wrote {out} with {model}")


def cin_grid(model: str, size: int) -> None:
    """Rows: the cat and the rocket; columns: the content, then each of the model's styles."""
    stylizer = Stylizer(model, device="cpu", precision="fp32")
    names = stylizer.model.config.style_names
    rows = []
    for content in ("cat", "rocket"):
        image = load_image(SAMPLES / "content" / f"{content}.jpg", size, crop=True).rgb
        outputs = [stylizer.stylize_tensors(image, [], StylizeOptions(style_index=i))
                   for i in range(len(names))]
        rows.append(torch.cat([image, *outputs], dim=-1))
    path = save_image(torch.cat(rows, dim=-2), DOCS / "cin_styles.jpg")
    print(f"wrote {path} (columns: content, {', '.join(names)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--cin", help="a CIN model: also draw docs/cin_styles.jpg")
    parser.add_argument("--cin-styles", type=Path, help="with --cin, the folder of its style "
                        "images: also draw docs/cin_vs_reference.jpg")
    args = parser.parse_args()
    gallery(args.model, args.size)
    if args.cin:
        cin_grid(args.cin, 192)
        if args.cin_styles:
            from cin_vs_reference import cin_vs_reference  # the script beside this one

            cin_vs_reference(args.cin, args.cin_styles, ["cat", "rocket"])


if __name__ == "__main__":
    main()
