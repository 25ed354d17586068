"""The weights store: the user's folder (``$STYLENORM_HOME`` or the user cache) searched before
the weights shipped with stylenorm; names resolved to files, and what is installed."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import WeightsError
from .files import SUFFIX, WeightsMeta, check_file, read_meta
from .records import install_command


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
    """The folders searched for weights by name, in order: the store, then the shipped ones."""
    return [weights_home(), bundled_dir()]


def resolve_weights(name_or_path: str | os.PathLike) -> Path:
    """An existing file path, or the installed weights called ``name`` (store first)."""
    candidate = Path(name_or_path)
    if candidate.suffix == SUFFIX or candidate.exists() or os.sep in str(name_or_path):
        check_file(candidate)
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
