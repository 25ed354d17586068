"""How near a CIN model's styles come to the reference AdaIN decoder's rendering of the same
style images, and how distinct they are from one another.

    python benchmarks/cin_report.py --model cin-8styles --styles data/cin_styles \
        --contents data/val_content --size 384 --threads 1 [--json cin_report.json]

For each style i of the model (``--style-index i``; its image is the file in ``--styles`` named
after it, e.g. ``candy.jpg``) and each content, the model's rendering and the reference's (the
``--reference`` model with that style image) at ``--size`` (alpha 1, fp32; the style image at
``--size`` too, as ``quality_report.py`` and the training journal measure). With f the
normalised VGG-19 and s(x) the vector of f(x)'s per-channel means and stds at relu1_1..relu4_1,
each layer scaled by 1/sqrt(channels) so that ||s(a) - s(b)||^2 is the mean/std style loss
between a and b:

* **style loss**: ||s(output) - s(style image)||^2, the mean over the contents; the table gives
  the model's and the reference's and their ratio (1.0: as near the painting as the reference);
* **distinctness**: d(i, j) = the mean over the contents of ||s(render_i) - s(render_j)||^2,
  the distance between two styles' renderings of the same photo. For each style i, j is the
  model's nearest other style (the one it renders i most like), and the ratio is
  d_model(i, j) / d_reference(i, j): 1.0 means the model keeps styles i and j as far apart as
  the reference does, 0.3 that it renders them three times closer (more alike).

Also the mean content loss (to the AdaIN target) and SSIM to the content of both models.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from stylenorm.hub.zoo import load_encoder
from stylenorm.inference.bench import describe_machine
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.io.images import list_images, load_image
from stylenorm.models.vgg import TAPS, VGGEncoder
from stylenorm.nn.conditional import adain
from stylenorm.nn.losses import content_loss
from stylenorm.nn.metrics import ssim
from stylenorm.nn.statistics import channel_mean_std


def style_files(names: list[str], folder: Path) -> list[Path]:
    """The image of each style name in ``folder`` (``<name>.<ext>``), in the model's order."""
    if not folder.is_dir():
        raise SystemExit(f"--styles {folder}: no such folder; it should hold the images the "
                         f"model's styles were trained on, named after them: {', '.join(names)}")
    by_stem = {path.stem: path for path in list_images(folder)}
    missing = [name for name in names if name not in by_stem]
    if missing:
        raise SystemExit(f"{folder}: no image for the model's styles {missing} (expected files "
                         f"named after the styles: {', '.join(names)}; found "
                         f"{sorted(by_stem) or 'none'})")
    return [by_stem[name] for name in names]


def statistics_vector(features: dict[str, torch.Tensor]) -> torch.Tensor:
    """s(x) from f(x): the per-channel means and stds of relu1_1..relu4_1, each layer scaled by
    1/sqrt(channels), so the squared distance of two vectors is their mean/std style loss.
    Shape: (1, C_l, H_l, W_l) per layer -> (2 * (64 + 128 + 256 + 512),)"""
    parts = []
    for name in TAPS:
        mean, std = channel_mean_std(features[name])
        scale = features[name].shape[1] ** -0.5
        parts += [mean.flatten() * scale, std.flatten() * scale]
    return torch.cat(parts)


class Scorer:
    """Scores outputs with each content's and style's VGG features computed once."""

    def __init__(self, encoder: VGGEncoder, contents: list[torch.Tensor],
                 styles: list[torch.Tensor]) -> None:
        self.encoder, self.contents = encoder, contents
        with torch.inference_mode():
            self.content_deep = [encoder(c, upto="relu4_1")["relu4_1"] for c in contents]
            style_features = [encoder(s) for s in styles]
        self.style_deep = [f["relu4_1"] for f in style_features]
        self.style_stats = [statistics_vector(f) for f in style_features]

    @torch.inference_mode()
    def score(self, output: torch.Tensor, n: int, i: int) -> tuple[list[float], torch.Tensor]:
        """[content loss, style loss, SSIM] of content n's output in style i, and s(output)."""
        features = self.encoder(output)
        stats = statistics_vector(features)
        target = adain(self.content_deep[n], self.style_deep[i])
        scores = [content_loss(features["relu4_1"], target).item(),
                  (stats - self.style_stats[i]).pow(2).sum().item(),
                  ssim(output, self.contents[n])]
        return scores, stats


def render_all(stylizer: Stylizer, scorer: Scorer, styles: list[torch.Tensor], size: int,
               cin: bool, label: str) -> dict:
    """Every style x content rendering's scores and statistics vector (``stats``: (S, N, D))."""
    scores, stats = [], []
    for i, style in enumerate(styles):
        row_scores, row_stats = [], []
        for n, content in enumerate(scorer.contents):
            if cin:
                output = stylizer.stylize_tensors(content, [], StylizeOptions(style_index=i))
            else:
                output = stylizer.stylize_tensors(content, [style], StylizeOptions(
                    size=size, style_size=size))
            pair_scores, pair_stats = scorer.score(output, n, i)
            row_scores.append(pair_scores)
            row_stats.append(pair_stats)
        scores.append(row_scores)
        stats.append(torch.stack(row_stats))
        print(f"  {label}: style {i + 1}/{len(styles)} done", flush=True)
    return {"scores": scores, "stats": torch.stack(stats)}


def reference_renderings(args, reference: str, scorer: Scorer, styles: list[torch.Tensor],
                         key: dict) -> dict:
    """The reference's renderings, from ``--reference-cache`` when it holds them for ``key``
    (the same reference, size, contents and style images), else rendered (and cached)."""
    cache = args.reference_cache
    if cache is not None and cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if saved["key"] == key:
            print(f"  reference: reused from {cache}")
            return saved["rendered"]
        print(f"  reference: {cache} was made for other inputs; rendering again")
    stylizer = Stylizer(reference, device="cpu", precision="fp32")
    rendered = render_all(stylizer, scorer, styles, args.size, False, "reference")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"key": key, "rendered": rendered}, cache)
    return rendered


def pair_distances(stats: torch.Tensor) -> torch.Tensor:
    """d[i, j]: the mean over contents of ||stats[i, n] - stats[j, n]||^2. Shape: (S, N, D) ->
    (S, S)"""
    diff = stats[:, None] - stats[None, :]
    return diff.pow(2).sum(-1).mean(-1)


def per_style(model: dict, reference: dict, names: list[str]) -> list[dict]:
    """Each style's losses, ratio, nearest other style and distinctness ratio."""
    d_model, d_ref = pair_distances(model["stats"]), pair_distances(reference["stats"])
    rows = []
    for i, name in enumerate(names):
        others = [j for j in range(len(names)) if j != i]
        j = min(others, key=lambda k: d_model[i, k].item())
        j_ref = min(others, key=lambda k: d_ref[i, k].item())
        loss = statistics.fmean(s[1] for s in model["scores"][i])
        loss_ref = statistics.fmean(s[1] for s in reference["scores"][i])
        rows.append({"style": name, "style_loss": loss, "reference_style_loss": loss_ref,
                     "style_ratio": loss / loss_ref, "nearest": names[j],
                     "distance": d_model[i, j].item(), "reference_distance": d_ref[i, j].item(),
                     "distinct_ratio": d_model[i, j].item() / d_ref[i, j].item(),
                     "reference_nearest": names[j_ref],
                     "reference_nearest_distance": d_ref[i, j_ref].item()})
    return rows


def means(rendered: dict) -> dict[str, float]:
    flat = [s for row in rendered["scores"] for s in row]
    return {key: statistics.fmean(s[k] for s in flat)
            for k, key in enumerate(("content_loss", "style_loss", "ssim"))}


def print_tables(label: str, rows: list[dict], summary: dict) -> None:
    print(f"\n| style | {label} style loss | reference | ratio | {label}'s nearest style | "
          f"distance ({label}) | distance (reference) | distinctness ratio | "
          "reference's nearest (distance) |\n|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(rows):
        print(f"| {i} {r['style']} | {r['style_loss']:.3f} | {r['reference_style_loss']:.3f} | "
              f"{r['style_ratio']:.2f}x | {r['nearest']} | {r['distance']:.3f} | "
              f"{r['reference_distance']:.3f} | {r['distinct_ratio']:.2f} | "
              f"{r['reference_nearest']} ({r['reference_nearest_distance']:.3f}) |")
    print("\n| model | content loss | style loss | SSIM |\n|---|---|---|---|")
    for name, m in summary.items():
        print(f"| {name} | {m['content_loss']:.3f} | {m['style_loss']:.3f} | {m['ssim']:.3f} |")
    ratios = [r["style_ratio"] for r in rows]
    distinct = [r["distinct_ratio"] for r in rows]
    print(f"\nstyle-loss ratio: mean {statistics.fmean(ratios):.2f}x, worst {max(ratios):.2f}x; "
          f"distinctness ratio: mean {statistics.fmean(distinct):.2f}, lowest "
          f"{min(distinct):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cin-8styles", help="a CIN model, name or file")
    parser.add_argument("--styles", type=Path, required=True,
                        help="a folder with one image per style, named after the style")
    parser.add_argument("--contents", type=Path, required=True, help="held-out photos")
    parser.add_argument("--reference", default="adain", help="the AdaIN model to compare with")
    parser.add_argument("--encoder", default="normalised", help="the measuring VGG-19")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--reference-cache", type=Path, metavar="FILE.pt", help="keep the "
                        "reference's renderings' scores here and reuse them on a rerun with "
                        "the same reference, size, contents and style images")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = Stylizer(args.model, device="cpu", precision="fp32")
    names = getattr(model.model, "style_names", None)
    if names is None:
        raise SystemExit(f"--model {args.model}: not a CIN model (it has no styles of its own)")
    style_paths = style_files(names, args.styles)
    content_paths = list_images(args.contents)
    contents = [load_image(p, args.size).rgb for p in content_paths]
    styles = [load_image(p, args.size).rgb for p in style_paths]
    scorer = Scorer(load_encoder(args.encoder), contents, styles)
    print(f"{args.model}: {len(names)} styles x {len(contents)} contents at {args.size} px, "
          f"alpha 1, fp32, against {args.reference}; {describe_machine('cpu')}, "
          f"{torch.get_num_threads()} thread(s)", flush=True)
    start = time.perf_counter()
    key = {"reference": args.reference, "encoder": args.encoder, "size": args.size,
           "contents": [p.name for p in content_paths], "styles": [p.name for p in style_paths]}
    rendered = {"model": render_all(model, scorer, styles, args.size, True, args.model),
                "reference": reference_renderings(args, args.reference, scorer, styles, key)}
    rows = per_style(rendered["model"], rendered["reference"], names)
    summary = {args.model: means(rendered["model"]),
               args.reference: means(rendered["reference"])}
    print_tables(args.model, rows, summary)
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "size": args.size,
                                         "contents": len(contents), "styles": rows,
                                         "means": summary}, indent=2))

if __name__ == "__main__":
    main()
