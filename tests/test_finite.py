"""Outputs with NaN or infinite values (an overflow) are never written: computed again in fp32
when a lower precision caused them, refused in one line otherwise; in stylize, batch, video,
the web app and export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_image
from PIL import Image
from typer.testing import CliRunner

import stylenorm.inference.stylize as stylize_module
from stylenorm.cli.app import app
from stylenorm.errors import NonFiniteError
from stylenorm.hub.files import save_weights
from stylenorm.inference.finite import cast_code, count_non_finite, finite_frame
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.models.lite import LiteCode, LiteConfig, LiteModel

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
# The stems' weights scaled by these: the first overflows fp16 (its range ends at 65504) and
# not fp32; the second overflows fp32 too.
FP16_OVERFLOW, FP32_OVERFLOW = 1e5, 1e37


def scaled_lite(path, factor: float):
    """A tiny random lite model whose encoders' first convolutions are scaled by ``factor``."""
    torch.manual_seed(0)
    config = LiteConfig(widths=(8, 8, 8), res_blocks=1, style_size=32)
    model = LiteModel(config).eval()
    with torch.no_grad():
        model.content_encoder.stem.weight.mul_(factor)
        model.style_encoder.stem.weight.mul_(factor)
    return save_weights(path, model.state_dict(), "lite", config.to_dict(), {})


@pytest.fixture
def fp16_overflow(tmp_path):
    return scaled_lite(tmp_path / "fp16-overflow.safetensors", FP16_OVERFLOW)


@pytest.fixture
def fp32_overflow(tmp_path):
    return scaled_lite(tmp_path / "fp32-overflow.safetensors", FP32_OVERFLOW)


@pytest.fixture
def as_on_a_gpu(monkeypatch):
    """Every precision resolves to fp16, as ``auto`` does on a CUDA GPU (the CPU runs fp16
    convolutions too, slowly: enough for these tiny models)."""
    monkeypatch.setattr(stylize_module, "resolve_dtype", lambda precision, device: torch.float16)


@pytest.fixture
def pair(tmp_path):
    return (make_image(tmp_path / "content.png", (40, 32)),
            make_image(tmp_path / "style.png", (32, 32), seed=1))


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_fp16_overflow_is_computed_again_in_fp32(fp16_overflow, pair, tmp_path, as_on_a_gpu):
    content, style = pair
    stylizer = Stylizer(fp16_overflow, "cpu")
    assert stylizer.dtype == torch.float16
    model = stylizer.model
    with torch.inference_mode():
        first_try = model(model.prepare(torch.rand(1, 3, 32, 40)),
                          model.style_code(model.prepare(torch.rand(1, 3, 32, 32))))
    assert count_non_finite(first_try), "the test model no longer overflows fp16"

    result = run("stylize", content, style, "--model", fp16_overflow, "--size", 0, "-o",
                 tmp_path / "out.png")
    assert result.exit_code == 0, result.output
    assert "note: fp16 overflowed (NaN or infinite values); computing again in fp32" in \
        result.output
    written = np.asarray(Image.open(tmp_path / "out.png"), dtype=np.int16)
    reference_stylizer = Stylizer(fp16_overflow, "cpu")
    reference_stylizer.use_fp32()  # fp32 from the start
    reference_stylizer.stylize_file(content, [style], tmp_path / "ref.png",
                                    StylizeOptions(size=0))
    reference = np.asarray(Image.open(tmp_path / "ref.png"), dtype=np.int16)
    assert np.abs(written - reference).max() <= 1
    assert written.std() > 0  # not one flat colour


def test_nan_in_fp32_is_refused_in_one_line_and_nothing_is_written(fp32_overflow, pair,
                                                                   tmp_path):
    content, style = pair
    result = run("stylize", content, style, "--model", fp32_overflow, "--precision", "fp32",
                 "-o", tmp_path / "out.png")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {content}: model ")
    assert "gave NaN or infinite values in fp32" in lines[0]
    assert "nothing written" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "fp32-overflow."
                                                          "safetensors", "style.png"]


def test_batch_goes_on_in_fp32_after_an_overflow(fp16_overflow, tmp_path, as_on_a_gpu):
    make_image(tmp_path / "c" / "a.png", (40, 32), seed=1)
    make_image(tmp_path / "c" / "b.png", (36, 44), seed=2)
    make_image(tmp_path / "s" / "x.png", (32, 32), seed=3)
    result = run("batch", tmp_path / "c", tmp_path / "s", "-o", tmp_path / "out", "--model",
                 fp16_overflow, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "note: fp16 overflowed" in result.output
    assert "done 2, skipped 0 (already there), failed 0" in result.output
    for name in ("a__x.jpg", "b__x.jpg"):
        assert np.asarray(Image.open(tmp_path / "out" / name)).std() > 0


def test_batch_reports_nan_in_fp32_and_writes_nothing(fp32_overflow, tmp_path):
    make_image(tmp_path / "c" / "a.png", (40, 32), seed=1)
    make_image(tmp_path / "s" / "x.png", (32, 32), seed=3)
    result = run("batch", tmp_path / "c", tmp_path / "s", "-o", tmp_path / "out", "--model",
                 fp32_overflow, "--precision", "fp32", "--no-progress")
    assert result.exit_code == 1
    assert "gave NaN or infinite values in fp32" in result.output
    assert "failed 1 (not made)" in result.output
    assert list((tmp_path / "out").iterdir()) == []


def test_video_frames_are_computed_again_in_fp32(fp16_overflow, as_on_a_gpu):
    from stylenorm.inference.video import stylize_frames

    stylizer = Stylizer(fp16_overflow, "cpu")
    rng = np.random.default_rng(0)
    frames = [rng.uniform(0, 1, (32, 40, 3)).astype(np.float32) for _ in range(2)]
    style = torch.rand(1, 3, 32, 32)
    outputs = stylize_frames(stylizer, frames, [style])
    assert stylizer.dtype == torch.float32
    assert all(np.isfinite(out).all() and out.std() > 0 for out in outputs)


def test_a_video_frame_with_nan_is_refused_by_its_index():
    frame = np.zeros((4, 4, 3), np.float32)
    assert finite_frame(frame, 0) is frame
    frame[1, 2, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"^frame 7: the model gave NaN or infinite "
                                             r"values \(1 of 48 values\)"):
        finite_frame(frame, 7)


def test_export_checks_the_exported_model_on_a_sample(fp32_overflow, tmp_path, monkeypatch):
    import stylenorm.inference.export as export_module

    monkeypatch.setattr(export_module, "require_onnx_packages", lambda: None)
    result = run("export", fp32_overflow, "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {tmp_path / 'm.onnx'}: not written: on a sample image")
    assert "NaN or infinite values in fp32" in lines[0]
    assert not (tmp_path / "m.onnx").exists()


def test_style_codes_are_cast_field_by_field():
    code = LiteCode([torch.ones(1, 2, 1, 1, dtype=torch.float16)],
                    [torch.full((1, 2, 1, 1), float("inf"), dtype=torch.float16)])
    assert count_non_finite(code) == 2
    cast = cast_code(code, torch.float32)
    assert [t.dtype for t in cast.means + cast.stds] == [torch.float32] * 2
    assert cast_code(cast, torch.float32) is cast
