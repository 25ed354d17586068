"""The one render path (inference/render.py): every model kind, from every caller (stylize and
the web page's stylize_file, video, batch, bench), goes through it, and it adds nothing to the
model's own definition, alpha included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_image

from stylenorm.errors import StylenormError
from stylenorm.hub.files import save_weights
from stylenorm.hub.zoo import KINDS
from stylenorm.inference import render
from stylenorm.inference.batch import batch_stylize
from stylenorm.inference.bench import fast_step
from stylenorm.inference.finite import cast_code
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.inference.temporal import TemporalOptions
from stylenorm.inference.tiling import TileOptions
from stylenorm.inference.video import VideoOptions, stylize_frames
from stylenorm.models.cin import CINConfig, CINTransformer
from stylenorm.models.lite import LiteConfig, LiteModel
from stylenorm.nn.fused import to_inference_layout

pytestmark = pytest.mark.usefixtures("one_thread")


def lite_file(folder: Path) -> Path:
    torch.manual_seed(0)
    model = LiteModel(LiteConfig(widths=(8, 8, 8), res_blocks=1, style_size=32, style_mlp=8,
                                 style_deep=8))
    with torch.no_grad():
        for modulator in model.modulators:
            modulator.linear.weight.add_(0.3 * torch.randn_like(modulator.linear.weight))
        model.decoder.out.bias.fill_(0.5)
    return save_weights(folder / "tiny-lite.safetensors", model.state_dict(), "lite",
                        model.config.to_dict())


def cin_file(folder: Path) -> Path:
    torch.manual_seed(0)
    model = CINTransformer(CINConfig(style_names=["a", "b"], widths=(8, 8, 8), res_blocks=1))
    with torch.no_grad():
        for layer in model.cin_layers():
            layer.gamma.normal_(1, 0.3)
            layer.beta.normal_(0, 0.3)
    return save_weights(folder / "tiny-cin.safetensors", model.state_dict(), "cin",
                        model.config.to_dict())


# one small model per kind of the zoo (a new kind needs a line here: the test below says so)
BUILDERS = {"adain": lambda store, folder: store / "adain.safetensors",
            "lite": lambda store, folder: lite_file(folder),
            "cin": lambda store, folder: cin_file(folder)}


@pytest.fixture(params=sorted(KINDS))
def kind_model(request, random_store, tmp_path):
    """(kind, a Stylizer of a small model of that kind in fp32, whether it takes styles)."""
    assert set(BUILDERS) == set(KINDS), "give every kind of the zoo a small model in BUILDERS"
    path = BUILDERS[request.param](random_store, tmp_path)
    return request.param, Stylizer(path, "cpu", "fp32"), KINDS[request.param].styles_from_images


@pytest.fixture
def calls(monkeypatch):
    """How often each step of the render path runs (the callers call it as render.NAME)."""
    counted = {"tiles_for": 0, "encode": 0, "decode": 0}
    for name in counted:
        real = getattr(render, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            counted[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(render, name, spy)
    return counted


def styles_for(takes_styles: bool) -> tuple[list[torch.Tensor], StylizeOptions]:
    torch.manual_seed(1)
    if takes_styles:
        return [torch.rand(1, 3, 40, 36)], StylizeOptions(alpha=0.6)
    return [], StylizeOptions(alpha=0.6, style_index=1)


def taken(calls: dict) -> dict:
    """The counts since the last look."""
    seen = dict(calls)
    calls.update(dict.fromkeys(calls, 0))
    return seen


def test_every_kind_goes_through_the_one_render_path(kind_model, calls, tmp_path):
    kind, stylizer, takes_styles = kind_model
    styles, options = styles_for(takes_styles)
    once = {"tiles_for": 1, "encode": 1, "decode": 1}
    stylizer.stylize_tensors(torch.rand(1, 3, 36, 44), styles, options)
    assert taken(calls) == once, f"stylize, {kind}"

    style_files = [make_image(tmp_path / "styles" / "s.png", (40, 36))] if takes_styles else []
    content_file = make_image(tmp_path / "contents" / "c.png", (44, 36))
    stylizer.stylize_file(content_file, style_files, tmp_path / "out.png", options)
    assert taken(calls) == once, f"stylize_file (the web page), {kind}"

    frames = [np.random.default_rng(i).random((36, 44, 3)).astype(np.float32) for i in range(2)]
    video = VideoOptions(stylize=options, temporal=TemporalOptions(enabled=False))
    stylize_frames(stylizer, frames, styles, video)
    assert taken(calls) == {name: 2 for name in once}, f"video, {kind}"
    if not takes_styles:  # batch and bench take style images
        return

    report = batch_stylize(tmp_path / "contents", tmp_path / "styles", tmp_path / "batch",
                           model=stylizer.name, device="cpu", precision="fp32", progress=False,
                           alpha=0.6)
    assert report.ok and len(report.done) == 1
    assert taken(calls) == once, f"batch, {kind}"
    fast_step(stylizer, stylizer.style_code(styles, None))(torch.rand(2, 3, 32, 40))
    assert taken(calls) == once, f"bench, {kind}"
    tiled = StylizeOptions(alpha=0.6, tile=True, tile_size=64)
    stylizer.stylize_tensors(torch.rand(1, 3, 150, 90), styles, tiled)
    assert taken(calls) == once, f"tiled, {kind}"


@pytest.mark.parametrize("alpha", [1.0, 0.6, 0.0])
def test_the_render_path_adds_nothing_to_the_models_definition(kind_model, alpha):
    """Stylizer.render is the model's forward (the CIN network's output blended by alpha),
    cropped and clamped, bit for bit: alpha is the model's own."""
    kind, stylizer, takes_styles = kind_model
    model = stylizer.model
    content = torch.rand(1, 3, 37, 45)  # sides the models pad
    if takes_styles:
        code = stylizer.style_code([torch.rand(1, 3, 40, 40), torch.rand(1, 3, 32, 48)], None)
        with torch.inference_mode():
            want = model(model.prepare(content), cast_code(code, stylizer.dtype), alpha)
    else:
        code = model.weights_for(1)
        with torch.inference_mode():
            out = model.stylize(to_inference_layout(content, model), code).float()
        want = alpha * out + (1 - alpha) * content
    got = stylizer.render(content, code, StylizeOptions(alpha=alpha))
    assert torch.equal(got, want[..., :37, :45].clamp(0, 1)), kind
    if alpha == 0.0 and kind != "adain":  # the content itself (AdaIN's decoder does not rebuild)
        torch.testing.assert_close(got, content, atol=1e-5, rtol=0)


def test_a_two_style_mask_renders_as_the_model_does(random_store, tmp_path):
    for path in (random_store / "adain.safetensors", lite_file(tmp_path)):
        stylizer = Stylizer(path, "cpu", "fp32")
        model, content = stylizer.model, torch.rand(1, 3, 37, 45)
        styles = [torch.rand(1, 3, 40, 40), torch.rand(1, 3, 32, 48)]
        mask = (torch.rand(1, 1, 37, 45) > 0.5).float()
        options = StylizeOptions(alpha=0.7)
        code = stylizer.code_for(content, styles, options, mask)
        with torch.inference_mode():
            want = model(model.prepare(content), code, 0.7, mask)[..., :37, :45].clamp(0, 1)
        assert torch.equal(stylizer.stylize_tensors(content, styles, options, mask), want)


def test_tiles_are_decided_in_one_place(kind_model):
    kind, stylizer, takes_styles = kind_model
    small, forced = StylizeOptions(), StylizeOptions(tile=True, tile_size=64)
    assert render.tiles_for(stylizer.model, 64, 64, small) is None
    large = render.tiles_for(stylizer.model, 2000, 1600, small)  # above AUTO_TILE_PIXELS
    assert (large is not None) == takes_styles  # a CIN model runs whole
    if takes_styles:
        assert render.tiles_for(stylizer.model, 64, 64, forced).tile == 64
    else:
        with pytest.raises(StylenormError, match="^tile works with the adain and lite models"):
            render.tiles_for(stylizer.model, 64, 64, forced)


def test_stylize_tiled_is_the_render_path_finished_as_the_commands_do(kind_model, calls):
    """The library's one-call tiling runs render.encode and render.decode once each and
    finishes the image as the commands do: Stylizer.render's image in the same tiles."""
    kind, stylizer, takes_styles = kind_model
    content = torch.rand(1, 3, 150, 90)
    if not takes_styles:
        with pytest.raises(StylenormError, match="^tile works with the adain and lite models"):
            render.stylize_tiled(stylizer.model, content, stylizer.model.weights_for(1))
        return
    code = stylizer.style_code([torch.rand(1, 3, 40, 36)], None)
    got = render.stylize_tiled(stylizer.model, content, code, 0.6, TileOptions(tile=64))
    assert taken(calls) == {"tiles_for": 0, "encode": 1, "decode": 1}
    want = stylizer.render(content, code, StylizeOptions(alpha=0.6, tile=True, tile_size=64))
    assert torch.equal(got, want), kind


def test_batch_holds_whole_contents_to_max_whole_pixels_as_stylize_does(random_store, tmp_path):
    make_image(tmp_path / "contents" / "c.png", (44, 36))
    make_image(tmp_path / "styles" / "s.png", (30, 30))  # 900 pixels: under the limit
    report = batch_stylize(tmp_path / "contents", tmp_path / "styles", tmp_path / "out",
                           model=str(lite_file(tmp_path)), device="cpu", precision="fp32",
                           progress=False, max_whole_pixels=1000, size=0, style_size=0)
    assert not report.ok
    assert "the content is 44x36 (1584 pixels), run by the model in one piece; the limit is " \
           "1000" in next(iter(report.failed.values()))
