"""The fused inference path computes what the plain modules compute."""

from __future__ import annotations

import copy
import shutil

import pytest
import torch
from torch import nn

from stylenorm.models.adain import AdaINModel, StyleCode
from stylenorm.models.decoder import AdaINDecoder, DecoderConfig
from stylenorm.models.vgg import TAPS, EncoderConfig, VGGEncoder
from stylenorm.nn.conditional import modulate
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


def test_conv_act_unfused_is_the_module_call():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, padding_mode="reflect")
    x = torch.randn(1, 4, 9, 8)
    assert torch.equal(conv_act(x, conv, fused=False), torch.relu(conv(x)))


@pytest.mark.parametrize(("family", "norm"), [("normalised", "none"), ("torchvision", "instance")])
def test_fast_path_equals_the_plain_model(family, norm):
    """The AdaIN model's one definition, fused (inference) and plain (reference)."""
    torch.manual_seed(0)
    plain = AdaINModel(VGGEncoder(EncoderConfig(family=family)),
                       AdaINDecoder(DecoderConfig(norm=norm))).eval()
    fast = copy.deepcopy(plain).use_fast_path()
    assert fast.fast and fast.encoder.fused and not plain.encoder.fused
    content, style = torch.rand(1, 3, 37, 30), torch.rand(2, 3, 32, 32)
    mask = (torch.rand(1, 1, 37, 30) > 0.5).float()
    with torch.inference_mode():
        want, got = plain.encoder(content), fast.encoder(content)
        assert list(got) == list(TAPS)
        for tap in TAPS:
            torch.testing.assert_close(got[tap], want[tap], atol=1e-4, rtol=1e-4)
        code = plain.style_code(style)
        torch.testing.assert_close(fast.style_code(style).std, code.std, atol=1e-4, rtol=1e-4)
        for args in ((code.select(0),), (code.select(1), 0.4), (code, 0.7, mask)):
            torch.testing.assert_close(fast(content, *args), plain(content, *args),
                                       atol=1e-4, rtol=1e-4)
        features = fast.encode_content(content)
        torch.testing.assert_close(fast.decode_features(features, code.select(0), 0.6),
                                   plain(content, code.select(0), 0.6), atol=1e-4, rtol=1e-4)


def test_modulate_is_adain_blended_by_alpha():
    """AdaIN's alpha is decided in one method, ``target``: its fast form (one scale-and-shift)
    equals its readable form."""
    torch.manual_seed(0)
    plain = AdaINModel(VGGEncoder(), AdaINDecoder())
    fast = copy.deepcopy(plain).use_fast_path()
    feat = torch.rand(2, 512, 6, 5) * 3
    code = StyleCode(torch.rand(1, 512, 1, 1), torch.rand(1, 512, 1, 1) + 0.1)
    for alpha in (1.0, 0.3, 0.0):
        torch.testing.assert_close(fast.target_features(feat, code, alpha),
                                   plain.target_features(feat, code, alpha),
                                   atol=1e-5, rtol=1e-5)
    zero = modulate(feat, feat.mean((2, 3), keepdim=True), torch.ones(2, 512, 1, 1), code.mean,
                    code.std, 0.0)
    torch.testing.assert_close(zero, feat)


@pytest.mark.slow
def test_compiled_adain_equals_eager():
    """The torch.compile path (used on CUDA) compiled here for the CPU; a few seconds."""
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("torch.compile on the CPU needs a C compiler; none on PATH")
    torch.manual_seed(0)
    model = AdaINModel(VGGEncoder(), AdaINDecoder(), compile_adain=True).use_fast_path()
    code = StyleCode(torch.rand(1, 512, 1, 1), torch.rand(1, 512, 1, 1) + 0.1)
    for shape in [(2, 512, 9, 7), (1, 512, 11, 13)]:
        feat = torch.rand(shape) * 3
        got = model.target_features(feat, code, 0.6)
        assert model.compile_adain, "compilation failed and fell back to eager"
        model.compile_adain = False
        torch.testing.assert_close(got, model.target_features(feat, code, 0.6), atol=1e-5,
                                   rtol=1e-5)
        model.compile_adain = True
