"""One run of the training loop as :func:`.loop.fit` holds it (:class:`RunState`: the task, its
optimiser, logs and place in the job, where the run stands) and its checkpoint: written every
``checkpoint_every`` iterations and at the end (:func:`save_state`), read back on ``--resume``
(:func:`restore_state`, which refuses settings or a world size that would break the exact
replay)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import StylenormError
from ..ranks import Place
from ..runtime import autocast
from .averaging import WeightAverage
from .checkpoints import get_rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig, plain
from .distributed import check_world, world_record
from .plots import loss_curve
from .runlog import RunLog
from .task import Task

__all__ = ["CHECKPOINT", "RunState", "restore_state", "save_state"]

CHECKPOINT = "checkpoint.pt"


@dataclass
class RunState:
    """The mutable pieces of a run."""

    task: Task
    config: TrainConfig
    device: torch.device
    dtype: torch.dtype
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    log: RunLog
    val_log: RunLog
    run_dir: Path
    start: int = 0
    done: int = 0  # the iterations done when the run ends: ``iterations`` unless time ran out
    wall_time_s: float = 0.0
    tick: float = 0.0  # the clock's reading when ``wall_time_s`` was last brought up to date
    average: WeightAverage | None = None
    place: Place = field(default_factory=Place)
    stepper: object = None  # what the step calls for the losses: the task, or its DDP wrapper

    def autocast(self):
        return autocast(self.device, self.dtype)

    def shown_weights(self):
        """The weights that validation, samples and the exported model use: the average when
        ``--ema`` is on."""
        if self.average is None:
            return nullcontext()
        return self.average.applied(self.task.network)


def save_state(loop: RunState, iteration: int) -> None:
    """The run's checkpoint at ``iteration`` (atomic), and the loss curve redrawn."""
    state = {
        "format": "stylenorm-checkpoint-1",
        "iteration": iteration,
        "config": loop.config.to_dict(),
        "network": loop.task.network.state_dict(),
        "optimizer": loop.optimizer.state_dict(),
        "scaler": loop.scaler.state_dict(),
        "schedule": {"kind": plain(loop.config.schedule), "lr": loop.config.lr,
                     "lr_decay": loop.config.lr_decay},
        "sampler": {"seed": loop.config.seed, "next_iteration": iteration},
        "rng": get_rng_state(),
        "wall_time_s": loop.wall_time_s,
        "dtype": str(loop.dtype).removeprefix("torch."),
        "world": world_record(loop.place, loop.config.batch_size),
    }
    if loop.average is not None:
        state["ema"] = loop.average.state_dict()
    save_checkpoint(loop.run_dir / CHECKPOINT, state)
    loss_curve(loop.log.records(), loop.log.loss_keys(), loop.run_dir / "loss_curve.png")


def restore_state(loop: RunState, state: dict) -> None:
    """Continue from the checkpoint ``state``: its settings, world size and iteration checked,
    then the network, optimiser, scaler, RNG and average restored and the logs cut back to it."""
    path = loop.run_dir / CHECKPOINT
    check_world(state.get("world"), loop.place, loop.config.batch_size,
                getattr(loop.task, "exact_across_world_sizes", True), path)
    resized = state.get("world", {}).get("world_size", 1) != loop.place.count
    loop.config.check_resumable(state["config"], path, ("batch_size",) if resized else ())
    loop.task.network.load_state_dict(state["network"])
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    if loop.average is not None:
        loop.average.load_state_dict(state["ema"])
    loop.start, loop.wall_time_s = int(state["iteration"]), float(state["wall_time_s"])
    if loop.start > loop.config.iterations:
        raise StylenormError(f"{path}: the run is at iteration {loop.start}, beyond "
                             f"--iterations {loop.config.iterations}")
    loop.log.truncate(loop.start)
    loop.val_log.truncate(loop.start)
