"""The persistent canvas of :mod:`.temporal`: while the camera stands still, a region whose input
has not changed keeps the rendering it was given, however long it stays unchanged and whatever
moves elsewhere in the frame.

:class:`Canvas` keeps, per pixel, the input it last saw change to (``drawn``, at the flow's
reduced size) and how many frames the input has stayed within ``tolerance`` of it. A pixel is
*held* once it and everything within ``reach`` px (what the model sees around it) have stayed
so for ``settle`` frames, or it and everything within a quarter of that distance for three
times as long (beside grass that never stops moving, say), and stays held while its own input
stays so: the output there is frozen at what it last was. Waiting for the surroundings keeps
what a passing object did to the rendering within the model's reach from being frozen behind
it; the quarter distance keeps the outline the model draws a few px around something that
keeps moving nearby from being frozen onto the background (holding a pixel alone, whatever
moved next to it, froze such outlines: a line of dark marks along a sprite's path). Any change
beyond the tolerance frees the pixel, and the output follows the blended stylisation again
until the region has settled anew.
Measuring against the input as it was when it last changed, not the previous frame's, lets
slow change (a fade, a drifting shadow) accumulate until it frees the pixel; camera noise,
measured on a slightly blurred difference, does not. Regions that keep moving a little (grass
in the wind, water) do not settle, so they are not frozen and freed by turns.
"""

from __future__ import annotations

import numpy as np

from ..io.video import optional_module
from .flow import FrameMotion, channel_max

NOISE_SIGMA = 1.0  # px at the flow's size: the blur of a difference before it is compared
ALONE = 3  # x settle: a pixel unchanged this long is held even if its surroundings move


class Canvas:
    """The held output and the inputs behind it (see the module doc)."""

    def __init__(self, tolerance: float, settle: int) -> None:
        self.tolerance, self.settle = tolerance, settle
        self.drawn: np.ndarray | None = None  # (h, w, 3): the input as it last changed
        self.age: np.ndarray | None = None  # (h, w) int: frames it has stayed so (capped)
        self.held: np.ndarray | None = None  # (h, w) bool
        self.free: np.ndarray | None = None  # (H, W) bool: pixels not held
        self.rendering: np.ndarray | None = None  # (H, W, 3): the output held pixels show

    def restart(self) -> None:
        """A new shot, or a moving camera: nothing is held."""
        self.drawn = self.age = self.held = self.free = None

    def hold(self, small: np.ndarray, size: tuple[int, int], width: float,
             reach: float) -> np.ndarray:
        """Take frame t (at the flow's size): which pixels are held, feathered over ``width``
        px. Shape: (h, w, 3) -> (h, w) float32 in [0, 1]."""
        cv2 = optional_module("cv2")
        if self.drawn is None or self.drawn.shape != small.shape:
            self.drawn = small.copy()
            self.age = np.zeros(small.shape[:2], np.int32)
            self.held = np.zeros(small.shape[:2], bool)
        else:
            unchanged = ~changed(small, self.drawn, self.tolerance)
            self.drawn[~unchanged] = small[~unchanged]
            self.age = np.where(unchanged, np.minimum(self.age + 1, ALONE * self.settle), 0)
            settled = aged_around(self.age, self.settle, reach)
            # beside what never settles, though not right next to it:
            settled |= aged_around(self.age, ALONE * self.settle, reach / 4)
            self.held = unchanged & (self.held | settled)
        self.free = cv2.resize((~self.held).astype(np.uint8), size[::-1],
                               interpolation=cv2.INTER_NEAREST).astype(bool)
        return feather(self.held.astype(np.float32), width)

    def show(self, output: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """Frame t's output: the held rendering where ``kept`` is 1, ``output`` where it is 0,
        mixed between; it becomes the rendering of the pixels not held. Shape: output
        (H, W, 3), kept (H, W, 1)."""
        if self.rendering is not None and self.rendering.shape == output.shape:
            output = self.rendering + (1 - kept) * (output - self.rendering)  # exact where held
            self.rendering[self.free] = output[self.free]
        else:
            self.rendering = output.copy()
        return output

    def still_motion(self, step: FrameMotion, small: np.ndarray, previous: np.ndarray,
                     width: float) -> FrameMotion:
        """For a camera that stands still: the flow kept only where the input changed since
        the previous frame (and ``width`` px around), zero and valid elsewhere, where DIS's
        flow is noise that would smear a still background."""
        cv2 = optional_module("cv2")
        moved = changed(small, previous, self.tolerance).astype(np.float32)
        side = 2 * round(width) + 1
        near = cv2.dilate(moved, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
        region = feather(near, width)
        return FrameMotion(step.backward * region[..., None], step.valid | (region == 0))


def aged_around(age: np.ndarray, frames: int, reach: float) -> np.ndarray:
    """Where every pixel within ``reach`` px (a square) has been unchanged for ``frames``
    frames. Shape: (h, w) int -> (h, w) bool."""
    cv2 = optional_module("cv2")
    side = 2 * round(reach) + 1
    return cv2.erode((age >= frames).astype(np.uint8),
                     np.ones((side, side), np.uint8)).astype(bool)


def changed(a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
    """Where two pictures differ by ``tolerance`` or more in some channel, after a slight
    blur of the difference (camera noise averages out; an edge that moves does not). Shape:
    (h, w, 3) -> (h, w) bool."""
    cv2 = optional_module("cv2")
    difference = cv2.GaussianBlur(a - b, (0, 0), NOISE_SIGMA)
    return channel_max(np.abs(difference)) >= tolerance


def feather(mask: np.ndarray, width: float) -> np.ndarray:
    """A mask in [0, 1] eroded by a pixel and blurred over about ``width`` px (unchanged when
    ``width`` < 0.5); values within 1e-3 of 1 become 1, so that a hold stays exact. Shape:
    (h, w) float32."""
    if width < 0.5:
        return mask
    cv2 = optional_module("cv2")
    soft = cv2.GaussianBlur(cv2.erode(mask, np.ones((3, 3), np.uint8)), (0, 0), width / 2)
    soft[soft > 0.999] = 1
    return soft
