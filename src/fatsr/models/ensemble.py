"""Test-time ensembles: a model run on the 8 flips and quarter turns of its input, each output
turned back and averaged (the self-ensemble of EDSR and most SR papers), or the per-pixel spread
of those 8 outputs, a map of where the network is unsure.

Both are models themselves (the contract of :mod:`fatsr.models.contract`), so the tiler, the
raster path, ``evaluate`` and ``compare`` run them unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from fatsr.models.contract import Model, ModelInfo

# (quarter turns, flip the width) of each of the 8 symmetries of a square
SYMMETRIES = [(k, flip) for flip in (False, True) for k in range(4)]


def _forward(x: Tensor, turns: int, flip: bool) -> Tensor:  # (N, C, H, W)
    x = x.flip(-1) if flip else x
    return torch.rot90(x, turns, dims=(-2, -1))


def _backward(y: Tensor, turns: int, flip: bool) -> Tensor:
    y = torch.rot90(y, -turns, dims=(-2, -1))
    return y.flip(-1) if flip else y


class SelfEnsemble(nn.Module):
    """``model`` on the 8 symmetries of each input, turned back: their mean (``spread=False``)
    or, for every pixel, the standard deviation over the 8 outputs averaged over channels and
    repeated on every channel (``spread=True``). Its :attr:`info` is ``model``'s (channels,
    band mapping, seed) but for the name."""

    def __init__(self, model: Model, *, spread: bool = False) -> None:
        super().__init__()
        self.model = model
        self.spread = spread
        self.scale = model.scale
        self.name = f"{model.name} {'x8 spread' if spread else 'x8 ensemble'}"

    @property
    def info(self) -> ModelInfo:
        return replace(self.model.info, name=self.name)

    def forward(self, x: Tensor) -> Tensor:  # (N, C, h, w) -> (N, C, s*h, s*w)
        outputs = [_backward(self.model(_forward(x, k, flip)), k, flip) for k, flip in SYMMETRIES]
        if not self.spread:
            total = outputs[0]
            for y in outputs[1:]:
                total = total + y
            return total / len(outputs)
        sd = torch.stack(outputs).std(dim=0, unbiased=False).mean(dim=1, keepdim=True)  # (N, 1, s*h, s*w)
        return sd.expand_as(outputs[0]).contiguous()
