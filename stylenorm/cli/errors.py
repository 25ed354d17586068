"""How the command line reports errors: one ``error:`` line on stderr and an exit code, never a
traceback (set STYLENORM_DEBUG=1 to see one)."""

from __future__ import annotations

import functools
import os
import re
import sys

import typer
import typer.core

from ..errors import Interrupted, OptionError, StylenormError
from ..ranks import leave_group
from .helptext import plain_help

# click's base of usage errors, wherever this Typer takes click from (recent ones vendor it).
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class OneLineErrors(typer.core.TyperGroup):
    """The app's group: usage errors (a bad option value, a missing argument) print one
    ``error:`` line too, like the library's errors, instead of a usage panel."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        plain_help(self)

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                sys.exit(exc.exit_code)  # the help has been shown
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            say(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:  # click's name for Ctrl-C outside a command (and end of input)
            typer.echo("error: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)



def printable(text: str) -> str:
    """``text`` on one line: characters that are not printable (newlines, carriage returns,
    NEL, line and paragraph separators, other controls) as Python escapes, e.g. ``\\n``."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def say(message: str, err: bool = False) -> None:
    """Print one line (file names in it may hold any character)."""
    typer.echo(printable(message), err=err)


def fail(message: str, code: int = 1) -> typer.Exit:
    say(f"error: {message}", err=True)
    return typer.Exit(code)


# Python parameters whose flag is not their name with dashes.
FLAGS = {"data_mode": "--data"}


def as_flags(error: StylenormError) -> str:
    """The library's message with each Python parameter it names shown as its flag
    (``style_weights`` -> ``--style-weights``)."""
    message = str(error)
    for name in getattr(error, "params", ()):
        flag = FLAGS.get(name, "--" + name.replace("_", "-"))
        message = re.sub(rf"(?<![\w/.-]){re.escape(name)}(?![\w/-])", flag, message)
    return message


OUT_OF_MEMORY = ("out of memory; try a smaller --size, --style-size or --tile-size, or lower "
                 "--max-whole-pixels")
# How torch reports a failed allocation: CPU ("DefaultCPUAllocator: can't allocate memory",
# "not enough memory"), CUDA and MPS ("out of memory").
OOM_PATTERN = re.compile(r"can't allocate memory|not enough memory|out of memory", re.I)


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or bool(OOM_PATTERN.search(str(exc)))


def internal(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {exc} (set STYLENORM_DEBUG=1 for details)"


def user_errors(command):
    """Turn library and OS errors into one line on stderr and exit code 1 (never a traceback;
    set STYLENORM_DEBUG=1 to see one)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        if os.environ.get("STYLENORM_DEBUG"):
            try:
                return command(*args, **kwargs)
            finally:
                leave_group()
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, ClickException, BrokenPipeError):
            raise  # the command's own exit code or usage error; a closed pipe (`| head`):
            # click exits quietly with 1 and nothing more to flush into the pipe
        except Interrupted as exc:
            raise fail(as_flags(exc), exc.exit_code) from None
        except OptionError as exc:
            raise fail(as_flags(exc), 2) from None
        except StylenormError as exc:
            raise fail(as_flags(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except MemoryError:
            raise fail(OUT_OF_MEMORY) from None
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise fail(internal(exc)) from None
            raise fail(OUT_OF_MEMORY) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise fail(f"{where}{exc.strerror or exc}") from None
        except Exception as exc:  # a bug: still one line, with the way to see more
            raise fail(internal(exc)) from None
        finally:
            leave_group()  # under torchrun: before exit, or gloo may abort the process

    return wrapper
