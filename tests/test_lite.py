"""The lite model: size, code algebra, masks, alpha, save/load, stylize and a tiny training run."""

from __future__ import annotations

import pytest
import torch
from conftest import make_image

from stylenorm.errors import WeightsError
from stylenorm.hub.files import save_weights
from stylenorm.hub.zoo import load_model
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.models.lite import LiteCode, LiteConfig, LiteModel, grown_state
from stylenorm.training.lite import LiteTrainConfig, augment_styles, train_lite


@pytest.fixture(params=[(0, 0, 0), (16, 0, 0), (16, 12, 0), (16, 12, 2)],
                ids=["plain", "style_mlp", "style_deep", "half_blocks"])
def model(request):
    torch.manual_seed(0)
    mlp, deep, half = request.param
    config = LiteConfig(widths=(8, 16, 32), res_blocks=1, style_size=32, style_mlp=mlp,
                        style_deep=deep, half_blocks=half)
    net = LiteModel(config).eval()
    with torch.no_grad():  # non-trivial modulators, as after training
        for mod in net.modulators:
            mod.linear.weight.add_(0.05 * torch.randn_like(mod.linear.weight))
        if net.style_film is not None:
            net.style_film.out.weight.normal_(0, 0.05)
        if half:  # blocks at 1/2 that do something, and a FiLM on them
            for block in net.decoder.half_res:
                block.conv2.weight.normal_(0, 0.05)
            net.style_film.half_out.weight.normal_(0, 0.05)
    return net


def test_default_is_under_a_million_parameters():
    assert sum(p.numel() for p in LiteModel().parameters()) < 1_000_000


def test_the_shipped_lite_model_keeps_the_two_million_parameter_bar():
    from pathlib import Path

    model = load_model(str(Path(__file__).parents[1] / "weights" / "lite.safetensors"))
    assert sum(p.numel() for p in model.parameters()) <= 2_000_000


def test_a_new_style_film_changes_nothing_until_it_learns():
    torch.manual_seed(1)
    plain = LiteModel(LiteConfig(widths=(8, 16, 32), res_blocks=2, style_size=32)).eval()
    filmed = LiteModel(LiteConfig(widths=(8, 16, 32), res_blocks=2, style_size=32, style_mlp=8))
    filmed.load_state_dict(grown_state(filmed, plain.state_dict()))
    content, style = torch.rand(1, 3, 28, 36), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = plain(content, plain.style_code(style))
        torch.testing.assert_close(filmed(content, filmed.style_code(style)), expected)
        filmed.style_film.out.bias.fill_(0.1)
        assert not torch.allclose(filmed(content, filmed.style_code(style)), expected)


def test_shapes_for_odd_sizes(model):
    code = model.style_code(torch.rand(1, 3, 40, 50))
    deep = [model.config.style_deep] if model.config.style_deep else []
    assert [m.shape[1] for m in code.means] == [8, 16, 32, *deep]
    assert model(torch.rand(1, 3, 37, 45), code).shape[-2:] >= (37, 45)


def test_mixing_codes_mixes_modulations(model):
    content = torch.rand(1, 3, 32, 32)
    code = model.style_code(torch.rand(2, 3, 32, 32))
    feat = model.content_features(content)
    mixed = model.modulators[2](*[(v * torch.tensor([0.25, 0.75]).view(2, 1, 1, 1)).sum(0, True)
                                  for v in (code.means[2], code.stds[2])])
    separate = [model.modulators[2](code.means[2][i:i + 1], code.stds[2][i:i + 1])
                for i in range(2)]
    for k in range(2):
        assert torch.allclose(mixed[k], 0.25 * separate[0][k] + 0.75 * separate[1][k], atol=1e-5)
    assert model.decode(feat, code.mix(torch.tensor([1.0, 3.0]))).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("size", [(32, 32), (30, 37)])  # also sizes the decoder pads
def test_alpha_zero_returns_the_content_and_alpha_moves_smoothly(model, size):
    content, style = torch.rand(1, 3, *size), torch.rand(1, 3, 32, 32)
    code = model.style_code(style)
    with torch.no_grad():
        full = model(content, code)[..., : size[0], : size[1]]
        outs = {a: model(content, code, alpha=a)[..., : size[0], : size[1]]
                for a in (0.0, 0.25, 0.5, 0.75)}
        own = model(content, model.style_code(content))[..., : size[0], : size[1]]
    torch.testing.assert_close(outs[0.0], content, atol=1e-5, rtol=0)
    assert not torch.allclose(own, content, atol=1e-2)  # the decoder alone does not rebuild it
    # what alpha < 1 adds back is the content's lost detail, (1 - alpha) of it
    lerped = model(content, code.lerp(model.style_code(content), 0.5))[..., : size[0], : size[1]]
    torch.testing.assert_close(outs[0.5], lerped + 0.5 * (content - own), atol=1e-5, rtol=0)
    distances = [float((outs[a] - content).abs().mean()) for a in (0.0, 0.25, 0.5, 0.75)]
    distances.append(float((full - content).abs().mean()))
    assert distances == sorted(distances) and distances[0] < 1e-6


def test_alpha_in_a_batch_blends_each_content_with_its_own_code(model):
    contents, style = torch.rand(3, 3, 32, 32), torch.rand(1, 3, 32, 32)
    code = model.style_code(style)
    batched = model(contents, code, alpha=0.6)
    for i in range(3):
        alone = model(contents[i : i + 1], code, alpha=0.6)
        assert torch.allclose(batched[i : i + 1], alone, atol=1e-5)


def test_mask_selects_style_per_region(model):
    content = torch.rand(1, 3, 32, 32)
    code = model.style_code(torch.rand(2, 3, 32, 32))
    mask = torch.ones(1, 1, 32, 32)
    assert torch.allclose(model(content, code, mask=mask), model(content, code.select(0)),
                          atol=1e-5)
    assert torch.allclose(model(content, code, mask=mask * 0), model(content, code.select(1)),
                          atol=1e-5)


def test_code_cat_and_select_round_trip(model):
    code = model.style_code(torch.rand(3, 3, 32, 32))
    again = LiteCode.cat([code.select(i) for i in range(3)])
    assert all(torch.equal(a, b) for a, b in zip(code.means, again.means, strict=True))


def test_save_load_and_stylize(model, tmp_path):
    path = save_weights(tmp_path / "lite.safetensors", model.state_dict(), "lite",
                        model.config.to_dict())
    loaded = load_model(path)
    x, s = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(x, loaded.style_code(s)), model(x, model.style_code(s)))
    stylizer = Stylizer(str(path), device="cpu")
    out = stylizer.stylize_tensors(x, [s, s], StylizeOptions(style_weights=[1, 1], alpha=0.5))
    assert out.shape == (1, 3, 32, 32) and out.min() >= 0 and out.max() <= 1


def test_augment_is_deterministic_and_new():
    styles = torch.rand(4, 3, 16, 16)
    a = augment_styles(styles, torch.Generator().manual_seed(1))
    b = augment_styles(styles, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == styles.shape
    assert torch.equal(styles, styles.clone())


@pytest.mark.slow
def test_tiny_training_run_resumes_exactly(random_store, tmp_path):
    for i in range(3):
        make_image(tmp_path / "c" / f"{i}.png", (48, 40), seed=i)
        make_image(tmp_path / "s" / f"{i}.png", (40, 40), seed=10 + i)
    common = dict(content=str(tmp_path / "c"), style=str(tmp_path / "s"), batch_size=2,
                  crop_size=32, widths=(4, 8, 8), res_blocks=1, log_every=1,
                  checkpoint_every=2, sample_every=0, precision="fp32", num_workers=0)
    full = train_lite(LiteTrainConfig(out=str(tmp_path / "a"), iterations=4, **common),
                      progress=False)
    train_lite(LiteTrainConfig(out=str(tmp_path / "b"), iterations=2, **common), progress=False)
    resumed = train_lite(LiteTrainConfig(out=str(tmp_path / "b"), iterations=4, **common),
                         resume=True, progress=False)
    assert resumed.final_losses == full.final_losses
    model = load_model(resumed.model_path)
    assert model.kind == "lite"
    assert {"identity", "style", "content"} <= set(full.final_losses)


@pytest.mark.parametrize("size", [(40, 52), pytest.param((260, 270), marks=pytest.mark.slow)])
# small maps pad, large ones fix the frame
def test_fast_path_equals_the_plain_model(model, size):
    """The lite model's one definition, fused (inference) and plain (reference)."""
    import copy

    fast = copy.deepcopy(model).use_fast_path()
    assert fast.decoder.fused and not model.decoder.fused
    torch.manual_seed(5)
    content = torch.rand(1, 3, *size).contiguous(memory_format=torch.channels_last)
    code = model.style_code(torch.rand(2, 3, 48, 48))
    mask = (torch.rand(1, 1, *size) > 0.5).float()
    with torch.inference_mode():
        for args in ((code.select(0),), (code.select(1), 0.4), (code, 1.0, mask)):
            torch.testing.assert_close(fast(content, *args), model(content, *args),
                                       atol=2e-5, rtol=1e-4)
        feat = model.content_features(content)
        for ours, theirs in zip(fast.content_stats(feat), model.content_stats(feat), strict=True):
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
        features = fast.encode_content(content, 0.4)
        torch.testing.assert_close(fast.decode_features(features, code.select(1), 0.4),
                                   model(content, code.select(1), 0.4), atol=2e-5, rtol=1e-4)


def test_init_grows_a_shallower_model_without_changing_its_output(model, tmp_path):
    from stylenorm.training.warm_start import start_from

    path = save_weights(tmp_path / "small.safetensors", model.state_dict(), "lite",
                        model.config.to_dict())
    deeper = LiteModel(LiteConfig(widths=(8, 16, 32), res_blocks=3, style_size=32, style_mlp=16,
                                  style_deep=12, half_blocks=3)).eval()  # also grows a StyleFilm
    # or its rows, a deep style level, and blocks at the decoder's 1/2 level
    start_from(deeper, str(path), "lite", config=deeper.config.to_dict(), complete=grown_state)
    content, style = torch.rand(1, 3, 36, 44), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(content, model.style_code(style))
        assert torch.allclose(deeper(content, deeper.style_code(style)), expected, atol=1e-6)
    assert deeper.decoder.res[2].conv1.weight.abs().sum() > 0  # new blocks can learn
    assert deeper.style_film.hidden.weight.abs().sum() > 0
    assert deeper.style_encoder.deep[2].conv1.weight.abs().sum() > 0
    assert deeper.decoder.half_res[2].conv1.weight.abs().sum() > 0
    wider = LiteModel(LiteConfig(widths=(8, 16, 40), res_blocks=1, style_size=32,
                                 style_mlp=model.config.style_mlp,
                                 style_deep=model.config.style_deep,
                                 half_blocks=model.config.half_blocks))
    with pytest.raises(WeightsError, match="widths 8,16,32 in the file, 8,16,40 asked for$"):
        start_from(wider, str(path), "lite", config=wider.config.to_dict(),
                   complete=grown_state)


def test_the_lost_detail_is_decoded_once_per_content_not_per_style(model, monkeypatch):
    content = torch.rand(2, 3, 32, 32)
    codes = [model.style_code(torch.rand(2, 3, 32, 32)) for _ in range(3)]
    calls = []
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda *a, **k: calls.append(1) or decode(*a, **k))
    with torch.no_grad():
        feats = model.encode_content(content, 0.5)
        assert len(calls) == 1 and feats.detail.shape == content.shape
        outs = [model.decode_features(feats, code, 0.5) for code in codes]
    assert len(calls) == 1 + len(codes)  # one decode per style on top of the one rebuild
    assert all(out.shape == content.shape for out in outs)
