"""Exponential moving average of a network's weights, updated after every training step."""

from __future__ import annotations

import copy
from typing import Generic, TypeVar

import torch
from torch import Tensor, nn

M = TypeVar("M", bound=nn.Module)


class EMA(Generic[M]):
    """A frozen copy of ``network`` whose weights follow ``w_ema <- d * w_ema + (1 - d) * w``.

    The decay warms up as ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so a short
    run's average is not dominated by the random initialisation. Buffers are copied. With
    ``decay`` 0 (no EMA) the copy is the network's weights exactly.
    """

    def __init__(self, network: M, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(network).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        """Move the average one step towards ``network``'s current weights."""
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        ema_params: list[Tensor] = list(self.module.parameters())
        params = [p.detach() for p in network.parameters()]
        if d == 0:
            torch._foreach_copy_(ema_params, params)
        else:
            torch._foreach_lerp_(ema_params, params, 1.0 - d)
        for ema_buf, buf in zip(self.module.buffers(), network.buffers(), strict=True):
            ema_buf.copy_(buf)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "weights": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.module.load_state_dict(state["weights"])
