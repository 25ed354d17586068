"""The AdaIN decoder: a mirror of the VGG encoder that maps relu4_1 features back to an image.

Every block is reflection pad -> 3x3 conv -> norm -> ReLU; nearest-neighbour upsampling by 2
replaces each pooling layer of the encoder. The norm layer is chosen by registry name
(``none`` by default, which is the original AdaIN decoder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..nn.fused import conv_act
from ..nn.norms import Identity2d, NormName, norm_factory

# (block name, in channels, out channels, upsample after the block)
DECODER_LAYERS: tuple[tuple[str, int, int, bool], ...] = (
    ("conv4_1", 512, 256, True),
    ("conv3_4", 256, 256, False),
    ("conv3_3", 256, 256, False),
    ("conv3_2", 256, 256, False),
    ("conv3_1", 256, 128, True),
    ("conv2_2", 128, 128, False),
    ("conv2_1", 128, 64, True),
    ("conv1_2", 64, 64, False),
    ("conv1_1", 64, 3, False),
)

# Index of each conv in the nn.Sequential layout of the public PyTorch AdaIN decoder.
ADAIN_SEQUENTIAL_INDEX = {
    "conv4_1": 1, "conv3_4": 5, "conv3_3": 8, "conv3_2": 11, "conv3_1": 14,
    "conv2_2": 18, "conv2_1": 21, "conv1_2": 25, "conv1_1": 28,
}


@dataclass
class DecoderConfig:
    """The decoder's norm layer by registry name, and whether it has a learnt per-channel
    affine map (files written before ``affine`` was saved read as True, as they were built)."""

    norm: str = NormName.NONE.value
    affine: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class ConvBlock(nn.Module):
    """Reflection-padded 3x3 conv, then norm and ReLU (both skipped for the output block)."""

    def __init__(self, cin: int, cout: int, norm_layer, final: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")
        self.norm = nn.Identity() if final else norm_layer(cout)
        self.act = nn.Identity() if final else nn.ReLU()
        self.fused = False  # fused conv + ReLU kernels for inference (see nn.fused.conv_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused and isinstance(self.norm, (nn.Identity, Identity2d)):
            return conv_act(x, self.conv, relu=isinstance(self.act, nn.ReLU))
        return self.act(self.norm(conv_act(x, self.conv, relu=False, fused=self.fused)))


class AdaINDecoder(nn.Module):
    """Decoder from relu4_1 features to RGB.

    Shape:
        (N, 512, h, w) -> (N, 3, 8h, 8w)
    """

    def __init__(self, config: DecoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or DecoderConfig()
        norm_layer = norm_factory(self.config.norm, affine=self.config.affine)
        last = DECODER_LAYERS[-1][0]
        self.blocks = nn.ModuleDict(
            {
                name: ConvBlock(cin, cout, norm_layer, final=name == last)
                for name, cin, cout, _ in DECODER_LAYERS
            }
        )
        self._upsample_after = {name for name, _, _, up in DECODER_LAYERS if up}

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() != 4 or features.shape[1] != 512:
            raise ValueError(
                f"decoder expects (N, 512, h, w) relu4_1 features; got {tuple(features.shape)}"
            )
        h = features
        for name, block in self.blocks.items():
            h = block(h)
            if name in self._upsample_after:
                h = nn.functional.interpolate(h, scale_factor=2, mode="nearest")
        return h


def adain_decoder_key_map() -> dict[str, str]:
    """Map this decoder's conv keys to the public AdaIN ``decoder.pth`` keys."""
    return {
        f"blocks.{name}.conv.{param}": f"{idx}.{param}"
        for name, idx in ADAIN_SEQUENTIAL_INDEX.items()
        for param in ("weight", "bias")
    }
