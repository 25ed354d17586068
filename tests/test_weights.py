"""Weights files, the store and the ``.pth`` importers (downloads: test_fetch.py)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import torch

from stylenorm.errors import WeightsError
from stylenorm.hub.files import load_state_strict, load_weights, read_meta, save_weights
from stylenorm.hub.importers import import_decoder, import_encoder, load_pth
from stylenorm.hub.store import installed_weights, resolve_weights
from stylenorm.hub.zoo import load_model
from stylenorm.models.decoder import AdaINDecoder, DecoderConfig
from stylenorm.models.vgg import (
    NORMALISED_SEQUENTIAL_INDEX,
    TORCHVISION_FEATURES_INDEX,
    EncoderConfig,
    VGGEncoder,
)


def public_encoder_state(family: str, full: bool) -> dict[str, torch.Tensor]:
    """A random state dict in a public checkpoint layout (optionally with later layers)."""
    encoder = VGGEncoder(EncoderConfig(family=family))
    ours = encoder.state_dict()
    index = NORMALISED_SEQUENTIAL_INDEX if family == "normalised" else TORCHVISION_FEATURES_INDEX
    prefix = "" if family == "normalised" else "features."
    state = {}
    for name, idx in index.items():
        src = name if name == "preprocess" else f"convs.{name}"
        for p in ("weight", "bias"):
            state[f"{prefix}{idx}.{p}"] = torch.randn_like(ours[f"{src}.{p}"])
    if full:  # layers past relu4_1, as in the full published files
        later = 32 if family == "normalised" else 21
        state[f"{prefix}{later}.weight"] = torch.randn(512, 512, 3, 3)
        state[f"{prefix}{later}.bias"] = torch.randn(512)
    return state


@pytest.mark.parametrize("family", ["normalised", "torchvision"])
@pytest.mark.parametrize("full", [False, True])
def test_import_encoder_layouts(tmp_path, family, full):
    state = public_encoder_state(family, full)
    pth = tmp_path / "vgg.pth"
    torch.save(state, pth)
    path = import_encoder(pth, family, home=tmp_path)
    tensors, meta = load_weights(path)
    assert meta.kind == "vgg-encoder" and meta.config == {"family": family}
    first = "0.weight" if family == "normalised" else "features.0.weight"
    assert torch.equal(tensors["convs.conv1_1.weight"],
                       state["2.weight" if family == "normalised" else first])


def test_import_decoder_and_load_model(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLENORM_HOME", str(tmp_path))
    torch.save(public_encoder_state("normalised", False), tmp_path / "vgg.pth")
    import_encoder(tmp_path / "vgg.pth")
    decoder = AdaINDecoder()
    from stylenorm.models.decoder import adain_decoder_key_map

    state = {theirs: torch.randn_like(decoder.state_dict()[ours])
             for ours, theirs in adain_decoder_key_map().items()}
    torch.save(state, tmp_path / "decoder.pth")
    import_decoder(tmp_path / "decoder.pth", "mine")
    model = load_model("mine")
    assert torch.equal(model.decoder.blocks["conv1_1"].conv.weight, state["28.weight"])
    assert {p.stem for p, _ in installed_weights()} >= {"mine", "vgg19-normalised"}


def test_import_names_the_offending_tensor(tmp_path):
    state = public_encoder_state("normalised", False)
    state["9.weight"] = torch.randn(128, 64, 5, 5)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match=r"bad\.pth.*'9\.weight'.*\(128, 64, 5, 5\)"):
        import_encoder(tmp_path / "bad.pth", home=tmp_path)
    del state["9.weight"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match=r"missing\.pth: missing tensor '9\.weight'"):
        import_encoder(tmp_path / "missing.pth", home=tmp_path)


class Payload:
    """Unpickling this runs ``os.mkdir(marker)``: what an attacker's ``.pth`` would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_payload_is_refused_without_running(tmp_path):
    live = tmp_path / "payload_is_live"
    torch.save({"0.weight": Payload(live)}, tmp_path / "probe.pth")
    with contextlib.suppress(Exception):  # unpickled the unsafe way, the payload must run
        torch.load(tmp_path / "probe.pth", weights_only=False)
    assert live.exists(), "the payload does not run even when unpickled: the test proves nothing"

    marker = tmp_path / "payload_ran"
    torch.save({"0.weight": Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="evil.pth: refused"):
        load_pth(tmp_path / "evil.pth")
    assert not marker.exists(), "the pickle payload ran"


def test_round_trip_identical_outputs(tmp_path):
    torch.manual_seed(0)
    decoder = AdaINDecoder(DecoderConfig(norm="switchable"))
    path = save_weights(tmp_path / "d.safetensors", decoder.state_dict(), "adain-test",
                        decoder.config.to_dict(), {"note": "test"})
    tensors, meta = load_weights(path)
    assert meta.config == {"norm": "switchable", "affine": True}
    assert meta.provenance["note"] == "test"
    assert meta.provenance["num_params"] == sum(t.numel() for t in decoder.state_dict().values())
    clone = AdaINDecoder(DecoderConfig(**meta.config))
    load_state_strict(clone, tensors, path)
    x = torch.randn(1, 512, 4, 4)
    assert torch.equal(decoder.eval()(x), clone.eval()(x))


def test_decoder_config_keeps_affine_and_reads_old_files_as_affine(tmp_path):
    plain = AdaINDecoder(DecoderConfig(norm="instance", affine=False))
    assert not any(".norm." in key for key in plain.state_dict())  # no gamma, no beta
    path = save_weights(tmp_path / "d.safetensors", plain.state_dict(), "adain",
                        {"decoder": plain.config.to_dict()})
    tensors, meta = load_weights(path)
    clone = AdaINDecoder(DecoderConfig(**meta.config["decoder"]))
    assert clone.config.affine is False
    load_state_strict(clone, tensors, path)
    # a file from before affine was saved: its norms were built with the default, affine
    old = AdaINDecoder(DecoderConfig(**{"norm": "instance"}))
    assert old.config.affine is True and "blocks.conv4_1.norm.weight" in old.state_dict()


def test_strict_load_names_missing_and_unexpected(tmp_path):
    decoder = AdaINDecoder()
    tensors = dict(decoder.state_dict())
    tensors["extra.weight"] = tensors.pop("blocks.conv4_1.conv.weight")
    with pytest.raises(WeightsError, match=r"missing \['blocks.conv4_1.conv.weight'\].*extra"):
        load_state_strict(decoder, tensors, "file.safetensors")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "no_metadata"])
def test_bad_safetensors_files(tmp_path, damage):
    path = tmp_path / "model.safetensors"
    save_weights(path, {"w": torch.ones(64, 64)}, "adain", {})
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\x01not safetensors" * 10)
    else:
        from safetensors.torch import save_file

        save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(WeightsError, match="model.safetensors"):
        load_weights(path)


def test_unknown_name_lists_installed(random_store):
    with pytest.raises(WeightsError, match=r"no weights named 'nope'.*adain"):
        resolve_weights("nope")
    assert read_meta(resolve_weights("adain")).kind == "adain"


def test_pack_halves_floats_changes_config_and_adds_provenance(tmp_path):
    from typer.testing import CliRunner

    from stylenorm.cli.app import app
    from stylenorm.hub.files import load_weights, read_meta, save_weights
    from stylenorm.models.lite import LiteConfig, LiteModel

    model = LiteModel(LiteConfig(widths=(8, 8, 8), res_blocks=1, style_size=32))
    source = save_weights(tmp_path / "run.safetensors", model.state_dict(), "lite",
                          model.config.to_dict(), {"iterations": 7})
    target = tmp_path / "ship" / "lite.safetensors"
    result = CliRunner().invoke(app, ["weights", "pack", str(source), str(target), "--set",
                                      "style_size=64", "--note", "data=my photos"])
    assert result.exit_code == 0, result.output
    tensors, meta = load_weights(target)
    original, _ = load_weights(source)
    assert all(t.dtype == torch.float16 for t in tensors.values())
    assert all(torch.allclose(tensors[k].float(), original[k], atol=1e-3) for k in original)
    assert meta.config["style_size"] == 64 and meta.config["widths"] == [8, 8, 8]
    assert meta.provenance["iterations"] == 7 and meta.provenance["data"] == "my photos"
    assert meta.provenance["stored_precision"] == "fp16"
    assert load_model(target).config.style_size == 64
    same = CliRunner().invoke(app, ["weights", "pack", str(source), str(source)])
    assert same.exit_code == 1 and "overwrite its source" in same.output
    bad = CliRunner().invoke(app, ["weights", "pack", str(source), str(target), "--set", "x"])
    assert bad.exit_code == 1 and "KEY=VALUE" in bad.output
    assert read_meta(source).config["style_size"] == 32  # the source is untouched


def test_weight_files_get_the_plain_file_mode_not_owner_only(tmp_path):
    """safetensors writes owner-only (0600) files; a shipped or shared weights file must be
    readable like any other file the user writes (0666 less the umask)."""
    import os

    old = os.umask(0o022)
    try:
        path = save_weights(tmp_path / "w.safetensors", {"a": torch.zeros(2)}, "lite", {})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
