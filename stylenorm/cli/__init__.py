"""The ``stylenorm`` command line (the only part of stylenorm that imports typer)."""

from .app import app, main

__all__ = ["app", "main"]
