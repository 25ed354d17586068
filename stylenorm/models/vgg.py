"""VGG-19 encoder truncated after relu4_1, with named feature taps.

Two families share one layer layout:

* ``normalised``: the "normalised VGG-19" of AdaIN/WCT. Its first layer is a 1x1 convolution
  that maps RGB in [0, 1] to mean-subtracted BGR*255; convolutions use reflection padding and
  pooling uses ``ceil_mode=True``.
* ``torchvision``: torchvision's ImageNet VGG-19 (``features`` keys). Inputs are normalised with
  the ImageNet mean and std; convolutions use zero padding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..choices import EncoderFamily
from ..nn.fused import conv_act

TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

# (layer name, in channels, out channels); "pool" marks a 2x2 max pool.
VGG_LAYERS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), ("pool", 0, 0),
    ("conv2_1", 64, 128), ("conv2_2", 128, 128), ("pool", 0, 0),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
    ("pool", 0, 0),
    ("conv4_1", 256, 512),
)
# Channels of each tap (relu<k>_1 follows conv<k>_1).
TAP_CHANNELS: dict[str, int] = {f"relu{n[4:]}": out for n, _, out in VGG_LAYERS
                                if f"relu{n[4:]}" in TAPS}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class EncoderConfig:
    family: str = EncoderFamily.NORMALISED.value

    def to_dict(self) -> dict:
        return asdict(self)


class ImageNetNormalize(nn.Module):
    """(x - mean) / std with the ImageNet constants as non-persistent buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class VGGEncoder(nn.Module):
    """Frozen VGG-19 up to relu4_1.

    ``forward(x)`` takes RGB images in [0, 1] and returns ``{tap: features}`` for every name in
    :data:`TAPS` up to ``upto``.

    Shape:
        x: (N, 3, H, W) -> relu1_1 (N, 64, H, W), relu2_1 (N, 128, H/2, W/2),
        relu3_1 (N, 256, H/4, W/4), relu4_1 (N, 512, H/8, W/8) (rounded up for the normalised
        family, down for torchvision).
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or EncoderConfig()
        family = EncoderFamily(self.config.family)
        if family is EncoderFamily.NORMALISED:
            self.preprocess: nn.Module = nn.Conv2d(3, 3, kernel_size=1)
        else:
            self.preprocess = ImageNetNormalize()
        pad_mode = "reflect" if family is EncoderFamily.NORMALISED else "zeros"
        self.ceil_mode = family is EncoderFamily.NORMALISED
        self.fused = False  # fused conv + ReLU kernels for inference (see nn.fused.conv_act)
        self.convs = nn.ModuleDict(
            {
                name: nn.Conv2d(cin, cout, 3, padding=1, padding_mode=pad_mode)
                for name, cin, cout in VGG_LAYERS
                if name != "pool"
            }
        )
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGEncoder:
        # The encoder is a fixed feature extractor: it never switches to training mode.
        return super().train(False)

    def forward(self, x: torch.Tensor, upto: str = "relu4_1") -> dict[str, torch.Tensor]:
        if upto not in TAPS:
            raise ValueError(f"unknown tap {upto!r}; choose from {list(TAPS)}")
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"encoder expects (N, 3, H, W) images; got shape {tuple(x.shape)}")
        feats: dict[str, torch.Tensor] = {}
        h = self.preprocess(x)
        for name, _, _ in VGG_LAYERS:
            if name == "pool":
                h = nn.functional.max_pool2d(h, 2, 2, ceil_mode=self.ceil_mode)
                continue
            h = conv_act(h, self.convs[name], fused=self.fused)
            tap = name.replace("conv", "relu")
            if tap in TAPS:
                feats[tap] = h
                if tap == upto:
                    break
        return feats

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """relu4_1 features only."""
        return self(x)["relu4_1"]


# Index of each layer in the nn.Sequential layouts that public checkpoints use.
NORMALISED_SEQUENTIAL_INDEX = {
    "preprocess": 0, "conv1_1": 2, "conv1_2": 5, "conv2_1": 9, "conv2_2": 12, "conv3_1": 16,
    "conv3_2": 19, "conv3_3": 22, "conv3_4": 25, "conv4_1": 29,
}
TORCHVISION_FEATURES_INDEX = {
    "conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10, "conv3_2": 12,
    "conv3_3": 14, "conv3_4": 16, "conv4_1": 19,
}


def sequential_key_map(family: EncoderFamily | str) -> dict[str, str]:
    """Map this module's state-dict keys to the keys of the public checkpoint layout."""
    family = EncoderFamily(family)
    if family is EncoderFamily.NORMALISED:
        index, prefix = NORMALISED_SEQUENTIAL_INDEX, ""
    else:
        index, prefix = TORCHVISION_FEATURES_INDEX, "features."
    mapping = {}
    for name, idx in index.items():
        ours = name if name == "preprocess" else f"convs.{name}"
        for param in ("weight", "bias"):
            mapping[f"{ours}.{param}"] = f"{prefix}{idx}.{param}"
    return mapping
