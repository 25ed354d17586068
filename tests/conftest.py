"""Shared fixtures: a weights store with randomly initialised models, and the real weights in
``../shared`` when they are present."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pytest
import torch

from stylenorm.hub.files import save_weights
from stylenorm.models.decoder import AdaINDecoder, DecoderConfig
from stylenorm.models.vgg import EncoderConfig, VGGEncoder

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SHARED_WEIGHTS = SHARED / "weights"
SHARED_IMAGES = SHARED / "images"


def write_random_store(folder: Path, seed: int = 0) -> Path:
    """A store holding a random-weight normalised encoder and an ``adain`` decoder."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = VGGEncoder(EncoderConfig())
    # Scale the random weights so activations neither vanish nor explode through 10 layers.
    for conv in [encoder.preprocess, *encoder.convs.values()]:
        torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        torch.nn.init.zeros_(conv.bias)
    save_weights(folder / "vgg19-normalised.safetensors", encoder.state_dict(), "vgg-encoder",
                 EncoderConfig().to_dict())
    decoder = AdaINDecoder(DecoderConfig())
    config = {"decoder": DecoderConfig().to_dict(), "encoder": EncoderConfig().to_dict()}
    save_weights(folder / "adain.safetensors", decoder.state_dict(), "adain", config)
    return folder


@pytest.fixture(scope="session")
def random_store_template(tmp_path_factory) -> Path:
    return write_random_store(tmp_path_factory.mktemp("random_store"))


@pytest.fixture
def random_store(random_store_template, tmp_path, monkeypatch) -> Path:
    """``STYLENORM_HOME`` pointing at a fresh copy of the random-weight store."""
    home = tmp_path / "home"
    shutil.copytree(random_store_template, home)
    monkeypatch.setenv("STYLENORM_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    if not (SHARED_WEIGHTS / "vgg_normalised.pth").is_file():
        pytest.skip(f"real weights not found at {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


@pytest.fixture(scope="session")
def shared_images() -> Path:
    if not (SHARED_IMAGES / "content").is_dir():
        pytest.skip(f"reference images not found at {SHARED_IMAGES}")
    return SHARED_IMAGES


@pytest.fixture(scope="session")
def real_store_template(shared_weights, tmp_path_factory) -> Path:
    from stylenorm.hub.importers import import_decoder, import_encoder

    home = tmp_path_factory.mktemp("real_store")
    import_encoder(shared_weights / "vgg_normalised.pth", home=home)
    import_decoder(shared_weights / "decoder.pth", "adain", home=home)
    return home


@pytest.fixture
def real_store(real_store_template, monkeypatch) -> Path:
    monkeypatch.setenv("STYLENORM_HOME", str(real_store_template))
    return real_store_template


def make_image(path: Path, size=(48, 40), mode="RGB", seed: int = 0) -> Path:
    """A smooth random test image written to ``path``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.uniform(0, 255, (h // 8 + 2, w // 8 + 2, 3)).astype(np.uint8)
    image = Image.fromarray(base).resize((w, h), Image.BICUBIC).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def one_thread():
    """Run a test's tiny models on one intra-op thread: on a shared 2-core machine a second
    thread makes every small op wait for a time slice (measured 0.55 s vs 0.04 s per call)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FUZZ_CASES = pytest.StashKey[collections.Counter]()


@pytest.fixture(scope="session")
def fuzz_cases(request) -> collections.Counter:
    """Counts the examples each property-based test tried (shown in the terminal summary)."""
    return request.config.stash.setdefault(FUZZ_CASES, collections.Counter())


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    counts = config.stash.get(FUZZ_CASES, None)
    if counts:
        terminalreporter.write_sep("-", f"property-based cases tried: {sum(counts.values())}")
        for name, count in sorted(counts.items()):
            terminalreporter.write_line(f"{count:6d}  {name}")


def unchanged_after(fn, *tensors):
    """Call ``fn(*tensors)``, check that no input was modified in place, return the result."""
    before = [t.clone() for t in tensors]
    out = fn(*tensors)
    for old, new in zip(before, tensors, strict=True):
        assert torch.equal(old, new), "input modified in place"
    return out
