"""What the video benchmarks share: sample photos as float frames, one timed run of the video
pipeline over decoded frames, and the VGG style loss of output frames."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.inference.temporal import TemporalOptions
from stylenorm.inference.video import VideoOptions, VideoReport, stylize_frames


def read_rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """An image as (H, W, 3) float32 in [0, 1], resized to ``size`` (width, height) if given."""
    image = Image.open(path).convert("RGB")
    if size is not None:
        image = image.resize(size, Image.LANCZOS)
    return np.asarray(image, dtype=np.float32) / 255


def run_pipeline(stylizer: Stylizer, frames, style: torch.Tensor, temporal: TemporalOptions
                 ) -> tuple[list[np.ndarray], VideoReport]:
    """The video pipeline over ``frames`` at their own size: the outputs and its timings."""
    options = VideoOptions(StylizeOptions(size=0), temporal)
    report = VideoReport(Path())
    start = time.perf_counter()
    outputs = stylize_frames(stylizer, frames, [style], options, report)
    report.seconds, report.frames = time.perf_counter() - start, len(frames)
    return outputs, report


def style_losses(frames: list[np.ndarray], style: torch.Tensor, every: int = 1
                 ) -> dict[int, float]:
    """The mean/std style loss (relu1_1..relu4_1 of the measuring VGG) of every ``every``-th
    frame against ``style``, by frame index."""
    from stylenorm.hub.zoo import load_encoder
    from stylenorm.models.vgg import TAPS
    from stylenorm.nn.losses import mean_std_style_loss

    encoder = load_encoder().eval()
    with torch.inference_mode():
        target = encoder(style)
        return {i: mean_std_style_loss(encoder(torch.from_numpy(frames[i]).permute(2, 0, 1)
                                               [None]), target, TAPS).item()
                for i in range(0, len(frames), every)}
