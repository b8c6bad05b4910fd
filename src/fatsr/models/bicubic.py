"""The bicubic baseline as a model (``load_model("bicubic")``)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from fatsr.models.contract import ModelInfo


class BicubicModel(nn.Module):
    """[0, 1] NCHW in, ``scale`` times larger out (kernel a=-0.5, as PIL and MATLAB's imresize),
    differentiable, any number of channels. (:func:`fatsr.evaluation.evaluate.evaluate` upscales 8/16-bit
    files with :func:`~fatsr.data.resize.pillow_bicubic` instead, whose 8-bit path rounds between
    its two passes as Pillow does.)"""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.name = "bicubic"

    @property
    def info(self) -> ModelInfo:
        # any channel count: in_channels 0 means "as many as given"
        return ModelInfo(name=self.name, scale=self.scale, in_channels=0, out_channels=0)

    def forward(self, x: Tensor) -> Tensor:
        size = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
