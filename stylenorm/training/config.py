"""The settings every trainer shares (:class:`TrainConfig`, saved as a run's ``config.json``),
their checks and the learning-rate schedule."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from enum import Enum
from pathlib import Path

from ..errors import StylenormError
from ..runtime import Precision
from .data import DataMode

__all__ = ["Schedule", "TrainConfig", "as_enum", "choose", "learning_rate", "plain"]


class Schedule(str, Enum):
    INVERSE_TIME = "inverse-time"
    CONSTANT = "constant"


def as_enum(value, choices: type[Enum]):
    """``value`` as a member of ``choices`` where it names one; anything else unchanged, for
    ``validate`` to report with the choices."""
    try:
        return choices(value)
    except ValueError:
        return value


def plain(value):
    """An Enum member's value; anything else unchanged."""
    return value.value if isinstance(value, Enum) else value


def choose(param: str, value: str, choices: type[Enum]) -> str:
    """``value`` if it names one of ``choices``, else an error naming ``param`` and the
    choices."""
    names = [c.value for c in choices]
    if value not in names:
        raise StylenormError(f"{param} must be one of {names}; got {value!r}", params=(param,))
    return value


@dataclass
class TrainConfig:
    """Settings every trainer shares (saved as ``config.json`` in the run folder)."""

    out: str = "runs/train"
    iterations: int = 160_000
    batch_size: int = 8
    crop_size: int = 256
    lr: float = 1e-4
    lr_decay: float = 5e-5
    schedule: Schedule = Schedule.INVERSE_TIME
    seed: int = 0
    checkpoint_every: int = 1000
    sample_every: int = 1000
    log_every: int = 10
    precision: Precision = Precision.AUTO
    device: str = "auto"
    channels_last: bool = True
    compile: bool = False
    data_mode: DataMode = DataMode.AUTO
    num_workers: int | None = None
    val_content: str = ""  # held-out folders: losses on them every ``val_every`` iterations
    val_style: str = ""
    val_every: int = 0
    val_count: int = 8
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: off)
    time_limit: float = 0.0  # minutes of training in this call, then finish early (0: none)

    # Fields a resumed run may change; any other difference would break the exact replay
    # (validation runs without gradients or random draws, so it cannot change the training).
    RESUMABLE = ("out", "iterations", "checkpoint_every", "sample_every", "log_every", "device",
                 "channels_last", "compile", "data_mode", "num_workers", "val_content",
                 "val_style", "val_every", "val_count", "time_limit")

    def __post_init__(self) -> None:  # strings (from JSON, or callers) become members
        self.schedule = as_enum(self.schedule, Schedule)
        self.precision = as_enum(self.precision, Precision)
        self.data_mode = as_enum(self.data_mode, DataMode)

    def validate(self) -> None:
        for name in ("iterations", "batch_size", "crop_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise StylenormError(f"{name} must be >= 1; got {getattr(self, name)}",
                                     params=(name,))
        if self.crop_size < 16:
            raise StylenormError(f"crop_size must be >= 16 (the encoder pools 3 times); "
                                 f"got {self.crop_size}", params=("crop_size",))
        choose("schedule", self.schedule, Schedule)
        choose("data_mode", self.data_mode, DataMode)
        if self.lr <= 0 or self.lr_decay < 0:
            raise StylenormError(f"lr must be > 0 and lr_decay >= 0; got {self.lr}, "
                                 f"{self.lr_decay}", params=("lr", "lr_decay"))
        if self.sample_every < 0:
            raise StylenormError(f"sample_every must be >= 0; got {self.sample_every}",
                                 params=("sample_every",))
        if self.time_limit < 0:
            raise StylenormError(f"time_limit must be >= 0; got {self.time_limit}",
                                 params=("time_limit",))
        if not 0.0 <= self.ema < 1.0:
            raise StylenormError(f"ema must be in [0, 1); got {self.ema}", params=("ema",))
        if self.val_every < 0 or self.val_count < 1:
            raise StylenormError(f"val_every must be >= 0 and val_count >= 1; "
                                 f"got {self.val_every}, {self.val_count}",
                                 params=("val_every", "val_count"))

    def to_dict(self) -> dict:
        """Plain values (enums as their values), as saved in config.json and checkpoints."""
        return {key: plain(value) for key, value in asdict(self).items()}

    @classmethod
    def upgraded(cls, values: dict) -> dict:
        """``values`` (a saved config, perhaps written by an older stylenorm) in this class's
        layout; a subclass whose layout changed moves the old fields here."""
        return dict(values)

    @classmethod
    def from_dict(cls, values: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cls.upgraded(values).items() if k in known})

    def check_resumable(self, saved: dict, path: Path, also: tuple[str, ...] = ()) -> None:
        """Refuse to resume the run whose checkpoint ``path`` holds the config ``saved`` (in
        this layout or an older one) with settings that would break its exact replay: those
        not in ``RESUMABLE`` nor ``also``. Settings added after the run started are not
        compared (they keep their defaults)."""
        current = _flat(self.to_dict())
        saved = _flat(type(self).upgraded(saved))
        free = (*self.RESUMABLE, *also)
        changed = [f"{k}: {saved[k]!r} -> {current[k]!r}" for k in current
                   if k not in free and k in saved and _plain(saved[k]) != _plain(current[k])]
        if changed:
            raise StylenormError(
                f"{path}: cannot resume exactly with different settings "
                f"({'; '.join(changed)}); repeat the original command with --resume, or train "
                "into a new --out")


def _plain(value):
    """Tuples and lists compare equal (a config read back from JSON has lists)."""
    return json.loads(json.dumps(value))


def _flat(values: dict, prefix: str = "") -> dict:
    """A config's settings by name, those of a part as ``part.name``."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def learning_rate(config: TrainConfig, iteration: int) -> float:
    """lr / (1 + lr_decay * iteration) (inverse-time decay, the AdaIN paper's), or constant."""
    if config.schedule == Schedule.CONSTANT.value:
        return config.lr
    return config.lr / (1.0 + config.lr_decay * iteration)
