"""Every command's and subcommand's --help reads well in an 80-column terminal: no option name
cut, no Python type label, no line over 80 columns, no sentence cut short with "..."."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from stylenorm.cli.app import app

WIDTH = 80
# What Typer shows when left alone: "<path>", "<list[Path]>", "<int range>", "{content}"
TYPE_LABEL = re.compile(r"<(?:path|str|int|float|bool|file|list\[|[a-z]+ range)[^>]*>|"
                        r"\{[a-z_]+\}|list\[|…")


def command_paths() -> list[tuple[str, ...]]:
    """Every command path of the app, ``()`` for the app itself, ``train`` loaded."""
    root = typer.main.get_command(app)
    root.load_train()
    paths = []

    def walk(command, path):
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(root, ())
    return paths


def command_at(path: tuple[str, ...]):
    command = typer.main.get_command(app)
    command.load_train()
    for name in path:
        command = command.commands[name]
    return command


def test_every_command_is_covered():
    paths = command_paths()
    assert {("stylize",), ("batch",), ("export",), ("serve",), ("weights",), ("train",),
            ("train", "lite"), ("weights", "list")} <= set(paths)


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "stylenorm")
def test_help_reads_well_at_80_columns(path, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Usage:" in text
    for line in text.splitlines():
        assert len(line) <= WIDTH, line
        assert not TYPE_LABEL.search(line), line
        assert not re.search(r"[A-Za-z]-$", line), f"a name broken at a hyphen: {line!r}"
    command = command_at(path)
    for param in command.params:
        for name in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
            if name.startswith("-"):
                assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), \
                    f"{name} is not shown whole in:\n{text}"
    listed = text.split("Commands:")[1] if "Commands:" in text else ""
    for sub in getattr(command, "commands", {}):
        assert re.search(rf"^  {sub} ", listed, re.M), f"{sub} is not listed"
    assert not re.search(r"\.\.\.$", listed, re.M), f"a command's summary is cut:\n{listed}"
