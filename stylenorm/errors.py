"""User-facing errors: each carries one line that names the file and the problem."""


class StylenormError(ValueError):
    """A problem with the user's input, files or environment (not a bug in stylenorm).

    ``params`` names the Python parameters (or option fields) the message speaks of, by their
    Python names; the command line shows each as its flag (``style_weights`` as
    ``--style-weights``).
    """

    def __init__(self, message: str, *, params: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.params = tuple(params)


class OptionError(StylenormError):
    """An option's value is of the wrong type or out of range (the command line exits with 2,
    as for any malformed command line)."""


class ImageError(StylenormError):
    """An image could not be read, decoded or written."""


class WeightsError(StylenormError):
    """A weights file is missing, corrupt, untrusted or for another architecture."""


class DiskFullError(ImageError):
    """An output could not be written because the disk is full (ENOSPC): a batch stops there."""


class NonFiniteError(StylenormError):
    """A model's output holds NaN or infinite values (its arithmetic overflowed): written as
    an image it would come out black, so nothing is written."""


class Interrupted(StylenormError):
    """The run was stopped by a signal (Ctrl-C, SIGTERM) after saying what it kept; the command
    line exits with ``exit_code`` (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, message: str, *, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def install_hint(extra: str) -> str:
    """How to install one of stylenorm's optional extras from a source checkout (stylenorm is
    not on the package index)."""
    return f'pip install -e ".[{extra}]" in the stylenorm repository folder'
