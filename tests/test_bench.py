"""``stylenorm bench``: both pipelines measured side by side, FLOPs counted right, one clear
table with the processor's name."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import StylenormError
from stylenorm.hub.zoo import load_model
from stylenorm.inference.bench import BenchConfig, count_gflop, fast_step, reference_step, run_bench
from stylenorm.inference.stylize import Stylizer

pytestmark = pytest.mark.usefixtures("one_thread")


def conv_gflop_by_hooks(model, run) -> float:
    """2 * multiply-adds of every convolution that ``run()`` calls, from their output shapes."""
    total = []

    def hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1]
        total.append(2 * output.numel() * module.in_channels * k // module.groups)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        run()
    for handle in handles:
        handle.remove()
    return sum(total) / 1e9


def test_flop_count_matches_the_convolutions(random_store):
    model = load_model("adain")
    content, style = count_gflop(model, 40, 32)
    whole = conv_gflop_by_hooks(model, lambda: model.decode(model.encode(torch.rand(1, 3, 40, 40))))
    encoder = conv_gflop_by_hooks(model, lambda: model.encode(torch.rand(1, 3, 32, 32)))
    assert content == pytest.approx(whole, rel=1e-3)  # AdaIN itself is a rounding error
    assert style == pytest.approx(encoder, rel=1e-3)


def test_both_pipelines_compute_the_same_images(random_store):
    stylizer = Stylizer("adain", precision="fp32")
    style = torch.rand(1, 3, 32, 32)
    contents = torch.rand(2, 3, 40, 40)
    fast = fast_step(stylizer, stylizer.style_code([style], None))(contents)
    reference = reference_step(load_model("adain"), style, torch.device("cpu"))(contents)
    torch.testing.assert_close(fast, reference, atol=1e-4, rtol=1e-4)


def test_run_bench_rows(random_store):
    config = BenchConfig(sizes=[32, 48], batch=2, images=2, style_size=32, precision="fp32",
                         device="cpu")
    rows = run_bench(config)
    assert [(r.size, r.pipeline.split()[0]) for r in rows] == [
        (32, "stylenorm"), (32, "reference"), (48, "stylenorm"), (48, "reference")]
    for row in rows:
        assert row.images_per_second > 0 and row.peak_mib > 0 and row.gflops > 0
    fast32, ref32, fast48, _ = rows
    assert ref32.gflop_per_image > fast32.gflop_per_image  # the reference re-encodes the style
    assert fast48.gflop_per_image / fast32.gflop_per_image == pytest.approx(2.25, rel=0.1)


def test_bench_command_prints_a_table(random_store):
    result = CliRunner().invoke(app, ["bench", "--sizes", "32", "--images", "1",
                                      "--style-size", "32", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("processor: ") and "torch" in lines[0]
    assert "img/s" in lines[1] and "GFLOP/s" in lines[1]
    assert "x the reference's images/s" in result.output


def test_bad_sizes_are_refused():
    with pytest.raises(StylenormError, match="^sizes must be >= 16"):
        BenchConfig(sizes=[8]).validate()


@pytest.mark.parametrize("amx,avx512_bf16", [(False, False), (True, False), (False, True)])
def test_auto_precision_follows_native_bf16(monkeypatch, amx, avx512_bf16):
    from stylenorm import runtime

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16,
                        raising=False)
    runtime.cpu_bf16_is_faster.cache_clear()
    try:
        expected = torch.bfloat16 if (amx or avx512_bf16) else torch.float32
        assert runtime.resolve_dtype("auto", torch.device("cpu")) == expected
    finally:
        runtime.cpu_bf16_is_faster.cache_clear()


@pytest.fixture
def lite_file(tmp_path):
    from stylenorm.hub.files import save_weights
    from stylenorm.models.lite import LiteConfig, LiteModel

    torch.manual_seed(0)
    model = LiteModel(LiteConfig(widths=(8, 8, 8), res_blocks=1, style_size=32))
    return save_weights(tmp_path / "lite.safetensors", model.state_dict(), "lite",
                        model.config.to_dict(), {})


def test_lite_model_is_benched_against_the_vgg_reference(random_store, lite_file):
    config = BenchConfig(sizes=[32, (40, 24)], images=1, style_size=32, precision="fp32",
                         device="cpu", model=lite_file)
    rows = run_bench(config)
    assert [(r.size, r.pipeline.split()[0]) for r in rows] == [
        (32, "stylenorm"), (32, "reference"), ("40x24", "stylenorm"), ("40x24", "reference")]
    lite, vgg = rows[:2]
    assert lite.gflop_per_image < vgg.gflop_per_image / 20  # no VGG at inference


def test_lite_bench_without_a_reference_model_says_so(random_store, lite_file):
    lines: list[str] = []
    config = BenchConfig(sizes=[32], images=1, style_size=32, precision="fp32", device="cpu",
                         model=lite_file, reference_model="missing")
    rows = run_bench(config, log=lines.append)
    assert len(rows) == 1 and lines[0].startswith("note: no reference pipeline")


def test_bench_command_takes_width_x_height(random_store, lite_file):
    result = CliRunner().invoke(app, ["bench", "--sizes", "40x24", "--images", "1", "--model",
                                      str(lite_file), "--style-size", "32", "--no-reference"])
    assert result.exit_code == 0, result.output
    assert "40x24" in result.output
    bad = CliRunner().invoke(app, ["bench", "--sizes", "40y24"])
    assert bad.exit_code != 0 and "3840x2160" in bad.output
