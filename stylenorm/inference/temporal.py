"""Temporal consistency for video: the same style, smoothed content statistics, the previous
output carried along the optical flow, and a canvas that holds what has not changed.

Stylising each frame on its own flickers: small changes between input frames (sub-pixel
motion, noise, content entering the frame) change the content statistics the model normalises
with and the texture it paints. :class:`TemporalFilter` removes most of it in these steps:

1. **One style code** for the whole clip (computed once by the caller, with
   ``--preserve-color`` against the first frame).
2. **Smoothed content statistics.** The per-channel mean and std of the content features, which
   the decoder normalises with, follow an exponential moving average
   ``m_t = k m_{t-1} + (1 - k) m(frame_t)`` (``stats_momentum`` k), restarted at a scene cut.
3. **Flow-guided blending.** The previous output is warped onto the current frame by the
   input's backward optical flow (DIS) and blended in,
   ``out_t = s_t + w (warp(out_{t-1}) - s_t)``, where ``w`` is ``blend`` at pixels that pass
   the forward-backward consistency check and whose input colour the warp predicts within
   ``colour_tolerance``, and 0 elsewhere (occluded, new or mismatched pixels take the fresh
   stylisation), feathered over a few pixels so the regions do not show edges. When fewer than
   ``cut_fraction`` of the pixels are trusted, the frame is a scene cut and starts afresh.
4. **A persistent canvas** (``hold``, :mod:`.canvas`): where the picture stands still (flow
   under ``still_flow``) and the input has changed by less than ``hold_tolerance`` since the
   output there was drawn, ``w`` is 1 and the flow 0: the output keeps its rendering exactly,
   however long the region stays unchanged, whatever moves elsewhere in the frame. Blending
   alone (an average over the last few frames) let a still background's texture drift with
   the statistics as things moved elsewhere.
5. **Detail kept.** The warp is bicubic (bilinear resampling, repeated frame after frame,
   blurs), and where frames were averaged the blend's fine detail is brought back to the fresh
   stylisation's energy, band by band (:func:`.detail.restore_detail`): averaging two frames'
   textures softens them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import OptionError
from ..io.video import optional_module
from ..models.protocol import ContentFeatures
from .canvas import Canvas, feather
from .detail import restore_detail
from .flow import (
    FLOW_SIDE,
    FlowEstimator,
    FrameMotion,
    channel_max,
    grey,
    motion,
    resize_flow,
    squared_length,
    warp,
)


@dataclass
class TemporalOptions:
    """How strongly frames are tied together (see the module doc); ``enabled=False`` stylises
    every frame on its own."""

    enabled: bool = True
    blend: float = 0.7
    stats_momentum: float = 0.5
    colour_tolerance: float = 0.08
    cut_fraction: float = 0.3
    feather: int = 7  # px: the trust mask's blur
    flow_side: int = FLOW_SIDE
    detail_gain: bool = True
    hold: bool = True  # the persistent canvas on unchanged, still pixels
    hold_tolerance: float = 0.03  # input change since drawn that ends a hold
    still_flow: float = 0.5  # px per frame (full size): slower counts as standing still
    hold_margin: int = 16  # px: a held pixel has had no change this near (the model's sight:
    # the lite model's output reacts to an object up to about 16 px away, beyond that only as
    # much as to any change in the frame)
    hold_after: int = 6  # frames a region stays unchanged before it is held (8: static change
    # over 25 frames 0.302x per-frame on the real clip, 6: 0.247x; 4 costs style)

    def validate(self) -> None:
        for name in ("blend", "stats_momentum", "colour_tolerance", "cut_fraction",
                     "hold_tolerance"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise OptionError(f"{name} must be between 0 and 1; got {value!r}",
                                  params=(name,))
        if min(self.feather, self.still_flow, self.hold_margin, self.hold_after) < 0 \
                or self.flow_side < 16:
            raise OptionError(f"feather, still_flow, hold_margin and hold_after must be >= 0 and "
                              f"flow_side >= 16; got {self.feather}, {self.still_flow}, "
                              f"{self.hold_margin}, {self.hold_after}, {self.flow_side}")


class TemporalFilter:
    """Carries one clip's state from frame to frame: call :meth:`observe` with each input
    frame, then :meth:`smooth` on its content features, then :meth:`blend` on its output.

    Flow, occlusion, colour and hold checks run at the flow's reduced size (shorter side
    ``flow_side``); only the weights and the backward flow are brought to full size."""

    def __init__(self, options: TemporalOptions | None = None) -> None:
        self.options = options or TemporalOptions()
        self.options.validate()
        self.estimator = FlowEstimator(self.options.flow_side) if self.options.enabled else None
        self.previous_small: np.ndarray | None = None  # frame t - 1 at the flow's size
        self.previous_output: np.ndarray | None = None
        self.canvas = Canvas(self.options.hold_tolerance, self.options.hold_after)
        self.backward: np.ndarray | None = None  # full size: frame t's pixel in frame t - 1
        self.weight: np.ndarray | None = None  # full size (H, W, 1): the previous output's
        self.kept: np.ndarray | None = None  # full size (H, W, 1): the held rendering's
        self.stats = None
        self.cuts = 0

    def observe(self, frame: np.ndarray) -> None:
        """Take input frame t, (H, W, 3) float32 in [0, 1]: its flow to frame t - 1 and the
        weight of the previous output at each pixel."""
        if not self.options.enabled:
            return
        small = self.estimator.shrink(frame)
        self.backward, self.weight, self.kept = None, None, None
        previous, self.previous_small = self.previous_small, small
        if previous is None or previous.shape != small.shape:
            self._restart()
            return
        step = motion(self.estimator, grey(previous), grey(small))
        scale = frame.shape[0] / small.shape[0]
        width = self._feather(scale)
        still = self.options.hold and self._camera_still(step.backward, scale)
        if still:  # flow only where the input changed: elsewhere DIS's is noise
            step = self.canvas.still_motion(step, small, previous, width)
        trusted = self._trusted(small, previous, step, width)
        if trusted.mean() < self.options.cut_fraction:
            self._restart()
            self.cuts += 1
            return
        size = frame.shape[:2]
        if still:
            reach = self.options.hold_margin / scale
            self.kept = full_size(self.canvas.hold(small, size, width, reach), size)
        else:
            self.canvas.restart()
        self.backward = resize_flow(step.backward, size)
        self.weight = full_size(trusted * self.options.blend, size)

    def _restart(self) -> None:
        """A new shot: the statistics and the canvas start afresh."""
        self.stats = None
        self.canvas.restart()

    def _camera_still(self, backward: np.ndarray, scale: float) -> bool:
        """Whether the picture as a whole stands still: the median flow under ``still_flow``
        (full-size px). The flow of single pixels is no guide: on a still, noisy background
        DIS reports up to several px where something moves nearby."""
        return float(np.median(squared_length(backward[::2, ::2]))) * scale**2 \
            < self.options.still_flow**2

    def _feather(self, scale: float) -> float:
        """The feather's width at the flow's size (px)."""
        return self.options.feather / scale

    def _trusted(self, small: np.ndarray, previous: np.ndarray, step: FrameMotion,
                 width: float) -> np.ndarray:
        """1 where the flow is consistent and predicts the input's colour, 0 elsewhere,
        feathered over ``width`` px (at the flow's size). Shape: (h, w) float32."""
        cv2 = optional_module("cv2")
        error = channel_max(cv2.absdiff(small, warp(previous, step.backward)))
        trusted = (step.valid & (error < self.options.colour_tolerance)).astype(np.float32)
        return feather(trusted, width)

    def smooth(self, content: ContentFeatures) -> ContentFeatures:
        """The content features with their mean and std averaged over time."""
        if not self.options.enabled:
            return content
        if self.stats is None:
            self.stats = (content.mean, content.std)
        else:
            k = self.options.stats_momentum
            mean, std = self.stats
            self.stats = (k * mean + (1 - k) * content.mean, k * std + (1 - k) * content.std)
        return dataclasses.replace(content, mean=self.stats[0], std=self.stats[1])

    def blend(self, output: np.ndarray) -> np.ndarray:
        """Frame t's output, (H, W, 3) float32: frame t - 1's warped onto it where trusted,
        fresh elsewhere, and the held rendering where the input has not changed."""
        if not self.options.enabled:
            return output
        fresh = output
        if self.weight is not None and self.previous_output is not None \
                and self.previous_output.shape == output.shape:
            carried = warp(self.previous_output, self.backward, cubic=True)
            output = fresh + self.weight * (carried - fresh)
            if self.options.detail_gain:  # measured and restored where the blend is shown
                shown = self.weight if self.kept is None else self.weight * (1 - self.kept)
                output = np.clip(restore_detail(output, fresh, shown), 0, 1)
        if self.kept is not None:
            output = self.canvas.show(output, self.kept)
        self.previous_output = output
        return output


def full_size(weight: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A weight at the flow's size brought to (H, W, 1) at full size."""
    cv2 = optional_module("cv2")
    full = cv2.resize(weight, size[::-1], interpolation=cv2.INTER_LINEAR)
    full[full > 0.999] = 1
    return full[..., None]
