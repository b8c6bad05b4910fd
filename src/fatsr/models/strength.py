"""``--denoise auto``: the strength of the clean/real-imagery mix chosen for each input tile from
how degraded it looks.

``fatsr-x4`` (strength 0) wins on clean and mildly degraded imagery, ``fatsr-real-x4`` (1) on
heavily blurred, noisy and compressed imagery. A blurred image has little fine detail left
compared with its coarse detail: the ratio of a mean absolute fourth-order difference (the
second difference along rows of the second difference along columns, the mask of Immerkaer's
noise estimate) to the mean absolute first difference (a gradient) of its grey levels. :func:`sharpness` measures
it per tile; :data:`SHARP` and :data:`BLURRED` map it to a strength (linear in between), fitted on
UC Merced *training* images made clean, ``mild`` and ``fat`` (``benchmarks/calibrate_denoise.py``,
which prints the fit and its figures).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from fatsr.models.contract import ModelInfo
from fatsr.models.wrapper import SRModel

SHARP = 1.0  # sharpness at and above which a tile gets strength 0 (fatsr-x4)
BLURRED = 0.78  # sharpness at and below which a tile gets strength 1 (fatsr-real-x4)
STEPS = 8  # strengths are rounded to multiples of 1 / STEPS


def sharpness(x: Tensor) -> Tensor:  # (N, C, H, W) in [0, 1] -> (N,)
    """Mean |second difference along rows of the second difference along columns| over the mean
    |first difference| (rows and columns averaged) of each image's grey levels; 0 for a flat image."""
    grey = x.mean(dim=1)  # (N, H, W)
    first = (grey.diff(dim=-1).abs().mean(dim=(-2, -1)) + grey.diff(dim=-2).abs().mean(dim=(-2, -1))) / 2
    second = grey.diff(n=2, dim=-2).diff(n=2, dim=-1).abs().mean(dim=(-2, -1))
    return torch.where(first > 0, second / first.clamp_min(1e-12), torch.zeros_like(first))


def strength(x: Tensor) -> Tensor:  # (N, C, H, W) -> (N,) in [0, 1], multiples of 1 / STEPS
    """The mix strength for each image: 0 when sharp, 1 when blurred (see the module)."""
    raw = ((SHARP - sharpness(x)) / (SHARP - BLURRED)).clamp(0.0, 1.0)
    return torch.round(raw * STEPS) / STEPS


class AutoDenoise(nn.Module):
    """``real`` (fatsr-real-x4's network in its wrapper) whose network's weights are, for each
    input image, ``clean``'s (fatsr-x4's network's state dict) and its own mixed at :func:`strength` of that image (one network run per
    distinct strength in a batch; the same input gives the same output)."""

    def __init__(self, real: SRModel, clean: dict[str, Tensor]) -> None:
        super().__init__()
        self.model = real
        self.name = f"{real.name} denoise auto"
        self.scale = real.scale
        self.metadata = {**real.metadata, "denoise": "auto"}
        ends = real.network.state_dict()
        self._ends = ({k: v.clone() for k, v in clean.items()}, {k: v.clone() for k, v in ends.items()})
        self._current = 1.0

    @property
    def info(self) -> ModelInfo:
        return replace(self.model.info, name=self.name, metadata=self.metadata)

    def _mix(self, s: float) -> None:
        if s != self._current:
            clean, real = self._ends
            self.model.network.load_state_dict({k: torch.lerp(v, real[k], s) for k, v in clean.items()})
            self._current = s

    def forward(self, x: Tensor) -> Tensor:  # (N, C, h, w) -> (N, C, s*h, s*w)
        strengths = strength(x)
        out: Tensor | None = None
        for s in torch.unique(strengths).tolist():
            pick = strengths == s
            self._mix(s)
            y = self.model(x[pick])
            if out is None:
                out = y.new_empty((x.shape[0], *y.shape[1:]))
            out[pick] = y
        assert out is not None
        return out
