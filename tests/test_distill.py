"""Distillation: the teacher cache (deterministic, resumable, refuses other settings), its
batches, the losses, and `train lite --teacher` end to end on a tiny random-weight teacher."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import make_image
from typer.testing import CliRunner

from stylenorm.cli.app import app
from stylenorm.errors import StylenormError
from stylenorm.hub.files import read_meta
from stylenorm.hub.zoo import load_frozen_encoder, load_model
from stylenorm.models.vgg import TAPS
from stylenorm.training.distill import DistillSettings
from stylenorm.training.lite import LiteTrainConfig, train_lite
from stylenorm.training.teacher import load_teacher
from stylenorm.training.teacher_batches import CacheData, CachePool
from stylenorm.training.teacher_cache import CacheSpec, TeacherCache, build_teacher_cache


def distilling(**values) -> LiteTrainConfig:
    """A lite config whose distill part holds those of ``values`` that are its settings."""
    part = {k: values.pop(k) for k in DistillSettings.names() if k in values}
    return LiteTrainConfig(**values, distill=DistillSettings(**part))


@pytest.fixture
def folders(tmp_path):
    for i in range(3):
        make_image(tmp_path / "c" / f"{i}.png", (56, 48), seed=i)
        make_image(tmp_path / "s" / f"{i}.png", (48, 48), seed=10 + i)
    return tmp_path / "c", tmp_path / "s"


def spec_for(folders, pairs=5, seed=0, size=32) -> CacheSpec:
    return CacheSpec(teacher="adain", teacher_sha256="t", encoder_sha256="e", crop_size=size,
                     pairs=pairs, seed=seed, contents=3, styles=3, shard_size=2)


def build(folder, spec, folders):
    teacher, _ = load_teacher("adain", torch.device("cpu"), torch.float32)
    encoder, _ = load_frozen_encoder("vgg19-normalised")
    contents, styles = (sorted(f.iterdir()) for f in folders)
    return build_teacher_cache(folder, spec, teacher, encoder, contents, styles, progress=False)


def test_cache_holds_the_teachers_outputs_and_style_statistics(random_store, folders,
                                                                tmp_path, one_thread):
    cache = build(tmp_path / "cache", spec_for(folders), folders)
    t = cache.tensors
    assert t["content"].shape == t["target"].shape == (5, 3, 32, 32)
    assert t["content"].dtype == torch.uint8
    teacher = load_model("adain")
    content, style = t["content"][:1].float() / 255, t["style"][:1].float() / 255
    with torch.no_grad():
        expected = teacher(content, teacher.style_code(style)).clamp(0, 1) * 255
        feats = load_frozen_encoder("vgg19-normalised")[0](style)
    assert (expected.round() - t["target"][:1].float()).abs().max() <= 1
    for layer in TAPS:
        assert t[f"mean.{layer}"].shape == (5, feats[layer].shape[1])
        assert torch.allclose(t[f"mean.{layer}"][0], feats[layer].mean((-2, -1))[0], atol=1e-4)


def test_cache_is_deterministic_and_an_interrupted_build_continues(random_store, folders,
                                                                   tmp_path, one_thread):
    first = build(tmp_path / "a", spec_for(folders), folders)
    second = build(tmp_path / "b", spec_for(folders), folders)
    (tmp_path / "b" / "shard_00001.safetensors").unlink()  # as if killed before shard 1
    resumed = build(tmp_path / "b", spec_for(folders), folders)
    other_seed = build(tmp_path / "c", spec_for(folders, seed=1), folders)
    for key in first.tensors:
        assert torch.equal(first.tensors[key], second.tensors[key])
        assert torch.equal(first.tensors[key], resumed.tensors[key])
    assert not torch.equal(first.tensors["content"], other_seed.tensors["content"])


def test_a_cache_grows_to_more_pairs_as_if_built_at_that_size(random_store, folders,
                                                                tmp_path, one_thread):
    small = build(tmp_path / "grown", spec_for(folders, pairs=5), folders)  # shards 2, 2, 1
    kept = (tmp_path / "grown" / "shard_00000.safetensors").stat().st_mtime_ns
    grown = build(tmp_path / "grown", spec_for(folders, pairs=8), folders)
    direct = build(tmp_path / "direct", spec_for(folders, pairs=8), folders)
    assert len(grown) == 8 and (tmp_path / "grown" / "shard_00000.safetensors").stat(
        ).st_mtime_ns == kept  # a full shard is not built again
    for key in direct.tensors:
        assert torch.equal(grown.tensors[key], direct.tensors[key])
        assert torch.equal(grown.tensors[key][:4], small.tensors[key][:4])  # the kept shards


def test_cache_with_other_settings_is_refused(random_store, folders, tmp_path, one_thread):
    build(tmp_path / "cache", spec_for(folders), folders)
    with pytest.raises(StylenormError, match="other settings.*crop_size: 32 -> 40"):
        build(tmp_path / "cache", spec_for(folders, size=40), folders)
    with pytest.raises(StylenormError, match="pairs: 5 -> 3.*grow, not shrink"):
        build(tmp_path / "cache", spec_for(folders, pairs=3), folders)
    shard = tmp_path / "cache" / "shard_00002.safetensors"  # 1 pair; now 2: 6 in all
    kept = shard.read_bytes()
    shard.write_bytes((tmp_path / "cache" / "shard_00000.safetensors").read_bytes())
    with pytest.raises(StylenormError, match="holds 6 pairs, its spec says 5"):
        TeacherCache.load(tmp_path / "cache")
    shard.write_bytes(kept)
    assert len(TeacherCache.load(tmp_path / "cache")) == 5
    (tmp_path / "cache" / "shard_00000.safetensors").write_bytes(b"damaged")
    with pytest.raises(StylenormError, match="shard_00000.*damaged"):
        TeacherCache.load(tmp_path / "cache")


def test_large_styles_are_cropped_at_their_own_scale_up_to_style_side(random_store, tmp_path,
                                                                       one_thread):
    """A 640 px style, black on the left half and white on the right: shrunk to 320 px (the
    default) most crops span both halves; kept at 640 px (style_side 640) the crops are boxes of
    the same pixel sizes, a quarter of the area, so most lie in one half."""
    import numpy as np
    from PIL import Image

    from stylenorm.training.teacher_cache import decode_side

    make_image(tmp_path / "c" / "0.png", (400, 320))
    half = np.zeros((640, 640, 3), np.uint8)
    half[:, 320:] = 255
    (tmp_path / "s").mkdir()
    Image.fromarray(half).save(tmp_path / "s" / "half.png")
    make_image(tmp_path / "s" / "small.png", (300, 288))
    assert decode_side(tmp_path / "s" / "half.png", 320, 512) == 512
    assert decode_side(tmp_path / "s" / "small.png", 320, 512) == 320  # enlarged, as before
    assert decode_side(tmp_path / "s" / "half.png", 320, 320) == 320
    folders = (tmp_path / "c", tmp_path / "s")

    def mixed_share(style_side):
        spec = replace(spec_for(folders, pairs=48, size=16), contents=1, styles=2,
                       style_side=style_side)
        cache = build(tmp_path / f"cache{style_side}", spec, folders)
        styles = cache.tensors["style"].float() / 255
        pure = [s for s in styles if s.std() < 0.5 and (s.min() > 0.9 or s.max() < 0.1)]
        halves = [s for s in styles if s.max() > 0.9 or s.min() < 0.1]
        return 1 - len(pure) / len(halves)

    shrunk, native = mixed_share(320), mixed_share(640)
    assert shrunk > 0.85 and native < shrunk - 0.25, (shrunk, native)  # 0.95, 0.58
    cache = TeacherCache.load(tmp_path / "cache640")
    assert cache.spec.style_side == 640
    with pytest.raises(StylenormError, match="style_side: 640 -> 512"):
        build(tmp_path / "cache640", replace(cache.spec, style_side=512), folders)


def test_jittered_styles_are_the_same_crops_turned_and_recoloured(random_store, folders,
                                                                  tmp_path, one_thread):
    """With style_jitter the contents and the choice and place of each style crop are those of
    the plain cache; the style crops change, and the teacher's outputs and the statistics are
    those of the jittered crops."""
    plain = build(tmp_path / "plain", spec_for(folders, pairs=6), folders)
    spec = replace(spec_for(folders, pairs=6), style_jitter=True)
    jittered = build(tmp_path / "jittered", spec, folders)
    assert torch.equal(plain.tensors["content"], jittered.tensors["content"])
    styles = jittered.tensors["style"]
    changed = [not torch.equal(a, b) for a, b in zip(plain.tensors["style"], styles,
                                                                 strict=True)]
    assert sum(changed) >= 4, changed
    teacher = load_model("adain")
    encoder = load_frozen_encoder("vgg19-normalised")[0]
    with torch.no_grad():
        style = styles[:2].float() / 255
        expected = teacher(jittered.tensors["content"][:2].float() / 255,
                           teacher.style_code(style)).clamp(0, 1) * 255
        feats = encoder(style)
    assert (expected.round() - jittered.tensors["target"][:2].float()).abs().max() <= 1
    torch.testing.assert_close(jittered.tensors["mean.relu2_1"][:2],
                               feats["relu2_1"].mean((-2, -1)), atol=1e-4, rtol=1e-4)
    with pytest.raises(StylenormError, match="style_jitter: False -> True"):
        build(tmp_path / "plain", spec, folders)


def test_a_cache_written_before_style_side_reads_as_the_default(random_store, folders,
                                                                tmp_path, one_thread):
    build(tmp_path / "cache", spec_for(folders), folders)
    spec_file = tmp_path / "cache" / "spec.json"
    old = json.loads(spec_file.read_text())
    del old["style_side"], old["style_jitter"]
    spec_file.write_text(json.dumps(old))
    loaded = TeacherCache.load(tmp_path / "cache").spec
    assert loaded.style_side == 320 and loaded.style_jitter is False
    assert len(build(tmp_path / "cache", spec_for(folders), folders)) == 5


def test_caches_of_other_seeds_are_drawn_from_as_one_pool(random_store, folders, tmp_path,
                                                          one_thread):
    first = build(tmp_path / "a", spec_for(folders, pairs=4), folders)
    second = build(tmp_path / "b", spec_for(folders, pairs=3, seed=1), folders)
    pool = CachePool.load(first, [tmp_path / "b"])
    assert len(pool) == 7
    indices, flips = torch.tensor([5, 0, 6, 2]), torch.tensor([True, False, False, True])
    got = pool.batch(indices, flips)
    from_first = first.batch(torch.tensor([0, 2]), torch.tensor([False, True]))
    from_second = second.batch(torch.tensor([1, 2]), torch.tensor([True, False]))
    for whole, a, b in zip(got, from_first, from_second, strict=True):
        assert torch.equal(whole[[1, 3]], a) and torch.equal(whole[[0, 2]], b)
    build(tmp_path / "c", spec_for(folders, size=40), folders)
    with pytest.raises(StylenormError, match=r"c: cannot join.*crop_size: 32 -> 40"):
        CachePool.load(first, [tmp_path / "c"])


def test_batches_are_reproducible_and_flip_content_with_target(random_store, folders,
                                                               tmp_path, one_thread):
    cache = build(tmp_path / "cache", spec_for(folders, pairs=4), folders)
    data = CacheData(cache, batch_size=3, seed=5, device=torch.device("cpu"))
    a, b = list(data.batches(0, 3)), list(data.batches(2, 3))
    assert all(torch.equal(x, y) for x, y in zip(a[2], b[0], strict=True))
    assert len(a[0]) == 3 + 2 * len(TAPS)
    # A flipped item is the mirror of a cached pair in both content and target, never in one.
    contents = cache.tensors["content"].float() / 255
    targets = cache.tensors["target"].float() / 255
    flipped_seen = False
    for batch in a:
        for content, target in zip(batch[0], batch[2], strict=True):
            index = next(i for i in range(4) if torch.equal(content, contents[i])
                         or torch.equal(content, contents[i].flip(-1)))
            flipped = not torch.equal(content, contents[index])
            flipped_seen |= flipped
            expected = targets[index].flip(-1) if flipped else targets[index]
            assert torch.equal(target, expected)
    assert flipped_seen


def test_distillation_trains_resumes_exactly_and_records_the_teacher(random_store, folders,
                                                                     tmp_path, one_thread):
    content, style = folders
    common = dict(content=str(content), style=str(style), teacher="adain", cache_pairs=6,
                  cache=str(tmp_path / "cache"), batch_size=2, crop_size=32, widths=(4, 8, 8),
                  res_blocks=1, log_every=1, checkpoint_every=2, sample_every=0,
                  precision="fp32", val_content=str(content), val_style=str(style), val_every=2,
                  val_count=2)
    full = train_lite(distilling(out=str(tmp_path / "a"), iterations=4, **common),
                      progress=False)
    train_lite(distilling(out=str(tmp_path / "b"), iterations=2, **common), progress=False)
    as_before_distill_settings(tmp_path / "b")  # a run of an older stylenorm resumes too
    resumed = train_lite(distilling(out=str(tmp_path / "b"), iterations=4, **common),
                         resume=True, progress=False)
    assert resumed.final_losses == full.final_losses
    saved = json.loads((tmp_path / "b" / "config.json").read_text())
    assert saved["distill"]["teacher"] == "adain" and "teacher" not in saved
    assert {"pixel", "style", "feature", "identity", "total"} <= set(full.final_losses)
    meta = read_meta(full.model_path)
    assert meta.kind == "lite"
    assert meta.provenance["teacher"] == "adain" and meta.provenance["teacher_pairs"] == 6
    val = (tmp_path / "a" / "val.jsonl").read_text().splitlines()
    assert len(val) == 3 and '"teacher_l1"' in val[-1] and '"content"' in val[-1]
    assert '"alpha0_psnr"' in val[-1]


def test_a_resume_without_a_run_is_refused_before_the_teacher_cache(random_store, folders,
                                                                  tmp_path, monkeypatch):
    import stylenorm.training.lite as lite

    def never(*args, **kwargs):
        raise AssertionError("the teacher cache was prepared before the run folder's check")

    monkeypatch.setattr(lite, "LiteTeacher", never)
    content, style = folders
    config = distilling(out=str(tmp_path / "empty"), content=str(content), style=str(style),
                        teacher="adain", cache_pairs=6, cache=str(tmp_path / "cache"),
                        batch_size=2, crop_size=32, widths=(4, 8, 8), res_blocks=1)
    with pytest.raises(StylenormError, match="holds no checkpoint.pt to resume from"):
        train_lite(config, resume=True, progress=False)


def as_before_distill_settings(run: Path) -> None:
    """Rewrite a run folder's config (checkpoint and config.json) in the layout of the
    distillation config before it was a part of the lite config: a subclass, its fields beside
    the others."""
    def flat(config: dict) -> dict:
        return {**{k: v for k, v in config.items() if k != "distill"}, **config["distill"]}

    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["config"] = flat(state["config"])
    torch.save(state, run / "checkpoint.pt")
    config = run / "config.json"
    config.write_text(json.dumps(flat(json.loads(config.read_text()))))


def test_both_layouts_of_a_saved_distillation_config_are_read():
    config = distilling(content="c", style="s", teacher="adain", cache_pairs=6,
                        style_layers=("relu1_1",), val_texture="t")
    new = json.loads(json.dumps(config.to_dict()))
    old = {**{k: v for k, v in new.items() if k != "distill"}, **new["distill"]}
    assert "distill" not in old and old["teacher"] == "adain"
    for saved in (new, old):
        assert json.loads(json.dumps(LiteTrainConfig.from_dict(saved).to_dict())) == new
        config.check_resumable(saved, Path("checkpoint.pt"))
        other_texture = replace(config, distill=replace(config.distill, val_texture="u"))
        other_texture.check_resumable(saved, Path("checkpoint.pt"))  # validation only
        other_weight = replace(config, distill=replace(config.distill, pixel_weight=3.0))
        with pytest.raises(StylenormError, match=r"distill\.pixel_weight: 10\.0 -> 3\.0"):
            other_weight.check_resumable(saved, Path("checkpoint.pt"))
    assert LiteTrainConfig.from_dict(json.loads(json.dumps(
        LiteTrainConfig().to_dict()))).distill is None


def test_validation_reports_each_held_out_styles_ratio_to_the_teacher(random_store, folders,
                                                                      tmp_path, one_thread,
                                                                      capsys):
    content, style = folders
    for i in range(2):
        make_image(tmp_path / "tex" / f"t{i}.png", (80, 72), seed=30 + i)
    config = distilling(content=str(content), style=str(style), teacher="adain",
                        cache_pairs=4, cache=str(tmp_path / "cache"), batch_size=2,
                        crop_size=32, widths=(4, 8, 8), res_blocks=1, log_every=1,
                        checkpoint_every=2, sample_every=0, precision="fp32",
                        val_content=str(content), val_style=str(style), val_every=2,
                        val_count=2, val_texture=str(tmp_path / "tex"),
                        out=str(tmp_path / "run"), iterations=2)
    train_lite(config, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "val.jsonl").open()]
    assert [r["iter"] for r in records] == [0, 2]
    for record in records:
        ratios = record["style_ratios"]
        assert list(ratios) == ["0.png", "1.png", "t0.png", "t1.png"]
        assert record["style_ratio"] == pytest.approx((ratios["0.png"] + ratios["1.png"]) / 2)
        assert record["texture_ratio"] == pytest.approx((ratios["t0.png"] + ratios["t1.png"]) / 2)
    worst = max(records[-1]["style_ratios"], key=records[-1]["style_ratios"].get)
    assert f"style_ratios, highest: {worst}" in capsys.readouterr().out



def test_cli_trains_on_a_further_cache_with_add_cache(random_store, folders, tmp_path,
                                                      one_thread):
    shas = dict(teacher_sha256=load_teacher("adain", torch.device("cpu"), torch.float32)[1],
                encoder_sha256=load_frozen_encoder("vgg19-normalised")[1]["encoder_sha256"])
    build(tmp_path / "more", replace(spec_for(folders, pairs=3, seed=9), **shas), folders)
    content, style = folders
    result = CliRunner().invoke(app, [
        "train", "lite", "--content", str(content), "--style", str(style), "--teacher", "adain",
        "--cache", str(tmp_path / "cache"), "--cache-pairs", "4", "--add-cache",
        str(tmp_path / "more"), "--crop-size", "32", "--batch-size", "2", "--widths", "4,8,8",
        "--res-blocks", "1", "--iterations", "2", "--sample-every", "0", "--precision", "fp32",
        "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    meta = read_meta(tmp_path / "run" / "model.safetensors")
    assert meta.provenance["teacher_pairs"] == 7
    assert meta.provenance["teacher_caches"] == ["cache", "more"]
    build(tmp_path / "wide", replace(spec_for(folders, pairs=3, size=40), **shas), folders)
    result = CliRunner().invoke(app, [
        "train", "lite", "--content", str(content), "--style", str(style), "--teacher", "adain",
        "--cache", str(tmp_path / "cache"), "--cache-pairs", "4", "--add-cache",
        str(tmp_path / "wide"), "--crop-size", "32", "--batch-size", "2", "--widths", "4,8,8",
        "--iterations", "2", "--out", str(tmp_path / "run2"), "--no-progress"])
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and "wide: cannot join" in lines[0]
    shutil.copytree(tmp_path / "more", tmp_path / "copy")  # a copy holds the same pairs
    for again in ("cache", "copy"):
        result = CliRunner().invoke(app, [
            "train", "lite", "--content", str(content), "--style", str(style), "--teacher",
            "adain", "--cache", str(tmp_path / "cache"), "--cache-pairs", "4", "--add-cache",
            str(tmp_path / "more"), "--add-cache", str(tmp_path / again), "--crop-size", "32",
            "--batch-size", "2", "--widths", "4,8,8", "--iterations", "2", "--out",
            str(tmp_path / "run3"), "--no-progress"])
        lines = result.output.strip().splitlines()
        assert result.exit_code != 0 and len(lines) == 1, result.output
        assert f"{again}: holds the same pairs" in lines[0]
    assert not (tmp_path / "run3" / "model.safetensors").exists()


def test_cli_refuses_distillation_options_without_a_teacher(folders, tmp_path):
    content, style = folders
    result = CliRunner().invoke(app, [
        "train", "lite", "--content", str(content), "--style", str(style), "--pixel-weight",
        "3", "--add-cache", str(tmp_path), "--style-jitter", "--out", str(tmp_path / "run"),
        "--iterations", "1", "--no-progress"])
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1, result.output
    assert "--add-cache, --style-jitter, --pixel-weight" in lines[0] and "--teacher" in lines[0]
    assert not (tmp_path / "run").exists()


def test_cli_refuses_a_teacher_that_is_not_an_adain_model(random_store, folders, tmp_path):
    content, style = folders
    result = CliRunner().invoke(app, [
        "train", "lite", "--content", str(content), "--style", str(style), "--teacher", "lite",
        "--out", str(tmp_path / "run"), "--iterations", "1", "--no-progress"])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--teacher lite" in lines[0] and "AdaIN" in lines[0]


def test_code_probe_trains_the_deep_style_level_and_is_left_out_of_the_model(
        random_store, folders, tmp_path, one_thread):
    from stylenorm.models.lite import LiteModel

    content, style = folders
    common = dict(content=str(content), style=str(style), teacher="adain", cache_pairs=6,
                  cache=str(tmp_path / "cache"), batch_size=2, crop_size=32, widths=(4, 8, 8),
                  res_blocks=1, style_mlp=8, style_deep=12, log_every=1, checkpoint_every=1,
                  sample_every=0, precision="fp32", iterations=1, lr=1e-2, seed=5)
    torch.manual_seed(5)  # the student train_distill builds before its first step
    key = "style_encoder.deep.0.conv1.weight"
    initial = LiteModel(distilling(**common).lite_config()).state_dict()[key]

    def after_one_step(run: str, code_weight: float) -> torch.Tensor:
        result = train_lite(distilling(out=str(tmp_path / run), code_weight=code_weight,
                                       **common), progress=False)
        state = torch.load(tmp_path / run / "checkpoint.pt", weights_only=False)["network"]
        assert ("code_probe.weight" in state) == bool(code_weight)
        model = load_model(str(result.model_path))  # the probe is not part of the model
        assert not any(k.startswith("code_probe") for k in model.state_dict())
        assert len(model.style_code(torch.rand(1, 3, 32, 32)).means) == 4
        return state[key]

    # The StyleFilm's output layer starts at zero, so on the first step only the probe's loss
    # reaches the deep level.
    assert torch.equal(after_one_step("plain", 0.0), initial)
    assert not torch.equal(after_one_step("probe", 1.0), initial)
    assert '"code"' in (tmp_path / "probe" / "log.jsonl").read_text().splitlines()[-1]


def test_style_deep_without_style_mlp_is_refused(folders, tmp_path):
    content, style = folders
    with pytest.raises(StylenormError, match="--style-mlp"):
        distilling(content=str(content), style=str(style), teacher="adain",
                   out=str(tmp_path / "x"), style_deep=8).validate()


def test_without_a_cache_the_teacher_runs_on_every_batch(random_store, folders, tmp_path,
                                                         one_thread):
    from stylenorm.training.inputs import crop_data
    from stylenorm.training.teacher_batches import OnlineTeacherData

    content, style = folders
    config = distilling(content=str(content), style=str(style), teacher="adain",
                        cache_pairs=0, batch_size=2, crop_size=32, widths=(4, 8, 8),
                        res_blocks=1, log_every=1, checkpoint_every=1, sample_every=0,
                        precision="fp32", iterations=2, out=str(tmp_path / "run"))
    result = train_lite(config, progress=False)
    assert not (tmp_path / "run" / "teacher-cache").exists()
    assert read_meta(result.model_path).provenance["teacher_pairs"] == "every batch (no cache)"
    assert {"pixel", "style", "feature"} <= set(result.final_losses)

    teacher, _ = load_teacher("adain", torch.device("cpu"), torch.float32)
    encoder, _ = load_frozen_encoder("vgg19-normalised")
    crops = crop_data(config, torch.device("cpu"), [sorted(content.iterdir()),
                                                    sorted(style.iterdir())])
    data = OnlineTeacherData(crops, teacher, encoder)
    (c, s, target, *stats), = data.batches(0, 1)
    assert c.shape == s.shape == target.shape == (2, 3, 32, 32)
    with torch.no_grad():
        expected = teacher(teacher.prepare(c), teacher.style_code(teacher.prepare(s)))
        torch.testing.assert_close(target, expected.clamp(0, 1))
        feats = encoder(s)
    assert len(stats) == 2 * len(TAPS) and stats[-1].shape == (2, 512, 1, 1)
    torch.testing.assert_close(stats[-2].flatten(1), feats["relu4_1"].mean((2, 3)))


def test_adain_term_is_the_content_loss_to_the_adain_target(random_store, folders, tmp_path,
                                                            one_thread):
    from stylenorm.models.lite import LiteModel
    from stylenorm.nn.conditional import adain
    from stylenorm.nn.statistics import mean_std
    from stylenorm.training.distill import Distillation
    from stylenorm.training.lite import LiteTask

    content, style = folders
    config = distilling(content=str(content), style=str(style), teacher="adain",
                        out=str(tmp_path / "x"), widths=(4, 8, 8), res_blocks=1,
                        feature_weight=0.0, style_layers=("relu1_1",), adain_weight=2.0)
    assert config.distill.deepest_layer() == "relu4_1"  # the term needs the output's relu4_1
    encoder, _ = load_frozen_encoder("vgg19-normalised")
    distillation = Distillation(config.distill, config.style_weight, {})
    LiteTask(config, encoder, LiteModel(config.lite_config()), None, None, distillation)
    torch.manual_seed(0)
    c, s, o = torch.rand(3, 2, 3, 32, 32).unbind(0)
    with torch.no_grad():
        f_c, f_s, f_o = encoder(c), encoder(s), encoder(o)
        stats = {layer: mean_std(f) for layer, f in f_s.items()}  # as the cache holds them
        means = {layer: m for layer, (m, _) in stats.items()}
        stds = {layer: s for layer, (_, s) in stats.items()}
    expected = torch.nn.functional.mse_loss(f_o["relu4_1"],
                                            adain(f_c["relu4_1"], f_s["relu4_1"]))
    measured = distillation.adain_loss(c, f_o["relu4_1"], means, stds)
    torch.testing.assert_close(measured, expected)
    # and a content far from the output's makes the loss larger
    assert distillation.adain_loss(1 - c, f_o["relu4_1"], means, stds) != measured
    with pytest.raises(StylenormError, match="adain_weight"):
        distilling(content=str(content), style=str(style), teacher="adain",
                   out=str(tmp_path / "y"), adain_weight=-1).validate()
    result = train_lite(distilling(
        content=str(content), style=str(style), teacher="adain", out=str(tmp_path / "run"),
        cache=str(tmp_path / "cache"), cache_pairs=2, batch_size=2, crop_size=32,
        widths=(4, 8, 8), res_blocks=1, adain_weight=2.0, iterations=1, log_every=1,
        checkpoint_every=1, sample_every=0, precision="fp32"), progress=False)
    assert result.final_losses["adain"] > 0


def test_the_python_api_refuses_distillation_without_a_teacher(folders, tmp_path):
    content, style = folders
    config = LiteTrainConfig(content=str(content), style=str(style), out=str(tmp_path / "run"),
                             distill=DistillSettings(pixel_weight=3.0))
    with pytest.raises(StylenormError, match="needs a teacher"):
        train_lite(config, progress=False)
    assert not (tmp_path / "run").exists()
    settings = DistillSettings(teacher="adain", cache_pairs=0, style_jitter=True)
    with pytest.raises(StylenormError, match="style_jitter applies to the teacher cache"):
        settings.validate(batch_size=2)
