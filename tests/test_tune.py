"""`stylenorm tune`: one style over the user's photos, installed under a name; refusals before
any work, Ctrl-C keeps what was learnt, and the tuned model is an ordinary lite model."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_image
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import StylenormError
from stylenorm.hub.files import read_meta, save_weights
from stylenorm.hub.zoo import load_model
from stylenorm.models.lite import LiteConfig, LiteModel
from stylenorm.training.tune import (
    TuneConfig,
    _Tuner,
    scheduled_lr,
    steered_style_weight,
    tune,
)
from stylenorm.training.tune_inputs import PhotoCrops, check_inputs, spread


@pytest.fixture
def setting(random_store, tmp_path, one_thread):
    """A tiny lite model to start from, 9 photos and a style image."""
    torch.manual_seed(0)
    model = LiteModel(LiteConfig(widths=(4, 8, 8), res_blocks=1, style_size=32))
    init = save_weights(tmp_path / "tiny.safetensors", model.state_dict(), "lite",
                        model.config.to_dict())
    for i in range(9):
        make_image(tmp_path / "photos" / f"{i}.png", (56, 48), seed=i)
    style = make_image(tmp_path / "style.png", (64, 64), seed=99)
    return tmp_path, init, style


def config_for(tmp_path, init, style, **changes) -> TuneConfig:
    values = dict(style=str(style), content=str(tmp_path / "photos"), name="mine",
                  init=str(init), minutes=5, steps=3, batch_size=2, crop_size=32,
                  content_size=40, style_size=48, val_count=2, precision="fp32")
    return TuneConfig(**{**values, **changes})


def test_tune_installs_a_lite_model_with_its_provenance(setting):
    tmp_path, init, style = setting
    result = tune(config_for(tmp_path, init, style), progress=False)
    assert result.iterations == 3 and not result.stopped
    assert result.path == setting[0] / "home" / "mine.safetensors"
    meta = read_meta(result.path)
    assert meta.kind == "lite"
    prov = meta.provenance
    assert prov["trained_with"] == "stylenorm tune" and prov["iterations"] == 3
    assert prov["style_image"] == "style.png" and len(prov["style_sha256"]) == 64
    assert prov["teacher"] == "adain" and len(prov["teacher_sha256"]) == 64
    assert prov["content_images"] == 7 and prov["held_out_photos"] == 2
    assert not prov["held_out_are_training_photos"]
    assert prov["processor"] and prov["validation"]["style_ratio"] > 0
    checks = prov["checks"]  # before the first step and after the last, the time between too long
    assert checks["fields"][0] == "step" and [row[0] for row in checks["rows"]] == [0, 3]
    assert checks["rows"][-1][2] == pytest.approx(prov["validation"]["style_ratio"], abs=1e-4)
    # An ordinary lite model: by name, with any style, and alpha.
    model = load_model("mine")
    content, other = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 36, 36)
    with torch.no_grad():
        out = model(content, model.style_code(other), alpha=0.5)
    assert out.shape == content.shape and torch.isfinite(out).all()


def test_the_style_weight_is_steered_toward_the_style_target():
    assert steered_style_weight(5.0, 5.0, style_ratio=1.2, target=1.0) == pytest.approx(6.0)
    assert steered_style_weight(6.0, 5.0, style_ratio=0.9, target=1.0) == pytest.approx(5.4)
    assert steered_style_weight(5.0, 5.0, style_ratio=1.2, target=1.2) == pytest.approx(5.0)
    assert steered_style_weight(18.0, 5.0, style_ratio=3.0, target=1.0) == 20.0  # 4x at most
    assert steered_style_weight(1.5, 5.0, style_ratio=0.1, target=1.0) == 1.25  # a 4th at least
    assert steered_style_weight(7.0, 5.0, style_ratio=3.0, target=0.0) == 7.0  # off


@pytest.mark.parametrize(("target", "end"), [(1000.0, 1.25), (0.0, 5.0)])
def test_each_check_steers_the_style_weight_and_the_provenance_keeps_it(setting, target, end):
    """Far below any reachable ratio, the target drives the weight to its floor in three
    checks (one after every step); with 0 it stays where it started."""
    tmp_path, init, style = setting
    result = tune(config_for(tmp_path, init, style, style_target=target, val_every_s=0.0),
                  progress=False)
    prov = read_meta(result.path).provenance
    assert prov["style_weight_at_the_end"] == end
    assert prov["settings"]["style_target"] == target
    assert [row[0] for row in result.checks] == [0, 1, 2, 3, 3]  # before, each step, after
    assert result.checks[-1][4] == end and prov["checks"]["rows"] == result.checks


def test_the_cosine_schedule_falls_from_the_rate_to_nothing_over_the_budget():
    assert scheduled_lr(3e-4, 0.0, "cosine") == pytest.approx(3e-4)
    assert scheduled_lr(3e-4, 0.5, "cosine") == pytest.approx(1.5e-4)
    assert scheduled_lr(3e-4, 1.0, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert scheduled_lr(3e-4, 1.7, "cosine") == pytest.approx(0.0, abs=1e-12)  # past the end
    assert scheduled_lr(3e-4, 0.9, "constant") == 3e-4


@pytest.mark.parametrize(("schedule", "last"), [
    ("cosine", 3e-3 * (1 + math.cos(math.pi * 3 / 4)) / 2), ("constant", 3e-3)])
def test_each_step_takes_the_scheduled_rate(setting, monkeypatch, schedule, last):
    """Four steps: the last runs with 3/4 of the steps done."""
    tmp_path, init, style = setting
    rates = []
    real = _Tuner.loss

    def recording(self, content, wanted):
        rates.append(self.optimizer.param_groups[0]["lr"])
        return real(self, content, wanted)

    monkeypatch.setattr(_Tuner, "loss", recording)
    tune(config_for(tmp_path, init, style, steps=4, lr=3e-3, lr_schedule=schedule,
                    val_every_s=1e9), progress=False)
    assert len(rates) == 4 and rates[-1] == pytest.approx(last, rel=1e-6)
    assert rates[0] == pytest.approx(3e-3)


def test_an_unknown_schedule_is_refused(setting):
    tmp_path, init, style = setting
    with pytest.raises(StylenormError, match="--lr-schedule must be one of constant, cosine"):
        config_for(tmp_path, init, style, lr_schedule="linear").validate()


@pytest.mark.parametrize("ema", [0.9, 0.0])
def test_the_installed_weights_are_the_steps_moving_average(setting, monkeypatch, ema):
    """avg <- d * avg + (1 - d) * w after each step, d = min(ema, (1 + t) / (10 + t)), from
    the starting weights; with ema 0 the last step's weights."""
    tmp_path, init, style = setting
    seen, real = [], _Tuner.step

    def recording(self, batch, done=0.0):
        if not seen:
            seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        real(self, batch, done)
        seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})

    monkeypatch.setattr(_Tuner, "step", recording)
    result = tune(config_for(tmp_path, init, style, steps=8, lr=3e-3, ema=ema,
                             val_every_s=1e9), progress=False)
    installed = load_model(str(result.path)).state_dict()  # stored in float16
    keys = [k for k, v in seen[0].items() if v.is_floating_point()]
    wanted = {k: seen[0][k].clone() for k in keys}
    for t, weights in enumerate(seen[1:]):
        d = min(ema, (1 + t) / (10 + t))
        wanted = {k: d * wanted[k] + (1 - d) * weights[k] for k in keys}
    for key in keys:
        assert torch.allclose(installed[key], wanted[key], atol=1e-3), key
    if ema:  # and not the last step's: the average lags it by far more than float16's error
        got, average, last = (torch.cat([w[k].flatten() for k in keys])
                              for w in (installed, wanted, seen[-1]))
        assert (got - average).norm() < 0.2 * (got - last).norm()


def test_an_ema_of_one_or_more_is_refused(setting):
    tmp_path, init, style = setting
    with pytest.raises(StylenormError, match="--ema must be in"):
        config_for(tmp_path, init, style, ema=1.0).validate()


def test_tuning_lowers_the_loss_it_is_given(setting):
    """Only the style term, 40 steps at a high rate: the held-out style loss falls."""
    tmp_path, init, style = setting
    result = tune(config_for(tmp_path, init, style, steps=40, lr=3e-3, pixel_weight=0,
                             feature_weight=0, adain_weight=0, identity_weight=0,
                             val_every_s=1e9), progress=False)
    assert result.figures["style_loss"] < 0.7 * result.first_figures["style_loss"]


def test_the_deep_feature_term_pulls_toward_the_teachers_relu4_1(setting):
    """With only that term, steps on one batch lower it: it is there, and it has a gradient."""
    tmp_path, init, style = setting
    config = config_for(tmp_path, init, style, lr=3e-3, pixel_weight=0, feature_weight=0,
                        style_weight=0, adain_weight=0, identity_weight=0,
                        deep_feature_weight=1)
    style_image, _, photos, _, student, _ = check_inputs(config)
    tuner = _Tuner(config, style_image, photos, student, torch.device("cpu"), torch.float32)
    batch = tuner.crops.batch(2)
    with torch.no_grad():
        first = float(tuner.loss(*batch))
    for _ in range(20):
        tuner.step(batch)
    with torch.no_grad():
        assert 0 < float(tuner.loss(*batch)) < 0.5 * first


def test_crops_come_with_the_same_window_of_the_whole_photos_rendering(setting):
    """Each crop's target is its window (and mirror) of the rendering of the whole photo, and
    each photo is decoded and rendered once however often it is drawn."""
    tmp_path, _, _ = setting
    rendered = []

    def render(photo):
        rendered.append(photo.shape)
        return 1 - photo  # pointwise: a crop of it is the crop's own rendering

    photos = sorted((tmp_path / "photos").glob("*.png"))
    crops = PhotoCrops(photos, 40, 24, seed=0, render=render, pool=4)
    for _ in range(10):
        content, wanted = crops.batch(3)
        assert content.shape == wanted.shape == (3, 3, 24, 24)
        torch.testing.assert_close(wanted, 1 - content, atol=2e-3, rtol=0)
    assert len(rendered) == len(crops.kept) == 4  # the pool, each once
    assert all(min(shape[-2:]) == 40 for shape in rendered)  # the whole photo at the size


def test_spread_takes_at_most_count_over_the_whole_list():
    assert spread(list(range(10)), 20) == list(range(10))
    assert spread(list(range(100)), 4) == [0, 25, 50, 75]
    assert spread(list(range(100)), 4, offset=0.5) == [12, 37, 62, 87]


def test_ctrl_c_installs_what_was_learnt(setting, monkeypatch):
    tmp_path, init, style = setting
    drawn = []
    real = PhotoCrops.batch

    def interrupted(self, count):
        drawn.append(count)
        if len(drawn) == 3:
            raise KeyboardInterrupt
        return real(self, count)

    monkeypatch.setattr(PhotoCrops, "batch", interrupted)
    result = tune(config_for(tmp_path, init, style, steps=10), progress=False)
    assert result.stopped and result.iterations == 2
    assert read_meta(result.path).provenance["stopped_early"] is True


def test_cli_reports_and_refuses_in_one_line_before_any_work(setting):
    tmp_path, init, style = setting
    runner = CliRunner()
    base = ["tune", str(style), "--content", str(tmp_path / "photos"), "--init", str(init),
            "--steps", "1", "--no-progress", "--threads", "1", "--size", "40", "--style-size",
            "48", "--crop-size", "32", "--precision", "fp32"]
    done = runner.invoke(app, [*base, "--name", "mine", "--val-count", "3"])
    assert done.exit_code == 0, done.output
    assert "installed mine" in done.output and "--model mine" in done.output
    assert read_meta(tmp_path / "home" / "mine.safetensors").provenance["held_out_photos"] == 3
    assert "note:" not in done.output  # 56 x 48 photos at --size 40
    soft = runner.invoke(app, [*base[:-8], "--size", "52", "--style-size", "48", "--crop-size",
                               "32", "--precision", "fp32", "--name", "soft"])
    assert soft.exit_code == 0, soft.output
    assert "note: 9 of the 9 photos in" in soft.output and "--size 52 px" in soft.output
    # Used by name like any lite model: two styles under a mask, alpha.
    from PIL import Image

    Image.new("L", (160, 136), 255).save(tmp_path / "mask.png")
    big = make_image(tmp_path / "big.png", (160, 136), seed=5)
    used = runner.invoke(app, ["stylize", str(big), str(style),
                               str(tmp_path / "photos" / "1.png"), "--mask",
                               str(tmp_path / "mask.png"), "--model", "mine", "--alpha", "0.7",
                               "--size", "0", "--style-size", "48",
                               "--threads", "1", "-o", str(tmp_path / "out.png")])
    assert used.exit_code == 0, used.output
    assert Image.open(tmp_path / "out.png").size == (160, 136)

    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    (tmp_path / "empty").mkdir()
    cases = {
        "bad.jpg": ["tune", str(tmp_path / "bad.jpg"), *base[2:], "--name", "x"],
        "no images found": [*base[:2], "--content", str(tmp_path / "empty"), *base[4:],
                            "--name", "x"],
        "already installed|is installed": [*base, "--name", "mine"],
        "shipped with stylenorm": [*base, "--name", "lite"],
        "'nope'": [*base, "--name", "y", "--teacher", "nope"],
    }
    for expected, args in cases.items():
        result = runner.invoke(app, args)
        assert result.exit_code != 0, (expected, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output
        assert any(e in lines[0] for e in expected.split("|")), (expected, lines[0])
    assert not any((tmp_path / "home" / f"{n}.safetensors").exists() for n in "xy")


def test_a_photo_that_opens_but_does_not_decode_is_left_out(setting):
    tmp_path, init, style = setting
    whole = (tmp_path / "photos" / "0.png").read_bytes()
    for i in range(9):  # every training photo but one cut short: the header opens, pixels do not
        if i not in (1, 4, 7):
            (tmp_path / "photos" / f"{i}.png").write_bytes(whole[: len(whole) // 3])
    result = tune(config_for(tmp_path, init, style, steps=4, val_count=1), progress=False)
    assert result.iterations == 4


def test_the_command_lines_defaults_are_tune_configs():
    """`stylenorm tune` spells its defaults out (the command line does not import torch to
    start); they must be TuneConfig's, so that the CLI and Python tune alike."""
    import inspect

    from stylenorm.cli.tune import tune_config, tune_options

    options = {name: p.default for name, p in inspect.signature(tune_options).parameters.items()}
    from_cli = tune_config("s.png", "photos", "n", options)
    assert from_cli == TuneConfig(style="s.png", content="photos", name="n")
