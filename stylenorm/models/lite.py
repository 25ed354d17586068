"""The lite model: VGG-free arbitrary style transfer in under two million parameters.

Two micro encoders (content, style) of three levels each (full, 1/2 and 1/4 resolution; the
style encoder optionally a fourth at 1/8, ``style_deep``) and a micro decoder. The style image is
reduced to a :class:`LiteCode`: the per-channel mean and std of the style encoder's features at
every level. Learned modulators turn the code into

* at the bottleneck (1/4): the target mean and std of an AdaIN on the content features,
* at the decoder's 1/2 and full levels: a per-channel scale and shift (FiLM).

Nothing in the decoder depends on statistics of the content, so an image split into tiles is
decoded consistently once the bottleneck's content statistics are taken globally
(``content_stats``). ``alpha`` mixes the style's code with the content's own code (from the
style encoder); the model is trained to rebuild a content from its own code, and what the
rebuild loses is added back in proportion to ``1 - alpha`` (:func:`add_detail`), so
``alpha = 0`` returns the content exactly and smaller ``alpha`` moves smoothly toward it.

The fast path (:meth:`~.protocol.InferenceSwitch.use_fast_path`) runs the same modules with every
stride-1 convolution through :func:`~stylenorm.nn.fused.conv_act` (on the CPU one oneDNN call with
the ReLU fused; on large maps only the one-pixel frame is recomputed with reflection padding
instead of padding a copy of the map), residual additions in place, each FiLM modulation (scale,
shift, ReLU) as one fused multiply-add plus an in-place ReLU, and the content statistics in two
plain passes. At 1024 px on one core, padding copies, separate ReLUs and additions took about
half of the plain model's time.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.statistics import mean_std, two_pass_mean_std
from .adain import resize_mask
from .lite_blocks import LiteDecoder, LiteEncoder, Modulator, StyleFilm
from .protocol import ContentFeatures, ContentNeeds, InferenceSwitch
from .shapes import crop, round_ratio


@dataclass
class LiteConfig:
    widths: tuple[int, int, int] = (16, 32, 64)
    res_blocks: int = 2
    style_size: int = 256  # the style image's shorter side inside the model
    style_mlp: int = 0  # hidden units of the StyleFilm on the decoder's residual blocks; 0: none
    style_deep: int = 0  # channels of a 1/8 level of the style encoder, read by the StyleFilm
    half_blocks: int = 0  # residual blocks at the decoder's 1/2 level (FiLM'd by a StyleFilm)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LiteConfig:
        data = dict(data)
        data["widths"] = tuple(data.get("widths", cls.widths))
        return cls(**data)


@dataclass
class LiteCode:
    """Per-level style statistics. Shape: ``means[l]``, ``stds[l]``: (S, C_l, 1, 1)."""

    means: list[torch.Tensor] = field(default_factory=list)
    stds: list[torch.Tensor] = field(default_factory=list)

    @classmethod
    def cat(cls, codes: list[LiteCode]) -> LiteCode:
        return cls([torch.cat(m) for m in zip(*(c.means for c in codes), strict=True)],
                   [torch.cat(s) for s in zip(*(c.stds for c in codes), strict=True)])

    def mix(self, weights: torch.Tensor) -> LiteCode:
        w = (weights / weights.sum()).to(self.means[0]).view(-1, 1, 1, 1)
        return LiteCode([(m * w).sum(0, keepdim=True) for m in self.means],
                        [(s * w).sum(0, keepdim=True) for s in self.stds])

    def select(self, index: int) -> LiteCode:
        return LiteCode([m[index : index + 1] for m in self.means],
                        [s[index : index + 1] for s in self.stds])

    def take(self, rows: list[int]) -> LiteCode:
        return LiteCode([m[rows] for m in self.means], [s[rows] for s in self.stds])

    def __len__(self) -> int:
        return self.means[0].shape[0]

    def lerp(self, other: LiteCode, alpha: float) -> LiteCode:
        """alpha * self + (1 - alpha) * other, level by level."""
        return LiteCode([alpha * a + (1 - alpha) * b for a, b in zip(self.means, other.means,
                                                                       strict=True)],
                        [alpha * a + (1 - alpha) * b for a, b in zip(self.stds, other.stds,
                                                                       strict=True)])


class LiteModel(InferenceSwitch, nn.Module):
    """The lite model (see the module doc); a :class:`~.protocol.StyleModel`."""

    kind = "lite"
    feature_scale = 4  # the bottleneck lies after two stride-2 convolutions

    def __init__(self, config: LiteConfig | None = None) -> None:
        super().__init__()
        self.config = config or LiteConfig()
        w, blocks = self.config.widths, self.config.res_blocks
        self.content_encoder = LiteEncoder(w, blocks)
        deep = self.config.style_deep
        if deep and not self.config.style_mlp:
            raise ValueError("a lite model with style_deep needs style_mlp: the StyleFilm is "
                             "what reads the deep level's statistics")
        self.style_encoder = LiteEncoder(w, blocks, deep)
        self.decoder = LiteDecoder(w, blocks, self.config.half_blocks)
        self.modulators = nn.ModuleList(
            [Modulator(w[0], False), Modulator(w[1], False), Modulator(w[2], True)])
        self.style_film = (StyleFilm(sum(w) + deep, self.config.style_mlp, w[2], blocks, w[1],
                                     self.config.half_blocks)
                           if self.config.style_mlp else None)

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.out.weight.dtype

    def _style_input(self, styles: torch.Tensor) -> torch.Tensor:
        """Styles resized to ``style_size`` shorter side (at that size already: unchanged), the
        size in integer arithmetic from the shape, so that an export traces it."""
        size = self.config.style_size
        if size:
            h, w = styles.shape[-2:]
            shorter = torch.sym_min(h, w)
            target = (round_ratio(h * size, shorter), round_ratio(w * size, shorter))
            styles = F.interpolate(styles.float(), size=target, mode="bilinear", antialias=True,
                                   align_corners=False)
        return styles.to(self.dtype)

    def style_code(self, styles: torch.Tensor) -> LiteCode:
        """The code of each style image in a batch (N, 3, H, W)."""
        stats = [mean_std(f.float()) for f in self.style_encoder(self._style_input(styles))]
        return LiteCode([m for m, _ in stats], [s for _, s in stats])

    def content_features(self, content: torch.Tensor) -> torch.Tensor:
        return self.content_encoder(content.to(self.dtype))[-1]

    encode = content_features

    def content_stats(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The bottleneck's per-channel mean and std (float32)."""
        if self.fast:
            return two_pass_mean_std(feat)
        return mean_std(feat.float())

    def own_code(self, images: torch.Tensor) -> LiteCode:
        """The content's own code: what ``alpha`` < 1 blends the style's code toward."""
        return self.style_code(images)

    def content_needs(self, alpha) -> ContentNeeds:
        """At ``alpha`` = 1 nothing more; below, the content's own code and the detail that its
        rebuild from that code loses. A traced ``alpha`` (a tensor: the ONNX export's input) is
        known only when the graph runs: both, which at 1 add exactly nothing."""
        blend = isinstance(alpha, torch.Tensor) or alpha != 1.0
        return ContentNeeds(own_code=blend, detail=blend)

    def encode_content(self, images: torch.Tensor, alpha: float = 1.0) -> ContentFeatures:
        """Bottleneck features, their statistics and what :meth:`content_needs` says ``alpha``
        needs: the content's own code and the detail its rebuild from that code loses (decoded
        once here, however many styles the features then serve)."""
        feats = self.content_features(images)
        mean, std = self.content_stats(feats)
        h, w = images.shape[-2:]
        if not self.content_needs(alpha).own_code:
            return ContentFeatures(feats, mean, std, image_size=(h, w))
        own = self.own_code(images)
        detail = images.float() - crop(self.decode(feats, own, (mean, std)), h, w)
        return ContentFeatures(feats, mean, std, own, (h, w), detail)

    def feature_size(self, height: int, width: int) -> tuple[int, int]:
        """The bottleneck's size: two stride-2 convolutions, rounded up."""
        for _ in range(2):
            height, width = (height + 1) // 2, (width + 1) // 2
        return height, width

    def mask_at(self, mask: torch.Tensor, feature_size: tuple[int, int]) -> torch.Tensor:
        """The mask at full resolution (its FiLM acts on the decoder's full-size level)."""
        return resize_mask(mask, (feature_size[0] * 4, feature_size[1] * 4))

    def decode_features(self, content: ContentFeatures, code: LiteCode, alpha: float = 1.0,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
        """The image from features with given statistics (e.g. a tile's features with the whole
        image's statistics and own code); ``mask`` at :meth:`mask_at`'s size or the content's.
        ``alpha`` < 1 mixes the style's code with the content's own and adds back the detail."""
        stats = (content.mean, content.std)
        if not self.content_needs(alpha).own_code:
            return self.decode(content.features, code, stats, mask)
        if content.own_code is None:
            raise ValueError(f"alpha {alpha} needs the content's own code: encode the content "
                             "with encode_content(images, alpha)")
        styled = self.decode(content.features, code.lerp(content.own_code, alpha), stats, mask)
        return styled if content.detail is None else add_detail(styled, content.detail, alpha)

    def decode(self, feat, code: LiteCode, stats=None, mask=None) -> torch.Tensor:
        """Image from bottleneck features, a code (1 style, or 2 with a mask) and the content's
        bottleneck statistics (taken from ``feat`` when not given)."""
        c_mean, c_std = stats if stats is not None else self.content_stats(feat)
        normalised = (feat.float() - c_mean) / c_std
        levels = len(self.modulators)  # a deep level (style_deep) reaches the StyleFilm only
        mods = [m(mean, std) for m, mean, std in zip(self.modulators, code.means[:levels],
                                                       code.stds[:levels], strict=True)]
        res_films = None if self.style_film is None else self.style_film(code.means, code.stds)
        if mask is not None:
            h, w = feat.shape[-2:]
            sizes = [(4 * h, 4 * w), (2 * h, 2 * w), (h, w)]
            mods = [blend_by_mask(mod, resize_mask(mask.to(mod[0]), size))
                    for mod, size in zip(mods, sizes, strict=True)]
            if res_films is not None:  # the bottleneck's blocks, then those at 1/2
                at = [(h, w)] * self.config.res_blocks + [(2 * h, 2 * w)] * self.config.half_blocks
                res_films = [blend_by_mask(film, resize_mask(mask.to(film[0]), size))
                             for film, size in zip(res_films, at, strict=True)]
        s_std, s_mean = mods[2]
        h = (normalised * s_std + s_mean).to(self.dtype)
        return self.decoder(h, mods[:2], res_films).float()

    def forward(self, content: torch.Tensor, code: LiteCode, alpha: float = 1.0,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode_features(self.encode_content(content, alpha), code, alpha, mask)


def add_detail(styled: torch.Tensor, detail: torch.Tensor, alpha) -> torch.Tensor:
    """``styled + (1 - alpha) * detail``, with ``detail`` the content minus the decoder's rebuild
    of it from its own code: at ``alpha`` < 1 what that rebuild loses is added back in
    proportion, so ``alpha = 0`` returns the content exactly and ``alpha`` moves smoothly toward
    the full style. ``detail`` may be smaller than the decoder's output (sizes that are not a
    multiple of 4); the rest is left as decoded (the detail is padded with zeros, which traces).

    Shape: styled (N, 3, H', W'); detail (N, 3, H, W) with H <= H', W <= W'."""
    h, w = detail.shape[-2:]
    added = (1 - alpha) * detail.to(styled.device, torch.float32)
    return styled.float() + F.pad(added, (0, styled.shape[-1] - w, 0, styled.shape[-2] - h))


def blend_by_mask(mod, mask: torch.Tensor):
    """Per-pixel (scale, shift) from two styles' (2, C, 1, 1) values: style 0 where mask is 1."""
    scale, shift = mod
    return tuple(v[:1] * mask + v[1:] * (1 - mask) for v in (scale, shift))


_RES_KEY = re.compile(
    r"(content_encoder\.res|style_encoder\.(res|deep)|decoder\.(res|half_res))\.\d+\.conv[12]\."
    r"(weight|bias)")
_FILM_OUT = ("style_film.out.", "style_film.half_out.")  # one row block per residual block
_NEW_PARTS = ("style_film.", "style_encoder.down3.", "style_encoder.deep.", "code_probe.")


def grown_state(model: LiteModel, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights of a smaller lite model (fewer residual blocks per stage or at the decoder's
    1/2 level, or no StyleFilm, or no deep style level), completed with ``model``'s own new
    parts: each new block's second conv is zeroed, so it starts as the identity, a new StyleFilm
    (or its rows for new blocks) keeps its zero output, and a deep style level is read only by
    a StyleFilm; the grown model computes what the smaller one did (a training-only
    ``code_probe`` is kept as ``model`` has it). Other differences are left for the strict
    loader."""
    grown = dict(tensors)
    for key, value in model.state_dict().items():
        old = tensors.get(key)
        if old is None and _RES_KEY.fullmatch(key):
            grown[key] = torch.zeros_like(value) if ".conv2." in key else value.clone()
        elif old is None and key.startswith(_NEW_PARTS):
            grown[key] = value.clone()
        elif key.startswith(_FILM_OUT) and old.shape[1:] == value.shape[1:] and len(old) < len(
                value):  # new residual blocks: their FiLM rows come last, at zero
            grown[key] = torch.cat([old, value.new_zeros((len(value) - len(old),
                                                          *value.shape[1:]))])
        elif key == "style_film.hidden.weight" and old.shape[0] == value.shape[0] and (
                old.shape[1] == 2 * sum(model.config.widths) < value.shape[1]):
            grown[key] = _with_deep_columns(old, value.shape[1] // 2 - sum(model.config.widths))
    return grown


def _with_deep_columns(weight: torch.Tensor, deep: int) -> torch.Tensor:
    """A StyleFilm's first layer with zero columns for a new deep level's statistics. The code
    is read as (means of every level, stds of every level), the deep level last in each half."""
    means, stds = weight.chunk(2, dim=1)
    zeros = weight.new_zeros((len(weight), deep))
    return torch.cat([means, zeros, stds, zeros], dim=1)
