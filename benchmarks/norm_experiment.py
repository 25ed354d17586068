"""The switchable-norm experiment: AdaIN decoders with BN, IN, SN and no norm at one budget.

    STYLENORM_HOME=... python benchmarks/norm_experiment.py \
        --content data/train_content --style data/train_style \
        --val-content data/val_content --val-style data/val_style \
        --runs runs/norms --out docs --iterations 400 --threads 1

Each decoder is trained by ``stylenorm train adain`` with the same seed, data order, learning
rate and budget; only ``--norm`` differs. Every ``--val-every`` iterations each run logs its
losses on the held-out pairs (content i with style i, centre crops, the decoder in eval mode, so
BN and SN use their moving averages). The script is resumable: a finished run is read back, an
interrupted one continues from its checkpoint. It writes into ``--out``::

    norm_experiment.png   validation total loss (content + style_weight * style) of every norm
    norm_experiment.md    final validation losses per norm and SN's learned mixture per layer
    norm_experiment.json  the curves and the mixtures
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from stylenorm.hub.files import read_meta
from stylenorm.runtime import processor_name
from stylenorm.training.adain import AdaINTrainConfig, train_adain
from stylenorm.training.plots import loss_curve, mixture_table
from stylenorm.training.runlog import RunLog

NORMS = ("batch", "instance", "switchable", "none")


def run_one(norm: str, args: argparse.Namespace) -> Path:
    """Train (or finish, or read back) the decoder with ``norm``; its run folder."""
    out = args.runs / norm
    if (out / "model.safetensors").exists():
        return out
    config = AdaINTrainConfig(
        content=str(args.content), style=str(args.style), out=str(out), norm=norm,
        iterations=args.iterations, batch_size=args.batch_size, crop_size=args.crop_size,
        lr=args.lr, lr_decay=args.lr_decay, mix_lr_scale=args.mix_lr_scale, seed=args.seed,
        checkpoint_every=args.val_every * 4, sample_every=args.iterations, log_every=10,
        val_content=str(args.val_content), val_style=str(args.val_style),
        val_every=args.val_every, val_count=args.val_count)
    print(f"training --norm {norm} into {out}", flush=True)
    train_adain(config, resume=(out / "checkpoint.pt").exists(), progress=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("content", "style", "val_content", "val_style"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, required=True)
    parser.add_argument("--runs", type=Path, default=Path("runs/norms"))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--lr-decay", type=float, default=5e-5)
    parser.add_argument("--mix-lr-scale", type=float, default=10.0)
    parser.add_argument("--val-every", type=int, default=25)
    parser.add_argument("--val-count", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--norms", nargs="+", default=list(NORMS), choices=NORMS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    curves, finals, mixtures, seconds = {}, {}, {}, {}
    for norm in args.norms:
        run = run_one(norm, args)
        records = RunLog(run / "val.jsonl").records()
        curves[norm] = [(r["iter"], r["total"]) for r in records]
        finals[norm] = {k: records[-1][k] for k in ("content", "style", "total")}
        provenance = read_meta(run / "model.safetensors").provenance
        seconds[norm] = provenance.get("wall_time_s")
        if "switchable_weights" in provenance:
            mixtures = dict(sorted(provenance["switchable_weights"].items(), reverse=True))

    args.out.mkdir(parents=True, exist_ok=True)
    merged = [{"iter": it, **{n: dict(c)[it] for n, c in curves.items()}}
              for it, _ in curves[args.norms[0]]]
    loss_curve(merged, list(curves), args.out / "norm_experiment.png")
    lines = [f"Budget per decoder: {args.iterations} iterations, batch {args.batch_size}, crop "
             f"{args.crop_size}, lr {args.lr} (decay {args.lr_decay}), SN mixture lr x"
             f"{args.mix_lr_scale}, seed {args.seed}; validation on {args.val_count} held-out "
             f"pairs; {processor_name(torch.device('cpu'))}, {torch.get_num_threads()} thread(s).",
             "", "| decoder norm | val content | val style | val total | train time |",
             "|---|---|---|---|---|"]
    for norm in sorted(finals, key=lambda n: finals[n]["total"]):
        f = finals[norm]
        lines.append(f"| {norm} | {f['content']:.3f} | {f['style']:.3f} | {f['total']:.2f} | "
                     f"{seconds[norm]:.0f} s |")
    if mixtures:
        lines += ["", "Learned SN mixture (softmax weights of IN, LN, BN), decoder layers "
                  "from the bottleneck up:", "", "```", mixture_table(mixtures), "```"]
    (args.out / "norm_experiment.md").write_text("\n".join(lines) + "\n")
    (args.out / "norm_experiment.json").write_text(json.dumps(
        {"curves": curves, "final": finals, "switchable_weights": mixtures,
         "seconds": seconds, "settings": {k: str(v) for k, v in vars(args).items()}}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
