"""Atomic file writing: a complete new file or the old one, never a partial file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..errors import ImageError

__all__ = ["atomic_write"]


def _create_temporary(folder: Path, name: str) -> Path:
    """A new empty ``.<name>.<random>.part`` in ``folder``, created with mode 0666 & ~umask."""
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(6)}.part"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.
    The temporary file is created like a plain file (mode 0666 less the umask, applied by the
    kernel), not owner-only as mkstemp's are."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise ImageError(f"{path}: output folder {folder} {problem}")
    tmp = _create_temporary(folder, path.name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
