"""What inference code may ask of a model. Every model is :class:`Renderable`: the one render
path (:mod:`stylenorm.inference.render`) calls only

1. ``encode_content(images, alpha)``: the content's features with their statistics and
   whatever else the model says ``alpha`` needs from the content (the lite model: its own code
   and the detail its rebuild loses; the CIN network: the pixels it blends back toward);
2. ``decode_features(content, code, alpha, mask)``: the image, from those, a code, the style
   strength and an optional two-style mask.

Alpha is each model's own concern, inside these two. A :class:`StyleModel` (the AdaIN model
(:mod:`.adain`), the lite model (:mod:`.lite`)) takes its styles from images,
``style_code(styles)`` giving a code per style image (codes concatenate, mix and select), and
can be tiled: ``encode(images)`` gives the bare features of a tile, ``content_needs(alpha)``
says what to take from the whole content besides its statistics (``own_code``, and the detail
the model's rebuild loses), ``feature_scale`` pixels lie between features, ``feature_size(h,
w)`` is the feature map of an h x w image and ``mask_at`` resizes a mask to the resolution
``decode_features`` reads it at. A :class:`FixedStyleModel` (the CIN network (:mod:`.cin`))
holds its styles; its code is its mixing weights over them (``weights_for``).

``forward(content, code, alpha, mask)`` of a style model is ``decode_features(encode_content(
content, alpha), code, alpha, mask)``: the same definition in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from ..nn.fused import set_fused, to_inference_layout


@dataclass(frozen=True)
class ContentNeeds:
    """What a model needs from the whole content, besides its features' statistics, for one
    ``alpha``: the content's own code (the lite model blends the style's code toward it) and the
    detail the model's rebuild of the content from that code loses (added back in proportion
    to ``1 - alpha``). The tiled path computes these over the whole image."""

    own_code: bool = False
    detail: bool = False


@dataclass
class ContentFeatures:
    """A content's features (model dtype), their per-channel mean and std (float32), the
    content's own code where the model blends toward it for ``alpha`` < 1 (else None), the
    content's size in pixels where it is known (a whole content; not a tile), and, for models
    that restore the content's detail at ``alpha`` < 1, that detail: the content minus the
    model's rebuild of it from its own code, computed once per content (else None).

    Shape:
        features (N, C, h, w); mean, std (N, C, 1, 1); detail (N, 3, H, W).
    """

    features: Tensor
    mean: Tensor
    std: Tensor
    own_code: Any = None
    image_size: tuple[int, int] | None = None
    detail: Tensor | None = None

    def select(self, rows: list[int]) -> ContentFeatures:
        """The contents at ``rows`` of the batch."""
        own = None if self.own_code is None else self.own_code.take(rows)
        detail = None if self.detail is None else self.detail[rows]
        return ContentFeatures(self.features[rows], self.mean[rows], self.std[rows], own,
                               self.image_size, detail)

    def region(self, rows: slice, cols: slice, scale: int) -> ContentFeatures:
        """The features of a tile (``rows``, ``cols`` in feature positions) with the whole
        content's statistics and own code, and the detail under them (``scale`` per feature)."""
        detail = None
        if self.detail is not None:
            detail = self.detail[..., rows.start * scale : rows.stop * scale,
                                 cols.start * scale : cols.stop * scale]
        return ContentFeatures(self.features[..., rows, cols], self.mean, self.std,
                               self.own_code, None, detail)


class StyleCodeLike(Protocol):
    """A batch of style codes: one per style."""

    @classmethod
    def cat(cls, codes: list) -> StyleCodeLike: ...

    def mix(self, weights: Tensor) -> StyleCodeLike: ...

    def select(self, index: int) -> StyleCodeLike: ...

    def take(self, rows: list[int]) -> StyleCodeLike: ...

    def __len__(self) -> int: ...


@runtime_checkable
class Renderable(Protocol):
    """Every model: what the one render path calls (see the module doc). ``images`` are
    (N, 3, H, W) in [0, 1] as the caller has them; the model prepares them itself."""

    kind: str

    def use_fast_path(self, enabled: bool = True) -> Renderable: ...

    def prepare(self, images: Tensor) -> Tensor: ...

    def encode_content(self, images: Tensor, alpha: float = 1.0) -> ContentFeatures: ...

    def decode_features(self, content: ContentFeatures, code: Any, alpha: float = 1.0,
                        mask: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class StyleModel(Renderable, Protocol):
    """An arbitrary-style model, which can be tiled (see the module doc)."""

    feature_scale: int

    def content_needs(self, alpha: float) -> ContentNeeds: ...

    def style_code(self, styles: Tensor) -> StyleCodeLike: ...

    def encode(self, images: Tensor) -> Tensor: ...

    def own_code(self, images: Tensor) -> StyleCodeLike | None: ...

    def feature_size(self, height: int, width: int) -> tuple[int, int]: ...

    def mask_at(self, mask: Tensor, feature_size: tuple[int, int]) -> Tensor: ...

    def __call__(self, content: Tensor, code: StyleCodeLike, alpha: float = 1.0,
                 mask: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class FixedStyleModel(Renderable, Protocol):
    """A network that holds its styles (CIN): its code picks one by index or mixes them by
    weights (``weights_for``); it runs whole, never in tiles."""

    style_names: list[str]

    def weights_for(self, index: int | None, weights: list[float] | None) -> Tensor: ...


class InferenceSwitch:
    """What every model shares for inference (a mixin for :class:`torch.nn.Module` models):
    the switch between the fused fast path and the plain reference path, and input layout."""

    fast: bool = False

    def use_fast_path(self: nn.Module, enabled: bool = True):
        """Run fused kernels (``True``) or the plain reference modules (``False``); the same
        weights and, within rounding, the same outputs. Returns the model."""
        set_fused(self, enabled)
        self.fast = enabled
        return self

    def prepare(self: nn.Module, images: Tensor) -> Tensor:
        """Images on the model's device, in its dtype and memory layout."""
        return to_inference_layout(images, self)


__all__ = ["ContentFeatures", "ContentNeeds", "FixedStyleModel", "InferenceSwitch", "Renderable",
           "StyleCodeLike", "StyleModel"]
