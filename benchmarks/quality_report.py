"""Compare models on held-out photos and styles: content loss, style loss, SSIM, grid energy,
and a picture grid.

    STYLENORM_HOME=... python benchmarks/quality_report.py \
        --model ours=weights/adain-default.safetensors --model reference=adain-reference \
        --contents data/val_content --styles data/val_style --size 384 \
        --grid docs/quality_grid.jpg --json docs/quality.json

Every model stylises every content with every style at ``--size`` (alpha 1, fp32); the same
VGG encoder (``--encoder``, the normalised VGG-19) measures them all (inference.evaluate). The
grid is made from the project's own ``samples/`` inputs (never the shared images, which must not
appear in the repo): for each pair, the content, the style and each model's output.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from stylenorm.hub.zoo import load_encoder
from stylenorm.inference.bench import describe_machine
from stylenorm.inference.evaluate import evaluate
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.io.images import list_images, load_image, save_image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def parse_models(specs: list[str]) -> dict[str, str]:
    models = {}
    for spec in specs:
        label, _, model = spec.partition("=")
        models[label] = model or label
    return models


def grid(models: dict[str, Stylizer], contents, styles, size: int, pairs: int, path: Path):
    """Rows of [content, style, output of each model], each tile ``size`` px square."""
    options = StylizeOptions(size=size, style_size=size, crop=True)
    rows = []
    for i in range(pairs):
        content = load_image(contents[i % len(contents)], size, crop=True).rgb
        style = load_image(styles[(i * 3) % len(styles)], size, crop=True).rgb
        outputs = [m.stylize_tensors(content, [style], options) for m in models.values()]
        rows.append(torch.cat([content, style, *outputs], dim=-1))
    save_image(torch.cat(rows, dim=-2), path)


def print_per_style(per_style: dict[str, dict[str, dict[str, float]]],
                    measure: str = "style_loss") -> None:
    """Rows: styles; columns: each model's mean ``measure`` over that style's contents (models
    whose figures lack it, from an older JSON, are left out)."""
    labels = [k for k, styles in per_style.items()
              if all(measure in means for means in styles.values())]
    print(f"\n| style ({measure}) | {' | '.join(labels)} |\n|---|{'---|' * len(labels)}")
    for style in per_style[labels[0]] if labels else ():
        cells = " | ".join(f"{per_style[k][style][measure]:.3f}" for k in labels)
        print(f"| {style} | {cells} |")


def print_ratios(results: dict, reference: str) -> None:
    """Each model's content and style loss as multiples of ``reference``'s, then per style the
    style-loss ratio, highest (the worst styles) first."""
    if reference not in results or "per_style" not in results[reference]:
        raise SystemExit(f"--ratio-to {reference}: no such model with per-style figures")
    base = results[reference]
    labels = [k for k, v in results.items() if k != reference and "per_style" in v]
    print(f"\n| model / {reference} | content | style | SSIM |\n|---|---|---|---|")
    for label in labels:
        r = results[label]
        print(f"| {label} | {r['content_loss'] / base['content_loss']:.2f}x | "
              f"{r['style_loss'] / base['style_loss']:.2f}x | {r['ssim'] - base['ssim']:+.3f} |")
    styles = base["per_style"]

    def ratio(label: str, style: str) -> float:
        return results[label]["per_style"][style]["style_loss"] / styles[style]["style_loss"]

    worst = sorted(styles, key=lambda s: -max(ratio(k, s) for k in labels))
    print(f"\n| style (style loss / {reference}'s) | {' | '.join(labels)} |\n"
          f"|---|{'---|' * len(labels)}")
    for style in worst:
        cells = " | ".join(f"{ratio(k, style):.2f}x" for k in labels)
        print(f"| {style} | {cells} |")


def reusable(path: Path | None, size: int, contents: int, styles: int) -> dict:
    """Scores from an earlier run's JSON when it measured the same size and image counts."""
    if path is None:
        return {}
    earlier = json.loads(path.read_text())
    if (earlier["size"], earlier["contents"], earlier["styles"]) != (size, contents, styles):
        raise SystemExit(f"{path}: measured {earlier['contents']} x {earlier['styles']} at "
                         f"{earlier['size']} px, not {contents} x {styles} at {size} px")
    return earlier["results"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="label=name-or-path")
    parser.add_argument("--contents", type=Path, required=True)
    parser.add_argument("--styles", type=Path, action="append", required=True,
                        help="a folder of styles; repeat to join folders")
    parser.add_argument("--encoder", default="normalised")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--grid", type=Path)
    parser.add_argument("--grid-pairs", type=int, default=4)
    parser.add_argument("--grid-size", type=int, default=256)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--per-style", action="store_true", help="also a table of each "
                        "style's mean style loss per model (models measured in this run, or "
                        "reused with their per-style figures)")
    parser.add_argument("--ratio-to", metavar="LABEL", help="also each model's losses as "
                        "multiples of this model's, and per style, worst first")
    parser.add_argument("--reuse", type=Path, help="an earlier --json: its scores of models "
                        "with the same label, size and image counts are reused, not recomputed")
    args = parser.parse_args()
    contents = list_images(args.contents)
    styles = [path for folder in args.styles for path in list_images(folder)]
    encoder = load_encoder(args.encoder)
    stylizers = {label: Stylizer(m, device="cpu", precision="fp32")
                 for label, m in parse_models(args.model).items()}
    results = reusable(args.reuse, args.size, len(contents), len(styles))
    print(f"{len(contents)} contents x {len(styles)} styles at {args.size} px, alpha 1, fp32; "
          f"{describe_machine('cpu')}")
    print("| model | content loss | style loss | SSIM to content | grid energy (8 px) | "
          "parameters | time |")
    print("|---|---|---|---|---|---|---|")
    for label, stylizer in stylizers.items():
        params = sum(p.numel() for p in stylizer.model.parameters())  # AdaIN: with its VGG
        if label in results:
            summary, seconds, note = results[label], results[label]["seconds"], " (reused)"
        else:
            start = time.perf_counter()
            evaluation = evaluate(stylizer, encoder, contents, styles, args.size)
            summary = {**evaluation.summary(), "per_style": evaluation.per_style()}
            seconds, note = time.perf_counter() - start, ""
        results[label] = {**summary, "parameters": params, "seconds": seconds}
        grid_cell = f"{summary['grid']:.3f}" if "grid" in summary else "-"  # older JSON
        print(f"| {label} | {summary['content_loss']:.3f} | {summary['style_loss']:.3f} | "
              f"{summary['ssim']:.3f} | {grid_cell} | {params / 1e6:.2f} M | "
              f"{seconds:.0f} s{note} |")
    if args.per_style:
        per_style = {k: v["per_style"] for k, v in results.items() if "per_style" in v}
        print_per_style(per_style)
        print_per_style(per_style, "grid")
    if args.ratio_to:
        print_ratios(results, args.ratio_to)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"size": args.size, "contents": len(contents),
                                         "styles": len(styles), "results": results}, indent=2))
    if args.grid:
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        grid(stylizers, list_images(SAMPLES / "content"), list_images(SAMPLES / "style"),
             args.grid_size, args.grid_pairs, args.grid)
        print(f"grid: {args.grid} (columns: content, style, {', '.join(stylizers)})")


if __name__ == "__main__":
    main()
