"""Bicubic resizing as used to synthesise LR images (torch, for training; Pillow, the
literature's convention, for evaluation) and rounding to a file's bit depth."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
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


_PILLOW_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def pillow_resize(image: np.ndarray, height: int, width: int, method: str = "bicubic") -> np.ndarray:
    """An HWC uint8/uint16 image resized to ``height`` x ``width`` by Pillow's ``bicubic``
    (kernel a = -0.5, widened when shrinking: MATLAB's ``imresize`` kernel) or ``bilinear``
    filter, same dtype and bands.

    8-bit grey and RGB images go through Pillow's own 8-bit path, so the result is what
    ``Image.resize(size, Image.BICUBIC)`` gives (LAM_Demo and most SR papers' data scripts);
    other images are resized band by band in Pillow's 32-bit float mode and rounded (float32
    images, values in [0, 1], are not rounded)."""
    resample = _PILLOW_FILTERS[method]
    if image.ndim != 3 or image.dtype not in (np.uint8, np.uint16, np.float32):
        raise FatsrError(f"cannot resize an image of shape {image.shape} and type {image.dtype}")
    if height < 1 or width < 1:
        raise FatsrError(f"cannot resize to {width}x{height}; give a size of at least 1x1")
    bands = image.shape[2]
    if image.dtype == np.uint8 and bands in (1, 3):
        source = Image.fromarray(image[:, :, 0] if bands == 1 else image)
        return np.asarray(source.resize((width, height), resample)).reshape(height, width, bands)
    resized = [
        np.asarray(Image.fromarray(image[:, :, b].astype(np.float32)).resize((width, height), resample))
        for b in range(bands)
    ]
    out = np.stack(resized, axis=2)
    if image.dtype == np.float32:
        return out
    return np.clip(np.round(out), 0, np.iinfo(image.dtype).max).astype(image.dtype)


def pillow_bicubic(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """:func:`pillow_resize` with Pillow's bicubic."""
    return pillow_resize(image, height, width, "bicubic")


def pillow_bicubic_downscale(image: np.ndarray, scale: int) -> np.ndarray:
    """:func:`pillow_bicubic` of an HWC image (sides multiples of ``scale``) to 1/``scale``."""
    h, w = image.shape[:2]
    if scale < 1 or h % scale or w % scale:
        raise FatsrError(f"HR size {w}x{h} is not divisible by scale {scale}; crop it to a multiple of {scale}")
    return pillow_bicubic(image, h // scale, w // scale)
