"""Tiled inference: any super-resolution model over an image of any size.

The LR image is cut into overlapping tiles (all of one size, spread evenly so that each
overlap is at least ``overlap``), blended with separable raised-cosine ramps that form a
partition of unity (no ramp at image borders). The output is produced in column panels
(``panel`` LR pixels wide) and, within a panel, tile row by tile row: a block of output rows
is handed out as soon as the next tile row no longer touches it. Memory holds one tile batch
and one panel-wide row-band, whatever the image size. A panel recomputes the tiles that
straddle its edges, so every output pixel sums exactly the tiles it would sum untiled.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import torch
from torch import nn

from fatsr.errors import ArgumentError, FatsrError
from fatsr.models.contract import Resampler, size_rule_of
from fatsr.progress import Progress

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's from Python 3.11

ReadWindow = Callable[
    [int, int, int, int], np.ndarray
]  # LR (top, bottom, left, right) -> (C, rows, cols) float32 [0, 1]


@dataclass(frozen=True)
class Tiling:
    """Tile size, overlap and panel width in LR pixels, and tiles per forward pass."""

    tile: int = 96
    overlap: int = 24
    batch: int = 4
    panel: int = 2048  # a multiple of 256: output panels then align with 256-pixel GeoTIFF blocks

    def __post_init__(self) -> None:
        if self.tile <= 0:
            raise ArgumentError("{arg}: must be positive (e.g. 96)", "tile", self.tile)
        if not 0 <= self.overlap <= self.tile // 2:
            raise ArgumentError(
                f"{{arg}}: must be between 0 and half the tile ({self.tile // 2})", "overlap", self.overlap
            )
        if self.batch < 1:
            raise FatsrError(f"tile batch {self.batch}: must be at least 1")
        if self.panel < self.tile:
            raise FatsrError(f"panel {self.panel}: must be at least the tile ({self.tile})")


DEFAULT_TILING = Tiling()


class TileRun(TypedDict, total=False):
    """How the tiles run, the keywords :func:`upscale_tiled` and :func:`upscale_image` pass on
    to :func:`upscale_blocks`: ``device`` (None: the model's), ``autocast`` (float16 or
    bfloat16; None: float32), ``progress`` (the label of the tile progress)."""

    device: torch.device | None
    autocast: torch.dtype | None
    progress: str | None


def check_tiling(tiling: Tiling, model: Resampler, height: int = 1, width: int = 1) -> None:
    """Refuse an empty image, and a tile side the model cannot compute on as it is (its
    :class:`~fatsr.models.contract.SizeRule`)."""
    if height < 1 or width < 1:
        raise FatsrError(f"image of {width}x{height} pixels has nothing to upscale")
    rule = size_rule_of(model)
    if tiling.tile % rule.multiple_of:
        raise ArgumentError(
            f"{{arg}}: must be a positive multiple of {rule.multiple_of} (e.g. 96)", "tile", tiling.tile
        )


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """First LR index of each tile along one axis: as few tiles as keep every overlap
    >= ``overlap``, spread evenly, the last one ending at the border."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [k * (length - tile) // (count - 1) for k in range(count)]


def tile_borders(length: int, tiling: Tiling, scale: int) -> list[int]:
    """Output indices along an axis of ``length`` LR pixels where a tile starts, ends, or
    its blend ramp is centred: where a seam would show."""
    size = min(tiling.tile, length)
    found: set[int] = set()
    for a, b in itertools.pairwise(tile_starts(length, size, tiling.overlap)):
        found |= {b * scale, (a + size) * scale, round((a + b + size) / 2 * scale)}
    return sorted(found)


def axis_weights(starts: list[int], size: int, overlap: int, scale: int) -> list[np.ndarray]:
    """Blend weights (float32, ``size * scale`` output pixels) of each tile along one axis.

    Between neighbours a raised-cosine ramp of width ``overlap`` (narrower where the next
    ramp would be closer than that) is centred in their overlap; the weights sum to one.
    """
    mids = [(a + b + size) / 2 for a, b in itertools.pairwise(starts)]
    gaps = np.diff([-math.inf, *mids, math.inf])
    ramps = [min(overlap, gaps[k], gaps[k + 1]) for k in range(len(mids))]
    weights = []
    for k, start in enumerate(starts):
        centres = start + (np.arange(size * scale) + 0.5) / scale  # output pixel centres, LR units
        w = np.ones(size * scale)
        if k > 0:
            w *= 1 - _falling(centres, mids[k - 1], ramps[k - 1])
        if k < len(starts) - 1:
            w *= _falling(centres, mids[k], ramps[k])
        weights.append(w)
    total = np.zeros((starts[-1] + size) * scale)
    for start, w in zip(starts, weights):
        total[start * scale : start * scale + w.size] += w
    return [(w / total[s * scale : s * scale + w.size]).astype(np.float32) for s, w in zip(starts, weights)]


def _falling(x: np.ndarray, mid: float, width: float) -> np.ndarray:
    """1 before ``mid - width/2``, a half cosine down to 0 at ``mid + width/2``."""
    if width == 0:
        return (x < mid).astype(np.float64)
    t = np.clip((x - mid + width / 2) / width, 0.0, 1.0)
    return 0.5 + 0.5 * np.cos(np.pi * t)


def model_device(model: Resampler) -> torch.device:
    """The device of the model's parameters (CPU for a parameterless callable)."""
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device("cpu")


def _forward(model: Resampler, x: np.ndarray, device: torch.device, autocast: torch.dtype | None) -> np.ndarray:
    """One batch through the model; under autocast, a result with NaN/Inf is redone in float32.
    A float32 result with NaN/Inf (from finite input) raises FatsrError: the model is broken."""
    with torch.inference_mode():
        batch = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        if autocast is not None:
            with torch.autocast(device.type, dtype=autocast):
                y = model(batch)
            if bool(torch.isfinite(y).all()):
                return y.float().cpu().numpy()
            warnings.warn(f"{autocast} gave NaN/Inf on a tile batch; redoing such batches in float32", stacklevel=2)
        y = model(batch).float()
        if not bool(torch.isfinite(y).all()):
            raise FatsrError(
                "the model gave NaN/Inf values for finite input (in float32); its weights are probably "
                "broken (e.g. a diverged training run): use another model file"
            )
        return y.cpu().numpy()


@dataclass(frozen=True)
class Block:
    """Finished output pixels: ``data`` (C, rows, cols) float32 in [0, 1] space (not clamped)
    at output row ``top`` and column ``left``; ``panel`` is the index of its column panel."""

    panel: int
    top: int
    left: int
    data: np.ndarray


def panel_columns(width: int, tiling: Tiling, scale: int) -> list[tuple[int, int]]:
    """Output column range [first, end) of each panel."""
    step = tiling.panel * scale
    return [(c, min(c + step, width * scale)) for c in range(0, width * scale, step)]


def upscale_blocks(
    model: Resampler,
    read: ReadWindow,
    height: int,
    width: int,
    tiling: Tiling = DEFAULT_TILING,
    *,
    device: torch.device | None = None,
    autocast: torch.dtype | None = None,
    resume: tuple[int, int] = (0, 0),
    progress: str | None = None,
) -> Iterator[Block]:
    """Yield the output as blocks, panel by panel and top to bottom within a panel; each
    ``data`` is valid until the next block is asked for. The blocks tile the output exactly.

    ``model`` maps (N, C, h, w) in [0, 1] to (N, C, scale*h, scale*w) and has ``.scale``.
    ``resume=(panel, row)`` starts at output row ``row`` of that panel (earlier panels and
    rows are neither computed nor yielded). ``progress``: the label of the tile progress on
    stderr (a bar on a terminal, else a line at least every 30 s; see :mod:`fatsr.progress`).
    """
    check_tiling(tiling, model, height, width)
    device = device or model_device(model)
    grid = _Grid.of(height, width, tiling, model.scale)
    panels = []
    for p, (c0, c1) in enumerate(panel_columns(width, tiling, model.scale)):
        if p >= resume[0]:
            cols = [j for j, x in enumerate(grid.xs) if x * grid.s < c1 and (x + grid.tw) * grid.s > c0]
            panels.append(_Panel(p, c0, c1, cols, resume[1] if p == resume[0] else 0))
    total = sum(len(panel.cols) * sum((y + grid.th) * grid.s > panel.first_row for y in grid.ys) for panel in panels)
    with Progress(total, progress) as bar:
        for panel in panels:
            yield from _panel_blocks(model, read, grid, panel, tiling.batch, device, autocast, bar.update)


@dataclass(frozen=True)
class _Grid:
    """Tile starts and blend weights along each axis; tile size; scale."""

    ys: list[int]
    xs: list[int]
    wy: list[np.ndarray]
    wx: list[np.ndarray]
    th: int
    tw: int
    s: int

    @classmethod
    def of(cls, height: int, width: int, tiling: Tiling, scale: int) -> _Grid:
        th, tw = min(tiling.tile, height), min(tiling.tile, width)
        ys, xs = tile_starts(height, th, tiling.overlap), tile_starts(width, tw, tiling.overlap)
        wy, wx = axis_weights(ys, th, tiling.overlap, scale), axis_weights(xs, tw, tiling.overlap, scale)
        return cls(ys, xs, wy, wx, th, tw, scale)


@dataclass(frozen=True)
class _Panel:
    """A column panel: its index, output columns [c0, c1), the tile columns touching it, and
    the first output row to make."""

    index: int
    c0: int
    c1: int
    cols: list[int]
    first_row: int


def _panel_blocks(
    model: Resampler,
    read: ReadWindow,
    grid: _Grid,
    panel: _Panel,
    batch_size: int,
    device: torch.device,
    autocast: torch.dtype | None,
    tiles_done: Callable[[int], object],
) -> Iterator[Block]:
    """One panel's blocks, top to bottom; ``tiles_done(k)`` after each batch of k tiles."""
    s, th, tw, xs = grid.s, grid.th, grid.tw, grid.xs
    left, right = xs[panel.cols[0]], xs[panel.cols[-1]] + tw  # LR columns the panel reads
    band: np.ndarray | None = None
    for i, y0 in enumerate(grid.ys):
        end = (grid.ys[i + 1] - y0) * s if i + 1 < len(grid.ys) else th * s  # band rows finished after this tile row
        if (y0 + th) * s <= panel.first_row:
            continue
        strip = read(y0, y0 + th, left, right)
        if band is None:
            band = np.zeros((strip.shape[0], th * s, (right - left) * s), np.float32)
        for first in range(0, len(panel.cols), batch_size):
            batch = panel.cols[first : first + batch_size]
            tiles = np.stack([strip[:, :, xs[j] - left : xs[j] - left + tw] for j in batch])
            for tile_out, j in zip(_forward(model, tiles, device, autocast), batch):
                x0 = (xs[j] - left) * s
                band[:, :, x0 : x0 + tw * s] += tile_out * grid.wy[i][:, None] * grid.wx[j][None, :]
            tiles_done(len(batch))
        skip = max(0, panel.first_row - y0 * s)
        if skip < end:
            yield Block(
                panel.index, y0 * s + skip, panel.c0, band[:, skip:end, panel.c0 - left * s : panel.c1 - left * s]
            )
        for row in range(band.shape[1] - end):  # move the unfinished rows up, row by row: no copy of the band
            band[:, row] = band[:, end + row]
        band[:, band.shape[1] - end :] = 0


def upscale_tiled(
    model: Resampler, image: np.ndarray, tiling: Tiling = DEFAULT_TILING, **run: Unpack[TileRun]
) -> np.ndarray:
    """Upscale a (C, H, W) float32 [0, 1] array; one tile is a plain forward pass. ``run``:
    ``device``, ``autocast``, ``progress`` as :func:`upscale_blocks` takes them."""
    _, height, width = image.shape
    check_tiling(tiling, model, height, width)
    if height <= tiling.tile and width <= tiling.tile:
        return _forward(model, image[None], run.get("device") or model_device(model), run.get("autocast"))[0]
    out: np.ndarray | None = None
    for block in upscale_blocks(model, lambda t, b, l, r: image[:, t:b, l:r], height, width, tiling, **run):
        if out is None:
            out = np.empty((block.data.shape[0], height * model.scale, width * model.scale), np.float32)
        rows, cols = block.data.shape[1:]
        out[:, block.top : block.top + rows, block.left : block.left + cols] = block.data
    assert out is not None  # the blocks tile the output
    return out


def upscale_image(
    model: Resampler, image: np.ndarray, tiling: Tiling = DEFAULT_TILING, **run: Unpack[TileRun]
) -> np.ndarray:
    """Upscale an HWC image: uint8/uint16 (full range; rounded and clipped, same dtype out)
    or float ([0, 1]; float32 out, not clipped). ``run`` as :func:`upscale_tiled` takes it."""
    if image.ndim != 3:
        raise FatsrError(f"image of shape {image.shape}: give an HWC array (height, width, channels)")
    if image.dtype in (np.uint8, np.uint16):
        peak = float(np.iinfo(image.dtype).max)
    elif np.issubdtype(image.dtype, np.floating):
        peak = 1.0
    else:
        raise FatsrError(f"{image.dtype} image: give uint8, uint16 or float (in [0, 1]) pixels")
    x = np.transpose(image, (2, 0, 1)).astype(np.float32) / np.float32(peak)
    if peak == 1.0 and not np.isfinite(x).all():
        raise FatsrError(
            "the image holds NaN/Inf values; replace them (or upscale it as a GeoTIFF, where they count as nodata)"
        )
    y = np.transpose(upscale_tiled(model, x, tiling, **run), (1, 2, 0))
    if peak == 1.0:
        return np.ascontiguousarray(y)
    return np.rint(np.clip(y, 0.0, 1.0) * peak).astype(image.dtype)
