"""The temporal step's cost against the model's, before and after a change, in one process.

    python benchmarks/video_temporal_cost.py [--before REV] [--frames 12] [--size 360]

"Before" is stylenorm/inference/{flow,temporal}.py as of git revision REV, loaded beside the
current ones; "after" is the working tree. Both stylise the same frames with the lite model:
a 640x360 pan and zoom over a sample photo with a sliding sprite (its true motion known, so the
warping error is exact), and the real clip in ../shared/video when it is there (timing only).
Prints the processor, ms/frame for the model and the temporal step, their ratio, and the
warping error."""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from known_motion import CameraPath, pan_zoom_clip
from PIL import Image

import stylenorm.inference.video as video
from stylenorm.inference.flow import clip_warping_error
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.inference.temporal import TemporalFilter, TemporalOptions
from stylenorm.inference.video import VideoOptions, VideoReport, stylize_frames

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO.parent / "shared" / "video" / "big_buck_bunny_480p_30s.mp4"


def processor() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_revision(rev: str):
    """TemporalFilter as of ``rev`` (its flow module loaded under another name)."""
    def source(name: str) -> str:
        return subprocess.run(["git", "show", f"{rev}:stylenorm/inference/{name}.py"], cwd=REPO,
                              check=True, capture_output=True, text=True).stdout

    modules = {}
    for name in ("flow", "temporal"):
        text = source(name).replace("from .flow import", "from ._before_flow import")
        module = types.ModuleType(f"stylenorm.inference._before_{name}")
        module.__package__ = "stylenorm.inference"
        sys.modules[module.__name__] = module
        exec(compile(text, f"{rev}:{name}.py", "exec"), module.__dict__)
        modules[name] = module
    return modules["temporal"].TemporalFilter


def rgb(path: Path, size=None) -> np.ndarray:
    image = Image.open(path).convert("RGB")
    return np.asarray(image.resize(size) if size else image, dtype=np.float32) / 255


def real_frames(count: int, size: int) -> list[np.ndarray]:
    from stylenorm.io.video import Span, VideoReader

    with VideoReader(CLIP, size=size, span=Span(12.0, 0, count)) as reader:
        return [np.ascontiguousarray(f.rgb[: f.rgb.shape[0] // 2 * 2, : f.rgb.shape[1] // 2 * 2])
                .astype(np.float32) / 255 for f in reader.frames()]


def measure(stylizer, frames, style, filter_class, flow_side: int, motions=None) -> dict:
    video.TemporalFilter = filter_class
    report = VideoReport(Path())
    options = VideoOptions(StylizeOptions(size=0), TemporalOptions(flow_side=flow_side))
    outputs = stylize_frames(stylizer, frames, style, options, report)
    n = len(frames)
    found = {"model": report.model_seconds / n * 1000, "temporal": report.temporal_seconds / n
             * 1000}
    if motions is not None:
        found["warp"] = clip_warping_error(outputs, motions)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="d9eb5ce")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=360)
    args = parser.parse_args()
    print(f"processor: {processor()}; torch threads {torch.get_num_threads()}")
    samples = REPO / "samples"
    photo, sprite = rgb(samples / "content" / "rocket.jpg"), rgb(samples / "content" / "cat.jpg",
                                                                (160, 90))
    width = args.size * 16 // 9 // 2 * 2
    clip = pan_zoom_clip(photo, sprite, CameraPath((width, args.size), args.frames,
                                                   pan=(2.5, 0.8), scale=1.0))
    cases = {"pan-zoom": (clip.frames, clip.motions)}
    if CLIP.is_file():
        cases["big buck bunny"] = (real_frames(args.frames, args.size), None)
    stylizer = Stylizer("lite", "cpu", "fp32")
    style = [torch.from_numpy(rgb(samples / "style" / "mosaic.png")).permute(2, 0, 1)[None]]
    variants = {"before": (load_revision(args.before), 360), "after": (TemporalFilter, 360),
                "after, flow at 240 px": (TemporalFilter, 240)}
    for name, (frames, motions) in cases.items():
        print(f"{name}: {len(frames)} frames at {frames[0].shape[1]}x{frames[0].shape[0]}")
        for _ in range(2):  # twice, interleaved: the machine may be shared
            for label, (filter_class, side) in variants.items():
                found = measure(stylizer, frames, style, filter_class, side, motions)
                ratio = found["temporal"] / found["model"]
                warp = f", warping error {found['warp']:.5f}" if "warp" in found else ""
                print(f"  {label:21s} model {found['model']:6.0f} ms/frame, temporal "
                      f"{found['temporal']:5.0f} ms/frame ({ratio:.2f}x the model){warp}")
    video.TemporalFilter = TemporalFilter


if __name__ == "__main__":
    main()
