"""Atomic file writing: a complete new file or the old one, never a partial file."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from ..errors import ImageError

__all__ = ["atomic_write", "stale_temporaries"]


def _create_temporary(folder: Path, name: str) -> Path:
    """A new empty ``.<name>.<pid>.<random>.part`` in ``folder``, created with mode
    0666 & ~umask; the writer's process id tells a leftover from a file still being written."""
    while True:
        tmp = folder / f".{name}.{os.getpid()}.{secrets.token_hex(6)}.part"
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
        mode = tmp.stat().st_mode & 0o777
        write(tmp)
        if tmp.stat().st_mode & 0o777 != mode:  # a writer that replaced the file (safetensors
            os.chmod(tmp, mode)                   # does, owner-only) gets the plain mode back
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on systems without signal 0, always assumed so)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, as another user's
        return True
    return True


def stale_temporaries(folder: Path, name: str) -> list[Path]:
    """Temporary files of writes of ``name`` in ``folder`` whose writer process is gone (a
    killed run's leftovers); those of a live process (another run writing now) are not listed.
    A file without a process id (an older stylenorm's) counts as stale."""
    pattern = re.compile(rf"\.{re.escape(name)}\.(?:(\d+)\.)?[0-9a-f]{{12}}\.part")
    stale = []
    for part in Path(folder).glob(".*.part"):
        match = pattern.fullmatch(part.name)
        if match and not (match[1] and _process_alive(int(match[1]))):
            stale.append(part)
    return stale
