"""Every weights file shipped in ``weights/`` (as torchvision's tests walk every weights record):
a kind the zoo knows, a config that builds the model, provenance that says how it was made
(command, data, teacher where distilled, compute), the parameter count it claims, and a small
stylisation that comes out finite and of the content's shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from stylenorm.hub.files import load_weights, read_meta
from stylenorm.hub.store import bundled_dir
from stylenorm.hub.zoo import KINDS, load_model, missing_weights, takes_style_images

SHIPPED = sorted(bundled_dir().glob("*.safetensors"))


def test_weights_are_shipped():
    assert {p.stem for p in SHIPPED} >= {"lite", "adain-stylenorm", "cin-8styles"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_metadata_says_what_the_model_is_and_how_it_was_made(path: Path):
    meta = read_meta(path)
    assert meta.kind in KINDS, f"{path.name}: kind {meta.kind!r} is not one the zoo loads"
    assert meta.config and meta.version, f"{path.name}: no config or stylenorm version"
    prov = meta.provenance
    assert str(prov.get("trained_with", "")).startswith("stylenorm train "), path.name
    assert isinstance(prov.get("data"), str) and len(prov["data"]) > 20, \
        f"{path.name}: provenance does not say what data it was trained on"
    distilled = "--teacher" in prov["trained_with"] or prov.get("teacher")
    if distilled:
        assert isinstance(prov.get("teacher"), str) and prov["teacher"], path.name
        assert re.fullmatch(r"[0-9a-f]{64}", str(prov.get("teacher_sha256"))), \
            f"{path.name}: distilled, but the teacher's file hash is not recorded"
    # the compute it took
    assert prov.get("device") in ("cpu", "cuda", "mps"), path.name
    assert isinstance(prov.get("processor"), str) and prov["processor"], path.name
    assert float(prov.get("wall_time_s", 0)) > 0, path.name
    assert int(prov.get("iterations", 0)) > 0, path.name


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_parameter_count_matches_the_metadata(path: Path, random_store):
    tensors, meta = load_weights(path)
    held = sum(t.numel() for t in tensors.values())
    assert meta.provenance.get("num_params") == held, path.name
    model = load_model(path)  # strict: every tensor of the file has its place in the model
    loaded = sum(t.numel() for t in model.state_dict().values())
    needed = sum(t.numel() for name in missing_weights(meta, set())
                 for t in load_weights(random_store / f"{name}.safetensors")[0].values())
    assert loaded == held + needed, f"{path.name}: {loaded} parameters loaded, {held} in file"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_small_stylisation_is_finite_and_of_the_content_shape(path: Path, random_store):
    """An AdaIN decoder runs with the random-weight VGG encoder of the test store."""
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 40, 56, generator=generator)
    style = torch.rand(1, 3, 48, 48, generator=generator)
    meta = read_meta(path)
    model = load_model(path)
    with torch.inference_mode():
        prepared = model.prepare(content)
        if takes_style_images(meta):
            out = model(prepared, model.style_code(style))
        else:
            out = model.stylize(prepared, model.weights_for(0, None))
    out = out[..., :40, :56]
    assert out.shape == content.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all(), f"{path.name}: NaN or infinite output"
    assert out.std() > 1e-3, f"{path.name}: a flat output"
