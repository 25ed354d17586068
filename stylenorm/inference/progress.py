"""Progress on stderr for work that gives no count: a spinner with the elapsed time."""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
from collections.abc import Iterator

from ..runtime import on_terminal

__all__ = ["on_terminal", "spinner"]


@contextlib.contextmanager
def spinner(enabled: bool, desc: str = "stylize", delay: float = 1.0,
            period: float = 0.25) -> Iterator[None]:
    """Show ``desc: working | 3 s`` on stderr while the block runs, once it has run for
    ``delay`` seconds (quick work shows nothing); the line is cleared at the end."""
    if not enabled:
        yield
        return
    done = threading.Event()

    def show() -> None:
        start, shown = time.monotonic(), False
        if done.wait(delay):
            return
        for frame in itertools.cycle("|/-\\"):
            sys.stderr.write(f"\r{desc}: working {frame} {time.monotonic() - start:.0f} s")
            sys.stderr.flush()
            shown = True
            if done.wait(period):
                break
        if shown:
            sys.stderr.write("\r" + " " * (len(desc) + 24) + "\r")
            sys.stderr.flush()

    thread = threading.Thread(target=show, name="stylenorm-spinner", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
