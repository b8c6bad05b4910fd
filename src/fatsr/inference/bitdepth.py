"""Bit depth as the file declares it, and back-projection that stays exact where values clip.

A 12-bit product stored in uint16 says so with ``NBITS=12`` (GDAL's ``IMAGE_STRUCTURE``
metadata): its values are 0..4095. fatsr reads it, clamps outputs to that range and writes
it back. Back-projection makes each ``scale`` x ``scale`` output block's mean equal its
input pixel; where the corrected values would pass the range's ends (saturated roofs, deep
shadows) the clipped excess is handed to the block's other pixels until the mean holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rasterio.io import DatasetReader

TOLERANCE = 1e-9  # unit-space error under which a block's mean counts as its input pixel


def nbits(ds: DatasetReader) -> int | None:
    """The file's ``NBITS`` for unsigned integers narrower than their dtype (12 in uint16, ...);
    None where it declares none."""
    dtype = np.dtype(ds.dtypes[0])
    try:
        bits = int(ds.tags(1, ns="IMAGE_STRUCTURE").get("NBITS", ""))
    except ValueError:
        return None
    return bits if dtype.kind == "u" and 1 <= bits < 8 * dtype.itemsize else None


def back_project(
    unit: np.ndarray, lr: np.ndarray, scale: int, limits: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``unit`` (C, s*h, s*w) corrected so that the mean of every ``scale`` x ``scale`` block
    equals its pixel of ``lr`` (C, h, w), and the (C, h, w) blocks where that cannot hold.

    Without ``limits`` each block is shifted by its own error. With ``limits`` (low, high),
    arrays broadcasting to (C, 1, 1): the values are clipped to them and each block's
    remaining error is spread over its pixels that can still move that way, again until
    every mean holds (at most ``scale**2 + 1`` rounds: each round that does not finish
    saturates a pixel). A block whose input lies outside the limits cannot hold."""
    c, h, w = lr.shape
    if limits is None:
        means = unit.reshape(c, h, scale, w, scale).mean(axis=(2, 4))
        return unit + (lr - means).repeat(scale, axis=1).repeat(scale, axis=2), np.zeros(lr.shape, bool)
    low = np.asarray(limits[0], np.float64).reshape(-1, 1, 1, 1, 1)
    high = np.asarray(limits[1], np.float64).reshape(-1, 1, 1, 1, 1)
    x = unit.astype(np.float64).reshape(c, h, scale, w, scale)
    target = lr.astype(np.float64)[:, :, None, :, None]
    # an input at a limit, rounded to the LR's float32, may lie a rounding step beyond it: it is at the limit
    step = 4 * np.finfo(np.float32).eps * np.maximum(1.0, np.abs(target))
    clipped = np.clip(target, low, high)
    target = np.where(np.abs(target - clipped) <= step, clipped, target)
    for _ in range(scale * scale + 1):
        x = np.clip(x, low, high)
        error = target - x.mean(axis=(2, 4), keepdims=True)
        if np.abs(error).max() <= TOLERANCE:
            break
        free = np.where(error > 0, x < high, x > low)
        count = free.sum(axis=(2, 4), keepdims=True)
        x = x + np.where(free, error * (scale * scale) / np.maximum(count, 1), 0)
    x = np.clip(x, low, high)
    off = np.abs(target - x.mean(axis=(2, 4), keepdims=True))[:, :, 0, :, 0] > TOLERANCE
    return x.reshape(unit.shape).astype(unit.dtype, copy=False), off


class BackProjection:
    """:func:`back_project` of output rows against the LR ``read`` window reader of the same
    bands (unit space), with ``limits``; counts the blocks that cannot keep their mean."""

    def __init__(
        self,
        read: Callable[[int, int, int, int], np.ndarray],
        scale: int,
        limits: tuple[np.ndarray, np.ndarray] | None,
    ) -> None:
        self.read, self.scale, self.limits = read, scale, limits
        self.off = 0
        self.blocks = 0

    def __call__(self, unit: np.ndarray, top: int, left: int) -> np.ndarray:
        """``unit`` (C, s*h, s*w) of the output whose top-left LR pixel is (``top``, ``left``)."""
        h, w = unit.shape[1] // self.scale, unit.shape[2] // self.scale
        corrected, off = back_project(unit, self.read(top, top + h, left, left + w), self.scale, self.limits)
        self.off += int(off.sum())
        self.blocks += off.size
        return corrected
