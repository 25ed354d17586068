"""Every command the README and the docs show works as written.

The fenced shell blocks of README.md and docs/*.md (not the training journal, whose commands are
history) are read line by line. Each ``stylenorm ...`` command (also after ``python -m``,
``torchrun ... -m`` or ``srun ... -m``) is parsed by the real command line with the commands'
bodies replaced, so an unknown subcommand or option, a bad choice or a value out of range fails
here; paths need not exist. Each ``python SCRIPT.py ...`` command is parsed by the script's own
argparse parser, stopped before it does any work. The cheap commands (stylising the shipped
samples with a shipped model, listing weights) also run for real, in a temporary folder. The
library examples of the README and docs/norm-library.md run too, and the README's links point
at real files and headings.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import re
import runpy
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from stylenorm.cli import app

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md"] + sorted(
    p for p in (REPO / "docs").glob("*.md") if p.name != "training-journal.md")
SHELL = {"", "bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
PROGRAMS = {"stylenorm", "python", "python3", "torchrun", "srun"}
SHIPPED = {"lite", "cin-8styles"}  # models that need nothing outside the repository
# Commands whose real run is cheap on the shipped samples; the rest are parsed only.
RUNNABLE = {("stylize",), ("batch",), ("weights", "list"), ("--version",)}
# click's base of usage errors, wherever this Typer takes click from (recent ones vendor it).
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
INPUTS = ("content", "styles", "mask", "content_dir", "style_dir", "pairs")


@dataclass(frozen=True)
class Command:
    where: str  # page:line
    kind: str  # "stylenorm", "script" or "pytest"
    args: tuple[str, ...]
    script: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {' '.join((self.script, *self.args)).strip()}"


def shell_lines(path: Path):
    """(line number, logical line) of the page's fenced shell blocks, continuations joined."""
    inside, lang, pending, start = False, "", "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if fence:
            inside, lang = (not inside), fence.group(2)
            continue
        if not inside or lang not in SHELL:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""


def segments(line: str) -> list[list[str]]:
    """The line's simple commands (split at ``&&``, ``;``, ``|``), shell variables as ``0``."""
    line = re.sub(r"\$\{\w+\}|\$(?!\()\w+", "0", line)
    parts, current = [], []
    for token in shlex.split(line, comments=True):
        if token in ("&&", "||", ";", "|"):
            parts.append(current)
            current = []
        else:
            current.append(token)
    return [p for p in [*parts, current] if p]


def starts_program(piece: str) -> bool:
    """Whether a simple command starts with a program whose commands are checked (not pip,
    curl, a comment or prose in a text block)."""
    words = [w for w in piece.split() if not re.fullmatch(r"\w+=\S*", w)]
    return bool(words) and words[0] in PROGRAMS


def classify(where: str, tokens: list[str]) -> Command | None:
    while tokens and re.fullmatch(r"\w+=.*", tokens[0]):  # VAR=value prefixes
        tokens = tokens[1:]
    if not tokens:
        return None
    head, rest = tokens[0], tokens[1:]
    if head == "stylenorm":
        return Command(where, "stylenorm", tuple(rest))
    if head in ("torchrun", "srun"):
        for i in range(len(rest) - 1):
            if rest[i] == "-m" and rest[i + 1] == "stylenorm":
                return Command(where, "stylenorm", tuple(rest[i + 2:]))
        raise AssertionError(f"{where}: {head} line without '-m stylenorm'")
    if head not in ("python", "python3"):
        return None
    if rest[:2] == ["-m", "stylenorm"]:
        return Command(where, "stylenorm", tuple(rest[2:]))
    if rest[:2] == ["-m", "pytest"]:
        return Command(where, "pytest", tuple(rest[2:]))
    if rest and rest[0] == "cli.py":
        return Command(where, "stylenorm", tuple(rest[1:]))
    if rest and rest[0].endswith(".py"):
        return Command(where, "script", tuple(rest[1:]), script=rest[0])
    raise AssertionError(f"{where}: a python command this test does not know: {tokens}")


def documented_commands() -> list[Command]:
    found = []
    for page in PAGES:
        for number, line in shell_lines(page):
            where = f"{page.relative_to(REPO)}:{number}"
            pieces = [p for p in re.split(r"&&|\|\||;", line) if starts_program(p)]
            try:
                parts = [tokens for piece in pieces for tokens in segments(piece)]
            except ValueError as exc:  # unbalanced quotes
                raise AssertionError(f"{where}: {exc}: {line}") from None
            for tokens in parts:
                command = classify(where, tokens)
                if command is not None:
                    found.append(command)
    return found


COMMANDS = documented_commands()
STYLENORM = [c for c in COMMANDS if c.kind == "stylenorm"]
SCRIPTS = [c for c in COMMANDS if c.kind == "script"]


def test_the_pages_show_commands():
    assert len(STYLENORM) >= 40 and len(SCRIPTS) >= 10, (len(STYLENORM), len(SCRIPTS))
    readme = [c for c in COMMANDS if c.where.startswith("README.md")]
    assert any(c.args[:1] == ("stylize",) for c in readme)


class Parsed(Exception):
    """Raised in place of a command's body: the command line was accepted."""

    def __init__(self, path: tuple[str, ...], params: dict) -> None:
        super().__init__(path)
        self.path, self.params = path, params


def accept_missing_paths(param) -> None:
    """Let ``param`` (of a fresh group: the app's own stays as it is) accept a path that does
    not exist. Older Typers give the parameter click's ``Path`` type; newer ones build the type
    from ``type_descriptor.parameter_info`` when parsing."""
    kind = getattr(param, "type", None)
    if getattr(kind, "exists", False):
        param.type = copy.copy(kind)
        param.type.exists = False
    descriptor = getattr(param, "type_descriptor", None)
    info = getattr(descriptor, "parameter_info", None)
    if getattr(info, "exists", False):
        info = copy.copy(info)
        info.exists = False
        param.type_descriptor = dataclasses.replace(descriptor, parameter_info=info)
        param._runtime_param = None


def parse_only_group():
    """A fresh click group of the real app whose commands stop once their options are parsed,
    and whose path options accept paths that do not exist."""
    group = typer.main.get_command(app)
    group.load_train()

    def stop_at(command, path):
        def body(**params):
            raise Parsed(path, params)
        return body

    def patch(command, path):
        for param in command.params:
            accept_missing_paths(param)
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            command.callback = stop_at(command, path)
            return
        for name, sub in subcommands.items():
            patch(sub, (*path, name))

    patch(group, ())
    return group


def parse(args: tuple[str, ...]) -> Parsed | None:
    """The parse of ``stylenorm ARGS``; None when it only showed help or the version."""
    try:
        code = parse_only_group().main(list(args), prog_name="stylenorm", standalone_mode=False)
    except Parsed as parsed:
        return parsed
    assert code in (0, None), f"exit code {code}"
    return None


@pytest.mark.parametrize("command", STYLENORM, ids=str)
def test_stylenorm_command_parses(command):
    parse(command.args)  # a usage error (click's exceptions) fails the test with its message


@pytest.mark.parametrize("args", [
    ("stylize", "a.jpg", "b.jpg", "--no-such-option"),
    ("stylise", "a.jpg", "b.jpg"),
    ("stylize", "a.jpg", "b.jpg", "--alpha", "2"),
    ("train", "adain", "--norm", "weight"),
    ("weights", "lists"),
])
def test_parsing_refuses_what_the_command_line_refuses(args):
    with pytest.raises(ClickException):
        parse(args)


def test_parsing_leaves_the_apps_own_path_checks(tmp_path):
    parse(("batch", "missing/", "styles/", "-o", "out/"))
    result = CliRunner().invoke(app, ["batch", str(tmp_path / "missing"), str(tmp_path),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.mark.parametrize("command", SCRIPTS, ids=str)
def test_script_command_parses(command, monkeypatch):
    script = REPO / command.script
    assert script.is_file(), f"{command.where}: no script {command.script}"
    assert "parse_args(" in script.read_text(encoding="utf-8"), \
        f"{command.script} has no argparse parser to check its arguments with"
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        raise Parsed((command.script,), vars(original(self, args, namespace)))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    monkeypatch.setattr(sys, "argv", [str(script), *command.args])
    monkeypatch.setattr(sys, "path", [str(script.parent), *sys.path])
    try:
        runpy.run_path(str(script), run_name="__main__")
    except Parsed:
        return
    except SystemExit as exc:
        pytest.fail(f"{command}: the script refused its arguments (exit {exc.code})")
    pytest.fail(f"{command}: the script finished without parsing arguments")


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.kind == "pytest"], ids=str)
def test_pytest_command_names_real_tests(command):
    for arg in command.args:
        if arg.startswith("tests/"):
            assert (REPO / arg.split("::")[0]).exists(), f"{command.where}: no {arg}"


def runnable(command: Command) -> bool:
    parsed = parse(command.args)
    if parsed is None:
        return command.args == ("--version",)
    if parsed.path not in RUNNABLE or parsed.params.get("model") not in (None, *SHIPPED):
        return False
    inputs = []
    for name in INPUTS:
        value = parsed.params.get(name)
        inputs += [] if value is None else value if isinstance(value, (list, tuple)) else [value]
    return all((REPO / str(p)).exists() and not Path(p).is_absolute() for p in inputs)


def without_output(args: tuple[str, ...]) -> tuple[str, ...]:
    out = [i + 1 for i, a in enumerate(args) if a in ("-o", "--output")]
    return tuple(a for i, a in enumerate(args) if i not in out and a not in ("-o", "--output"))


def cheap_commands() -> list:
    """The runnable commands, each distinct work once (where it is first shown). The README's
    first one (the quick start) and listing weights run in every test run, the rest with the
    slow tests."""
    first: dict[tuple[str, ...], Command] = {}
    for command in STYLENORM:
        key = without_output(command.args)
        try:
            cheap = key not in first and runnable(command)
        except Exception:  # a command that does not parse fails its own test
            cheap = False
        if cheap:
            first[key] = command
    quick = [c for c in first.values() if c.where.startswith("README.md")][:1]
    return [pytest.param(c, id=str(c), marks=() if c in quick or c.args[:1] == ("weights",)
                         else pytest.mark.slow) for c in first.values()]


REAL = cheap_commands()


def test_the_cheap_commands_are_run():
    commands = [p.values[0] for p in REAL]
    assert {("stylize",), ("weights",)} <= {c.args[:1] for c in commands}, REAL
    assert commands[0].where.startswith("README.md") and commands[0].args[0] == "stylize"


@pytest.mark.parametrize("command", REAL)
def test_cheap_command_runs(command, tmp_path, monkeypatch):
    """Run as written (on one thread unless it says otherwise: the suite shares the cores),
    from a folder that holds the repository's samples and weights."""
    for name in ("samples", "weights"):
        (tmp_path / name).symlink_to(REPO / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STYLENORM_HOME", str(tmp_path / "home"))
    args = list(command.args)
    if args[0] in ("stylize", "batch") and "--threads" not in args:
        args += ["--threads", "1"]
    result = CliRunner().invoke(app, args, prog_name="stylenorm")
    assert result.exit_code == 0, f"{command}\n{result.output}"
    for flag in ("-o", "--output"):
        if flag in args:
            out = tmp_path / args[args.index(flag) + 1]
            assert out.exists() and (out.is_file() or any(out.iterdir())), f"{command}: no {out}"


def python_examples(page: Path) -> list[tuple[str, str]]:
    blocks, code, inside, start = [], [], False, 0
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if fence and not inside and fence.group(2) == "python":
            inside, code, start = True, [], number
        elif fence and inside:
            inside = False
            blocks.append((f"{page.relative_to(REPO)}:{start}", "\n".join(code)))
        elif inside:
            code.append(line)
    return blocks


@pytest.mark.parametrize("where, code", [
    pytest.param(where, code, id=where)
    for page in (REPO / "README.md", REPO / "docs" / "norm-library.md")
    for where, code in python_examples(page)])
def test_library_example_runs(where, code, capsys):
    """The README's library example and every example of the norm library's page."""
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    assert "False" not in printed, f"{where} printed:\n{printed}"


def github_slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_readme_links_point_at_real_files_and_headings():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    headings = {github_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"\w+://", target):
            continue
        path, _, anchor = target.partition("#")
        if path:
            assert (REPO / path).exists(), f"README links to missing {path}"
        elif anchor:
            assert anchor in headings, f"README links to missing heading #{anchor}"
