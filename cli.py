"""Run stylenorm from a source checkout: ``python cli.py stylize content.jpg style.jpg``."""

from stylenorm.cli import app

if __name__ == "__main__":
    app(prog_name="stylenorm")
