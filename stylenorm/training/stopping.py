"""Stopping a training run cleanly: a signal asks for a stop after the current iteration."""

from __future__ import annotations

import signal

from tqdm.auto import tqdm

__all__ = ["StopRequest"]


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current iteration, with a
    checkpoint; a second Ctrl-C interrupts at once. Only in the main thread (signals go there)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, second_interrupts: bool = True) -> None:
        self.requested = False
        self.exit_code = 128 + signal.SIGINT  # a shell's code for the signal that asked
        self.previous: dict = {}
        # Under torchrun a Ctrl-C reaches a rank twice (from the terminal and forwarded by the
        # launcher), and the launcher kills ranks that are still running 30 s later.
        self.second_interrupts = second_interrupts

    def __enter__(self) -> StopRequest:
        try:
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        except ValueError:  # not the main thread: signals cannot be caught here
            self.previous = {}
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT and self.second_interrupts:
            raise KeyboardInterrupt
        self.requested = True
        self.exit_code = 128 + signum
        tqdm.write("stopping after this iteration with a checkpoint (Ctrl-C again: at once)")

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
