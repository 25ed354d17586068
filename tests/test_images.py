"""Image decoding (EXIF, alpha, odd modes) and atomic writing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_image
from PIL import Image

from stylenorm.errors import ImageError
from stylenorm.io.images import list_images, load_image, save_image


def test_exif_orientation_is_honoured(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "r.jpg").rgb.shape[-2:] == (40, 20)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16"])
def test_modes_become_rgb(tmp_path, mode):
    path = tmp_path / ("m.jpg" if mode == "CMYK" else "m.png")
    if mode == "I;16":
        Image.fromarray((np.arange(48 * 40).reshape(40, 48) * 30).astype(np.uint16)).save(path)
    else:
        Image.open(make_image(tmp_path / "src.png")).convert(mode).save(path)
    loaded = load_image(path)
    assert loaded.rgb.shape == (1, 3, 40, 48)
    assert loaded.rgb.min() >= 0 and loaded.rgb.max() <= 1
    if mode == "I;16":
        assert loaded.rgb.max() > 0.5  # 16-bit range scaled, not clipped to white


def test_alpha_is_kept_and_written_back(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :15, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded.alpha is not None and loaded.alpha[..., :15].min() == 1
    save_image(loaded.rgb, tmp_path / "out.png", loaded.alpha)
    assert Image.open(tmp_path / "out.png").mode == "RGBA"


@pytest.mark.parametrize("size", [0, 17, 100])
def test_an_opaque_image_has_no_alpha_at_any_size(tmp_path, size):
    """Resizing must not turn a fully opaque image into a barely transparent one (its stylised
    output would then be written as RGBA)."""
    path = make_image(tmp_path / "c.jpg", size=(64, 48))
    assert load_image(path, size=size).alpha is None
    save_image(load_image(path, size=size).rgb, tmp_path / "o.png")
    assert Image.open(tmp_path / "o.png").mode == "RGB"


def test_resize_and_crop(tmp_path):
    path = make_image(tmp_path / "c.png", size=(64, 32))
    assert load_image(path, size=16).rgb.shape[-2:] == (16, 32)
    assert load_image(path, size=16, crop=True).rgb.shape[-2:] == (16, 16)


@pytest.mark.parametrize("content,expected", [
    (None, "no such file"), (b"", "not a readable image"), (b"hello", "not a readable image"),
])
def test_bad_files_are_one_clear_error(tmp_path, content, expected):
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=f"bad.jpg: {expected}"):
        load_image(path)


def test_max_pixels_refuses_before_decoding(tmp_path):
    path = make_image(tmp_path / "big.png", size=(64, 64))
    with pytest.raises(ImageError, match="64x64 .* the limit is 1000"):
        load_image(path, max_pixels=1000)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    save_image(torch.rand(1, 3, 8, 8), tmp_path / "x.jpg")
    with pytest.raises(ImageError, match="extension"):
        save_image(torch.rand(1, 3, 8, 8), tmp_path / "x.unknown")
    assert [p.name for p in tmp_path.iterdir()] == ["x.jpg"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_permissions_of_a_plainly_created_file(tmp_path, umask):
    import os
    import stat

    previous = os.umask(umask)
    try:
        save_image(torch.rand(1, 3, 8, 8), tmp_path / "x.png")
        (tmp_path / "plain").write_bytes(b"")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "x.png").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o666 & ~umask


def test_list_images_recursive(tmp_path):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "sub" / "b.jpg")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.jpg"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.png"]
