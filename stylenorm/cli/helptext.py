"""Help that reads well in an 80-column terminal: click's plain layout (long option names on a
line of their own, never cut; sentences re-wrapped to the width) with click's classic names
for values (``PATH``, ``INTEGER``, ``[auto|cpu]``) instead of Python type labels, and each
command's first sentence, whole, in the list of commands."""

from __future__ import annotations

import re

import typer.core

# The train group's help: shown by the app's placeholder (cli/lazy.py) and the group itself
# (cli/train.py) alike.
TRAIN_HELP = ("Train AdaIN decoders (adain), the small arbitrary-style lite model (lite, from "
              "scratch or distilled from an AdaIN teacher) and multi-style CIN networks (cin).")

# Python annotations -> what the help shows for a value of that type
VALUE_NAMES = {int: "INTEGER", float: "NUMBER", str: "TEXT", bool: "BOOLEAN"}


NO_BREAK_HYPHEN = "\u2011"  # stands for "-" while a text is wrapped


def unbroken_names(formatter_class):
    """``formatter_class`` wrapping text at spaces only: a line never ends inside
    ``--style-index`` or ``no-preserve-color``."""

    class UnbrokenNames(formatter_class):
        def write_text(self, text: str) -> None:
            super().write_text(text.replace("-", NO_BREAK_HYPHEN))

        def write_dl(self, rows, *args, **kwargs) -> None:
            rows = [(a, b.replace("-", NO_BREAK_HYPHEN)) for a, b in rows]
            super().write_dl(rows, *args, **kwargs)

        def getvalue(self) -> str:
            return super().getvalue().replace(NO_BREAK_HYPHEN, "-")

    return UnbrokenNames


def plain_context(context_class):
    """``context_class`` whose help formatter is :func:`unbroken_names`'s."""
    if getattr(context_class, "plain_help", False):
        return context_class
    return type("PlainContext", (context_class,), {
        "plain_help": True, "formatter_class": unbroken_names(context_class.formatter_class)})


class PlainArgument(typer.core.TyperArgument):
    """An argument shown by its name alone: ``CONTENT``, ``[STYLES]...``."""

    def display_type_rich(self, ctx) -> None:
        return None

    def _rich_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def value_name(param) -> str:
    """The help's name for the value an option takes (from Typer's description of its type)."""
    kind = param.type_descriptor
    if kind.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in kind.choices) + "]"
    if kind.is_path:
        info = kind.parameter_info
        if not info.dir_okay:
            return "FILE"
        return "DIR" if not info.file_okay else "PATH"
    annotation = kind.annotation
    if kind.is_list:
        annotation = getattr(annotation, "__args__", (str,))[0]
    return VALUE_NAMES.get(annotation, getattr(annotation, "__name__", "VALUE").upper())


def first_sentence(text: str | None) -> str | None:
    """The help's first sentence, on one line (``e.g.`` does not end it)."""
    if not text:
        return None
    text = " ".join(text.split("\n\n")[0].split())
    for match in re.finditer(r"\.(?=\s|$)", text):
        if not text[: match.start()].endswith(("e.g", "i.e")):
            return text[: match.end()]
    return text


def plain_help(command) -> None:
    """Give ``command`` and every command under it the plain 80-column help described above."""
    command.rich_markup_mode = None
    command.context_class = plain_context(command.context_class)
    if command.short_help is None:
        command.short_help = first_sentence(command.help)
    for param in command.params:
        if isinstance(param, typer.core.TyperArgument):
            param.__class__ = PlainArgument
            param.metavar = param.metavar or param.name.upper()
        elif not getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = value_name(param)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
