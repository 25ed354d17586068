"""``--init``: a run started from a model file. The settings that fix the model's tensor
shapes (the zoo's ``architecture`` of its kind) not given are read from the file, one given that
differs from it is refused in one line naming it (unless the model grows that way), and the
file's weights are loaded strictly, grown where the model grows."""

from __future__ import annotations

from collections.abc import Callable, Collection

from torch import nn

from ..errors import StylenormError, WeightsError
from ..hub.files import load_state_strict, load_weights, read_meta
from ..hub.zoo import KINDS

__all__ = ["check_architecture", "file_architecture", "init_architecture", "start_from"]

# Why a setting that no option sets differs (a setting with a space in its name has no option).
NO_OPTION = {"norm affine": "a decoder trained here always learns its norms' scale and shift"}


def file_architecture(path: str, kind: str) -> dict:
    """The settings that fix the tensor shapes of the ``kind`` model in file ``path``, read
    from its metadata."""
    meta = read_meta(path)
    if meta.kind != kind:
        raise StylenormError(f"--init {path}: a {meta.kind!r} model, not {kind!r}")
    try:
        return KINDS[kind].architecture(meta.config)
    except (TypeError, ValueError, AttributeError) as exc:
        raise WeightsError(f"--init {path}: its config does not describe a {kind!r} model "
                           f"({exc})") from None


def check_architecture(path: str, kind: str, in_file: dict, asked: dict,
                       grow: bool = False) -> None:
    """One line naming the first setting in which ``asked`` differs from the ``--init`` file,
    unless ``grow`` and the model grows that way (the zoo's ``grows`` of ``kind``)."""
    grows = KINDS[kind].grows
    for setting, value in asked.items():
        old = in_file.get(setting, value)
        rule = grows.get(setting)
        if old == value or (grow and rule is not None and rule(old, value)):
            continue
        params = (setting,) if " " not in setting else ()
        why = f" ({NO_OPTION[setting]})" if setting in NO_OPTION else ""
        raise WeightsError(f"--init {path}: {setting} {_show(old)} in the file, "
                           f"{_show(value)} asked for{why}", params=params)


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def init_architecture(path: str, kind: str, asked: dict, given: Collection[str] = (),
                      grow: bool = False) -> dict:
    """``--init``: the architecture settings ``asked`` for (the zoo's names), with each one not
    in ``given`` (not set by the user) read from the file ``path``; a setting given that
    differs from the file's is refused in one line (unless ``grow`` may grow it)."""
    in_file = file_architecture(path, kind)
    settings = {k: (v if k in given else in_file.get(k, v)) for k, v in asked.items()}
    check_architecture(path, kind, in_file, settings, grow)
    return settings


def start_from(network: nn.Module, path: str, kind: str, *, config: dict,
               complete: Callable[[nn.Module, dict], dict] | None = None) -> None:
    """``--init``: load the weights of the ``kind`` model file ``path`` into ``network``, whose
    file will hold ``config`` (same architecture, or one line naming the setting that differs).
    ``complete(network, state)``, if given, may fill in tensors the file lacks (the lite model
    grows new residual blocks, a StyleFilm and a deep style level this way)."""
    check_architecture(path, kind, file_architecture(path, kind),
                       KINDS[kind].architecture(config), grow=complete is not None)
    state, _ = load_weights(path)
    if complete is not None:
        state = complete(network, state)
    load_state_strict(network, state, f"--init {path}")
