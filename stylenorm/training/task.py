"""What a trainer gives the loop (:class:`Task`) and what :func:`.loop.fit` gives back
(:class:`TrainResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

__all__ = ["Task", "TrainResult"]


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
