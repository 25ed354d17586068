"""The temporal filter's mechanisms on small synthetic frames, without a model (a 'stylisation'
of fresh noise at every call, as a per-frame model's texture flickers): the persistent canvas
(still, unchanged pixels keep their rendering; change ends the hold, slow change too; a moving
camera holds nothing), cuts, and the detail restored where frames are averaged."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="OpenCV (the video extra) is not installed")

from stylenorm.inference.canvas import Canvas, feather  # noqa: E402
from stylenorm.inference.temporal import TemporalFilter, TemporalOptions  # noqa: E402

H, W = 96, 128
SQUARE = slice(40, 64)  # the rows a moving square covers


def scene(seed: int = 0) -> np.ndarray:
    """A smooth, textured still picture (DIS finds its flow)."""
    noise = np.random.default_rng(seed).random((H // 4, W // 4, 3)).astype(np.float32)
    return cv2.resize(noise, (W, H), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def with_square(picture: np.ndarray, x: int) -> np.ndarray:
    frame = picture.copy()
    frame[SQUARE, x : x + 16] = (1.0, 0.1, 0.1)
    return frame


def run(frames, options: TemporalOptions, seed: int = 1) -> list[np.ndarray]:
    temporal, rng = TemporalFilter(options), np.random.default_rng(seed)
    outputs = []
    for frame in frames:
        temporal.observe(frame)
        outputs.append(temporal.blend(rng.random((H, W, 3)).astype(np.float32)))
    return outputs


def test_still_unchanged_pixels_keep_their_rendering_while_something_moves():
    picture = scene()
    frames = [with_square(picture, 4 + 2 * t) for t in range(20)]
    outputs = run(frames, TemporalOptions(hold_margin=8))
    far = (slice(0, 16), slice(None))  # rows the square never comes near (nor the feather)
    for a, b in zip(outputs[10:], outputs[11:], strict=False):
        np.testing.assert_array_equal(a[far], b[far])
    assert np.abs(outputs[-1][SQUARE, 30:40] - outputs[10][SQUARE, 30:40]).mean() > 0.1


def test_without_hold_the_still_background_keeps_changing():
    outputs = run([scene()] * 8, TemporalOptions(hold=False))
    assert np.abs(outputs[-1] - outputs[-2]).mean() > 0.05  # 0.3 of fresh noise each frame


def test_what_a_passing_object_uncovers_is_held_again_once_settled():
    picture = scene()
    frames = [with_square(picture, 8 + 6 * t) for t in range(20)] + [picture] * 8
    outputs = run(frames, TemporalOptions(hold_after=4))
    passed = (SQUARE, slice(8, 32))  # left by the square at frame 4, 24 px behind it at 8
    assert np.abs(outputs[7][passed] - outputs[6][passed]).mean() > 0.05  # still blending
    for a, b in zip(outputs[15:], outputs[16:], strict=False):
        np.testing.assert_array_equal(a[passed], b[passed])


def test_a_change_in_the_input_ends_the_hold():
    picture = scene()
    changed = picture.copy()
    changed[:, : W // 2] = np.clip(changed[:, : W // 2] + 0.2, 0, 1)  # a light comes on
    outputs = run([picture] * 12 + [changed] * 14, TemporalOptions())
    right, left = (slice(None), slice(W // 2 + 16, None)), (slice(None), slice(0, W // 2 - 16))
    np.testing.assert_array_equal(outputs[11][right], outputs[-1][right])
    assert np.abs(outputs[13][left] - outputs[11][left]).mean() > 0.05  # freed
    np.testing.assert_array_equal(outputs[-2][left], outputs[-1][left])  # held again


def test_slow_change_accumulates_against_the_input_as_drawn():
    canvas = Canvas(tolerance=0.03, settle=0)
    picture = scene()
    canvas.hold(picture, (H, W), 0, 0)
    held = []
    for t in range(1, 8):  # 0.01 brighter each frame: under the tolerance frame to frame
        frame = np.clip(picture + 0.01 * t, 0, 1)
        held.append(bool(canvas.hold(frame, (H, W), 0, 0)[H // 2, W // 2]))
    assert held == [True, True, False, True, True, False, True]  # freed at each +0.03


def test_noise_does_not_free_a_pixel():
    canvas = Canvas(tolerance=0.03, settle=0)
    picture, rng = scene(), np.random.default_rng(3)
    canvas.hold(picture, (H, W), 0, 0)
    noisy = (picture + rng.normal(0, 0.01, picture.shape)).astype(np.float32)
    assert canvas.hold(noisy, (H, W), 0, 0).mean() > 0.99


def test_a_region_is_held_only_once_it_and_its_surroundings_settled():
    canvas = Canvas(tolerance=0.03, settle=3)
    picture = scene()
    canvas.hold(picture, (H, W), 0, 0)
    held = [canvas.hold(picture, (H, W), 0, 0).mean() for _ in range(3)]
    assert held == [0, 0, 1]
    moving = picture.copy()
    for t in range(3):  # a spot that keeps changing: it and 8 px around it never settle
        moving[40:48, 60:68] = 0.3 * t
        mask = canvas.hold(moving, (H, W), 0, 8)
    assert mask[40:48, 60:68].max() == 0 and mask[:20].min() == 1
    canvas.restart()
    canvas.hold(moving, (H, W), 0, 0)
    for _ in range(3):
        mask = canvas.hold(moving, (H, W), 0, 8)
    assert mask.min() == 1  # all settled again


def test_beside_what_never_settles_only_pixels_not_right_next_to_it_are_held():
    canvas = Canvas(tolerance=0.03, settle=2)
    moving = scene()
    for t in range(12):  # a spot that never stops changing; 16 px reach, 4 px "next to it"
        moving[40:48, 60:68] = 0.3 * (t % 3)
        mask = canvas.hold(moving, (H, W), 0, 16)
    assert mask[40:48, 56:60].max() == 0  # 1-4 px away: the outline the model draws
    assert mask[40:48, 45:53].min() == 1  # 7-15 px away: held, alone
    assert mask[:20].min() == 1


def test_a_moving_camera_holds_nothing():
    wide = cv2.resize(scene(), (2 * W, 2 * H))
    frames = [np.ascontiguousarray(wide[20 : 20 + H, 3 * t : 3 * t + W]) for t in range(5)]
    temporal = TemporalFilter()
    for frame in frames:
        temporal.observe(frame)
        assert temporal.kept is None


def test_feathered_hold_is_exactly_one_inside():
    mask = np.zeros((H, W), np.float32)
    mask[:, : W // 2] = 1
    soft = feather(mask, 7)
    assert (soft[:, :40] == 1).all() and soft[:, W // 2 :].max() < 1 and soft[:, -8:].max() == 0


def test_a_scene_cut_restarts_the_filter():
    temporal = TemporalFilter()
    for frame in (scene(), scene(), np.ascontiguousarray(scene(seed=5)[::-1])):
        temporal.observe(frame)
    assert temporal.cuts == 1 and temporal.weight is None and temporal.kept is None
    assert temporal.canvas.drawn is None


def test_detail_is_restored_where_frames_are_averaged():
    plain = run([scene()] * 6, TemporalOptions(hold=False, detail_gain=False))
    restored = run([scene()] * 6, TemporalOptions(hold=False))
    fresh = float(np.var(np.random.default_rng(0).random((H, W, 3))))
    energy = [float(np.var(o[-1])) for o in (plain, restored)]
    assert energy[0] < 0.8 * fresh and energy[1] > 0.85 * fresh
