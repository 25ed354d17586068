"""Weight files: self-describing safetensors, the weights store, and ``.pth`` importers.

A stylenorm weights file is a safetensors file whose metadata holds
``{"format": "pt", "kind": ..., "config": <json>, "provenance": <json>, "stylenorm_version": ...}``;
the loader rebuilds the model from ``kind`` and ``config`` (see :mod:`stylenorm.hub.zoo`).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .._version import __version__
from ..errors import WeightsError
from ..io.atomic import atomic_write
from .records import install_command

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


def _check_file(path: Path) -> None:
    if not path.exists():
        raise WeightsError(f"{path}: no such weights file")
    if path.is_dir():
        raise WeightsError(f"{path}: is a directory, expected a weights file")


def read_meta(path: str | os.PathLike) -> WeightsMeta:
    """The metadata of a stylenorm safetensors file, with clear errors for foreign files."""
    path = Path(path)
    _check_file(path)
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


# --------------------------------------------------------------------------- the store


def weights_home() -> Path:
    """The user's weights store: ``$STYLENORM_HOME`` or the user cache directory."""
    env = os.environ.get("STYLENORM_HOME")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "stylenorm"


def bundled_dir() -> Path:
    """The weights shipped with stylenorm (the repo's ``weights/`` folder)."""
    try:
        from .. import bundled

        return Path(next(iter(bundled.__path__)))
    except (ImportError, StopIteration):
        return Path(__file__).resolve().parents[2] / "weights"


STORE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def store_path(name: str, home: Path | None = None, shadow_shipped: bool = False) -> Path:
    """Where weights ``name`` go in the store: a plain name (letters, digits, ``_ . -``; no
    folders, no ``..``), which may hide a shipped model only when ``shadow_shipped``."""
    if not STORE_NAME.fullmatch(name) or name.endswith(SUFFIX):
        raise WeightsError(f"name {name!r} is not plain: use letters, digits, '_', '.' and '-' "
                           "(no folders, no leading dot, no extension)", params=("name",))
    if not shadow_shipped and (bundled_dir() / f"{name}{SUFFIX}").is_file():
        raise WeightsError(f"name {name!r} is a model shipped with stylenorm, which the import "
                           "would hide; choose another name or pass shadow_shipped",
                           params=("name", "shadow_shipped"))
    return (home or weights_home()) / f"{name}{SUFFIX}"


def shadows_shipped(path: Path) -> bool:
    """Whether ``path`` is a store file that hides a shipped model of the same name."""
    return path.parent != bundled_dir() and (bundled_dir() / path.name).is_file()


def search_path() -> list[Path]:
    return [weights_home(), bundled_dir()]


def resolve_weights(name_or_path: str | os.PathLike) -> Path:
    """An existing file path, or the installed weights called ``name`` (store first)."""
    candidate = Path(name_or_path)
    if candidate.suffix == SUFFIX or candidate.exists() or os.sep in str(name_or_path):
        _check_file(candidate)
        return candidate
    for folder in search_path():
        path = folder / f"{name_or_path}{SUFFIX}"
        if path.is_file():
            return path
    names = sorted({p.stem for p, _ in installed_weights()})
    how = install_command(str(name_or_path))
    raise WeightsError(
        f"no weights named {str(name_or_path)!r} in {[str(p) for p in search_path()]}; "
        f"installed: {names or 'none'}" + (f"; install it with `{how}`" if how else "")
    )


def installed_weights() -> list[tuple[Path, WeightsMeta | None]]:
    """Every weights file on the search path (store first), with its metadata if readable."""
    found, seen = [], set()
    for folder in search_path():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            if path.stem in seen:
                continue
            seen.add(path.stem)
            try:
                found.append((path, read_meta(path)))
            except WeightsError:
                found.append((path, None))
    return found


# --------------------------------------------------------------------------- .pth import


def pickle_refusal(exc: pickle.UnpicklingError) -> str:
    """Why a .pth was refused, from torch's weights-only error (without its advice to unpickle
    the file unsafely)."""
    found = re.search(r"GLOBAL ([\w.]+)|global: ?([\w.]+)", str(exc), re.I)
    if found:
        why = f"its pickle calls {found[1] or found[2]}, which a file of weights does not need"
    else:
        why = "its pickle uses instructions that safe loading does not allow"
    return (f"not a plain tensor file: {why}; unpickling it could run code, so it was not "
            "unpickled (a state_dict of tensors saved by torch.save loads)")


def load_pth(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A ``state_dict`` from a ``.pth`` file, unpickled with ``weights_only=True`` only."""
    path = Path(path)
    _check_file(path)
    with path.open("rb") as handle:
        head = handle.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # a zip archive (torch.save) or a bare pickle
        raise WeightsError(f"{path}: not a PyTorch .pth file (neither a zip archive nor a pickle)")
    try:
        with warnings.catch_warnings():
            # torch's note on the pickle protocol of a plain pickle: the refusal below says more
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(f"{path}: refused to load: {pickle_refusal(exc)}") from None
    except MemoryError:
        raise
    except Exception as exc:  # RuntimeError, EOFError, BadZipFile, KeyError, ... on bad bytes
        reason = " ".join(str(exc).split()[:30]) or type(exc).__name__
        raise WeightsError(f"{path}: not a readable .pth file ({reason})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state_dict of tensors; got {type(state).__name__}")
    return state


def rename_state(
    state: dict[str, torch.Tensor],
    key_map: dict[str, str],
    expected: dict[str, torch.Tensor],
    source: Path,
    ignore_extra=lambda key: False,
) -> dict[str, torch.Tensor]:
    """Our keys from a public layout: ``key_map[ours] = theirs``; shapes checked one by one."""
    out = {}
    for ours, theirs in key_map.items():
        if theirs not in state:
            raise WeightsError(f"{source}: missing tensor {theirs!r} (for {ours})")
        value = state[theirs]
        if value.shape != expected[ours].shape:
            raise WeightsError(
                f"{source}: tensor {theirs!r} has shape {tuple(value.shape)}; "
                f"expected {tuple(expected[ours].shape)}"
            )
        out[ours] = value.float()
    extra = sorted(k for k in set(state) - set(key_map.values()) if not ignore_extra(k))
    if extra:
        raise WeightsError(f"{source}: unexpected tensors {extra[:5]} for this layout")
    return out
