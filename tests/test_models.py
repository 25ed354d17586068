"""Encoder taps, decoder norms, the AdaIN pipeline options."""

from __future__ import annotations

import pytest
import torch

from stylenorm.models.adain import AdaINModel, StyleCode
from stylenorm.models.decoder import AdaINDecoder, DecoderConfig
from stylenorm.models.vgg import TAPS, EncoderConfig, VGGEncoder
from stylenorm.nn.conditional import mean_std
from stylenorm.nn.norms import NormName


@pytest.mark.parametrize("family", ["normalised", "torchvision"])
def test_encoder_taps_and_frozen(family):
    encoder = VGGEncoder(EncoderConfig(family=family)).train()
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    feats = encoder(torch.rand(2, 3, 32, 32))
    assert list(feats) == list(TAPS)
    assert [f.shape[1] for f in feats.values()] == [64, 128, 256, 512]
    assert feats["relu4_1"].shape[-1] == 4
    assert "mean" not in encoder.state_dict()  # ImageNet constants are not persisted


def test_encoder_stops_at_requested_tap():
    assert list(VGGEncoder()(torch.rand(1, 3, 16, 16), upto="relu2_1")) == ["relu1_1", "relu2_1"]
    with pytest.raises(ValueError, match="unknown tap"):
        VGGEncoder()(torch.rand(1, 3, 16, 16), upto="relu5_1")


@pytest.mark.slow
@pytest.mark.parametrize("norm", [n.value for n in NormName])
def test_decoder_with_every_norm(norm):
    decoder = AdaINDecoder(DecoderConfig(norm=norm)).train()
    out = decoder(torch.randn(2, 512, 3, 3))
    assert out.shape == (2, 3, 24, 24)
    out.mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in decoder.parameters() if p.grad is not None)


def test_decoder_rejects_wrong_features():
    with pytest.raises(ValueError, match="512"):
        AdaINDecoder()(torch.randn(1, 256, 4, 4))


def test_style_code_mix_equals_feature_mix():
    torch.manual_seed(0)
    model = AdaINModel(VGGEncoder(), AdaINDecoder()).eval()
    content, styles = torch.rand(1, 3, 32, 32), torch.rand(2, 3, 32, 32)
    code = model.style_code(styles)
    feat = model.encode(content)
    mixed = model.target_features(feat, code.mix(torch.tensor([3.0, 1.0])))
    separate = [model.target_features(feat, code.select(i)) for i in range(2)]
    assert torch.allclose(mixed, 0.75 * separate[0] + 0.25 * separate[1], atol=1e-5)


def test_alpha_zero_keeps_content_features_and_mask_splits_styles():
    torch.manual_seed(0)
    model = AdaINModel(VGGEncoder(), AdaINDecoder()).eval()
    feat = model.encode(torch.rand(1, 3, 32, 32))
    code = StyleCode(torch.randn(2, 512, 1, 1), torch.rand(2, 512, 1, 1) + 0.5)
    assert torch.equal(model.target_features(feat, code.select(0), alpha=0.0), feat)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :16] = 1
    target = model.target_features(feat, code, mask=mask)
    left = target[..., :1]
    expected = model.target_features(feat, code.select(0))[..., :1]
    assert torch.allclose(left, expected, atol=1e-5)
    mean, _ = mean_std(target[..., 2:])
    assert not torch.allclose(mean, code.mean[:1], atol=1e-3)
