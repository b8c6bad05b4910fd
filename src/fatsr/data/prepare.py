"""Dataset preparation helpers: mod-crop, overlapping tiles."""

from __future__ import annotations


import numpy as np

from fatsr.errors import FatsrError


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right of an HWC image to multiples of ``scale``."""
    h, w = image.shape[:2]
    if h < scale or w < scale:
        raise FatsrError(f"image of {w}x{h} is smaller than the scale {scale}; remove it")
    return image[: h - h % scale, : w - w % scale]


def tile_starts(length: int, size: int, step: int) -> list[int]:
    """Starts of tiles of ``size`` every ``step`` pixels along ``length``, the last one
    aligned to the end so the tiles cover everything (one tile if ``length <= size``)."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def tile_boxes(height: int, width: int, size: int, step: int) -> list[tuple[int, int, int, int]]:
    """(top, left, tile height, tile width) of the overlapping tiles covering an image."""
    return [
        (top, left, min(size, height), min(size, width))
        for top in tile_starts(height, size, step)
        for left in tile_starts(width, size, step)
    ]
