"""Bicubic downscaling as used to synthesise LR images, and rounding to a file's bit depth."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fatsr.errors import FatsrError


def bicubic_downscale(hr: Tensor, scale: int) -> Tensor:
    """Downscale an NCHW or CHW float image in [0, 1] by ``scale`` (torch bicubic with
    antialiasing, align_corners=False), clamped to [0, 1]. H and W must be multiples of ``scale``."""
    batch = hr if hr.ndim == 4 else hr.unsqueeze(0)
    h, w = batch.shape[-2:]
    if scale < 1 or h % scale or w % scale:
        raise FatsrError(f"HR size {w}x{h} is not divisible by scale {scale}; crop it to a multiple of {scale}")
    lr = F.interpolate(batch, size=(h // scale, w // scale), mode="bicubic", align_corners=False, antialias=True)
    lr = lr.clamp_(0.0, 1.0)
    return lr if hr.ndim == 4 else lr.squeeze(0)


def quantize(x: Tensor, levels: int) -> Tensor:
    """Round values in [0, 1] to the grid of a file with ``levels`` + 1 grey levels (255: 8 bit)."""
    return torch.round(x * levels) / levels
