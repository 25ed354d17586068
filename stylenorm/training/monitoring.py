"""What a run shows of itself while it trains: sample grids every ``sample_every`` iterations
and losses on the held-out pairs every ``val_every``, both in eval mode, without gradients, with
the weights the model will be written with (the average under ``--ema``)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .plots import loss_curve, save_grid
from .run_state import RunState

__all__ = ["validate", "validation_line", "write_samples"]


def evaluated(loop: RunState, method):
    """``method()`` with the network in eval mode, without gradients, under the autocast."""
    network = loop.task.network
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad(), loop.autocast(), loop.shown_weights():
            return method()
    finally:
        network.train(was_training)


def write_samples(loop: RunState, iteration: int) -> None:
    rows = evaluated(loop, loop.task.sample_rows)
    folder = loop.run_dir / "samples"
    folder.mkdir(exist_ok=True)
    save_grid(rows, folder / f"iter_{iteration:07d}.jpg")


def validate(loop: RunState, iteration: int) -> None:
    """Log the task's losses on its held-out images at ``iteration`` and redraw the curve."""
    losses = evaluated(loop, loop.task.validation_losses)
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
