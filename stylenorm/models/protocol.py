"""What inference code may ask of a model: the :class:`StyleModel` protocol (arbitrary styles,
taken from images) and the :class:`FixedStyleModel` protocol (a network that holds its styles).

Stylisation, tiling, batch runs and the benchmark speak only to these; the AdaIN model
(:mod:`.adain`) and the lite model (:mod:`.lite`) are style models, the CIN network (:mod:`.cin`)
a fixed-style model. A style model's work splits in three so that each part can be reused:

1. ``style_code(styles)``: a code per style image (codes concatenate, mix and select);
2. ``encode_content(images)``: the content's features with their statistics (and, when
   ``alpha`` < 1 needs it, the content's own code), or ``encode(images)`` for the bare features
   when the caller takes the statistics itself (over the tiles of a large image);
3. ``decode_features(content, code, alpha, mask)``: the image, from features, their statistics,
   a code, the style strength and an optional two-style mask.

``forward(content, code, alpha, mask)`` is the three in one call. Features are
``feature_scale`` pixels apart; ``feature_size(h, w)`` is the feature map of an h x w image, and
``mask_at`` resizes a mask to the resolution ``decode_features`` reads it at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from ..nn.fused import set_fused, to_inference_layout


@dataclass
class ContentFeatures:
    """A content's features (model dtype), their per-channel mean and std (float32), the
    content's own code where the model blends toward it for ``alpha`` < 1 (else None), the
    content's size in pixels where it is known, and, for models that restore the content's
    detail at ``alpha`` < 1, that detail: the content minus the model's rebuild of it from its
    own code, computed once per content (else None).

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
class StyleModel(Protocol):
    """An arbitrary-style model (see the module doc)."""

    kind: str
    feature_scale: int
    restores_detail: bool  # encode_content keeps the content's lost detail for alpha < 1

    def use_fast_path(self, enabled: bool = True) -> StyleModel: ...

    def prepare(self, images: Tensor) -> Tensor: ...

    def style_code(self, styles: Tensor) -> StyleCodeLike: ...

    def encode(self, images: Tensor) -> Tensor: ...

    def own_code(self, images: Tensor) -> StyleCodeLike | None: ...

    def encode_content(self, images: Tensor, own_code: bool = True) -> ContentFeatures: ...

    def decode_features(self, content: ContentFeatures, code: StyleCodeLike, alpha: float = 1.0,
                        mask: Tensor | None = None) -> Tensor: ...

    def feature_size(self, height: int, width: int) -> tuple[int, int]: ...

    def mask_at(self, mask: Tensor, feature_size: tuple[int, int]) -> Tensor: ...

    def __call__(self, content: Tensor, code: StyleCodeLike, alpha: float = 1.0,
                 mask: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class FixedStyleModel(Protocol):
    """A network that holds its styles (CIN): pick one by index or mix them by weights."""

    kind: str
    style_names: list[str]

    def use_fast_path(self, enabled: bool = True) -> FixedStyleModel: ...

    def prepare(self, images: Tensor) -> Tensor: ...

    def weights_for(self, index: int | None, weights: list[float] | None) -> Tensor: ...

    def stylize(self, content: Tensor, weights: Tensor) -> Tensor: ...


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


__all__ = ["ContentFeatures", "FixedStyleModel", "InferenceSwitch", "StyleCodeLike", "StyleModel"]
