"""A CIN network's styles through an AdaIN teacher: ``stylenorm train cin --teacher NAME|FILE``.

The Gram loss alone, over the few thousand iterations a CPU affords, gives styles that differ
mostly in palette. With a teacher (an installed AdaIN model), every sample also gets the
teacher's stylisation t of its content crop with its style k (the style codes of the K styles
are computed once), and the loss of :mod:`.cin` changes to::

    L = content_weight * ||f_content(o) - f_content(t)||^2     (the teacher's output, not c)
      + style_weight * sum_l ||G(f_l(o)) - G(f_l(s_k))||^2
      + pixel_weight * mean|o - t|

The teacher runs on every batch (no cache: K is small and each crop is new), under no_grad and
outside the training's autocast, in its own dtype.
"""

from __future__ import annotations

import torch

from .teacher import Teacher


class CINTeacher:
    """The teacher and the style codes of the trained styles (rows of the CIN model)."""

    def __init__(self, name: str, styles: list[torch.Tensor], device: torch.device,
                 dtype: torch.dtype) -> None:
        self.teacher = Teacher(name, device, dtype)
        self.codes = self.teacher.codes(styles)

    def outputs(self, content: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
        """The teacher's stylisation of each content crop with its style, float32 in [0, 1].

        Shape: content (N, 3, H, W), picks (N,) positions among the styles -> (N, 3, H, W)"""
        return self.teacher.outputs(content, self.codes.take(picks.tolist()))

    def provenance(self) -> dict:
        return self.teacher.provenance()
