"""Clips with known motion, for measuring temporal consistency without an estimated flow
(benchmarks/video_temporal*.py and tests/test_video.py).

:func:`pan_zoom_clip` moves a virtual camera over a photo (a steady pan and zoom) while a second
image, a rectangular sprite, slides across the frame on its own path, so the clip has
occlusions (the sprite covers and uncovers the background) and content entering at the edges.
Every frame's true backward flow and the pixels visible in both frames are known exactly, which
:func:`stylenorm.inference.flow.warping_error` takes in place of an estimated flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from stylenorm.inference.flow import FrameMotion, inside_frame
from stylenorm.io.video import optional_module


@dataclass
class CameraPath:
    """Frame size (width, height), frame count, pan per frame (photo px), zoom per frame (> 1
    zooms in), the photo px per frame px at the start, and the sprite's step per frame (whole
    frame px, so its flow is exact)."""

    size: tuple[int, int] = (96, 64)
    frames: int = 12
    pan: tuple[float, float] = (1.7, 0.6)
    zoom: float = 1.01
    scale: float = 1.0
    sprite_step: tuple[int, int] = (-3, 2)


@dataclass
class SyntheticClip:
    """Frames (H, W, 3) float32 in [0, 1] and, from the second frame on, the true motion."""

    frames: list[np.ndarray] = field(default_factory=list)
    motions: list[FrameMotion] = field(default_factory=list)


def _affine(path: CameraPath, photo_size: tuple[int, int], t: int) -> tuple[float, np.ndarray]:
    """Frame t's map to the photo, ``p = s x + b``: (s, b)."""
    s = path.scale / path.zoom**t
    centre_photo = np.array(photo_size, dtype=np.float64) / 2 + np.array(path.pan) * t
    centre_frame = (np.array(path.size, dtype=np.float64) - 1) / 2
    return s, centre_photo - s * centre_frame


def _sprite_box(path: CameraPath, sprite: np.ndarray, t: int) -> tuple[int, int, int, int]:
    """The sprite's (x0, y0, x1, y1) in frame t."""
    w, h = path.size
    sh, sw = sprite.shape[:2]
    x0 = (w - sw) * 3 // 4 + path.sprite_step[0] * t
    y0 = (h - sh) // 4 + path.sprite_step[1] * t
    return x0, y0, x0 + sw, y0 + sh


def _in_box(xs: np.ndarray, ys: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    return (xs >= box[0]) & (xs < box[2]) & (ys >= box[1]) & (ys < box[3])


def pan_zoom_clip(photo: np.ndarray, sprite: np.ndarray, path: CameraPath) -> SyntheticClip:
    """The clip of ``path`` over ``photo`` (H, W, 3 float32) with ``sprite`` (h, w, 3) moving
    over it; see the module doc."""
    cv2 = optional_module("cv2")
    w, h = path.size
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    photo_size = (photo.shape[1], photo.shape[0])
    clip = SyntheticClip()
    for t in range(path.frames):
        s, b = _affine(path, photo_size, t)
        matrix = np.array([[s, 0, b[0]], [0, s, b[1]]], dtype=np.float64)
        frame = cv2.warpAffine(photo, matrix, (w, h), flags=cv2.INTER_LINEAR
                               | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        box = _sprite_box(path, sprite, t)
        _paste(frame, sprite, box)
        clip.frames.append(frame)
        if t:
            clip.motions.append(_true_motion(path, photo_size, sprite, t, xs, ys))
    return clip


def _paste(frame: np.ndarray, sprite: np.ndarray, box: tuple[int, int, int, int]) -> None:
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = box
    a, c = max(0, x0), max(0, y0)
    b, d = min(w, x1), min(h, y1)
    if a < b and c < d:
        frame[c:d, a:b] = sprite[c - y0 : d - y0, a - x0 : b - x0]


def _true_motion(path: CameraPath, photo_size: tuple[int, int], sprite: np.ndarray, t: int,
                 xs: np.ndarray, ys: np.ndarray) -> FrameMotion:
    """Frame t's exact backward flow to t - 1 and the pixels seen in both."""
    s, b = _affine(path, photo_size, t)
    s0, b0 = _affine(path, photo_size, t - 1)
    flow = np.stack([(s * xs + b[0] - b0[0]) / s0 - xs, (s * ys + b[1] - b0[1]) / s0 - ys], -1)
    now, before = _sprite_box(path, sprite, t), _sprite_box(path, sprite, t - 1)
    on_sprite = _in_box(xs, ys, now)
    flow[on_sprite] = -np.array(path.sprite_step, dtype=np.float64)
    tx, ty = np.round(xs + flow[..., 0]), np.round(ys + flow[..., 1])
    covered_before = _in_box(tx, ty, before) & ~on_sprite
    valid = inside_frame(flow) & ~covered_before
    edge = _in_box(xs, ys, (now[0] - 1, now[1] - 1, now[2] + 1, now[3] + 1)) \
        & ~_in_box(xs, ys, (now[0] + 1, now[1] + 1, now[2] - 1, now[3] - 1))
    return FrameMotion(flow.astype(np.float32), valid & ~edge)


def save_clip(frames: list[np.ndarray], path: str | Path, fps: int = 12,
              audio: bool = True, crf: int = 12, rotation: int = 0) -> Path:
    """Write ``frames`` (H, W, 3 float in [0, 1]) as an H.264 video with, if ``audio``, a 440 Hz
    AAC tone as long as the clip, and ``rotation`` (degrees) in its display matrix; the
    container follows the extension."""
    av = optional_module("av")
    path = Path(path)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"crf": str(crf)})
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        tone = container.add_stream("aac", rate=16000) if audio else None
        for i, rgb in enumerate(frames):
            pixels = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if tone is not None:
            _write_tone(av, container, tone, len(frames) / fps)
    return path


def _write_tone(av, container, stream, seconds: float) -> None:
    rate, block = 16000, 1024
    samples = np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate).astype(np.float32)
    for start in range(0, len(samples), block):
        frame = av.AudioFrame.from_ndarray(0.3 * samples[None, start : start + block],
                                           format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
