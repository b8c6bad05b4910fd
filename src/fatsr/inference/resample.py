"""The resamplers beside the network: bicubic (:func:`bicubic`, the one torch bicubic that
rasters' other bands, the residual beyond the stretch and the trainer's baseline share),
nearest (alpha bands) and :class:`TailSafe`, which keeps values beyond [0, 1] away from the
network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fatsr.models.contract import Interpolation, ModelInfo, Resampler

TAIL = 0.05  # how far beyond [0, 1] the network sees values (the rest goes bicubic)


def bicubic(x: Tensor, scale: int) -> Tensor:
    """NCHW ``x`` enlarged ``scale`` times by torch's bicubic (a = -0.75, align_corners=False).
    (The bicubic baseline of ``fatsr evaluate`` and ``--model bicubic``,
    :class:`~fatsr.models.bicubic.BicubicModel`, is Pillow's kernel, a = -0.5.)"""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class Bicubic(Interpolation):
    """Bicubic interpolation with the :class:`~fatsr.models.wrapper.SRModel` calling convention."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return bicubic(x, self.scale)


class Nearest(Interpolation):
    """Nearest-neighbour enlargement (alpha bands)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


def soft_clip(x: Tensor, tail: float = TAIL) -> Tensor:
    """Identity on [0, 1]; beyond, ``tail * tanh(excess / tail)``: smooth (C1), monotonic,
    and never more than ``tail`` outside [0, 1]."""
    over = tail * torch.tanh(torch.clamp(x - 1, min=0) / tail)
    under = tail * torch.tanh(torch.clamp(-x, min=0) / tail)
    return torch.clamp(x, 0, 1) + over - under


class TailSafe(nn.Module):
    """A model that only ever sees values near [0, 1]: ``model(soft_clip(x)) +
    bicubic(x - soft_clip(x))``. In range the residual is zero and this is the model; a
    target far brighter than the stretch (a roof, a cloud, a glint) keeps its value through
    bicubic instead of driving the network where it was never trained."""

    def __init__(self, model: Resampler) -> None:
        super().__init__()
        self.model = model
        self.scale: int = model.scale

    @property
    def info(self) -> ModelInfo:
        return self.model.info

    def forward(self, x: Tensor) -> Tensor:
        inside = soft_clip(x)
        out = self.model(inside)
        residual = x - inside
        if bool((residual != 0).any()):
            out = out + bicubic(residual, self.scale).to(out.dtype)
        return out
