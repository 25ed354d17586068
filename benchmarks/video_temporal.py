"""Temporal consistency, style loss and speed of `stylenorm video`, per-frame against temporal.

    python benchmarks/video_temporal.py --size 1280x720 --frames 24 --threads 1 \
        --strip docs/video_strip.jpg

A clip with known motion is made from the project's own samples (samples/content/rocket.jpg
panned and zoomed, samples/content/cat.jpg sliding over it as an occluding sprite;
known_motion.py). Both pipelines run in this process on the same frames with the same model:

* per-frame: `--no-temporal` (one style code, each frame stylised on its own);
* temporal: the default (smoothed content statistics, flow-guided blending).

Printed: the processor; the warping error (Lai et al. 2018) with the clip's exact flow and
occlusion mask, and with an independent DIS flow (medium preset, full resolution, its own
forward-backward mask); the style loss (VGG-19 relu1_1..relu4_1 mean-std, if the normalised VGG
encoder is installed); ms per frame in the model and in the temporal step; frames per second.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
from known_motion import CameraPath, pan_zoom_clip
from PIL import Image
from video_pipelines import read_rgb, run_pipeline, style_losses

from stylenorm.inference.bench import describe_machine
from stylenorm.inference.flow import FlowEstimator, clip_warping_error, full_motion, grey
from stylenorm.inference.stylize import Stylizer
from stylenorm.inference.temporal import TemporalOptions
from stylenorm.inference.video import stylize_frames
from stylenorm.io.images import load_image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
STRIP_WIDTH = 1200  # px: the before/after strip as the README shows it


def make_clip(width: int, height: int, frames: int):
    photo = read_rgb(SAMPLES / "content" / "rocket.jpg")
    scale = 0.8 * min(photo.shape[1] / width, photo.shape[0] / height)
    sprite = read_rgb(SAMPLES / "content" / "cat.jpg", (width // 4, height // 4))
    step = (-max(1, width // 160), max(1, height // 180))
    path = CameraPath((width, height), frames, pan=(0.6 * scale * width / 256, 0.15 * scale
                      * height / 256), zoom=1.004, scale=scale, sprite_step=step)
    return pan_zoom_clip(photo, sprite, path)


def style_loss(frames: list[np.ndarray], style: torch.Tensor) -> float | None:
    try:
        return statistics.fmean(style_losses(frames, style).values())
    except Exception as exc:  # the encoder is an optional download
        print(f"style loss skipped: {exc}")
        return None


def run(stylizer: Stylizer, frames, style, temporal: bool):
    return run_pipeline(stylizer, frames, style, TemporalOptions(enabled=temporal))


def speed_rounds(stylizer: Stylizer, frames, style, rounds: int, size: str) -> None:
    """Time both pipelines ``rounds`` times, alternating (the machine's load drifts), and print
    the medians: fps, and ms per frame in the model and in the temporal step."""
    timings = {False: [], True: []}
    for _ in range(rounds):
        for temporal in (False, True):
            _, report = run(stylizer, frames, style, temporal)
            per = 1000 / report.frames
            timings[temporal].append((report.fps, report.model_seconds * per,
                                      report.temporal_seconds * per))
    for temporal, rows in timings.items():
        fps, model_ms, step_ms = (statistics.median(column) for column in zip(*rows, strict=True))
        label = "temporal" if temporal else "per-frame"
        print(f"{label:>9}: {size} median of {rounds}: {fps:.2f} fps, model {model_ms:.0f} "
              f"ms/frame, temporal step {step_ms:.0f} ms/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--style", default=str(SAMPLES / "style" / "mosaic.png"))
    parser.add_argument("--model", default="lite")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3,
                        help="speed only: alternate the two pipelines this many times")
    parser.add_argument("--strip", type=Path, help="save frames 0, 6, 12 in and out (JPEG)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = map(int, args.size.lower().split("x"))
    clip = make_clip(width, height, args.frames)
    stylizer = Stylizer(args.model, "cpu", args.precision)
    print(f"processor: {describe_machine('cpu')}; model {args.model}, {stylizer.dtype}")
    style = load_image(args.style, 512).rgb
    estimator = FlowEstimator(side=min(width, height), preset="medium")
    greys = [grey(f) for f in clip.frames]
    dis = [full_motion(estimator, a, b) for a, b in zip(greys, greys[1:], strict=False)]
    stylize_frames(stylizer, clip.frames[:2], [style])  # warm-up
    results = {}
    for label, temporal in (("per-frame", False), ("temporal", True)):
        outputs, report = run(stylizer, clip.frames, style, temporal)
        results[label] = outputs
        loss = style_loss(outputs, style)
        per = 1000 / report.frames
        exact = clip_warping_error(outputs, clip.motions)
        estimated = clip_warping_error(outputs, dis)
        print(f"{label:>9}: warping error exact flow {exact:.5f}, DIS flow {estimated:.5f}; "
              "style loss "
              f"{'n/a' if loss is None else f'{loss:.3f}'}; {width}x{height}: "
              f"{report.fps:.2f} fps, model {report.model_seconds * per:.0f} ms/frame, "
              f"temporal step {report.temporal_seconds * per:.0f} ms/frame")
    still = clip_warping_error(clip.frames, clip.motions)
    print(f"    input: warping error exact flow {still:.5f}")
    speed_rounds(stylizer, clip.frames, style, args.rounds, f"{width}x{height}")
    if args.strip:
        picks = [0, len(clip.frames) // 2, len(clip.frames) - 1]
        rows = [np.concatenate([clip.frames[i] for i in picks], 1)]
        rows += [np.concatenate([results[k][i] for i in picks], 1) for k in results]
        strip = np.clip(np.concatenate(rows, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
        image = Image.fromarray(strip)
        if image.width > STRIP_WIDTH:
            image = image.resize((STRIP_WIDTH, round(image.height * STRIP_WIDTH / image.width)),
                                 Image.LANCZOS)
        image.save(args.strip, quality=90)
        print(f"wrote {args.strip} (rows: input, per-frame, temporal; frames {picks})")


if __name__ == "__main__":
    main()
