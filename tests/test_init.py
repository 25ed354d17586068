"""``--init``: the architecture read from the file started from, one line for a setting that
differs, growth kept (lite; cin's residual blocks), for ``train lite`` (with and without
``--teacher``), ``adain`` and ``cin``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import make_image
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import StylenormError, WeightsError
from stylenorm.hub.files import read_meta, save_weights
from stylenorm.models.cin import CINConfig, CINTransformer
from stylenorm.models.cin import grown_state as cin_grown_state
from stylenorm.models.decoder import AdaINDecoder, DecoderConfig
from stylenorm.models.lite import LiteConfig, LiteModel, grown_state
from stylenorm.training.warm_start import init_architecture, start_from

REPO = Path(__file__).resolve().parent.parent
SHIPPED_LITE = REPO / "weights" / "lite.safetensors"
runner = CliRunner()
DEFAULT_LITE = {"widths": (16, 32, 64), "res_blocks": 2, "style_mlp": 0, "style_deep": 0,
                "half_blocks": 0}


def lite_file(folder: Path, **config) -> Path:
    model = LiteModel(LiteConfig(**config))
    return save_weights(folder / "lite.safetensors", model.state_dict(), "lite",
                        model.config.to_dict())


@pytest.fixture
def small_lite(tmp_path) -> Path:
    return lite_file(tmp_path, widths=(4, 8, 8), res_blocks=2, style_size=32, style_mlp=8,
                     style_deep=4)


def test_settings_not_given_come_from_the_file(small_lite):
    got = init_architecture(str(small_lite), "lite", DEFAULT_LITE, given=())
    assert got == {"widths": (4, 8, 8), "res_blocks": 2, "style_mlp": 8, "style_deep": 4,
                   "half_blocks": 0}
    grown = init_architecture(str(small_lite), "lite", {**DEFAULT_LITE, "res_blocks": 4},
                              given=("res_blocks",), grow=True)
    assert grown == {**got, "res_blocks": 4}


@pytest.mark.parametrize("given, message", [
    ({"res_blocks": 1}, "res_blocks 2 in the file, 1 asked for"),
    ({"widths": (4, 8, 16)}, "widths 4,8,8 in the file, 4,8,16 asked for"),
    ({"style_mlp": 16}, "style_mlp 8 in the file, 16 asked for"),  # a StyleFilm does not grow
    ({"style_deep": 0}, "style_deep 4 in the file, 0 asked for"),  # nor shrink away
])
def test_a_given_setting_that_differs_is_named(small_lite, given, message):
    with pytest.raises(WeightsError, match=f"^--init {small_lite}: {message}$"):
        init_architecture(str(small_lite), "lite", {**DEFAULT_LITE, **given}, given=given,
                          grow=True)


def test_half_blocks_grow_and_never_shrink(tmp_path):
    path = lite_file(tmp_path, widths=(4, 8, 8), res_blocks=1, style_size=32, style_mlp=8,
                     half_blocks=2)
    asked = {"widths": (4, 8, 8), "res_blocks": 1, "style_mlp": 8, "style_deep": 0}
    more = {**asked, "half_blocks": 3}
    assert init_architecture(str(path), "lite", more, given=more, grow=True) == more
    fewer = {**asked, "half_blocks": 1}
    with pytest.raises(WeightsError, match="half_blocks 2 in the file, 1 asked for$"):
        init_architecture(str(path), "lite", fewer, given=fewer, grow=True)


def test_growth_only_where_the_model_grows(tmp_path):
    path = lite_file(tmp_path, widths=(4, 8, 8), res_blocks=1, style_size=32)
    asked = {"widths": (4, 8, 8), "res_blocks": 3, "style_mlp": 8, "style_deep": 4,
             "half_blocks": 2}
    assert init_architecture(str(path), "lite", asked, given=asked, grow=True) == asked
    with pytest.raises(WeightsError, match="res_blocks 1 in the file, 3 asked for"):
        init_architecture(str(path), "lite", asked, given=asked, grow=False)


def test_start_from_names_the_setting_not_a_tensor(small_lite):
    other = LiteModel(LiteConfig(widths=(4, 8, 8), res_blocks=1, style_size=32, style_mlp=8,
                                 style_deep=4))
    with pytest.raises(WeightsError, match="res_blocks 2 in the file, 1 asked for$"):
        start_from(other, str(small_lite), "lite", config=other.config.to_dict(),
                   complete=grown_state)
    deeper = LiteModel(LiteConfig(widths=(4, 8, 8), res_blocks=3, style_size=32, style_mlp=8,
                                  style_deep=4))
    start_from(deeper, str(small_lite), "lite", config=deeper.config.to_dict(),
               complete=grown_state)  # grows
    with pytest.raises(WeightsError, match="res_blocks 2 in the file, 3 asked for$"):
        start_from(deeper, str(small_lite), "lite",  # without completion nothing grows
                   config=deeper.config.to_dict())


def test_adain_and_cin_files(tmp_path):
    adain = save_weights(tmp_path / "adain.safetensors",
                         AdaINDecoder(DecoderConfig(norm="instance")).state_dict(), "adain",
                         {"decoder": {"norm": "instance"}, "encoder": {"family": "normalised"}})
    assert init_architecture(str(adain), "adain", {"norm": "none"}) == {"norm": "instance"}
    with pytest.raises(WeightsError, match="norm instance in the file, none asked for$"):
        start_from(AdaINDecoder(DecoderConfig()), str(adain), "adain",
                   config={"decoder": DecoderConfig().to_dict()})
    cin = CINTransformer(CINConfig(style_names=["a", "b"], widths=(4, 8, 8), res_blocks=1))
    path = save_weights(tmp_path / "cin.safetensors", cin.state_dict(), "cin",
                        cin.config.to_dict())
    asked = {"widths": (32, 64, 128), "res_blocks": 5}
    assert init_architecture(str(path), "cin", asked) == {"widths": (4, 8, 8), "res_blocks": 1}
    three = CINTransformer(CINConfig(style_names=["a", "b", "c"], widths=(4, 8, 8),
                                     res_blocks=1))
    with pytest.raises(WeightsError, match="style count 2 in the file, 3 asked for$"):
        start_from(three, str(path), "cin", config=three.config.to_dict())
    with pytest.raises(StylenormError, match="a 'cin' model, not 'lite'"):
        init_architecture(str(path), "lite", DEFAULT_LITE)


@pytest.fixture
def captured(monkeypatch, tmp_path):
    """Replace the trainers by recorders of the config and ``init`` they are called with."""
    import stylenorm.training.adain
    import stylenorm.training.cin
    import stylenorm.training.lite

    calls = []

    def record(config, **kwargs):
        calls.append((config, kwargs["init"]))
        raise StylenormError("recorded")  # stop before any training

    for module, name in ((stylenorm.training.lite, "train_lite"),
                         (stylenorm.training.adain, "train_adain"),
                         (stylenorm.training.cin, "train_cin")):
        monkeypatch.setattr(module, name, record)
    for folder in ("content", "style"):
        (tmp_path / folder).mkdir()
    return calls


def train(tmp_path, *args):
    return runner.invoke(app, ["train", *args, "--content", str(tmp_path / "content"),
                               "--out", str(tmp_path / "run")])


def test_the_readme_distillation_command_reads_the_shipped_architecture(tmp_path, captured):
    result = train(tmp_path, "lite", "--teacher", "adain", "--style", str(tmp_path / "style"),
                   "--init", str(SHIPPED_LITE), "--cache-pairs", "3000")
    assert result.output.strip() == "error: recorded", result.output
    config, init = captured[0]
    shipped = read_meta(SHIPPED_LITE).config
    assert (tuple(config.widths), config.res_blocks, config.style_mlp, config.style_deep) == (
        tuple(shipped["widths"]), shipped["res_blocks"], shipped["style_mlp"],
        shipped["style_deep"])
    assert init == str(SHIPPED_LITE)


def test_train_lite_init_grows_what_is_asked_and_names_what_differs(tmp_path, captured):
    result = train(tmp_path, "lite", "--style", str(tmp_path / "style"), "--init",
                   str(SHIPPED_LITE), "--res-blocks", "4")
    assert result.output.strip() == "error: recorded", result.output
    assert captured[0][0].res_blocks == 4 and captured[0][0].style_mlp == 256
    assert captured[0][0].half_blocks == 2  # not given: the file's
    result = train(tmp_path, "lite", "--style", str(tmp_path / "style"), "--init",
                   str(SHIPPED_LITE), "--half-blocks", "3")
    assert result.output.strip() == "error: recorded", result.output
    assert captured[1][0].half_blocks == 3 and captured[1][0].res_blocks == 3
    result = train(tmp_path, "lite", "--style", str(tmp_path / "style"), "--init",
                   str(SHIPPED_LITE), "--res-blocks", "2")
    assert result.exit_code == 1 and len(captured) == 2
    assert result.output.strip() == (f"error: --init {SHIPPED_LITE}: --res-blocks 3 in the "
                                     "file, 2 asked for")


def test_train_lite_init_must_exist(tmp_path, captured):
    result = train(tmp_path, "lite", "--style", str(tmp_path / "style"), "--init",
                   str(tmp_path / "absent.safetensors"))
    assert result.exit_code == 2 and "does not exist" in result.output and not captured
    assert len(result.output.strip().splitlines()) == 1


def test_train_adain_and_cin_read_their_init(tmp_path, captured):
    adain = save_weights(tmp_path / "adain.safetensors",
                         AdaINDecoder(DecoderConfig(norm="instance")).state_dict(), "adain",
                         {"decoder": {"norm": "instance"}, "encoder": {"family": "normalised"}})
    result = train(tmp_path, "adain", "--style", str(tmp_path / "style"), "--init", str(adain))
    assert result.output.strip() == "error: recorded" and captured[-1][0].norm == "instance"
    result = train(tmp_path, "adain", "--style", str(tmp_path / "style"), "--init", str(adain),
                   "--norm", "batch")
    assert result.output.strip() == (f"error: --init {adain}: --norm instance in the file, "
                                     "batch asked for")
    cin = CINTransformer(CINConfig(style_names=["a"], widths=(4, 8, 8), res_blocks=2))
    path = save_weights(tmp_path / "cin.safetensors", cin.state_dict(), "cin",
                        cin.config.to_dict())
    result = train(tmp_path, "cin", "--styles", str(tmp_path / "style"), "--init", str(path))
    assert result.output.strip() == "error: recorded"
    assert (tuple(captured[-1][0].widths), captured[-1][0].res_blocks) == ((4, 8, 8), 2)
    result = train(tmp_path, "cin", "--styles", str(tmp_path / "style"), "--init", str(path),
                   "--res-blocks", "5")  # grows
    assert result.output.strip() == "error: recorded" and captured[-1][0].res_blocks == 5
    result = train(tmp_path, "cin", "--styles", str(tmp_path / "style"), "--init", str(path),
                   "--res-blocks", "1")
    assert result.output.strip() == (f"error: --init {path}: --res-blocks 2 in the file, 1 "
                                     "asked for")
    result = train(tmp_path, "cin", "--styles", str(tmp_path / "style"), "--init", str(path),
                   "--widths", "8,8,8")
    assert result.output.strip() == (f"error: --init {path}: --widths 4,8,8 in the file, "
                                     "8,8,8 asked for")


def test_a_cin_model_grown_by_residual_blocks_computes_what_it_did_and_then_learns(tmp_path):
    torch.manual_seed(0)
    small = CINTransformer(CINConfig(style_names=["a", "b"], widths=(4, 8, 8), res_blocks=1))
    for parameter in small.parameters():  # trained-looking scales and shifts, not ones/zeros
        parameter.data.add_(0.3 * torch.randn_like(parameter))
    path = save_weights(tmp_path / "cin.safetensors", small.state_dict(), "cin",
                        small.config.to_dict())
    big = CINTransformer(CINConfig(style_names=["a", "b"], widths=(4, 8, 8), res_blocks=3))
    start_from(big, str(path), "cin", config=big.config.to_dict(), complete=cin_grown_state)
    images = torch.rand(2, 3, 16, 20)
    for index in (0, 1):
        weights = small.weights_for(index)
        assert torch.allclose(big(images, weights), small(images, weights), atol=1e-6)
    new = big.res[2].second.norm
    assert not new.gamma.any() and not new.beta.any()
    big(images, big.weights_for(1)).mean().backward()
    assert new.gamma.grad[1].abs().sum() > 0 and not new.gamma.grad[0].any()


def adain_file(path: Path, **decoder) -> Path:
    model = AdaINDecoder(DecoderConfig(**decoder))
    return save_weights(path, model.state_dict(), "adain",
                        {"decoder": model.config.to_dict(), "encoder": {"family": "normalised"}})


def test_an_adain_decoder_without_norm_affine_maps_is_refused_in_one_line(random_store,
                                                                          tmp_path):
    plain = adain_file(tmp_path / "plain.safetensors", norm="instance", affine=False)
    wanted = (f"--init {plain}: norm affine False in the file, True asked for (a decoder "
              "trained here always learns its norms' scale and shift)")
    with pytest.raises(WeightsError) as raised:
        start_from(AdaINDecoder(DecoderConfig(norm="instance")), str(plain), "adain",
                   config={"decoder": DecoderConfig(norm="instance").to_dict()})
    assert str(raised.value) == wanted
    for folder in ("content", "style"):
        for i in range(2):
            make_image(tmp_path / folder / f"{i}.png", (40, 40), seed=i)
    result = runner.invoke(app, [
        "train", "adain", "--content", str(tmp_path / "content"), "--style",
        str(tmp_path / "style"), "--init", str(plain), "--out", str(tmp_path / "run"),
        "--iterations", "1", "--crop-size", "32", "--batch-size", "2", "--no-progress"])
    assert result.exit_code == 1 and result.output.strip() == f"error: {wanted}"
    assert not (tmp_path / "run").exists()
    # without norm layers there is nothing affine: such a file starts a run as any other
    bare = adain_file(tmp_path / "bare.safetensors", affine=False)
    assert init_architecture(str(bare), "adain", {"norm": "none"}) == {"norm": "none"}
    start_from(AdaINDecoder(DecoderConfig()), str(bare), "adain",
               config={"decoder": DecoderConfig().to_dict()})
