"""Temporal mode against per-frame on real footage and on a static shot: what consistency costs in
style, and whether unchanged regions keep their rendering.

    python benchmarks/video_consistency.py --size 240 --threads 1
    python benchmarks/video_consistency.py --clip ../shared/video/big_buck_bunny_480p_30s.mp4 \\
        --set blend=0.5 --set hold=False    # a variant of the temporal options

Clips: a static-camera shot made from the project's own samples (samples/content/rocket.jpg held
still while samples/content/cat.jpg walks across it, with camera-like noise, written as H.264 by
PyAV and read back), and ``--clip`` (default: the real clip in ../shared/video when it is there).
Both pipelines run in this process on the same frames with the same model: per-frame
(``--no-temporal``) and temporal (the defaults, changed by ``--set name=value``).

Printed per clip, each as temporal / per-frame:

* **style loss**: VGG-19 mean-std loss (relu1_1..relu4_1) against the style image, over every
  ``--every``-th frame; the whole clip, each shot (cuts found in the input), and the worst run of
  24 frames;
* **warping error** (Lai et al. 2018) under OpenCV's Farneback flow, which the project does not
  use (it uses DIS), with Farneback's own forward-backward occlusion mask;
* **fine detail**: the energy of each output's high-pass (image minus a Gaussian blur, sigma 1),
  over all frames and over frames in motion (the camera moves 0.5 px or more from the frame
  before: the median shift of corners tracked by Lucas-Kanade);
* **static pixels**: the mean change of the output between frames t and t + k (k = 1, 25, 100)
  at pixels whose input stayed within ``--static-tolerance`` of frame t's through the whole
  span (the synthetic shot's noise-free source decides there), over spans where the camera
  stands still (shifts under 0.5 px a frame), and over all spans.
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import statistics
from pathlib import Path

import numpy as np
import torch
from known_motion import save_clip
from PIL import Image
from video_pipelines import read_rgb, run_pipeline, style_losses

from stylenorm.inference.bench import describe_machine
from stylenorm.inference.flow import FrameMotion, consistent, grey, warping_error
from stylenorm.inference.stylize import Stylizer
from stylenorm.inference.temporal import TemporalOptions
from stylenorm.inference.video import stylize_frames
from stylenorm.io.images import load_image
from stylenorm.io.video import VideoReader, optional_module

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
CLIP = REPO.parent / "shared" / "video" / "big_buck_bunny_480p_30s.mp4"
LAGS = (1, 25, 100)
STILL_SPEED = 0.5  # px a frame: a camera moving slower stands still


def read_clip(path: Path, size: int, frames: int, start: int = 0) -> list[np.ndarray]:
    """The clip's frames from frame ``start`` at shorter side ``size``, even sides, float32 in
    [0, 1]."""
    with VideoReader(path, size=size) as reader:
        out = []
        for i, frame in enumerate(reader.frames()):
            if i < start:
                continue
            h, w = frame.rgb.shape[:2]
            out.append(frame.rgb[: h // 2 * 2, : w // 2 * 2].astype(np.float32) / 255)
            if frames and len(out) == frames:
                break
    return out


def static_shot(height: int, frames: int, noise: float, work: Path
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A still camera on rocket.jpg while cat.jpg walks across it (a bobbing path, out and
    back), with Gaussian noise of std ``noise`` on every frame, through H.264 (PyAV, crf 18).
    Returns the decoded frames and the noise-free source frames."""
    width = height * 16 // 9 // 2 * 2
    photo = read_rgb(SAMPLES / "content" / "rocket.jpg", (width, height))
    side = height // 3
    sprite = read_rgb(SAMPLES / "content" / "cat.jpg", (side * 3 // 2, side))
    rng = np.random.default_rng(0)
    clean, noisy = [], []
    for t in range(frames):
        phase = t / max(frames - 1, 1)
        x = round((width - sprite.shape[1]) * (0.5 - 0.5 * np.cos(2 * np.pi * phase)))
        y = round(height * 0.55 + height * 0.06 * np.sin(2 * np.pi * t / 24))
        frame = photo.copy()
        region = frame[y : y + sprite.shape[0], x : x + sprite.shape[1]]
        region[:] = sprite[: region.shape[0], : region.shape[1]]
        clean.append(frame)
        noisy.append(np.clip(frame + rng.normal(0, noise, frame.shape), 0, 1).astype(np.float32))
    path = save_clip(noisy, work / "static-shot.mp4", fps=24, audio=False, crf=18)
    return read_clip(path, 0, frames), clean


def farneback_motions(frames: list[np.ndarray]) -> list[FrameMotion]:
    """Backward flow from each frame to the one before (OpenCV Farneback, full size) with its
    forward-backward mask: an estimator the temporal step does not use."""
    cv2 = optional_module("cv2")
    greys = [grey(f) for f in frames]
    motions = []
    for a, b in zip(greys, greys[1:], strict=False):
        backward = cv2.calcOpticalFlowFarneback(b, a, None, 0.5, 4, 15, 3, 5, 1.2, 0)
        forward = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 3, 5, 1.2, 0)
        motions.append(FrameMotion(backward, consistent(backward, forward)))
    return motions


def camera_speed(frames: list[np.ndarray]) -> np.ndarray:
    """How far the camera moved from the frame before (px): the median shift of up to 300
    corners tracked by pyramidal Lucas-Kanade (a moving object holds few of them). Farneback's
    median flow is no guide: on the soft, flat frames of a slow camera move it reads 0-0.1 px
    where the picture moves 1 px a frame."""
    cv2 = optional_module("cv2")
    greys = [grey(f) for f in frames]
    speeds = [0.0]
    for a, b in zip(greys, greys[1:], strict=False):
        corners = cv2.goodFeaturesToTrack(a, 300, 0.01, 8)
        if corners is None:
            speeds.append(0.0)
            continue
        moved, found, _ = cv2.calcOpticalFlowPyrLK(a, b, corners, None)
        shifts = np.hypot(*(moved - corners)[found[:, 0] == 1, 0].T)
        speeds.append(float(np.median(shifts)) if len(shifts) else 0.0)
    return np.array(speeds)


def detail_energy(image: np.ndarray) -> float:
    """Mean squared high-pass (image minus its Gaussian blur, sigma 1), summed over channels."""
    cv2 = optional_module("cv2")
    return float(((image - cv2.GaussianBlur(image, (0, 0), 1.0)) ** 2).sum(-1).mean())


def static_change(inputs: list[np.ndarray], outputs: dict[str, list[np.ndarray]],
                  tolerance: float, still: np.ndarray, stride: int = 4
                  ) -> dict[str, dict[str, dict[int, float]]]:
    """Per window kind ("still camera": every frame of t..t + k in ``still``; "any"), pipeline
    and lag k: the mean absolute RGB change of the output from frame t to t + k over pixels
    whose input stayed within ``tolerance`` (every channel) of frame t's for all of t..t + k;
    t every ``stride`` frames, every pipeline measured on the same pixels."""
    kinds = ("still camera", "any")
    sums = {kind: {label: dict.fromkeys(LAGS, 0.0) for label in outputs} for kind in kinds}
    counts = {kind: dict.fromkeys(LAGS, 0) for kind in kinds}
    for t in range(0, len(inputs) - 1, stride):
        moved = np.zeros(inputs[t].shape[:2], np.float32)
        for k in range(1, min(max(LAGS), len(inputs) - 1 - t) + 1):
            np.maximum(moved, np.abs(inputs[t + k] - inputs[t]).max(-1), out=moved)
            if k not in LAGS:
                continue
            pixels = moved <= tolerance
            for kind in kinds if still[t + 1 : t + k + 1].all() else kinds[1:]:
                counts[kind][k] += int(pixels.sum())
                for label, frames in outputs.items():
                    sums[kind][label][k] += float(
                        np.abs(frames[t + k] - frames[t]).sum(-1)[pixels].sum())
    return {kind: {label: {k: sums[kind][label][k] / max(counts[kind][k], 1) for k in LAGS}
                   for label in outputs} for kind in kinds}


def cuts(inputs: list[np.ndarray]) -> list[int]:
    """Frames that start a shot: the picture changed by more than 0.15 on average."""
    return [i + 1 for i in range(len(inputs) - 1)
            if np.abs(inputs[i + 1] - inputs[i]).mean() > 0.15]


def run(stylizer: Stylizer, frames, style, temporal: TemporalOptions):
    outputs, report = run_pipeline(stylizer, frames, style, temporal)
    per = 1000 / report.frames
    label = "temporal" if temporal.enabled else "per-frame"
    print(f"  {label:>9}: {report.fps:.1f} fps, model {report.model_seconds * per:.0f} "
          f"ms/frame, temporal step {report.temporal_seconds * per:.0f} ms/frame")
    return outputs


def cached(cache: Path | None, key: str, make):
    """``make()``, kept in ``cache`` (a pickle per key) when a cache folder is given."""
    if cache is None:
        return make()
    path = cache / f"{key}.pkl"
    if path.is_file():
        with path.open("rb") as file:
            return pickle.load(file)
    value = make()
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        pickle.dump(value, file)
    return value


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}x" if b else "n/a"


def compare(name: str, frames, reference, stylizer, style, temporal: TemporalOptions,
            args) -> dict[str, list[np.ndarray]]:
    """Both pipelines on one clip; prints the figures (see the module doc). With ``--cache``,
    the per-frame pipeline's outputs and style losses and the Farneback flows are kept."""
    h, w = frames[0].shape[:2]
    print(f"\n{name}: {len(frames)} frames at {w}x{h}")
    key = f"{name}-{w}x{h}-{len(frames)}-{args.model}-{Path(args.style).stem}-{args.precision}"
    motions = cached(args.cache, f"{key}-farneback", lambda: farneback_motions(frames))
    base = cached(args.cache, f"{key}-per-frame", lambda: [
        np.round(o * 255).astype(np.uint8) for o in
        run(stylizer, frames, style, TemporalOptions(enabled=False))])
    outputs = {"per-frame": [o.astype(np.float32) / 255 for o in base],
               "temporal": run(stylizer, frames, style, temporal)}
    outputs["temporal"] = [np.round(o * 255) / 255 for o in outputs["temporal"]]  # as written
    starts = cuts(frames)
    pairs = [i for i in range(len(motions)) if i + 1 not in starts]  # none across a cut
    warps = {k: np.array([warping_error(v[i], v[i + 1], motions[i]) for i in pairs])
             for k, v in outputs.items()}
    print(f"  warping error (Farneback, {len(pairs)} pairs within shots): per-frame "
          f"{warps['per-frame'].mean():.5f}, temporal {warps['temporal'].mean():.5f}: "
          f"{ratio(warps['temporal'].mean(), warps['per-frame'].mean())}")
    energy = np.array([[detail_energy(o) for o in v] for v in outputs.values()])
    speed = camera_speed(frames)
    moving = speed > STILL_SPEED
    print(f"  fine detail: {energy[1].sum() / energy[0].sum():.3f}x all frames, "
          + (f"{energy[1][moving].sum() / energy[0][moving].sum():.3f}x the {moving.sum()} "
             "frames in motion" if moving.any() else "no frames in motion"))
    losses = None
    try:
        if not args.every:
            raise RuntimeError("--every 0")
        per_frame = cached(args.cache, f"{key}-losses-{args.every}",
                           lambda: style_losses(outputs["per-frame"], style, args.every))
        losses = {"per-frame": per_frame,
                  "temporal": style_losses(outputs["temporal"], style, args.every)}
    except Exception as exc:  # the encoder is an optional download
        print(f"  style loss skipped: {exc}")
    else:
        report_style(losses, [0, *starts, len(frames)])
    for kind, change in static_change(reference, outputs, args.static_tolerance,
                                      speed < STILL_SPEED).items():
        print(f"  static pixels' change ({kind}), temporal / per-frame: " + ", ".join(
            f"{k} frames {change['temporal'][k]:.4f}/{change['per-frame'][k]:.4f} = "
            f"{ratio(change['temporal'][k], change['per-frame'][k])}" for k in LAGS))
    if args.dump:
        with (args.dump / f"{name.split()[0]}.pkl").open("wb") as file:
            pickle.dump({"losses": losses, "energy": energy, "speed": speed, "warps": warps,
                         "pairs": pairs}, file)
    return outputs


def report_style(losses: dict[str, dict[int, float]], starts: list[int]) -> None:
    """The ratio over the clip, each shot, and the worst and best 24 frames."""
    base, temp = losses["per-frame"], losses["temporal"]
    print(f"  style loss: per-frame {statistics.fmean(base.values()):.3f}, temporal "
          f"{statistics.fmean(temp.values()):.3f}: "
          f"{ratio(sum(temp.values()), sum(base.values()))}")
    for a, b in zip(starts, starts[1:], strict=False):
        shot = [i for i in base if a <= i < b]
        print(f"    frames {a}-{b - 1}: "
              f"{ratio(sum(temp[i] for i in shot), sum(base[i] for i in shot))}")
    frames = sorted(base)
    runs = [[i for i in frames if j <= i < j + 24] for j in frames[: -24 // 3 or None]]
    windows = [sum(temp[i] for i in r) / sum(base[i] for i in r) for r in runs if r]
    if windows:
        print(f"    24 frames: worst {max(windows):.3f}x, best {min(windows):.3f}x")


def save_strip(frames, outputs, path: Path, start: int) -> None:
    """Rows: input, per-frame, temporal. Columns: frames ``start``, ``start`` + 25 and
    ``start`` + 100, then each row's change from the first to the last of them (absolute, x4):
    where the input stood still, the temporal row's change should be black."""
    picks = [start, start + LAGS[1], start + LAGS[2]]
    rows = []
    for images in (frames, *outputs.values()):
        change = np.abs(images[picks[-1]] - images[picks[0]]) * 4
        rows.append(np.concatenate([*(images[i] for i in picks), change], 1))
    strip = np.clip(np.concatenate(rows, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    Image.fromarray(strip).save(path, quality=90)
    print(f"wrote {path} (rows: input, per-frame, temporal; frames {picks} and the change "
          f"from {picks[0]} to {picks[-1]}, x4)")


def parse_set(pairs: list[str]) -> TemporalOptions:
    options = TemporalOptions()
    for pair in pairs:
        name, value = pair.split("=", 1)
        kind = type(getattr(options, name))
        setattr(options, name, value.lower() in ("1", "true", "yes") if kind is bool
                else kind(value))
    return dataclasses.replace(options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=240, help="frames' shorter side")
    parser.add_argument("--clip", type=Path, default=CLIP if CLIP.is_file() else None)
    parser.add_argument("--frames", type=int, default=0, help="of --clip (0: all)")
    parser.add_argument("--start", type=int, default=0, help="--clip's first frame")
    parser.add_argument("--static-frames", type=int, default=240)
    parser.add_argument("--noise", type=float, default=0.01, help="the static shot's noise std")
    parser.add_argument("--style", default=str(SAMPLES / "style" / "mosaic.png"))
    parser.add_argument("--model", default="lite")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--every", type=int, default=3,
                        help="style loss on every n-th frame (0: none)")
    parser.add_argument("--static-tolerance", type=float, default=3 / 255)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a temporal option for the temporal pipeline (repeatable)")
    parser.add_argument("--only", choices=["static", "clip"], help="one of the two clips")
    parser.add_argument("--strip", type=Path, help="the static shot's frames in and out (JPEG)")
    parser.add_argument("--strip-start", type=int, default=40, help="the strip's first frame")
    parser.add_argument("--work", type=Path, default=Path("/tmp"))
    parser.add_argument("--cache", type=Path, help="keep the per-frame pipeline's results here")
    parser.add_argument("--dump", type=Path, help="write per-frame losses and energies here")
    args = parser.parse_args()
    if args.strip and args.static_frames <= args.strip_start + LAGS[-1]:
        parser.error(f"--strip needs --static-frames over --strip-start + {LAGS[-1]}")
    if args.threads:
        torch.set_num_threads(args.threads)
    temporal = parse_set(args.set)
    stylizer = Stylizer(args.model, "cpu", args.precision)
    print(f"processor: {describe_machine('cpu')}; model {args.model}, {stylizer.dtype}; "
          f"temporal {temporal}")
    style = load_image(args.style, 512).rgb
    stylize_frames(stylizer, [np.zeros((64, 64, 3), np.float32)] * 2, [style])  # warm-up
    if args.only != "clip":
        args.work.mkdir(parents=True, exist_ok=True)
        frames, clean = static_shot(args.size, args.static_frames, args.noise, args.work)
        outputs = compare("static shot (samples, H.264)", frames, clean, stylizer, style,
                          temporal, args)
        if args.strip:
            save_strip(frames, outputs, args.strip, args.strip_start)
    if args.only != "static" and args.clip is not None:
        frames = read_clip(args.clip, args.size, args.frames, args.start)
        name = args.clip.name + (f" from frame {args.start}" if args.start else "")
        compare(name, frames, frames, stylizer, style, temporal, args)


if __name__ == "__main__":
    main()
