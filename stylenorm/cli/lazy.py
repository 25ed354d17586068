"""The app's click group, with the ``train`` group loaded only when it is used: building it
imports the training code, hence torch, which ``stylenorm --help``, ``--version`` and a
usage error do not need."""

from __future__ import annotations

import typer
import typer.core

from .errors import OneLineErrors
from .helptext import TRAIN_HELP, plain_help


class LazyTrain(OneLineErrors):
    """Lists ``train`` with its help from the start; builds the real group when a command line
    names it (``stylenorm train ...``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        placeholder = typer.core.TyperGroup(name="train", help=TRAIN_HELP)
        placeholder.placeholder = True
        plain_help(placeholder)
        self.commands.setdefault("train", placeholder)

    def resolve_command(self, ctx, args):
        if args and args[0] == "train":
            self.load_train()
        return super().resolve_command(ctx, args)

    def load_train(self) -> None:
        if not getattr(self.commands.get("train"), "placeholder", False):
            return
        from .train import train_app

        group = typer.main.get_group(train_app)
        group.name = "train"
        plain_help(group)
        self.commands["train"] = group
