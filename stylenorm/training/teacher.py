"""The teacher every trainer distils from: an installed AdaIN model (the VGG encoder and a
decoder), loaded and hashed once, run without gradients in its own dtype.

``train lite --teacher`` caches its outputs (:mod:`.teacher_cache`), ``train cin --teacher``
and ``tune`` run it on every batch (:class:`Teacher`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import StylenormError
from ..models.adain import AdaINModel, StyleCode

__all__ = ["Teacher", "load_teacher", "teacher_output"]


def load_teacher(name: str, device: torch.device, dtype: torch.dtype):
    """An installed AdaIN model by name or file, on ``device`` at ``dtype``, fused for
    inference; and its file's SHA-256."""
    from ..hub.store import resolve_weights
    from ..hub.zoo import file_sha256, load_model

    path = resolve_weights(name)
    model = load_model(path)
    if getattr(model, "kind", None) != AdaINModel.kind:
        raise StylenormError(f"--teacher {name}: a {getattr(model, 'kind', '?')!r} model; the "
                             "teacher must be an AdaIN model (VGG encoder and decoder), e.g. "
                             "the reference one: `stylenorm weights fetch adain`")
    model = model.to(device, dtype).to(memory_format=torch.channels_last)
    return model.use_fast_path(), file_sha256(path)


@torch.inference_mode()
def teacher_output(teacher, contents: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """The teacher's stylisation of content i with style i, float32 in [0, 1].

    Shape: contents (N, 3, H, W), styles (N, 3, H', W') in [0, 1] -> (N, 3, H, W)"""
    out = teacher(teacher.prepare(contents), teacher.style_code(teacher.prepare(styles)))
    return out.float().clamp(0, 1)


class Teacher:
    """A loaded teacher, for trainers that run it on every batch with styles fixed up front."""

    def __init__(self, name: str, device: torch.device, dtype: torch.dtype) -> None:
        self.name = Path(name).name
        self.model, self.sha256 = load_teacher(name, device, dtype)
        self.device = device

    @torch.no_grad()
    def codes(self, styles: list[torch.Tensor]) -> StyleCode:
        """The codes of style images (each (1, 3, H, W) in [0, 1], any size), one row each."""
        return StyleCode.cat([self.model.style_code(self.model.prepare(s.to(self.device)))
                              for s in styles])

    @torch.no_grad()
    def outputs(self, content: torch.Tensor, code: StyleCode) -> torch.Tensor:
        """The stylisation of each content crop with its row of ``code`` (or the one row for
        all), float32 in [0, 1]. Shape: content (N, 3, H, W) -> (N, 3, H, W)"""
        if len(code) == 1 and content.shape[0] > 1:
            code = code.take([0] * content.shape[0])
        with torch.autocast(content.device.type, enabled=False):  # the teacher has its dtype
            return self.model(self.model.prepare(content), code).float().clamp(0, 1)

    def provenance(self) -> dict:
        return {"teacher": self.name, "teacher_sha256": self.sha256}
