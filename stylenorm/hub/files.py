"""Weights files: self-describing safetensors, written and read.

A stylenorm weights file is a safetensors file whose metadata holds
``{"format": "pt", "kind": ..., "config": <json>, "provenance": <json>, "stylenorm_version": ...}``;
the zoo (:mod:`stylenorm.hub.zoo`) rebuilds the model from ``kind`` and ``config``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .._version import __version__
from ..errors import WeightsError
from ..io.atomic import atomic_write

SUFFIX = ".safetensors"



@dataclass
class WeightsMeta:
    """What a weights file says about itself."""

    kind: str
    config: dict
    provenance: dict = field(default_factory=dict)
    version: str = ""


def save_weights(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    kind: str,
    config: dict,
    provenance: dict | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``tensors`` atomically with the model's kind, config and provenance as metadata."""
    path = Path(path)
    prepared = {}
    for key, value in tensors.items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        prepared[key] = value.contiguous()
    provenance = dict(provenance or {})
    provenance.setdefault("num_params", sum(t.numel() for t in prepared.values()))
    metadata = {
        "format": "pt",
        "kind": kind,
        "config": json.dumps(config, sort_keys=True),
        "provenance": json.dumps(provenance, sort_keys=True),
        "stylenorm_version": __version__,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: save_file(prepared, str(tmp), metadata=metadata))
    except OSError as exc:
        raise WeightsError(f"{path}: cannot write weights ({exc.strerror or exc})") from None
    return path


def pack_weights(source: str | os.PathLike, target: str | os.PathLike, *, half: bool = True,
                 config: dict | None = None, provenance: dict | None = None) -> Path:
    """Copy a weights file for shipping: floats in fp16 (``half``), ``config`` entries changed
    (e.g. a lite model's ``style_size``), ``provenance`` entries added; the rest kept."""
    tensors, meta = load_weights(source)
    if Path(target).resolve() == Path(source).resolve():
        raise WeightsError(f"{target}: the packed file would overwrite its source")
    new_config = {**meta.config, **(config or {})}
    extra = {"stored_precision": "fp16" if half else "as trained",
             "packed_from": Path(source).name, **(provenance or {})}
    return save_weights(target, tensors, meta.kind, new_config, {**meta.provenance, **extra},
                        torch.float16 if half else None)


def check_file(path: Path) -> None:
    """One error line unless ``path`` is an existing file."""
    if not path.exists():
        raise WeightsError(f"{path}: no such weights file")
    if path.is_dir():
        raise WeightsError(f"{path}: is a directory, expected a weights file")


def read_meta(path: str | os.PathLike) -> WeightsMeta:
    """The metadata of a stylenorm safetensors file, with clear errors for foreign files."""
    path = Path(path)
    check_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if "kind" not in metadata or "config" not in metadata:
        raise WeightsError(f"{path}: safetensors file has no stylenorm metadata (kind, config)")
    try:
        config = json.loads(metadata["config"])
        provenance = json.loads(metadata.get("provenance", "{}"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: metadata is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(provenance, dict):
        raise WeightsError(f"{path}: metadata config and provenance must be JSON objects")
    return WeightsMeta(metadata["kind"], config, provenance, metadata.get("stylenorm_version", ""))


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], WeightsMeta]:
    """All tensors of a stylenorm safetensors file, and its metadata."""
    path = Path(path)
    meta = read_meta(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path}: corrupt safetensors data ({exc})") from None
    return tensors, meta


def load_state_strict(module: torch.nn.Module, tensors: dict[str, torch.Tensor], source) -> None:
    """Load ``tensors`` into ``module``, naming every missing, unexpected or misshapen tensor."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"{source}: weights do not fit {type(module).__name__}: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise WeightsError(
                f"{source}: tensor {key!r} has shape {tuple(value.shape)}; "
                f"expected {tuple(expected[key].shape)}"
            )
        # the sum is NaN or infinite when an element is (and is ~10x faster than isfinite)
        if value.is_floating_point() and not bool(value.sum(dtype=torch.float32).isfinite()):
            raise WeightsError(f"{source}: tensor {key!r} holds NaN or infinite values; "
                               "the file is corrupt")
    converted = {k: v.to(expected[k].dtype) for k, v in tensors.items()}
    module.load_state_dict(converted, strict=True)
