"""The check every render path shares before it writes: a stylised image must hold only finite
values. When a model's arithmetic overflows (fp16's range ends at 65504; extreme weights), its
output is NaN or infinite, which an image encoder turns into black pixels. Such an output is
never written: it is computed again in fp32 when a lower precision caused it
(:meth:`~stylenorm.inference.stylize.Stylizer.finite`), otherwise refused in one line."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..errors import NonFiniteError

LOW_PRECISION = (torch.float16, torch.bfloat16)
PRECISION_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def arrays_of(value) -> list:
    """The tensors or arrays in ``value``: itself, or the fields of a style code (a dataclass
    of tensors and lists of tensors)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return [value]
    if dataclasses.is_dataclass(value):
        found = []
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            for part in item if isinstance(item, (list, tuple)) else [item]:
                found += arrays_of(part)
        return found
    return []


def size_of(value) -> int:
    return sum(a.size if isinstance(a, np.ndarray) else a.numel() for a in arrays_of(value))


def count_non_finite(value) -> int:
    """How many values of ``value`` (images, or a style code) are NaN or infinite."""
    return sum(_count(a) for a in arrays_of(value))


def _count(images: torch.Tensor | np.ndarray) -> int:
    if isinstance(images, np.ndarray):
        if not np.issubdtype(images.dtype, np.floating):
            return 0
        return int(images.size - np.count_nonzero(np.isfinite(images)))
    if not images.is_floating_point():
        return 0
    return int(images.numel() - torch.isfinite(images).sum().item())


def non_finite_message(count: int, total: int, dtype: torch.dtype | None = None,
                       model: str | None = None) -> str:
    """The refusal: how much of the output broke, in which precision, and what to do."""
    where = f" in {PRECISION_NAMES.get(dtype, str(dtype))}" if dtype is not None else ""
    which = f"model {model!r}" if model else "the model"
    return (f"{which} gave NaN or infinite values{where} ({count} of {total} values): "
            "its arithmetic overflows on this input; nothing written")


def require_finite(images, dtype: torch.dtype | None = None, model: str | None = None) -> None:
    """Raise :class:`NonFiniteError` when ``images`` (or a style code) hold a NaN or an
    infinite value."""
    count = count_non_finite(images)
    if count:
        raise NonFiniteError(non_finite_message(count, size_of(images), dtype, model))


def cast_code(code, dtype: torch.dtype):
    """A style code (a dataclass of tensors or lists of tensors) with its floating-point
    tensors in ``dtype``; the same object when nothing changes."""
    if not dataclasses.is_dataclass(code):
        return code
    changes = {}
    for f in dataclasses.fields(code):
        value = getattr(code, f.name)
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != dtype:
            changes[f.name] = value.to(dtype)
        elif isinstance(value, list) and any(isinstance(v, torch.Tensor) and v.dtype != dtype
                                             for v in value):
            changes[f.name] = [v.to(dtype) if isinstance(v, torch.Tensor)
                               and v.is_floating_point() else v for v in value]
    return dataclasses.replace(code, **changes) if changes else code


def finite_frame(rgb, index: int):
    """A video frame ``rgb`` (stylised, before encoding) unchanged, or :class:`NonFiniteError`
    naming frame ``index`` (from 0) when it holds NaN or infinite values."""
    try:
        require_finite(rgb)
    except NonFiniteError as exc:
        raise NonFiniteError(f"frame {index}: {exc}") from None
    return rgb
