"""What each open page has left on disk (its uploads, the results made for it) and their
removal when the page is closed."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections import defaultdict
from pathlib import Path


class SessionFiles:
    """Files by page session, all inside ``root``; :meth:`close` deletes a session's files and
    the folders they leave empty (never anything outside ``root``)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.files: dict[str, set[Path]] = defaultdict(set)
        self.lock = threading.Lock()

    def folder(self, session: str) -> Path:
        """A private folder for the session's own results."""
        folder = self.root / "sessions" / "".join(c for c in session if c.isalnum())[:64]
        folder.mkdir(parents=True, exist_ok=True)
        self.add(session, [folder])
        return folder

    def add(self, session: str, paths: list[str | Path | None]) -> None:
        kept = {Path(p).resolve() for p in paths if p}
        with self.lock:
            self.files[session] |= {p for p in kept if p.is_relative_to(self.root)}

    def close(self, session: str) -> int:
        """Delete what ``session`` left; returns how many files and folders went."""
        with self.lock:
            paths = self.files.pop(session, set())
        removed = 0
        for path in sorted(paths, key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += not path.exists()
            self.remove_empty_parents(path)
        return removed

    def remove_empty_parents(self, path: Path) -> None:
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            with contextlib.suppress(OSError):  # not empty: another session's file is there
                parent.rmdir()
            if parent.exists():
                return
            parent = parent.parent
