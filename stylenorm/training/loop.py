"""The training loop shared by every trainer: schedule, precision, checkpoints, log, samples.

A trainer (`.adain`, `.lite` with or without `.distill`, `.cin`) supplies a :class:`Task`: the
network to checkpoint, its trainable parameters, a loss function of a batch and the pictures for
the sample grids. :func:`fit` runs it for ``config.iterations`` and writes into the run folder::

    RUN_DIR/config.json       the training config
    RUN_DIR/checkpoint.pt     latest checkpoint (atomic; ``resume=True`` continues from it)
    RUN_DIR/log.jsonl         one JSON line of losses every ``log_every`` iterations
    RUN_DIR/loss_curve.png    the logged losses against the iteration (log scale)
    RUN_DIR/val.jsonl, val_curve.png  losses on held-out images every ``val_every`` (if the
                              task has validation images: ``--val-content``/``--val-style``)
    RUN_DIR/samples/iter_XXXXXXX.jpg  stylised validation images every ``sample_every``
    RUN_DIR/model.safetensors the trained model, loadable by ``stylenorm stylize --model``

Under ``torchrun`` every rank runs this loop in step and rank 0 alone writes these files
(:mod:`.distributed`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import Interrupted, StylenormError
from ..hub.zoo import load_frozen_encoder
from ..ranks import Place
from ..runtime import (
    Precision,
    autocast,
    on_terminal,
    processor_name,
    resolve_device,
    training_dtype,
)
from .averaging import WeightAverage
from .checkpoints import get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from .config import TrainConfig, learning_rate, plain
from .distributed import (
    DataParallelTask,
    SilentLog,
    agree_to_stop,
    check_world,
    join_job,
    mean_losses,
    on_main,
    synchronise,
    world_record,
)
from .plots import loss_curve, save_grid
from .runlog import RunLog, prepare_run_dir, write_config
from .stopping import StopRequest

__all__ = ["Task", "TrainResult", "WeightAverage", "fit", "load_frozen_encoder", "train_step",
           "training_dtype"]

CHECKPOINT = "checkpoint.pt"
MODEL = "model.safetensors"


class Task(Protocol):
    """What a trainer gives :func:`fit`."""

    network: nn.Module  # checkpointed as a whole (trainable parameters and buffers)

    def prepare(self, device: torch.device, dtype: torch.dtype, channels_last: bool) -> None:
        """Move the models to ``device`` (and memory format) before training in ``dtype``."""

    def trainable(self) -> list[nn.Parameter] | list[dict]:
        """Parameters, or parameter groups (a group's ``lr_scale`` multiplies the lr)."""

    def losses(self, batch: list[torch.Tensor], iteration: int) -> dict[str, torch.Tensor]:
        """Named losses of one batch; ``"total"`` is minimised."""

    def sample_rows(self) -> list[list[torch.Tensor]]:
        """Rows of (1, 3, H, W) images for the sample grid (called in eval mode)."""

    def export(self, path: Path, provenance: dict) -> Path: ...

    def report(self, run_dir: Path) -> tuple[str, dict]:
        """Text for the final report and extra provenance (e.g. learned norm mixtures)."""

    def validation_losses(self) -> dict[str, torch.Tensor] | None:
        """Named losses on the held-out images (eval mode, no gradients), or None if the task
        has none."""


@dataclass
class TrainResult:
    model_path: Path
    iterations: int
    final_losses: dict[str, float]
    wall_time_s: float
    report: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class _Loop:
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


def _save(loop: _Loop, iteration: int) -> None:
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


def _restore(loop: _Loop, state: dict) -> None:
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


def _evaluated(loop: _Loop, method):
    """``method()`` with the network in eval mode, without gradients, under the autocast."""
    network = loop.task.network
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad(), loop.autocast(), loop.shown_weights():
            return method()
    finally:
        network.train(was_training)


def _write_samples(loop: _Loop, iteration: int) -> None:
    rows = _evaluated(loop, loop.task.sample_rows)
    folder = loop.run_dir / "samples"
    folder.mkdir(exist_ok=True)
    save_grid(rows, folder / f"iter_{iteration:07d}.jpg")


def _validate(loop: _Loop, iteration: int) -> None:
    """Log the task's losses on its held-out images at ``iteration`` and redraw the curve."""
    losses = _evaluated(loop, loop.task.validation_losses)
    if losses is None:
        return
    record = {k: ({n: float(x) for n, x in v.items()} if isinstance(v, dict) else float(v))
              for k, v in losses.items()}
    loop.val_log.append({"iter": iteration, **record})
    loss_curve(loop.val_log.records(), loop.val_log.loss_keys(), loop.run_dir / "val_curve.png")
    tqdm.write(validation_line(iteration, record))


def validation_line(iteration: int, record: dict, worst: int = 3) -> str:
    """One line of a validation record: its figures, and of each per-item table (such as the
    per-style ratios) the ``worst`` highest entries, named."""
    parts = [f"{k} {v:.4g}" for k, v in record.items() if not isinstance(v, dict)]
    for key, table in record.items():
        if isinstance(table, dict) and table:
            top = sorted(table.items(), key=lambda item: -item[1])[:worst]
            parts.append(f"{key}, highest: " + ", ".join(f"{n} {v:.3g}" for n, v in top))
    return f"validation at {iteration}: " + "; ".join(parts)


def _due(every: int, done: int, last: int) -> bool:
    return bool(every) and (done % every == 0 or done == last)


def train_step(task: Task, batch: list[torch.Tensor], optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, precision: tuple[torch.device, torch.dtype],
               lr: float, iteration: int = 0) -> dict[str, torch.Tensor]:
    """One optimisation step of ``task`` on ``batch`` at learning rate ``lr``; the losses."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    with autocast(*precision):
        losses = task.losses(batch, iteration)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(losses["total"]).backward()
    scaler.step(optimizer)
    scaler.update()
    return losses


def _record(loop: _Loop, losses: dict[str, torch.Tensor], iteration: int) -> dict:
    values = {k: float(v.detach()) for k, v in mean_losses(losses).items()}
    if not all(v == v and abs(v) != float("inf") for v in values.values()):
        raise StylenormError(
            f"the loss became {values['total']} at iteration {iteration}; lower --lr or use "
            "--precision fp32 (the last checkpoint is intact)"
        )
    record = {"iter": iteration, "lr": learning_rate(loop.config, iteration - 1), **values}
    loop.log.append(record)
    return values


def _batches(loop: _Loop, data) -> Iterator[tuple[int, list[torch.Tensor]]]:
    fmt = torch.channels_last if loop.config.channels_last else torch.contiguous_format
    for iteration, batch in zip(range(loop.start, loop.config.iterations),
                                data.batches(loop.start, loop.config.iterations), strict=True):
        yield iteration, [b.contiguous(memory_format=fmt) for b in batch]


def _run(loop: _Loop, data, progress: bool) -> None:
    config, main = loop.config, loop.place.is_main
    bar = tqdm(total=config.iterations, initial=loop.start,
               disable=not (on_terminal(progress) and main), desc="train", unit="it",
               dynamic_ncols=True)
    tick = time.perf_counter()
    deadline = tick + 60 * config.time_limit if config.time_limit else float("inf")
    loop.done = config.iterations
    if config.val_every and loop.start == 0 and main:
        _validate(loop, 0)
    with bar, StopRequest(second_interrupts=not loop.place.is_split) as stop:
        for iteration, batch in _batches(loop, data):
            losses = train_step(loop.stepper, batch, loop.optimizer, loop.scaler,
                                (loop.device, loop.dtype), learning_rate(config, iteration),
                                iteration)
            if loop.average is not None:
                loop.average.update(loop.task.network)
            done = iteration + 1
            if done % config.log_every == 0 or done == config.iterations:
                values = _record(loop, losses, done)
                bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
            bar.update(1)
            if done % config.checkpoint_every == 0 or done == config.iterations:
                now = time.perf_counter()
                loop.wall_time_s, tick = loop.wall_time_s + now - tick, now
                if main:
                    _save(loop, done)
            if main and _due(config.sample_every, done, config.iterations):
                _write_samples(loop, done)
            if main and _due(config.val_every, done, config.iterations):
                _validate(loop, done)
            time_up = bool(config.time_limit) and agree_to_stop(time.perf_counter() >= deadline)
            if agree_to_stop(stop.requested) and done < config.iterations:
                _stop_with_checkpoint(loop, done, tick)
                raise Interrupted(
                    f"stopped at iteration {done}; the checkpoint in {loop.run_dir} holds it: "
                    "repeat the command with --resume to continue", exit_code=stop.exit_code)
            if time_up and done < config.iterations:  # finish here, model and all
                _stop_with_checkpoint(loop, done, tick)
                loop.done = done
                if main:
                    tqdm.write(f"time limit reached at iteration {done}")
                return
    loop.wall_time_s += time.perf_counter() - tick


def _stop_with_checkpoint(loop: _Loop, done: int, tick: float) -> None:
    """Save iteration ``done`` unless it was just saved; every rank returns after the save."""
    loop.wall_time_s += time.perf_counter() - tick
    if done % loop.config.checkpoint_every and loop.place.is_main:
        _save(loop, done)
    synchronise()  # no rank exits (and has the launcher stop the rest) mid-save


def fit(task: Task, config: TrainConfig, data, *, resume: bool = False, progress: bool = True,
        provenance: dict | None = None) -> TrainResult:
    """Train ``task`` on ``data`` (an object with ``batches(start, stop)``) as ``config`` says.
    Under torchrun every rank calls this; rank 0 writes the run folder."""
    config.validate()
    place, device = join_job(resolve_device(config.device))
    run_dir = on_main(prepare_run_dir, config.out, resume, CHECKPOINT)
    state = on_main(load_checkpoint, run_dir / CHECKPOINT) if resume else None
    dtype = training_dtype(config.precision, device)
    if state is not None and config.precision == Precision.AUTO.value:
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16,
                 "float16": torch.float16}[state["dtype"]]  # what ``auto`` chose at the start
    task.prepare(device, dtype, config.channels_last)
    optimizer = torch.optim.Adam(task.trainable(), lr=config.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    logs = ((RunLog(run_dir / "log.jsonl"), RunLog(run_dir / "val.jsonl")) if place.is_main
            else (SilentLog(), SilentLog()))
    loop = _Loop(task, config, device, dtype, optimizer, scaler, *logs, run_dir, place=place,
                 stepper=task)
    if config.ema:
        loop.average = WeightAverage(task.network, config.ema)
    if state is not None:
        _restore(loop, state)
    if place.is_main:
        write_config(run_dir / "config.json", config.to_dict())
    task.network.train()
    if place.is_split:
        loop.stepper = DataParallelTask(task, device)
    _run(loop, data, progress)
    return _finish(loop, provenance)


def _finish(loop: _Loop, provenance: dict | None) -> TrainResult:
    """The report, and the model file written by rank 0 (every rank returns once it exists)."""
    config, task = loop.config, loop.task
    final = loop.log.final_losses()
    report, extra = task.report(loop.run_dir) if loop.place.is_main else ("", {})
    meta = {**(provenance or {}), "training_config": config.to_dict(),
            "iterations": loop.done, "final_losses": final,
            "wall_time_s": round(loop.wall_time_s, 1), "precision": str(loop.dtype).split(".")[-1],
            "device": loop.device.type, "processor": processor_name(loop.device),
            **world_record(loop.place, config.batch_size), **extra}
    path = loop.run_dir / MODEL
    if loop.place.is_main:
        with loop.shown_weights():
            path = task.export(path, meta)
    synchronise()
    return TrainResult(path, loop.done, final, loop.wall_time_s, report, extra)
