"""The fused inference path computes what the plain modules compute."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

from stylenorm.models.adain import AdaINModel, StyleCode
from stylenorm.models.decoder import AdaINDecoder, DecoderConfig
from stylenorm.models.fastadain import (
    FastAdaINModel,
    accelerate,
    adain_target,
    fast_decode,
    fast_encode,
    modulate,
)
from stylenorm.models.vgg import TAPS, EncoderConfig, VGGEncoder
from stylenorm.nn.fused import FRAME_MIN_POSITIONS, conv_act

pytestmark = pytest.mark.usefixtures("one_thread")
SIDE_FRAME = int(FRAME_MIN_POSITIONS**0.5) + 3  # large enough for the frame fix


@pytest.mark.parametrize("padding_mode", ["reflect", "zeros"])
@pytest.mark.parametrize("shape", [(2, 5, 7), (1, SIDE_FRAME, SIDE_FRAME - 1), (1, 2, 2)])
@pytest.mark.parametrize("relu", [True, False])
def test_conv_act_equals_the_module(padding_mode, shape, relu):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, padding_mode=padding_mode)
    x = torch.randn(shape[0], 4, *shape[1:]).contiguous(memory_format=torch.channels_last)
    expected = conv(x)
    expected = torch.relu(expected) if relu else expected
    with torch.inference_mode():
        got = conv_act(x, conv, relu)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["normalised", "torchvision"])
def test_fast_encode_matches_every_tap(family):
    torch.manual_seed(0)
    encoder = VGGEncoder(EncoderConfig(family=family))
    x = torch.rand(2, 3, 37, 30)
    with torch.inference_mode():
        want, got = encoder(x), fast_encode(encoder, x)
    assert list(got) == list(TAPS)
    for tap in TAPS:
        torch.testing.assert_close(got[tap], want[tap], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("norm", ["none", "instance"])
def test_fast_decode_matches(norm):
    torch.manual_seed(0)
    decoder = AdaINDecoder(DecoderConfig(norm=norm)).eval()
    feats = torch.rand(1, 512, 5, 4)
    with torch.inference_mode():
        torch.testing.assert_close(fast_decode(decoder, feats), decoder(feats),
                                   atol=1e-4, rtol=1e-4)


def test_modulate_is_adain_blended_by_alpha():
    torch.manual_seed(0)
    model = AdaINModel(VGGEncoder(), AdaINDecoder())
    feat = torch.rand(2, 512, 6, 5) * 3
    code = StyleCode(torch.rand(1, 512, 1, 1), torch.rand(1, 512, 1, 1) + 0.1)
    for alpha in (1.0, 0.3):
        torch.testing.assert_close(adain_target(feat, code, alpha),
                                   model.target_features(feat, code, alpha),
                                   atol=1e-5, rtol=1e-5)
    zero = modulate(feat, feat.mean((2, 3), keepdim=True), torch.ones(2, 512, 1, 1), code, 0.0)
    torch.testing.assert_close(zero, feat)


def test_accelerate_shares_weights_and_outputs(random_store):
    from stylenorm.hub.zoo import load_model

    plain = load_model("adain")
    fast = accelerate(plain)
    assert isinstance(fast, FastAdaINModel) and fast.decoder is plain.decoder
    assert accelerate(nn.Linear(2, 2)).__class__ is nn.Linear
    content, style = torch.rand(1, 3, 40, 32), torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        want = plain(content, plain.style_code(style), 0.7)
        got = fast(content, fast.style_code(style), 0.7)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_compiled_adain_equals_eager():
    """The torch.compile path (used on CUDA) compiled here for the CPU; a few seconds."""
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("torch.compile on the CPU needs a C compiler; none on PATH")
    torch.manual_seed(0)
    model = FastAdaINModel(VGGEncoder(), AdaINDecoder(), compile_adain=True)
    code = StyleCode(torch.rand(1, 512, 1, 1), torch.rand(1, 512, 1, 1) + 0.1)
    for shape in [(2, 512, 9, 7), (1, 512, 11, 13)]:
        feat = torch.rand(shape) * 3
        got = model.target_features(feat, code, 0.6)
        assert model.compile_adain, "compilation failed and fell back to eager"
        torch.testing.assert_close(got, adain_target(feat, code, 0.6), atol=1e-5, rtol=1e-5)
