"""The multi-style CIN network: module, save/load, training, extending, stylizing, CLI."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from conftest import make_image
from PIL import Image
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import StylenormError
from stylenorm.hub.files import read_meta, save_weights
from stylenorm.hub.zoo import load_model
from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.models.cin import CINConfig, CINTransformer
from stylenorm.training.cin import CINTrainConfig, train_cin

SMALL = {"widths": (4, 8, 8), "res_blocks": 1}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def folders(tmp_path):
    for i in range(3):
        make_image(tmp_path / "content" / f"c{i}.png", (40 + 4 * i, 36), seed=i)
    for name, seed in (("b_waves", 10), ("a_dots", 11)):
        make_image(tmp_path / "styles" / f"{name}.jpg", (36, 40), seed=seed)
    make_image(tmp_path / "more" / "c_stripes.png", (36, 36), seed=12)
    return tmp_path


def tiny(root, **overrides) -> CINTrainConfig:
    values = dict(content=str(root / "content"), styles=str(root / "styles"),
                  out=str(root / "run"), iterations=2, batch_size=2, crop_size=32,
                  style_size=32, checkpoint_every=2, sample_every=2, log_every=1,
                  num_workers=0, precision="fp32", **SMALL)
    values.update(overrides)
    return CINTrainConfig(**values)


def test_one_hot_selects_and_mixes_interpolate():
    net = CINTransformer(CINConfig(["a", "b", "c"], **SMALL)).eval()
    for layer in net.cin_layers():  # make the styles differ
        torch.nn.init.normal_(layer.gamma, 1.0, 0.3)
        torch.nn.init.normal_(layer.beta, 0.0, 0.3)
    x = torch.rand(2, 3, 16, 20)
    out = net(x, net.weights_for(1))
    assert out.shape == x.shape and ((out >= 0) & (out <= 1)).all()
    assert torch.allclose(net(x, net.weights_for(weights=[0, 2, 0])), out)
    per_sample = net(x, torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]))
    assert torch.allclose(per_sample[0], net(x[:1], net.weights_for(0))[0], atol=1e-6)
    assert not torch.allclose(net(x, net.weights_for(0)), out)


def test_weights_for_and_shapes_give_clear_errors():
    net = CINTransformer(CINConfig(["a", "b"], **SMALL))
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        net.weights_for(2)
    with pytest.raises(ValueError, match="2 numbers >= 0"):
        net.weights_for(weights=[1, 2, 3])
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.rand(1, 3, 10, 12), net.weights_for(0))
    assert net.stylize(torch.rand(1, 3, 10, 13), net.weights_for(0)).shape == (1, 3, 10, 13)


def test_add_styles_leaves_old_styles_unchanged():
    net = CINTransformer(CINConfig(["a", "b"], **SMALL)).eval()
    x = torch.rand(1, 3, 16, 16)
    before = [net(x, net.weights_for(k)) for k in range(2)]
    net.add_styles(["c"])
    assert net.num_styles == 3 and net.config.style_names == ["a", "b", "c"]
    for k in range(2):
        assert torch.equal(net(x, net.weights_for(k)), before[k])


def test_save_load_round_trip(tmp_path):
    net = CINTransformer(CINConfig(["a", "b"], **SMALL)).eval()
    path = save_weights(tmp_path / "cin.safetensors", net.state_dict(), "cin",
                        net.config.to_dict())
    loaded = load_model(path)
    x = torch.rand(1, 3, 16, 16)
    assert loaded.kind == "cin" and loaded.config.style_names == ["a", "b"]
    assert torch.equal(loaded(x, loaded.weights_for(1)), net(x, net.weights_for(1)))


def test_train_then_stylize_by_index_and_mix(random_store, folders):
    result = train_cin(tiny(folders), progress=False)
    meta = read_meta(result.model_path)
    assert meta.kind == "cin" and meta.config["style_names"] == ["a_dots", "b_waves"]
    assert meta.provenance["style_names"] == ["a_dots", "b_waves"]
    assert (folders / "run" / "samples" / "iter_0000002.jpg").is_file()
    assert "0: a_dots, 1: b_waves" in result.report
    stylizer = Stylizer(result.model_path, device="cpu")
    content = torch.rand(1, 3, 22, 30)
    one = stylizer.stylize_tensors(content, [], StylizeOptions(style_index=1))
    assert one.shape == (1, 3, 22, 30)
    mixed = stylizer.stylize_tensors(content, [], StylizeOptions(style_weights=[0.0, 3.0]))
    assert torch.allclose(one, mixed, atol=1e-6)
    for options, message in ((StylizeOptions(), "exactly one of style_index"),
                             (StylizeOptions(style_index=5), r"in \[0, 2\)"),
                             (StylizeOptions(style_index=0, preserve_color=True), "AdaIN")):
        with pytest.raises(StylenormError, match=message):
            stylizer.stylize_tensors(content, [], options)
    with pytest.raises(StylenormError, match="own styles"):
        stylizer.stylize_tensors(content, [torch.rand(1, 3, 16, 16)], StylizeOptions())


def test_an_unreadable_style_image_is_reported_and_skipped(random_store, folders, caplog):
    (folders / "styles" / "c_broken.png").write_bytes(b"not an image")
    with caplog.at_level(logging.WARNING, logger="stylenorm"):
        result = train_cin(tiny(folders, sample_every=0), progress=False)
    assert read_meta(result.model_path).config["style_names"] == ["a_dots", "b_waves"]
    hits = [r.getMessage() for r in caplog.records if "c_broken.png" in r.getMessage()]
    assert len(hits) == 1 and "skipping unreadable image" in hits[0]


def test_extend_trains_only_new_rows(random_store, folders):
    base = train_cin(tiny(folders), progress=False)
    extended = train_cin(tiny(folders, styles=str(folders / "more"), out=str(folders / "ext"),
                              extend=str(base.model_path), iterations=3, lr=1e-2),
                         progress=False)
    old, new = load_model(base.model_path), load_model(extended.model_path)
    assert new.config.style_names == ["a_dots", "b_waves", "c_stripes"]
    before, after = old.state_dict(), new.state_dict()
    for key, value in before.items():
        if key.endswith((".gamma", ".beta")):
            assert torch.equal(after[key][:2], value)
        else:
            assert torch.equal(after[key], value), key
    changed = [k for k in before if k.endswith(".gamma")
               and not torch.allclose(after[k][2], before[k].mean(0))]
    assert changed, "the new style's rows did not train"
    x = torch.rand(1, 3, 20, 24)
    for k in range(2):
        assert torch.equal(new.stylize(x, new.weights_for(k)), old.stylize(x, old.weights_for(k)))
    assert read_meta(extended.model_path).provenance["trained_styles"] == [2]


def test_refine_trains_only_the_named_styles_rows(random_store, folders):
    base = train_cin(tiny(folders, out=str(folders / "base"), sample_every=0), progress=False)
    refined = train_cin(tiny(folders, out=str(folders / "refined"), refine=("b_waves",),
                             teacher="adain", iterations=3, lr=1e-2, sample_every=0),
                        progress=False, init=str(base.model_path))
    old, new = load_model(base.model_path), load_model(refined.model_path)
    assert new.config.style_names == ["a_dots", "b_waves"]
    before, after = old.state_dict(), new.state_dict()
    for key, value in before.items():
        if key.endswith((".gamma", ".beta")):
            assert torch.equal(after[key][0], value[0]), key
        else:
            assert torch.equal(after[key], value), key
    assert any(not torch.equal(after[k][1], before[k][1]) for k in before
               if k.endswith(".gamma")), "the refined style's rows did not train"
    x = torch.rand(1, 3, 20, 24)
    assert torch.equal(new.stylize(x, new.weights_for(0)), old.stylize(x, old.weights_for(0)))
    assert read_meta(refined.model_path).provenance["trained_styles"] == [1]


def test_favour_draws_the_named_styles_more_often_and_checks_its_names(random_store,
                                                                      folders):
    from stylenorm.hub.zoo import load_frozen_encoder
    from stylenorm.training.cin import CINTask, StyleTargets

    encoder, _ = load_frozen_encoder("vgg19-normalised")
    network = CINTransformer(CINConfig(["a_dots", "b_waves", "c_lines"], **SMALL))

    def task(favour):
        return CINTask(tiny(folders, favour=favour), encoder, network,
                       StyleTargets({}, rows=[0, 1, 2]), torch.zeros(0))

    draws = torch.cat([task({"b_waves": 4}).draw_styles(i, 8) for i in range(500)])
    share = torch.bincount(draws, minlength=3).double() / len(draws)
    assert torch.allclose(share, torch.tensor([1 / 6, 4 / 6, 1 / 6], dtype=torch.float64),
                          atol=0.03), share
    plain = torch.cat([task({}).draw_styles(i, 8) for i in range(500)])
    assert abs(float((plain == 1).double().mean()) - 1 / 3) < 0.03
    with pytest.raises(StylenormError, match=r"favour: no style named candy among the trained "
                                             r"styles \(a_dots, b_waves, c_lines\)"):
        task({"candy": 2})
    for weight in (0, -1, math.inf, math.nan):
        with pytest.raises(StylenormError, match="each weight must be > 0 and finite"):
            tiny(folders, favour={"a_dots": weight}).validate()


def test_meanstd_style_loss_is_adains_distance_to_each_styles_statistics(random_store,
                                                                         folders):
    from stylenorm.hub.zoo import load_frozen_encoder
    from stylenorm.io.images import load_image
    from stylenorm.nn.losses import mean_std_loss
    from stylenorm.training.cin import CINTask, StyleTargets, style_targets

    encoder, _ = load_frozen_encoder("vgg19-normalised")
    paths = sorted((folders / "styles").iterdir())
    images = {p: load_image(p, size=32).rgb for p in paths}
    stats = style_targets(encoder, images, ("relu2_1",), torch.device("cpu"), "meanstd")
    assert stats["relu2_1"].shape == (2, 2, 128, 1, 1)
    config = tiny(folders, style_loss="meanstd")
    task = CINTask(config, encoder, CINTransformer(CINConfig(["a", "b"], **SMALL)),
                   StyleTargets(stats, rows=[0, 1]), torch.zeros(0))
    output = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        feats = encoder(output)["relu2_1"]
        got = task.style_term(feats, stats["relu2_1"][torch.tensor([1, 0, 1])])
        style = torch.cat([encoder(images[paths[k]])["relu2_1"] for k in (1, 0, 1)])
    want = sum(mean_std_loss(feats[i:i + 1], style[i:i + 1]) for i in range(3)) / 3
    assert torch.allclose(got, want, rtol=1e-4)
    result = train_cin(tiny(folders, style_loss="meanstd", style_weight=5, sample_every=0),
                       progress=False)
    assert 0 < result.final_losses["style"] < 100
    with pytest.raises(StylenormError, match="style_loss must be one of gram, meanstd"):
        tiny(folders, style_loss="gramm").validate()


def test_refine_needs_init_and_known_names(random_store, folders):
    with pytest.raises(StylenormError, match="--init"):
        train_cin(tiny(folders, refine=("a_dots",)), progress=False)
    base = train_cin(tiny(folders, out=str(folders / "base"), sample_every=0), progress=False)
    with pytest.raises(StylenormError, match="no style named candy among the --styles "
                                             r"\(a_dots, b_waves\)"):
        train_cin(tiny(folders, refine=("candy",)), progress=False, init=str(base.model_path))
    with pytest.raises(StylenormError, match="give one of them"):
        tiny(folders, refine=("a_dots",), extend=str(base.model_path)).validate()


def test_extend_needs_a_cin_model(random_store, folders):
    adain_model = random_store / "adain.safetensors"
    with pytest.raises(StylenormError, match="expected a CIN model"):
        train_cin(tiny(folders, extend=str(adain_model)), progress=False)


def test_resume_continues_exactly(random_store, folders):
    train_cin(tiny(folders, out=str(folders / "a"), iterations=4, sample_every=0),
              progress=False)
    train_cin(tiny(folders, out=str(folders / "b"), iterations=2, sample_every=0),
              progress=False)
    train_cin(tiny(folders, out=str(folders / "b"), iterations=4, sample_every=0),
              resume=True, progress=False)

    def totals(run):
        return [json.loads(line)["total"] for line in (run / "log.jsonl").read_text().splitlines()]

    assert totals(folders / "b") == totals(folders / "a")


def test_cli_train_cin_and_stylize(random_store, folders):
    runner = CliRunner()
    out = folders / "cli"
    result = runner.invoke(app, [
        "train", "cin", "--content", str(folders / "content"), "--styles",
        str(folders / "styles"), "--out", str(out), "--iterations", "2", "--batch-size", "2",
        "--crop-size", "32", "--style-size", "32", "--widths", "4,8,8", "--res-blocks", "1",
        "--sample-every", "0", "--workers", "0", "--no-progress", "--tv-weight", "0.1"])
    assert result.exit_code == 0, result.output
    assert "--style-index" in result.output
    image = folders / "out.png"
    model = str(out / "model.safetensors")
    content = str(folders / "content" / "c0.png")
    result = runner.invoke(app, ["stylize", content, "--model", model, "--style-index", "0",
                                 "-o", str(image), "--size", "0"])
    assert result.exit_code == 0, result.output
    assert Image.open(image).size == (40, 36)
    result = runner.invoke(app, ["stylize", content, "--model", model, "-o", str(image)])
    assert result.exit_code == 2 and "--style-index" in result.output  # a usage error
    result = runner.invoke(app, ["train", "cin", "--content", str(folders / "content"),
                                 "--styles", str(folders / "styles"), "--widths", "4,8"])
    assert result.exit_code == 1 and "--widths must be three" in result.output

    def one_step_from(init: str, out: str, *options: str) -> dict:
        """The provenance of one iteration of `train cin --init init` with ``options``."""
        result = runner.invoke(app, [
            "train", "cin", "--content", str(folders / "content"), "--styles",
            str(folders / "styles"), "--out", str(folders / out), "--init", init, *options,
            "--iterations", "1", "--batch-size", "2", "--crop-size", "32", "--style-size", "32",
            "--sample-every", "0", "--workers", "0", "--no-progress"])
        assert result.exit_code == 0, result.output
        return read_meta(folders / out / "model.safetensors").provenance

    refined = one_step_from(model, "refined", "--refine", "b_waves, a_dots")
    assert refined["trained_styles"] == [0, 1]
    favoured = one_step_from(model, "favoured", "--favour", "b_waves=3")
    assert favoured["style_draw_weights"] == {"b_waves": 3.0}
    assert favoured["trained_styles"] == [0, 1]
    for bad in ("b_waves", "=2", "b_waves=many"):
        result = runner.invoke(app, ["train", "cin", "--content", str(folders / "content"),
                                     "--styles", str(folders / "styles"), "--favour", bad])
        assert result.exit_code == 1, result.output
        assert result.output.strip() == ("error: --favour takes NAME=WEIGHT entries separated "
                                          f"by commas; got {bad!r}"), result.output
    result = runner.invoke(app, ["train", "cin", "--content", str(folders / "content"),
                                 "--styles", str(folders / "styles"), "--refine", "candy",
                                 "--init", model, "--no-progress"])
    assert result.exit_code == 1 and "no style named candy" in result.output


def test_adain_model_still_needs_style_images(random_store, folders):
    result = CliRunner().invoke(app, ["stylize", str(folders / "content" / "c0.png"),
                                      "-o", str(folders / "x.png")])
    assert result.exit_code == 2 and "at least one style image" in result.output


def test_teacher_targets_are_the_teachers_stylisations_and_are_recorded(random_store, folders):
    from stylenorm.training.cin_teacher import CINTeacher

    styles = [torch.rand(1, 3, 32, 36), torch.rand(1, 3, 30, 32)]
    teacher = CINTeacher("adain", styles, torch.device("cpu"), torch.float32)
    content = torch.rand(3, 3, 32, 32)
    got = teacher.outputs(content, torch.tensor([1, 0, 1]))
    model = load_model("adain")
    for row, pick in enumerate((1, 0, 1)):
        expected = model(content[row : row + 1], model.style_code(styles[pick])).clamp(0, 1)
        assert torch.allclose(got[row : row + 1], expected, atol=1e-5)
    result = train_cin(tiny(folders, teacher="adain", sample_every=0, precision="bf16"),
                       progress=False)
    assert {"pixel", "content", "style", "total"} <= set(result.final_losses)
    provenance = read_meta(result.model_path).provenance
    assert provenance["teacher"] == "adain" and len(provenance["teacher_sha256"]) == 64


def test_init_starts_from_a_cin_model_with_the_same_styles(random_store, folders):
    base = train_cin(tiny(folders, out=str(folders / "base"), sample_every=0), progress=False)
    frozen = train_cin(tiny(folders, out=str(folders / "init"), sample_every=0, lr=1e-12),
                       progress=False, init=str(base.model_path))
    before, after = load_model(str(base.model_path)), load_model(str(frozen.model_path))
    for (name, a), b in zip(before.state_dict().items(), after.state_dict().values(),
                            strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    with pytest.raises(StylenormError, match="not 'cin'"):
        train_cin(tiny(folders, out=str(folders / "bad")), progress=False,
                  init=str(random_store / "adain.safetensors"))


def test_pixel_weight_without_a_teacher_is_refused(random_store, folders):
    """--pixel-weight weighs the L1 to a teacher's output: without --teacher it is refused in
    one line (the Python API too) rather than ignored. A config saved when it was ignored
    still reads (so its run resumes)."""
    with pytest.raises(StylenormError, match="pixel_weight 3.0: .* needs a teacher"):
        train_cin(tiny(folders, pixel_weight=3.0), progress=False)
    assert not (folders / "run").exists()
    tiny(folders, pixel_weight=3.0, teacher="adain").validate()
    saved = {**tiny(folders).to_dict(), "pixel_weight": 3.0}
    CINTrainConfig.from_dict(saved).validate()
    tiny(folders).check_resumable(saved, folders / "checkpoint.pt")
    runner = CliRunner()
    for extra in (["--pixel-weight", "3"], ["--pixel-weight", "10"]):
        result = runner.invoke(app, [
            "train", "cin", "--content", str(folders / "content"), "--styles",
            str(folders / "styles"), "--out", str(folders / "cli"), "--iterations", "1",
            "--no-progress", *extra])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert lines[0].startswith("error: --pixel-weight: ") and "--teacher" in lines[0]
    assert not (folders / "cli").exists()


def test_cin_takes_no_style_side():
    """--style-side sizes the styles of train lite's teacher cache; train cin has no cache (its
    teacher's style codes come from the style images at --style-size), so it has no such
    option."""
    result = CliRunner().invoke(app, ["train", "cin", "--help"])
    assert result.exit_code == 0 and "--style-side" not in result.output
