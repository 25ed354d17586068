"""With the real weights, stylenorm's fp32 output equals the public AdaIN port's (PSNR >= 40 dB)
for plain AdaIN, alpha 0.5, two-style interpolation and colour preservation, at original size."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from reference_adain import reference_stylize, sequential_decoder, sequential_vgg

from stylenorm.inference.stylize import StylizeOptions, Stylizer
from stylenorm.io.images import load_image
from stylenorm.nn.metrics import psnr


def quantise(x: torch.Tensor) -> torch.Tensor:
    """The 8-bit image both tools write."""
    return x.mul(255).add(0.5).clamp(0, 255).floor() / 255


def smallest(folder, count):
    files = sorted(folder.iterdir(), key=lambda p: (Image.open(p).size[0] * Image.open(p).size[1],
                                                    p.name))
    return files[:count]


@pytest.fixture(scope="module")
def reference_nets(shared_weights):
    vgg, dec = sequential_vgg(), sequential_decoder()
    vgg.load_state_dict(torch.load(shared_weights / "vgg_normalised.pth", weights_only=True))
    dec.load_state_dict(torch.load(shared_weights / "decoder.pth", weights_only=True))
    return vgg.eval(), dec.eval()


@pytest.fixture(scope="module")
def inputs(shared_images):
    content = smallest(shared_images / "content", 1)[0]
    styles = smallest(shared_images / "style", 2)
    return content, styles


CASES = {
    "plain": dict(alpha=1.0, weights=None, preserve_color=False, n_styles=1),
    "alpha_0.5": dict(alpha=0.5, weights=None, preserve_color=False, n_styles=1),
    "interpolate": dict(alpha=1.0, weights=[0.7, 0.3], preserve_color=False, n_styles=2),
    "preserve_color": dict(alpha=1.0, weights=None, preserve_color=True, n_styles=1),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_public_adain_port(case, real_store, reference_nets, inputs):
    spec = CASES[case]
    content_path, style_paths = inputs[0], inputs[1][: spec["n_styles"]]
    content = load_image(content_path).rgb
    styles = [load_image(p).rgb for p in style_paths]
    expected = reference_stylize(*reference_nets, content, styles, spec["alpha"],
                                 spec["weights"], spec["preserve_color"])
    options = StylizeOptions(alpha=spec["alpha"], style_weights=spec["weights"],
                             preserve_color=spec["preserve_color"], size=0, style_size=0)
    ours = Stylizer("adain", device="cpu", precision="fp32").stylize_tensors(
        content, styles, options)
    h, w = ours.shape[-2:]
    value = psnr(quantise(ours), quantise(expected[..., :h, :w].clamp(0, 1)))
    assert value >= 40.0, f"{case}: PSNR {value:.1f} dB against the reference port"
