"""User-facing errors: each carries one line that names the file and the problem."""


class StylenormError(ValueError):
    """A problem with the user's input, files or environment (not a bug in stylenorm)."""


class ImageError(StylenormError):
    """An image could not be read, decoded or written."""


class WeightsError(StylenormError):
    """A weights file is missing, corrupt, untrusted or for another architecture."""
