"""Tiled inference: any super-resolution model over an image of any size.

The LR image is cut into overlapping tiles (all of one size, spread evenly so that each
overlap is at least ``overlap``), blended with separable raised-cosine ramps that form a
partition of unity (no ramp at image borders). The output is produced in column panels
(``panel`` LR pixels wide) and, within a panel, tile row by tile row: a block of output rows
is handed out as soon as the next tile row no longer touches it. On a CPU, worker threads
compute several tile batches at once (:func:`tile_runner`). Memory holds a few tile batches
per worker and one panel-wide row-band, whatever the image size. A panel recomputes the tiles that
straddle its edges, so every output pixel sums exactly the tiles it would sum untiled.
A window of the scene (:func:`upscale_window`, ``upscale_blocks(..., window=...)``) keeps the
whole scene's tiles, panels and tile batches and computes those that touch it: its pixels are
the whole-scene output's, bit for bit.
"""

from __future__ import annotations

import collections
import contextvars
import copy
import itertools
import math
import queue
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypedDict, TypeVar

import numpy as np
import torch
from torch import nn

from fatsr.errors import ArgumentError, FatsrError
from fatsr.models.contract import Resampler
from fatsr.progress import Progress

BATCH_PIXELS = 4 * 96 * 96  # LR pixels per forward pass by default: 4 tiles of 96, 1 of 192
MAX_WORKERS = 4  # tile batches at once on a CPU: each worker holds a model copy and its activations
Key = TypeVar("Key")

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's from Python 3.11

Area = tuple[int, int, int, int]  # LR (top, bottom, left, right): a window of the scene
Runner = Callable[[Iterator[tuple[Key, np.ndarray]]], Iterator[tuple[Key, np.ndarray]]]
# Where tile batches run instead of this process (fatsr.inference.distributed sets it): given a
# run's model and autocast, a context manager of a runner as tile_runner's, or None to run here.
REMOTE_TILES: contextvars.ContextVar[
    Callable[[Resampler, torch.dtype | None], AbstractContextManager[Runner] | None] | None
] = contextvars.ContextVar("fatsr_remote_tiles", default=None)


class ReadWindow(Protocol):
    """LR (top, bottom, left, right) -> (C, rows, cols) float32 [0, 1]. In a window run, a read
    narrower than the whole-scene run's strip of these rows gets that strip's LR columns as
    ``strip``: a reader whose pixels depend on their neighbours (inpainting) makes them as it
    would in that strip."""

    def __call__(
        self, top: int, bottom: int, left: int, right: int, strip: tuple[int, int] | None = None
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class Tiling:
    """Tile size, overlap and panel width in LR pixels; tiles per forward pass (0: as many as
    make about :data:`BATCH_PIXELS`, at most 8); tile batches computed at once (None: see
    :func:`tile_workers`).

    192/24 recomputes 31% of the pixels of a large scene in overlaps (96/24: 78%) at the same
    cost per tile pixel; the tile size changes the built-in model's output (its LSH hashing
    sees the tile) but not its quality (measured in the README, "Scene speed")."""

    tile: int = 192
    overlap: int = 24
    batch: int = 0
    panel: int = 2048  # a multiple of 256: output panels then align with 256-pixel GeoTIFF blocks
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.tile <= 0:
            raise ArgumentError("{arg}: must be positive (e.g. 192)", "tile", self.tile)
        if not 0 <= self.overlap <= self.tile // 2:
            raise ArgumentError(
                f"{{arg}}: must be between 0 and half the tile ({self.tile // 2})", "overlap", self.overlap
            )
        if self.batch < 0:
            raise FatsrError(f"tile batch {self.batch}: must be at least 1 (or 0: by the tile size)")
        if self.batch == 0:
            object.__setattr__(self, "batch", min(8, max(1, BATCH_PIXELS // self.tile**2)))
        if self.workers is not None and self.workers < 1:
            raise FatsrError(f"tile workers {self.workers}: must be at least 1")
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
    rule = model.info.size
    if tiling.tile % rule.multiple_of:
        raise ArgumentError(
            f"{{arg}}: must be a positive multiple of {rule.multiple_of} (e.g. 192)", "tile", tiling.tile
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
    window: Area | None = None,
) -> Iterator[Block]:
    """Yield the output as blocks, panel by panel and top to bottom within a panel; each
    ``data`` is valid until the next block is asked for. The blocks tile the output exactly.

    ``model`` maps (N, C, h, w) in [0, 1] to (N, C, scale*h, scale*w) and has ``.scale``.
    ``resume=(panel, row)`` starts at output row ``row`` of that panel (earlier panels and
    rows are neither computed nor yielded). ``progress``: the label of the tile progress on
    stderr (a bar on a terminal, else a line at least every 30 s; see :mod:`fatsr.progress`).
    ``tiling.workers``: tile batches computed at once (see :func:`tile_runner`).

    ``window``: only this part of the ``height`` x ``width`` scene; the tiles, panels and tile
    batches stay those of the whole scene (its grid, anchored at its pixel (0, 0)), and only
    the batches touching the window are computed, so its pixels are those of the whole-scene
    output, bit for bit. Block coordinates, panel indices and ``resume`` then count from the
    window's output origin and its first panel.
    """
    check_tiling(tiling, model, height, width)
    top, bottom, left, right = window or (0, height, 0, width)
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise FatsrError(f"window rows {top}:{bottom}, columns {left}:{right}: not inside the {width}x{height} scene")
    device = device or model_device(model)
    grid = _Grid.of(height, width, tiling, model.scale)
    s = grid.s
    panels: list[_Panel] = []
    index = -1
    for c0, c1 in panel_columns(width, tiling, s):
        touching = [j for j, x in enumerate(grid.xs) if x * s < c1 and (x + grid.tw) * s > c0]
        c0, c1 = max(c0, left * s), min(c1, right * s)
        if c0 >= c1:
            continue
        index += 1
        first = top * s + (resume[1] if index == resume[0] else 0)
        # the whole-scene run's tile batches of this panel that touch the window's columns
        batches = [touching[k : k + tiling.batch] for k in range(0, len(touching), tiling.batch)]
        cols = [
            j for b in batches if any(grid.xs[j] * s < c1 and (grid.xs[j] + grid.tw) * s > c0 for j in b) for j in b
        ]
        strip = (grid.xs[touching[0]], grid.xs[touching[-1]] + grid.tw)
        if index >= resume[0]:
            panels.append(_Panel(index, c0, c1, cols, first, bottom * s, (top * s, left * s), strip))
    total = sum(len(panel.cols) * len(panel.tile_rows(grid)) for panel in panels)
    with Progress(total, progress) as bar, tile_runner(model, device, autocast, tiling.workers) as run:
        for panel in panels:
            yield from _panel_blocks(run, read, grid, panel, tiling.batch, bar.update)


def tile_workers(model: Resampler, device: torch.device, asked: int | None = None) -> int:
    """How many tile batches run at once: ``asked``, by default one per torch thread (at most
    :data:`MAX_WORKERS`), for a PyTorch model on a CPU; one otherwise."""
    if device.type != "cpu" or not isinstance(model, nn.Module):
        return 1
    return asked or max(1, min(torch.get_num_threads(), MAX_WORKERS))


@contextmanager
def tile_runner(
    model: Resampler, device: torch.device, autocast: torch.dtype | None, workers: int | None = None
) -> Iterator[Callable[[Iterator[tuple[Key, np.ndarray]]], Iterator[tuple[Key, np.ndarray]]]]:
    """A function that maps (key, tile batch) pairs to (key, model output), in order.

    With more than one worker (:func:`tile_workers`) each worker thread runs its own copy of
    the model on ``torch.get_num_threads() // workers`` torch threads, up to two batches each
    ahead of the consumer: the cores stay busy on whole batches instead of splitting every
    operation of one forward between them (where they wait on each other), and reading,
    blending and writing overlap the forwards. A tile's output does not depend on the worker
    that computes it (the model re-seeds its LSH generator at every call). Where
    :data:`REMOTE_TILES` gives a runner for this model, the batches go there instead.
    """
    remote = REMOTE_TILES.get()
    elsewhere = remote(model, autocast) if remote is not None else None
    if elsewhere is not None:
        with elsewhere as run_there:
            yield run_there
        return
    threads = torch.get_num_threads()
    workers = tile_workers(model, device, workers)
    try:
        copies = [copy.deepcopy(model) for _ in range(workers - 1)]
    except (TypeError, copy.Error):  # a model holding what cannot be copied (a lock, a session)
        copies, workers = [], 1
    if workers == 1:
        yield lambda jobs: ((key, _forward(model, x, device, autocast)) for key, x in jobs)
        return
    replicas: queue.SimpleQueue[Resampler] = queue.SimpleQueue()
    for replica in (model, *copies):
        replicas.put(replica)
    local = threading.local()

    def start() -> None:
        torch.set_num_threads(max(1, threads // workers))
        local.model = replicas.get()

    def forward(x: np.ndarray) -> np.ndarray:
        return _forward(local.model, x, device, autocast)

    def run(jobs: Iterator[tuple[Key, np.ndarray]]) -> Iterator[tuple[Key, np.ndarray]]:
        pending: collections.deque[tuple[Key, Future[np.ndarray]]] = collections.deque()
        for key, x in jobs:
            pending.append((key, pool.submit(contextvars.copy_context().run, forward, x)))  # the caller's runtime
            if len(pending) >= 2 * workers:
                key, result = pending.popleft()
                yield key, result.result()
        while pending:
            key, result = pending.popleft()
            yield key, result.result()

    pool = ThreadPoolExecutor(workers, thread_name_prefix="fatsr-tiles", initializer=start)
    try:
        yield run
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)  # the workers' setting is also the default of new threads


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
    """A column panel: its index, output columns [c0, c1), the tile columns computed for it
    (whole tile batches), the output rows [first_row, end_row) to make, the output (row,
    column) that block coordinates count from (all output indices are the scene's), and the
    LR columns [left, right) of the whole-scene run's tiles of this panel."""

    index: int
    c0: int
    c1: int
    cols: list[int]
    first_row: int
    end_row: int
    origin: tuple[int, int]
    strip: tuple[int, int]  # LR columns the whole-scene run reads for this panel

    def tile_rows(self, grid: _Grid) -> list[int]:
        """The tile rows that touch the panel's output rows."""
        return [
            i for i, y in enumerate(grid.ys) if (y + grid.th) * grid.s > self.first_row and y * grid.s < self.end_row
        ]


def _panel_blocks(
    run: Callable[[Iterator[tuple[list[int], np.ndarray]]], Iterator[tuple[list[int], np.ndarray]]],
    read: ReadWindow,
    grid: _Grid,
    panel: _Panel,
    batch_size: int,
    tiles_done: Callable[[int], object],
) -> Iterator[Block]:
    """One panel's blocks, top to bottom; ``run`` maps (key, tile batch) pairs to (key,
    output) in order; ``tiles_done(k)`` after each batch of k tiles."""
    s, th, tw, xs = grid.s, grid.th, grid.tw, grid.xs
    left, right = xs[panel.cols[0]], xs[panel.cols[-1]] + tw  # LR columns the panel reads
    rows = panel.tile_rows(grid)

    def batches() -> Iterator[tuple[list[int], np.ndarray]]:  # ([tile row, tile columns...], tiles)
        for i in rows:
            if (left, right) == panel.strip:
                strip = read(grid.ys[i], grid.ys[i] + th, left, right)
            else:
                strip = read(grid.ys[i], grid.ys[i] + th, left, right, strip=panel.strip)
            for first in range(0, len(panel.cols), batch_size):
                batch = panel.cols[first : first + batch_size]
                yield [i, *batch], np.stack([strip[:, :, xs[j] - left : xs[j] - left + tw] for j in batch])

    band: np.ndarray | None = None
    for (i, *batch), out in run(batches()):
        if band is None:
            band = np.zeros((out.shape[1], th * s, (right - left) * s), np.float32)
        for tile_out, j in zip(out, batch):
            x0 = (xs[j] - left) * s
            tile_out *= grid.wy[i][:, None]
            tile_out *= grid.wx[j][None, :]
            band[:, :, x0 : x0 + tw * s] += tile_out
        tiles_done(len(batch))
        if batch[-1] != panel.cols[-1]:
            continue
        y0 = grid.ys[i]
        end = (grid.ys[i + 1] - y0) * s if i + 1 < len(grid.ys) else th * s  # band rows finished after this tile row
        skip, stop = max(0, panel.first_row - y0 * s), min(end, panel.end_row - y0 * s)
        if skip < stop:
            data = band[:, skip:stop, panel.c0 - left * s : panel.c1 - left * s]
            yield Block(panel.index, y0 * s + skip - panel.origin[0], panel.c0 - panel.origin[1], data)
        for row in range(band.shape[1] - end):  # move the unfinished rows up, row by row: no copy of the band
            band[:, row] = band[:, end + row]
        band[:, band.shape[1] - end :] = 0


def array_reader(image: np.ndarray) -> ReadWindow:
    """A :class:`ReadWindow` of a (C, H, W) float32 [0, 1] array."""

    def read(top: int, bottom: int, left: int, right: int, strip: tuple[int, int] | None = None) -> np.ndarray:
        return image[:, top:bottom, left:right]

    return read


def upscale_window(
    model: Resampler,
    read: ReadWindow,
    height: int,
    width: int,
    window: Area,
    tiling: Tiling = DEFAULT_TILING,
    **run: Unpack[TileRun],
) -> np.ndarray:
    """The upscaled pixels (C, rows * scale, cols * scale) of ``window`` = LR (top, bottom,
    left, right) of a ``height`` x ``width`` scene that ``read`` reads: exactly those of the
    whole scene's output (same tile grid, same tile batches), computed from the tiles that
    touch the window and read with their halo (clipped at the scene's edges, as the tiles are)."""
    top, bottom, left, right = window
    out: np.ndarray | None = None
    for block in upscale_blocks(model, read, height, width, tiling, window=window, **run):
        if out is None:
            out = np.empty(
                (block.data.shape[0], (bottom - top) * model.scale, (right - left) * model.scale), np.float32
            )
        rows, cols = block.data.shape[1:]
        out[:, block.top : block.top + rows, block.left : block.left + cols] = block.data
    assert out is not None  # the blocks tile the window's output
    return out


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
    for block in upscale_blocks(model, array_reader(image), height, width, tiling, **run):
        if out is None:
            out = np.empty((block.data.shape[0], height * model.scale, width * model.scale), np.float32)
        rows, cols = block.data.shape[1:]
        out[:, block.top : block.top + rows, block.left : block.left + cols] = block.data
    assert out is not None  # the blocks tile the output
    return out


def image_peak(dtype: np.dtype) -> float:
    """The value that stands for full scale in an image of ``dtype``: the largest uint8/uint16
    value, or 1.0 for float; any other dtype is refused."""
    if dtype in (np.uint8, np.uint16):
        return float(np.iinfo(dtype).max)
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise FatsrError(f"{dtype} image: give uint8, uint16 or float (in [0, 1]) pixels")


def upscale_image(
    model: Resampler, image: np.ndarray, tiling: Tiling = DEFAULT_TILING, **run: Unpack[TileRun]
) -> np.ndarray:
    """Upscale an HWC image: uint8/uint16 (full range; rounded and clipped, same dtype out)
    or float ([0, 1]; float32 out, not clipped). ``run`` as :func:`upscale_tiled` takes it."""
    if image.ndim != 3:
        raise FatsrError(f"image of shape {image.shape}: give an HWC array (height, width, channels)")
    peak = image_peak(image.dtype)
    x = np.transpose(image, (2, 0, 1)).astype(np.float32) / np.float32(peak)
    if peak == 1.0 and not np.isfinite(x).all():
        raise FatsrError(
            "the image holds NaN/Inf values; replace them (or upscale it as a GeoTIFF, where they count as nodata)"
        )
    y = np.transpose(upscale_tiled(model, x, tiling, **run), (1, 2, 0))
    if peak == 1.0:
        return np.ascontiguousarray(y)
    return np.rint(np.clip(y, 0.0, 1.0) * peak).astype(image.dtype)
