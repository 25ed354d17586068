"""The training loop shared by every trainer: schedule, precision, checkpoints, log, samples.

A trainer (`.adain`, `.lite` with or without `.distill`, `.cin`) supplies a :class:`.task.Task`:
the network to checkpoint, its trainable parameters, a loss function of a batch and the pictures
for the sample grids. :func:`fit` runs it for ``config.iterations`` and writes into the run
folder (the checkpoint: :mod:`.run_state`; samples and validation: :mod:`.monitoring`)::

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

import torch
from tqdm.auto import tqdm

from ..errors import Interrupted, StylenormError
from ..hub.zoo import load_frozen_encoder
from ..runtime import (
    Precision,
    autocast,
    on_terminal,
    processor_name,
    resolve_device,
    training_dtype,
)
from .averaging import WeightAverage
from .checkpoints import load_checkpoint
from .config import TrainConfig, learning_rate
from .distributed import (
    DataParallelTask,
    SilentLog,
    agree_to_stop,
    join_job,
    mean_losses,
    on_main,
    synchronise,
    world_record,
)
from .monitoring import validate, write_samples
from .run_state import CHECKPOINT, RunState, restore_state, save_state
from .runlog import RunLog, prepare_run_dir, write_config
from .stopping import StopRequest
from .task import Task, TrainResult

__all__ = ["Task", "TrainResult", "WeightAverage", "fit", "load_frozen_encoder", "train_step",
           "training_dtype"]

MODEL = "model.safetensors"


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


def _record(loop: RunState, losses: dict[str, torch.Tensor], iteration: int) -> dict:
    values = {k: float(v.detach()) for k, v in mean_losses(losses).items()}
    if not all(v == v and abs(v) != float("inf") for v in values.values()):
        raise StylenormError(
            f"the loss became {values['total']} at iteration {iteration}; lower --lr or use "
            "--precision fp32 (the last checkpoint is intact)"
        )
    record = {"iter": iteration, "lr": learning_rate(loop.config, iteration - 1), **values}
    loop.log.append(record)
    return values


def _batches(loop: RunState, data) -> Iterator[tuple[int, list[torch.Tensor]]]:
    fmt = torch.channels_last if loop.config.channels_last else torch.contiguous_format
    for iteration, batch in zip(range(loop.start, loop.config.iterations),
                                data.batches(loop.start, loop.config.iterations), strict=True):
        yield iteration, [b.contiguous(memory_format=fmt) for b in batch]


def _run(loop: RunState, data, progress: bool) -> None:
    """Train from ``loop.start`` to ``iterations``, or until the time limit or a stop request
    (:func:`_ends_early`)."""
    config, main = loop.config, loop.place.is_main
    bar = tqdm(total=config.iterations, initial=loop.start,
               disable=not (on_terminal(progress) and main), desc="train", unit="it",
               dynamic_ncols=True)
    loop.tick = time.perf_counter()
    deadline = loop.tick + 60 * config.time_limit if config.time_limit else float("inf")
    loop.done = config.iterations
    if config.val_every and loop.start == 0 and main:
        validate(loop, 0)
    with bar, StopRequest(second_interrupts=not loop.place.is_split) as stop:
        for iteration, batch in _batches(loop, data):
            losses = train_step(loop.stepper, batch, loop.optimizer, loop.scaler,
                                (loop.device, loop.dtype), learning_rate(config, iteration),
                                iteration)
            if loop.average is not None:
                loop.average.update(loop.task.network)
            _after_step(loop, iteration + 1, losses, bar)
            if _ends_early(loop, iteration + 1, stop, deadline):
                return
    loop.wall_time_s += time.perf_counter() - loop.tick


def _after_step(loop: RunState, done: int, losses: dict[str, torch.Tensor], bar) -> None:
    """Log, checkpoint, sample and validate after iteration ``done`` where the config says."""
    config, main = loop.config, loop.place.is_main
    if done % config.log_every == 0 or done == config.iterations:
        values = _record(loop, losses, done)
        bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
    bar.update(1)
    if done % config.checkpoint_every == 0 or done == config.iterations:
        now = time.perf_counter()
        loop.wall_time_s, loop.tick = loop.wall_time_s + now - loop.tick, now
        if main:
            save_state(loop, done)
    if main and _due(config.sample_every, done, config.iterations):
        write_samples(loop, done)
    if main and _due(config.val_every, done, config.iterations):
        validate(loop, done)


def _ends_early(loop: RunState, done: int, stop: StopRequest, deadline: float) -> bool:
    """Whether the time limit ends the run after iteration ``done``, short of ``iterations``
    (its checkpoint saved); a stop request (Ctrl-C, SIGTERM) raises :class:`Interrupted` once
    its checkpoint is saved. Every rank of a job agrees on both."""
    config = loop.config
    time_up = bool(config.time_limit) and agree_to_stop(time.perf_counter() >= deadline)
    if agree_to_stop(stop.requested) and done < config.iterations:
        _stop_with_checkpoint(loop, done)
        raise Interrupted(
            f"stopped at iteration {done}; the checkpoint in {loop.run_dir} holds it: "
            "repeat the command with --resume to continue", exit_code=stop.exit_code)
    if time_up and done < config.iterations:  # finish here, model and all
        _stop_with_checkpoint(loop, done)
        loop.done = done
        if loop.place.is_main:
            tqdm.write(f"time limit reached at iteration {done}")
        return True
    return False


def _stop_with_checkpoint(loop: RunState, done: int) -> None:
    """Save iteration ``done`` unless it was just saved; every rank returns after the save."""
    loop.wall_time_s += time.perf_counter() - loop.tick
    if done % loop.config.checkpoint_every and loop.place.is_main:
        save_state(loop, done)
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
    loop = RunState(task, config, device, dtype, optimizer, scaler, *logs, run_dir, place=place,
                    stepper=task)
    if config.ema:
        loop.average = WeightAverage(task.network, config.ema)
    if state is not None:
        restore_state(loop, state)
    if place.is_main:
        write_config(run_dir / "config.json", config.to_dict())
    task.network.train()
    if place.is_split:
        loop.stepper = DataParallelTask(task, device)
    _run(loop, data, progress)
    return _finish(loop, provenance)


def _finish(loop: RunState, provenance: dict | None) -> TrainResult:
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
