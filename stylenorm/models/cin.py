"""A multi-style feed-forward transformer network with conditional instance norm.

The architecture of Johnson et al. (2016) as used by Dumoulin et al., "A Learned Representation
for Artistic Style" (2017): a 9x9 convolution, two stride-2 convolutions, residual blocks, two
nearest-neighbour upsamplings each followed by a convolution, and a 9x9 output convolution with
a sigmoid. Every convolution uses reflection padding and, except the last, is followed by a
:class:`~..nn.conditional.ConditionalInstanceNorm2d` holding one (gamma, beta) row per style.
All styles share the convolutions, so a style costs 2 * (sum of channels) numbers, and a convex
mix of style weights interpolates between styles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.conditional import ConditionalInstanceNorm2d, one_hot_weights
from ..nn.fused import to_inference_layout
from ..nn.statistics import mean_std
from .protocol import ContentFeatures, InferenceSwitch

__all__ = ["CINConfig", "CINTransformer", "grown_state"]


@dataclass
class CINConfig:
    """``widths``: channels at full, 1/2 and 1/4 resolution; ``style_names``: one per style."""

    style_names: list[str] = field(default_factory=lambda: ["style0"])
    widths: tuple[int, int, int] = (32, 64, 128)
    res_blocks: int = 5

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        self.style_names = list(self.style_names)
        if len(self.widths) != 3 or min(self.widths) < 1 or self.res_blocks < 1:
            raise ValueError(f"CINConfig needs 3 positive widths and res_blocks >= 1; "
                             f"got {self.widths}, {self.res_blocks}")
        if not self.style_names:
            raise ValueError("CINConfig needs at least one style name")

    @property
    def num_styles(self) -> int:
        return len(self.style_names)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["widths"] = list(self.widths)
        return values


class CINConv(nn.Module):
    """Reflection-padded conv, then CIN and (unless ``relu=False``) ReLU; ``up`` upsamples by 2
    (nearest) first."""

    def __init__(self, cin: int, cout: int, kernel: int, num_styles: int, stride: int = 1,
                 up: bool = False, relu: bool = True) -> None:
        super().__init__()
        self.up, self.relu = up, relu
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2,
                              padding_mode="reflect")
        self.norm = ConditionalInstanceNorm2d(cout, num_styles)

    def forward(self, x: Tensor, style_weights: Tensor) -> Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.norm(self.conv(x), style_weights)
        return torch.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    """x + CINConv(CINConv(x)) with the second ReLU left out."""

    def __init__(self, channels: int, num_styles: int) -> None:
        super().__init__()
        self.first = CINConv(channels, channels, 3, num_styles)
        self.second = CINConv(channels, channels, 3, num_styles, relu=False)

    def forward(self, x: Tensor, style_weights: Tensor) -> Tensor:
        return x + self.second(self.first(x, style_weights), style_weights)


class CINTransformer(InferenceSwitch, nn.Module):
    """Image -> stylised image for a style chosen (or mixed) by weights over the styles; a
    :class:`~.protocol.FixedStyleModel` (it has no fused fast path: the switch changes nothing).

    ``forward(images, style_weights)``: images in [0, 1], weights (S,) or (N, S), typically
    one-hot (see :meth:`weights_for`); returns images in [0, 1]. For the render path the code
    is those weights, and ``alpha`` blends the output back toward the content
    (:meth:`decode_features`).

    Shape:
        (N, 3, H, W) with H, W divisible by 4 -> (N, 3, H, W)
    """

    kind = "cin"

    def __init__(self, config: CINConfig | None = None) -> None:
        super().__init__()
        self.config = config or CINConfig()
        w1, w2, w3 = self.config.widths
        s = self.config.num_styles
        self.down = nn.ModuleList([CINConv(3, w1, 9, s), CINConv(w1, w2, 3, s, stride=2),
                                   CINConv(w2, w3, 3, s, stride=2)])
        self.res = nn.ModuleList([ResidualBlock(w3, s) for _ in range(self.config.res_blocks)])
        self.up = nn.ModuleList([CINConv(w3, w2, 3, s, up=True), CINConv(w2, w1, 3, s, up=True)])
        self.out = nn.Conv2d(w1, 3, 9, padding=4, padding_mode="reflect")

    @property
    def num_styles(self) -> int:
        return self.config.num_styles

    @property
    def style_names(self) -> list[str]:
        return self.config.style_names

    def cin_layers(self) -> list[ConditionalInstanceNorm2d]:
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm2d)]

    def weights_for(self, index: int | None = None, weights=None) -> Tensor:
        """One-hot weights for style ``index``, or ``weights`` (S numbers, >= 0) normalised to
        sum to 1; a clear error for a wrong index or count."""
        s = self.num_styles
        if weights is None:
            if index is None or not 0 <= index < s:
                raise ValueError(f"style index must be in [0, {s}) for this model's {s} styles "
                                 f"{self.config.style_names}; got {index}")
            return one_hot_weights(index, s)
        w = torch.as_tensor(weights, dtype=torch.float32).flatten()
        if w.numel() != s or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"style weights must be {s} numbers >= 0 with a positive sum "
                             f"(one per style: {self.config.style_names}); got {w.tolist()}")
        return w / w.sum()

    def add_styles(self, names: list[str]) -> None:
        """Append styles (new gamma/beta rows, initialised to the mean of the old ones)."""
        for layer in self.cin_layers():
            layer.add_styles(len(names))
        self.config.style_names = [*self.config.style_names, *names]

    def forward(self, images: Tensor, style_weights: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] % 4 or images.shape[3] % 4:
            raise ValueError(f"CINTransformer expects (N, 3, H, W) with H, W divisible by 4; "
                             f"got {tuple(images.shape)}")
        h = images
        for layer in self.down:
            h = layer(h, style_weights)
        for block in self.res:
            h = block(h, style_weights)
        for layer in self.up:
            h = layer(h, style_weights)
        return torch.sigmoid(self.out(h))

    @torch.no_grad()
    def stylize(self, image: Tensor, style_weights: Tensor) -> Tensor:
        """Any-size (N, 3, H, W) image: reflection-padded to a multiple of 4, then cropped."""
        h, w = image.shape[-2:]
        pad_h, pad_w = -h % 4, -w % 4
        padded = F.pad(image, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else image
        return self(padded, style_weights.to(image.device))[..., :h, :w]

    def prepare(self, images: Tensor) -> Tensor:
        """``images`` on the model's device in float32: the content that ``alpha`` < 1 blends
        the output back toward (the network's input is cast in :meth:`decode_features`)."""
        return images.to(self.out.weight.device, torch.float32)

    def encode_content(self, images: Tensor, alpha: float = 1.0) -> ContentFeatures:
        """The content as it is: the network runs whole in :meth:`decode_features` (no part of
        it serves several styles), so its features are the pixels, with their per-channel
        statistics, and they are all that ``alpha`` needs."""
        mean, std = mean_std(images)
        return ContentFeatures(images, mean, std, image_size=tuple(images.shape[-2:]))

    def decode_features(self, content: ContentFeatures, code: Tensor, alpha: float = 1.0,
                        mask: Tensor | None = None) -> Tensor:
        """The content stylised by the mixing weights ``code`` (:meth:`weights_for`), blended
        back toward it by ``alpha``: ``alpha * out + (1 - alpha) * content`` (float32)."""
        if mask is not None:
            raise ValueError("a CIN model takes no mask")
        pixels = content.features
        out = self.stylize(to_inference_layout(pixels, self), code).float()
        return alpha * out + (1 - alpha) * pixels


def grown_state(model: CINTransformer, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The weights of a CIN model with fewer residual blocks, completed with ``model``'s own new
    blocks: each new block's second norm scales and shifts by zero for every style, so the
    block starts as the identity and the grown model computes what the smaller one did (its
    first norm and both convolutions keep their fresh values, so the gradients reach them once
    the scales move). Other differences are left for the strict loader."""
    grown = dict(tensors)
    for key, value in model.state_dict().items():
        if key in tensors or not key.startswith("res."):
            continue
        silent = key.endswith((".second.norm.gamma", ".second.norm.beta"))
        grown[key] = torch.zeros_like(value) if silent else value.clone()
    return grown
