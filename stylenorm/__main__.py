"""``python -m stylenorm``: the command line."""

from .cli import app

app(prog_name="stylenorm")
