"""Training checkpoints: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python values only (so the safe unpickler accepts
it): model and optimizer state dicts, the learning-rate schedule, the iteration, the training
config and the random number generator states of torch (CPU and CUDA), numpy and Python.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import StylenormError
from ..io.atomic import atomic_write

__all__ = ["get_rng_state", "load_checkpoint", "save_checkpoint", "set_rng_state"]


def get_rng_state() -> dict:
    """Every global RNG state as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, mt, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64),
                   "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the states saved by `get_rng_state`."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, checkpoint: dict) -> Path:
    """Write ``checkpoint`` atomically: a crash leaves the previous checkpoint intact."""
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))
    except OSError as exc:
        raise StylenormError(f"{path}: cannot write checkpoint ({exc.strerror or exc})") from None
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint written by `save_checkpoint`, loaded without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise StylenormError(f"{path}: no checkpoint to resume from (was --out the same?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        first = (str(exc).strip().splitlines() or ["unreadable"])[0]
        raise StylenormError(f"{path}: not a readable stylenorm checkpoint ({first})") from None
