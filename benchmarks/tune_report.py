"""Tune a lite model on one style, then measure it beside the model it started from and the
teacher on photos the tuning never saw.

    python benchmarks/tune_report.py --style painting.jpg --tune-content photos/ \
        --contents held_out_photos/ --minutes 10 --name tuned-painting [--adain-weight 1]

Runs ``stylenorm tune`` (in this process, with its defaults unless given), then stylises every
held-out content with the style at ``--size`` (alpha 1, fp32) with the teacher, the starting
model and the tuned one, and prints each one's content loss, style loss and SSIM
(inference.evaluate) and the two lite models' figures as multiples of the teacher's. With
``--skip-tune`` it measures an installed ``--name`` instead.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from stylenorm.hub.files import read_meta
from stylenorm.hub.zoo import load_encoder
from stylenorm.inference.bench import describe_machine
from stylenorm.inference.evaluate import evaluate
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.io.images import list_images, load_image, save_image
from stylenorm.training.tune import TuneConfig, tune

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def grid(args, path: Path) -> None:
    """Rows of [photo, start, tuned, teacher] for the samples' photos, ``--grid-size`` px."""
    size = args.grid_size
    style = load_image(args.style, size).rgb
    options = StylizeOptions(size=size, style_size=size, crop=True)
    stylizers = [Stylizer(m, device="cpu", precision="fp32")
                 for m in (args.init, args.name, args.teacher)]
    rows = []
    for photo in list_images(SAMPLES / "content")[:3]:
        content = load_image(photo, size, crop=True).rgb
        outputs = [s.stylize_tensors(content, [style], options) for s in stylizers]
        rows.append(torch.cat([content, *outputs], dim=-1))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(rows, dim=-2), path)
    print(f"grid: {path} (columns: photo, {args.init}, {args.name}, {args.teacher})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", type=Path, required=True)
    parser.add_argument("--tune-content", type=Path, required=True, help="photos to tune on")
    parser.add_argument("--contents", type=Path, required=True, help="held-out photos")
    parser.add_argument("--name", required=True)
    parser.add_argument("--teacher", default="adain")
    parser.add_argument("--init", default="lite")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--adain-weight", type=float, default=TuneConfig.adain_weight)
    parser.add_argument("--style-weight", type=float, default=TuneConfig.style_weight)
    parser.add_argument("--style-target", type=float, default=TuneConfig.style_target)
    parser.add_argument("--pixel-weight", type=float, default=TuneConfig.pixel_weight)
    parser.add_argument("--feature-weight", type=float, default=TuneConfig.feature_weight)
    parser.add_argument("--deep-feature-weight", type=float,
                        default=TuneConfig.deep_feature_weight)
    parser.add_argument("--lr", type=float, default=TuneConfig.lr)
    parser.add_argument("--lr-schedule", default=TuneConfig.lr_schedule)
    parser.add_argument("--val-count", type=int, default=TuneConfig.val_count)
    parser.add_argument("--ema", type=float, default=TuneConfig.ema)
    parser.add_argument("--batch-size", type=int, default=TuneConfig.batch_size)
    parser.add_argument("--crop-size", type=int, default=TuneConfig.crop_size)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--skip-tune", action="store_true")
    parser.add_argument("--grid", type=Path, help="also a picture: the project's sample photos "
                        "(rows) as the starting model, the tuned one and the teacher stylise "
                        "them with the style (columns, after the photo)")
    parser.add_argument("--grid-size", type=int, default=256)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(describe_machine("cpu"), f"threads {torch.get_num_threads()}")
    if not args.skip_tune:
        config = TuneConfig(style=str(args.style), content=str(args.tune_content),
                            name=args.name, teacher=args.teacher, init=args.init,
                            minutes=args.minutes, steps=args.steps, lr=args.lr,
                            lr_schedule=args.lr_schedule, val_count=args.val_count, ema=args.ema,
                            batch_size=args.batch_size, crop_size=args.crop_size,
                            adain_weight=args.adain_weight,
                            style_weight=args.style_weight, style_target=args.style_target,
                            pixel_weight=args.pixel_weight,
                            feature_weight=args.feature_weight,
                            deep_feature_weight=args.deep_feature_weight,
                            overwrite=True)
        start = time.perf_counter()
        result = tune(config, progress=False)
        print(f"tuned {result.iterations} steps in {time.perf_counter() - start:.0f} s; "
              f"its own check (held-out tuning photos): style "
              f"{result.first_figures['style_ratio']:.2f}x -> {result.figures['style_ratio']:.2f}x"
              f", content {result.first_figures['content_ratio']:.2f}x -> "
              f"{result.figures['content_ratio']:.2f}x the teacher's; style weight "
              f"{config.style_weight} -> "
              f"{read_meta(result.path).provenance['style_weight_at_the_end']}")
        print("checks (step, seconds, style ratio, content ratio, style weight after): "
              + "; ".join(" ".join(f"{v:g}" for v in row) for row in result.checks))
    if args.grid:
        grid(args, args.grid)
    contents, encoder = list_images(args.contents), load_encoder("normalised")
    scores = {}
    for label, model in (("teacher", args.teacher), ("start", args.init),
                         ("tuned", args.name)):
        stylizer = Stylizer(model, device="cpu", precision="fp32")
        scores[label] = evaluate(stylizer, encoder, contents, [args.style], args.size).summary()
    print(f"\n{len(contents)} held-out contents x {args.style.name} at {args.size} px, alpha 1")
    print("| model | content loss | style loss | SSIM | content / teacher | style / teacher |")
    print("|---|---|---|---|---|---|")
    base = scores["teacher"]
    for label, s in scores.items():
        print(f"| {label} | {s['content_loss']:.3f} | {s['style_loss']:.3f} | {s['ssim']:.3f} | "
              f"{s['content_loss'] / base['content_loss']:.2f}x | "
              f"{s['style_loss'] / base['style_loss']:.2f}x |")


if __name__ == "__main__":
    main()
