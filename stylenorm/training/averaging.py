"""An exponential moving average of a network's weights (``--ema``)."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """Exponential moving average of a network's floating-point parameters and buffers,
    ``avg <- d * avg + (1 - d) * w`` after every step, with ``d = min(decay, (1 + t) / (10 + t))``
    at step t so that the first steps are not dominated by the starting weights."""

    def __init__(self, network: nn.Module, decay: float) -> None:
        self.decay, self.steps = decay, 0
        self.shadow = {k: v.detach().float().clone() for k, v in network.state_dict().items()
                       if v.is_floating_point()}

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for key, value in network.state_dict().items():
            if key in self.shadow:
                self.shadow[key].lerp_(value.detach().float(), 1 - d)
        self.steps += 1

    def state_dict(self) -> dict:
        return {"steps": self.steps, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.shadow = int(state["steps"]), state["shadow"]

    @contextmanager
    def applied(self, network: nn.Module):
        """``network`` holds the averaged weights inside the block, its own after it."""
        own = {k: v.detach().clone() for k, v in network.state_dict().items()}
        network.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in
                                           self.shadow.items()}})
        try:
            yield network
        finally:
            network.load_state_dict(own)
