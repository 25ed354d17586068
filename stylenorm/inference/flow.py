"""Optical flow between frames (OpenCV's DIS), backward warping, occlusion masks and the
warping error that measures temporal consistency.

Conventions: images are float32 (H, W, C) arrays; a flow ``f`` from frame ``a`` to frame ``b``
is (H, W, 2) in pixels (x, y) with ``a(p) ~ b(p + f(p))``, so :func:`warp` of ``b`` by ``f``
brings ``b`` onto ``a``'s pixel grid.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..io.video import optional_module

FLOW_SIDE = 360  # flow is computed with the shorter side at most this many pixels


def grey(rgb: np.ndarray) -> np.ndarray:
    """Luma (BT.601) as uint8, what DIS takes. Shape: (H, W, 3) in [0, 1] -> (H, W)."""
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(luma * 255 + 0.5, 0, 255).astype(np.uint8)


class FlowEstimator:
    """Dense flow with OpenCV's DIS at a reduced size (shorter side at most ``side``): frames go
    in with :meth:`shrink`, flows come out at that size and :func:`resize_flow` scales them
    back."""

    def __init__(self, side: int = FLOW_SIDE, preset: str = "medium") -> None:
        cv2 = optional_module("cv2")
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                   "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        self.dis = cv2.DISOpticalFlow_create(presets[preset])
        self.dis.setUseSpatialPropagation(True)
        self.side = side

    def shrink(self, image: np.ndarray) -> np.ndarray:
        """``image`` at the size flow is computed at (area-averaged)."""
        cv2 = optional_module("cv2")
        h, w = image.shape[:2]
        scale = self.side / min(h, w)
        if scale >= 1.0:
            return image
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from grey frame ``a`` to grey frame ``b`` (both shrunk). Shape: (h, w) ->
        (h, w, 2)."""
        return self.dis.calc(a, b, None)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flow field at another (height, width), its vectors scaled with it."""
    cv2 = optional_module("cv2")
    h, w = size
    if flow.shape[:2] == (h, w):
        return flow
    scale = np.array([w / flow.shape[1], h / flow.shape[0]], dtype=np.float32)
    return cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * scale


@functools.lru_cache(maxsize=4)
def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel, float32 (H, W) each (cached per size; do not modify)."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray, cubic: bool = False) -> np.ndarray:
    """``image`` sampled at ``p + flow(p)`` (bilinear, or bicubic: sharper when repeated; the
    border pixel outside). Shape: image (H, W, C) or (H, W), flow (H, W, 2) -> image's shape."""
    cv2 = optional_module("cv2")
    xs, ys = pixel_grid(*flow.shape[:2])
    mode = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], mode,
                     borderMode=cv2.BORDER_REPLICATE)


def inside_frame(flow: np.ndarray) -> np.ndarray:
    """Where ``p + flow(p)`` lands inside the frame. Shape: (H, W, 2) -> (H, W) bool."""
    h, w = flow.shape[:2]
    xs, ys = pixel_grid(h, w)
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def consistent(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """The forward-backward check: ``p`` is visible in both frames where following
    ``backward`` and then ``forward`` returns near ``p``:
    ``|b + f(p + b)|^2 <= 0.01 (|b|^2 + |f(p + b)|^2) + 0.5``, and ``p + b`` is inside.

    Shape: flows (H, W, 2) -> (H, W) bool."""
    returned = warp(forward, backward)
    loop = squared_length(backward + returned)
    bound = 0.01 * (squared_length(backward) + squared_length(returned)) + 0.5
    return (loop <= bound) & inside_frame(backward)


def squared_length(vectors: np.ndarray) -> np.ndarray:
    """``|v|^2`` of each vector, by channel (numpy's ``sum(axis=-1)`` over 2 or 3 channels is
    some 50x slower). Shape: (H, W, C) -> (H, W)."""
    total = vectors[..., 0] ** 2
    for c in range(1, vectors.shape[-1]):
        total += vectors[..., c] ** 2
    return total


def channel_max(image: np.ndarray) -> np.ndarray:
    """The largest channel of each pixel (as :func:`squared_length`, by channel). Shape:
    (H, W, C) -> (H, W)."""
    largest = image[..., 0].copy()
    for c in range(1, image.shape[-1]):
        np.maximum(largest, image[..., c], out=largest)
    return largest


@dataclass
class FrameMotion:
    """How frame t relates to frame t - 1: the flow from t to t - 1 and where it is valid."""

    backward: np.ndarray  # (H, W, 2): frame t's pixel p is p + backward(p) in frame t - 1
    valid: np.ndarray  # (H, W) bool: not occluded, inside both frames


def motion(estimator: FlowEstimator, previous: np.ndarray, current: np.ndarray) -> FrameMotion:
    """Backward flow and occlusion mask between two grey frames, at the estimator's size."""
    backward = estimator(current, previous)
    forward = estimator(previous, current)
    return FrameMotion(backward, consistent(backward, forward))


def full_motion(estimator: FlowEstimator, previous: np.ndarray, current: np.ndarray
                ) -> FrameMotion:
    """:func:`motion` of two grey frames, brought back to their size (for measuring)."""
    cv2 = optional_module("cv2")
    step = motion(estimator, estimator.shrink(previous), estimator.shrink(current))
    size = current.shape[:2]
    valid = cv2.resize(step.valid.astype(np.uint8), size[::-1],
                       interpolation=cv2.INTER_NEAREST).astype(bool)
    return FrameMotion(resize_flow(step.backward, size), valid)


def warping_error(previous_output: np.ndarray, output: np.ndarray, step: FrameMotion) -> float:
    """Lai et al. (2018): the mean over non-occluded pixels of the squared RGB difference
    between frame t's output and frame t - 1's output warped onto it by the input's flow.

    Shape: outputs (H, W, 3) in [0, 1]."""
    warped = warp(previous_output, step.backward)
    squared = squared_length(output - warped)
    return float(squared[step.valid].mean()) if step.valid.any() else 0.0


def clip_warping_error(outputs: list[np.ndarray], motions: list[FrameMotion]) -> float:
    """:func:`warping_error` averaged over a clip's consecutive frames (``motions[i]`` leads
    from frame i to frame i + 1)."""
    if len(motions) != len(outputs) - 1:
        raise ValueError(f"{len(outputs)} frames need {len(outputs) - 1} motions; got "
                         f"{len(motions)}")
    errors = [warping_error(a, b, m) for a, b, m in zip(outputs[:-1], outputs[1:], motions,
                                                       strict=True)]
    return float(np.mean(errors))
