"""``fatsr.upscale(da)`` for an ``xarray.DataArray`` laid out as rioxarray opens a raster:
dims ``(band, y, x)`` or ``(y, x)`` (``pip install 'fatsr[xarray]'``).

The pixels go through the GeoTIFF path's steps (:mod:`fatsr.inference.raster`): the band
groups, the value mapping (from the same decimated sample), nodata inpainted for the network
and put back, values mapped back to the input's dtype. A DataArray that rioxarray opened
unmasked from a GeoTIFF therefore gets the pixels ``fatsr upscale`` writes for that file, byte
for byte (for a scene with internal overviews and a side over 1024 pixels the percentile
stretch of 16-bit and float data is taken from the pixels, not the overview: pass
``value_range=`` to pin it).

A Dask-backed DataArray gives a Dask-backed result and nothing is computed until it is asked
for. Each output chunk is its input chunk's area upscaled from the input around it (the tiles
that touch it, clipped at the scene's edges, and the margin the inpainting reads): the tiles
stay those of the whole scene (:func:`~fatsr.inference.tiling.upscale_window`), so the result
is the same, bit for bit, whatever the chunking. The model travels once per worker process (one
key of the graph) and each thread there runs its own copy.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import torch
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.windows import Window

from fatsr.errors import FatsrError
from fatsr.inference.bands import band_groups, trained_bands
from fatsr.inference.options import RasterOptions
from fatsr.inference.pipeline import Upscaler
from fatsr.inference.reading import FILL_MARGIN, STATS_SIZE, SUPPORTED_DTYPES, band_reader, quiet, value_mapping
from fatsr.inference.resample import Bicubic, Nearest, TailSafe
from fatsr.inference.tiling import Area, Block, Tiling, panel_columns, tile_starts, upscale_window
from fatsr.inference.writer import write_block
from fatsr.models.contract import Resampler
from fatsr.values import ValueMapping

NAME = "the DataArray"
FILE_ONLY = ("compress", "overviews", "cog", "back_project", "creation_options", "alpha_as_data")

Groups = list[tuple[tuple[int, ...], str]]


class _Pixels:
    """The part of a scene a task holds, read as :mod:`fatsr.inference.raster` reads a
    dataset (``read``, ``read_masks``; nodata masks; band ``descriptions``, no colour
    interpretation): ``data``
    (C, rows, cols) starts at the scene's LR (row, column) ``origin``. With ``sample``, reads
    of an ``out_shape`` (the value mapping's decimated read) return it."""

    def __init__(
        self,
        data: np.ndarray,
        origin: tuple[int, int],
        height: int,
        width: int,
        nodata: float | None,
        sample: np.ndarray | None = None,
        descriptions: tuple[str | None, ...] | None = None,
    ) -> None:
        self.data, self.origin, self.height, self.width = data, origin, height, width
        self.nodata, self.sample = nodata, sample
        self.count = data.shape[0]
        self.indexes = tuple(range(1, self.count + 1))
        self.dtypes = (data.dtype.name,) * self.count
        self.colorinterp = (ColorInterp.undefined,) * self.count
        self.descriptions = descriptions or (None,) * self.count
        self.name = NAME
        flags = [MaskFlags.nodata] if nodata is not None else [MaskFlags.all_valid]
        self.mask_flag_enums = [flags] * self.count

    def tags(self, index: int | None = None) -> dict[str, str]:
        return {}

    def read(self, indexes: Any = None, window: Window | None = None, out_shape: Any = None, **_: Any) -> np.ndarray:
        chosen = [i - 1 for i in (indexes or self.indexes)]
        if out_shape is not None:
            assert self.sample is not None  # only the value mapping reads decimated
            return self.sample[chosen]
        assert window is not None
        top, left = int(window.row_off) - self.origin[0], int(window.col_off) - self.origin[1]
        rows, cols = int(window.height), int(window.width)
        if top < 0 or left < 0 or top + rows > self.data.shape[1] or left + cols > self.data.shape[2]:
            raise AssertionError(f"read {window} outside the task's pixels at {self.origin}, {self.data.shape}")
        return self.data[chosen, top : top + rows, left : left + cols]

    def read_masks(self, indexes: Any = None, **kwargs: Any) -> np.ndarray:
        data = self.read(indexes, **kwargs)
        if self.nodata is None:
            return np.full(data.shape, 255, np.uint8)
        if math.isnan(self.nodata):
            invalid = np.isnan(data)
        else:
            invalid = data == data.dtype.type(self.nodata)
        return np.where(invalid, 0, 255).astype(np.uint8)


class _Output:
    """Where :func:`~fatsr.inference.writer.write_block` writes: an array of the output."""

    def __init__(self, out: np.ndarray) -> None:
        self.out = out
        self.dtypes = (out.dtype.name,) * out.shape[0]

    def write(self, values: np.ndarray, indexes: list[int], window: Window) -> None:
        top, left, rows, cols = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
        self.out[[i - 1 for i in indexes], top : top + rows, left : left + cols] = values


@dataclass(frozen=True)
class _Plan:
    """What every task of one DataArray needs besides its pixels and the mapping."""

    height: int
    width: int
    nodata: float | None
    groups: Groups
    tiling: Tiling
    device: torch.device
    autocast: torch.dtype | None


class _SharedModel:
    """The model, one key of a Dask graph: each worker process receives it once."""

    def __init__(self, model: Resampler) -> None:
        self.model = model

    def __setstate__(self, state: dict) -> None:
        from fatsr.inference.distributed import count_load

        self.__dict__.update(state)
        count_load()


def upscale_dataarray(job: Upscaler, da: Any, options: RasterOptions | None = None) -> Any:
    """``da`` upscaled by ``job`` (see the module's notes): a DataArray with the new pixel
    centres as ``x``/``y``, the CRS, transform, nodata, band coordinate and attrs kept, the
    input's dtype; Dask-backed (and not computed) when ``da`` is."""
    xr = _xarray()
    if not isinstance(da, xr.DataArray):
        raise FatsrError(f"{type(da).__name__}: give an xarray.DataArray")
    ydim, xdim, banddim = _dims(da)
    options = RasterOptions() if options is None else options
    dtype = np.dtype(da.dtype)
    if dtype.kind not in "iuf":
        raise FatsrError(f"DataArray of dtype {dtype}: give numeric pixels (integers or floats)")
    if dtype.name not in SUPPORTED_DTYPES:
        raise FatsrError(f"DataArray of dtype {dtype}: convert it to one of {', '.join(SUPPORTED_DTYPES)}")
    height, width = da.sizes[ydim], da.sizes[xdim]
    if height == 0 or width == 0:
        raise FatsrError(f"DataArray of {width}x{height} pixels has nothing to upscale")
    cube = da.transpose(banddim, ydim, xdim) if banddim else da.expand_dims("fatsr_band", 0)
    nodata = da.rio.nodata
    nodata = None if nodata is None else float(nodata)
    model, scale = job.model, job.model.scale
    names = da.attrs.get("long_name")  # rioxarray's band descriptions: band names say which is red
    names = tuple(names) if isinstance(names, (tuple, list)) and len(names) == cube.shape[0] else None
    meta = _Pixels(np.empty((cube.shape[0], 0, 0), dtype), (0, 0), height, width, nodata, descriptions=names)
    options, fixed = trained_bands(cast(Any, meta), NAME, model, options)
    from fatsr.inference.bands import choose_bands

    options = choose_bands(cast(Any, meta), NAME, options, model.info.channels)
    groups = band_groups(cast(Any, meta), options, model.info.channels)
    plan = _Plan(height, width, nodata, groups, job.tiling, job.device, job.autocast)
    stats = (options.value_range, fixed)
    if _is_dask(cube.data):
        data = _lazy(cube.data, plan, model, stats)
    else:
        pixels = np.asarray(cube.data)
        mapping, fills = _mapping(_sample(pixels, height, width), plan, stats)
        data = _upscale_area(pixels, (0, 0), (0, height, 0, width), model, plan, mapping, fills)
    return _wrap(da, cube, data, ydim, xdim, banddim, scale)


def _xarray() -> Any:
    try:
        import rioxarray  # noqa: F401  (the .rio accessor)
        import xarray as xr
    except ImportError:
        raise FatsrError("DataArrays need xarray and rioxarray: pip install 'fatsr[xarray]'") from None
    return xr


def _dims(da: Any) -> tuple[str, str, str | None]:
    """(y, x, band) dimension names; FatsrError for another layout."""
    dims = tuple(map(str, da.dims))
    layout = "DataArray with dims " + (", ".join(dims) or "none")
    fix = "give (band, y, x) or (y, x) as rioxarray opens a raster, e.g. da.transpose('band', 'y', 'x')"
    try:
        ydim, xdim = da.rio.y_dim, da.rio.x_dim
    except Exception:  # rioxarray's MissingSpatialDimensionError, and whatever finds no x/y
        raise FatsrError(f"{layout}: no y and x dimensions; {fix}") from None
    if dims[-2:] != (ydim, xdim) or len(dims) not in (2, 3):
        raise FatsrError(f"{layout}: {fix}")
    return ydim, xdim, dims[0] if len(dims) == 3 else None


def _is_dask(data: Any) -> bool:
    return type(data).__module__.startswith("dask.")


def _sample_shape(height: int, width: int) -> tuple[int, int]:
    factor = max(1, math.ceil(max(width, height) / STATS_SIZE))
    return math.ceil(height / factor), math.ceil(width / factor)


def _sample_rows(length: int, size: int) -> np.ndarray:
    """The pixels a nearest-neighbour decimated read takes along an axis (GDAL's rule: the
    pixel under each output pixel's centre)."""
    return np.floor((np.arange(size) + 0.5) * (length / size)).astype(np.intp)


def _sample(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    rows, cols = (_sample_rows(n, k) for n, k in zip((height, width), _sample_shape(height, width)))
    return pixels[:, rows][:, :, cols]


def _mapping(sample: Any, plan: _Plan, stats: Any) -> tuple[ValueMapping, np.ndarray]:
    """The value mapping and fill values of the scene, from its decimated sample."""
    sample = np.asarray(sample)
    pixels = _Pixels(sample, (0, 0), plan.height, plan.width, plan.nodata, sample=sample)
    value_range, fixed = stats
    return value_mapping(cast(Any, pixels), value_range, fixed)


def _upscale_area(
    pixels: np.ndarray,
    origin: tuple[int, int],
    area: Area,
    model: Resampler,
    plan: _Plan,
    mapping: ValueMapping,
    fills: np.ndarray,
    workers: int | None = None,
) -> np.ndarray:
    """The output (C, rows * scale, cols * scale) of LR ``area`` = (top, bottom, left, right),
    from ``pixels`` that start at the scene's ``origin`` and hold what its tiles read."""
    from fatsr.inference.distributed import borrowed

    source = _Pixels(pixels, origin, plan.height, plan.width, plan.nodata)
    top, bottom, left, right = area
    scale = model.scale
    out = np.empty((pixels.shape[0], (bottom - top) * scale, (right - left) * scale), pixels.dtype)
    tiling = plan.tiling if workers is None else replace(plan.tiling, workers=workers)
    with borrowed(model) as mine, quiet():
        runners: dict[str, Resampler] = {
            "rgb": TailSafe(mine),
            "network": TailSafe(mine),
            "bicubic": Bicubic(scale),
            "nearest": Nearest(scale),
        }
        for indexes, kind in plan.groups:
            read = band_reader(cast(Any, source), indexes, mapping, fills, fill=kind != "nearest")
            unit = upscale_window(
                runners[kind], read, plan.height, plan.width, area, tiling, device=plan.device, autocast=plan.autocast
            )
            block = Block(0, 0, 0, unit)
            write_block(cast(Any, source), cast(Any, _Output(out)), indexes, mapping, block, scale, origin=(top, left))
    return out


def reads_of(height: int, width: int, tiling: Tiling, scale: int, area: Area) -> Area:
    """The LR area the tiles of ``area`` read (see :func:`_upscale_area`): the tile rows that
    touch it, the whole-scene strips of the panels that touch it, and the inpainting's margin
    around them, clipped to the scene."""
    top, bottom, left, right = area
    th, tw = min(tiling.tile, height), min(tiling.tile, width)
    rows = [y for y in tile_starts(height, th, tiling.overlap) if y + th > top and y < bottom]
    xs = tile_starts(width, tw, tiling.overlap)
    cols: list[int] = []
    for c0, c1 in panel_columns(width, tiling, scale):
        if c0 < right * scale and c1 > left * scale:
            touching = [x for x in xs if x * scale < c1 and (x + tw) * scale > c0]
            cols += [touching[0], touching[-1] + tw]
    m = FILL_MARGIN
    return max(rows[0] - m, 0), min(rows[-1] + th + m, height), max(min(cols) - m, 0), min(max(cols) + m, width)


def _lazy(data: Any, plan: _Plan, model: Resampler, stats: Any) -> Any:
    """The Dask graph of the output: one task per input chunk (all bands together)."""
    import dask
    import dask.array as dsa

    data = data.rechunk({0: -1})
    rows, cols = (_sample_rows(n, k) for n, k in zip((plan.height, plan.width), _sample_shape(plan.height, plan.width)))
    token = uuid.uuid4().hex
    sample = data[:, rows][:, :, cols]
    mapped = dask.delayed(_mapping, pure=True)(sample, plan, stats, dask_key_name=f"fatsr-mapping-{token}")
    shared = dask.delayed(_SharedModel(model), name=f"fatsr-model-{token}")
    scale = model.scale
    edges = [np.cumsum((0, *chunks)).tolist() for chunks in data.chunks[1:]]
    blocks = []
    for i, (top, bottom) in enumerate(zip(edges[0][:-1], edges[0][1:])):
        row = []
        for j, (left, right) in enumerate(zip(edges[1][:-1], edges[1][1:])):
            area = (top, bottom, left, right)
            t, b, l, r = reads_of(plan.height, plan.width, plan.tiling, scale, area)
            task = dask.delayed(_chunk, pure=True)(
                data[:, t:b, l:r], (t, l), area, shared, plan, mapped, dask_key_name=f"fatsr-chunk-{token}-{i}-{j}"
            )
            shape = (data.shape[0], (bottom - top) * scale, (right - left) * scale)
            row.append(dsa.from_delayed(task, shape, dtype=data.dtype))
        blocks.append(row)
    return dsa.block([blocks])


def _chunk(pixels: Any, origin: Any, area: Any, shared: _SharedModel, plan: _Plan, mapped: Any) -> np.ndarray:
    mapping, fills = mapped
    return _upscale_area(np.asarray(pixels), origin, area, shared.model, plan, mapping, fills, workers=1)


def _wrap(da: Any, cube: Any, data: Any, ydim: str, xdim: str, banddim: str | None, scale: int) -> Any:
    """The output DataArray: new pixel centres, the rest of ``da``'s coordinates, attrs,
    CRS, transform and nodata."""
    xr = _xarray()
    transform = da.rio.transform()
    new = transform @ Affine.scale(1 / scale)
    if new.b != 0 or new.d != 0:
        raise FatsrError("a rotated DataArray (its transform has rotation terms): upscale the file instead")
    height, width = data.shape[1], data.shape[2]
    ys = new.f + new.e * (np.arange(height) + 0.5)
    xs = new.c + new.a * (np.arange(width) + 0.5)
    coords = {
        name: coord
        for name, coord in da.coords.items()
        if ydim not in coord.dims and xdim not in coord.dims and name != "spatial_ref"
    }
    coords[ydim] = xr.Variable(ydim, ys, da[ydim].attrs)
    coords[xdim] = xr.Variable(xdim, xs, da[xdim].attrs)
    dims = (cube.dims[0], ydim, xdim)
    out = xr.DataArray(data, dims=dims, coords=coords, attrs=dict(da.attrs), name=da.name)
    if banddim is None:
        out = out.isel({cube.dims[0]: 0}, drop=True)
    out.encoding = {k: v for k, v in da.encoding.items() if k in ("_FillValue", "dtype", "scale_factor", "add_offset")}
    crs = da.rio.crs
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out.rio.write_transform(new)
