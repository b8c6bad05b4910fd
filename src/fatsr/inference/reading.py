"""Reading a raster for the network: opening it (or refusing it, with the reason), which
pixels are valid, the per-band value mapping to [0, 1] and a window reader that inpaints
invalid pixels. ``fatsr upscale`` and ``fatsr compare``'s scene pages read through these."""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.fill import fillnodata
from rasterio.io import DatasetReader
from rasterio.windows import Window

from fatsr.errors import FatsrError
from fatsr.inference import sources
from fatsr.io import MAX_PICTURE_PIXELS
from fatsr.values import ValueMapping, value_bounds

SUFFIXES = (".tif", ".tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")  # plain pictures go through fatsr.io
SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
STATS_SIZE = 1024  # longest side of the decimated read behind the stretch and fill values
PERCENTILES = (0.5, 99.5)
FILL_MARGIN = 32  # LR pixels read around a window so its inpainting sees valid pixels beyond
FILL_DISTANCE = 64  # LR pixels fillnodata searches for valid pixels; further ones get the band mean


def georeferenced(ds: DatasetReader) -> bool:
    """Whether a dataset places its pixels on the Earth: a CRS, a non-identity transform,
    GCPs or RPCs."""
    return ds.crs is not None or not ds.transform.is_identity or bool(ds.gcps[0]) or ds.rpcs is not None


def _plain_picture(ds: DatasetReader, path: Path) -> bool:
    """A picture :mod:`fatsr.io` handles as well: PNG/JPEG/TIFF/..., 8 or 16-bit, grey, RGB,
    grey + alpha or RGBA, without georeference, nodata, mask or palette, small enough to be read
    whole (a TIFF over :data:`fatsr.io.MAX_PICTURE_PIXELS` is streamed as a raster)."""
    if path.suffix.lower() in (".tif", ".tiff") and ds.width * ds.height > MAX_PICTURE_PIXELS:
        return False
    alpha = ds.count in (2, 4) and ds.colorinterp[-1] == ColorInterp.alpha
    masked = any(MaskFlags.per_dataset in flags for flags in ds.mask_flag_enums) and not alpha
    return (
        path.suffix.lower() in PLAIN_SUFFIXES
        and not georeferenced(ds)
        and ds.nodata is None
        and not masked
        and len(set(ds.dtypes)) == 1
        and ds.dtypes[0] in ("uint8", "uint16")
        and (ds.count in (1, 3) or alpha)
        and ColorInterp.palette not in ds.colorinterp
    )


def is_raster(path: str | os.PathLike) -> bool:
    """Whether ``path`` goes through this module: GDAL reads it and it is more than a plain
    picture (georeferenced, JPEG2000/VRT/..., another dtype or band count, nodata, a mask or a
    palette). Files GDAL cannot read are left to :mod:`fatsr.io` and its error."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with quiet(), rasterio.open(path) as ds:
            return not _plain_picture(ds, path)
    except RasterioError:
        return False


def reason(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


@contextmanager
def quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


@contextmanager
def open_raster(src: Path | str) -> Iterator[DatasetReader]:
    """Open a raster fatsr can upscale, or raise FatsrError saying why not."""
    if isinstance(src, Path) and not src.is_file():
        raise FatsrError(f"{src}: no such file")
    path = src if isinstance(src, Path) else sources.public(src)
    try:
        with quiet(), sources.remote_env() if isinstance(src, str) else contextlib.nullcontext():
            ds = rasterio.open(src)
    except RasterioError as exc:
        if isinstance(src, str):
            raise sources.failure(src, str(exc)) from None
        raise FatsrError(f"{path}: not a readable raster ({str(exc).splitlines()[0]}); give a GeoTIFF") from None
    with ds:
        if ds.count == 0:
            raise FatsrError(f"{path}: the raster has no bands")
        if ds.width == 0 or ds.height == 0:
            raise FatsrError(f"{path}: the raster is {ds.width}x{ds.height} pixels; there is nothing to upscale")
        unsupported = sorted(set(ds.dtypes) - set(SUPPORTED_DTYPES))
        if unsupported:
            raise FatsrError(
                f"{path}: {unsupported[0]} pixels are not supported; convert to one of {', '.join(SUPPORTED_DTYPES)}"
            )
        if len(set(ds.dtypes)) > 1:
            raise FatsrError(
                f"{path}: bands of different dtypes ({', '.join(sorted(set(ds.dtypes)))}) are not supported"
            )
        thematic = [i for i in ds.indexes if str(ds.tags(i).get("LAYER_TYPE", "")).lower() == "thematic"]
        if ColorInterp.palette in ds.colorinterp or thematic:
            kind = "a palette" if ColorInterp.palette in ds.colorinterp else "a thematic (LAYER_TYPE=thematic)"
            raise FatsrError(
                f"{path}: {kind} raster holds class codes, not measurements, and super-resolution would invent "
                "classes; enlarge it by nearest neighbour instead (gdal_translate -r nearest -outsize 400% 400%)"
            )
        with quiet():
            yield ds


def read_source(ds: DatasetReader, *args: Any, how: str = "read", **kwargs: Any) -> np.ndarray:
    """``ds.read`` (or ``ds.read_masks``, ``ds.dataset_mask`` by ``how``); a damaged or
    truncated source, or a failed remote read, raises FatsrError."""
    try:
        return getattr(ds, how)(*args, **kwargs)
    except RasterioError as exc:
        if sources.is_remote(ds.name):
            raise sources.failure(ds.name, str(exc)) from None
        raise FatsrError(
            f"{ds.name}: cannot read the raster ({reason(exc)}); the file is damaged or truncated: replace it"
        ) from None


def valid_mask(
    ds: DatasetReader,
    indexes: tuple[int, ...],
    data: np.ndarray,
    window: Window | None = None,
    out_shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """True where a pixel holds data: GDAL's mask (nodata, the dataset mask, alpha) and finite."""
    masks = read_source(
        ds, list(indexes), how="read_masks", window=window, out_shape=out_shape, resampling=Resampling.nearest
    )
    return (masks > 0) & np.isfinite(data)


def value_mapping(
    ds: DatasetReader,
    value_range: tuple[float, float] | None,
    fixed: dict[int, tuple[float, float]] | None = None,
    bits: int | None = None,
) -> tuple[ValueMapping, np.ndarray]:
    """The mapping of every band to [0, 1], and each band's fill value (its valid mean) in
    unit space, both from a decimated read (an overview where the file has one). ``fixed``:
    (low, high) of some bands (a multispectral model's training mapping). ``bits``: the
    declared bit depth (``NBITS``): an 8-bit-or-narrower range maps whole, a wider one by the
    stretch, and outputs are clamped to it."""
    factor = max(1, math.ceil(max(ds.width, ds.height) / STATS_SIZE))
    shape = (ds.count, math.ceil(ds.height / factor), math.ceil(ds.width / factor))
    sample = read_source(ds, out_shape=shape, resampling=Resampling.nearest).astype(np.float64)
    valid = [band[m] for band, m in zip(sample, valid_mask(ds, ds.indexes, sample, out_shape=shape))]
    dtype = np.dtype(ds.dtypes[0])
    if value_range is not None:
        method, low, high = "range", [value_range[0]] * ds.count, [value_range[1]] * ds.count
    elif dtype.itemsize == 1 or (bits is not None and bits <= 8):
        bottom, top = value_bounds(dtype, bits)
        method = "dtype range" if bits is None else f"NBITS={bits} range"
        low, high = [bottom] * ds.count, [top] * ds.count
    else:
        method = f"percentile {PERCENTILES[0]}-{PERCENTILES[1]} per band, read decimated by {factor}"
        bounds = [np.percentile(v, PERCENTILES) if v.size else (0.0, 1.0) for v in valid]
        low = [float(lo) for lo, _ in bounds]
        high = [float(hi) if hi > lo else float(lo) + 1.0 for lo, hi in bounds]
    if fixed:
        for band, (lo, hi) in fixed.items():
            low[band - 1], high[band - 1] = float(lo), float(hi)
        method = f"bands {','.join(map(str, fixed))}: the model's training mapping; others: {method}"
    if bits is not None:
        method += f"; outputs clamped to 0..{2**bits - 1} (NBITS={bits})"
    mapping = ValueMapping(method, tuple(low), tuple(high), value_bounds(dtype, bits) if bits is not None else None)
    means = np.array([v.mean() if v.size else lo for v, lo in zip(valid, low)])
    return mapping, (means - np.array(low)) / (np.array(high) - np.array(low))


def band_reader(
    ds: DatasetReader, indexes: tuple[int, ...], mapping: ValueMapping, fills: np.ndarray, fill: bool = True
) -> Callable[..., np.ndarray]:
    """A window reader for the tiler: bands in [0, 1]; invalid pixels inpainted from the valid
    ones around them (``fillnodata``, reading ``FILL_MARGIN`` more pixels on each side), and
    those beyond ``FILL_DISTANCE`` of any set to the band's mean. ``fill=False``: left as read."""

    def read(top: int, bottom: int, left: int, right: int, strip: tuple[int, int] | None = None) -> np.ndarray:
        m = FILL_MARGIN if fill else 0
        t, b, l, r = max(top - m, 0), min(bottom + m, ds.height), max(left - m, 0), min(right + m, ds.width)
        window = Window(l, t, r - l, b - t)
        data = read_source(ds, list(indexes), window=window).astype(np.float64)
        unit = mapping.to_unit(data, indexes)
        if fill:
            valid = valid_mask(ds, indexes, data, window)
            inside = valid[:, top - t : top - t + bottom - top, left - l : left - l + right - left]
            if strip is not None and not inside.all():  # inpainted pixels: as the whole-scene run's strip makes them
                return read(top, bottom, *strip)[:, :, left - strip[0] : right - strip[0]]
            for k, band_valid in enumerate(valid):
                if band_valid.all():
                    continue
                band = np.where(band_valid, unit[k], 0).astype(np.float32)
                if band_valid.any():
                    band = fillnodata(
                        band, band_valid.astype(np.uint8), max_search_distance=FILL_DISTANCE, smoothing_iterations=0
                    )
                    reached = fillnodata(band_valid.astype(np.float32), band_valid.astype(np.uint8),
                                         max_search_distance=FILL_DISTANCE, smoothing_iterations=0) > 0  # fmt: skip
                else:
                    reached = band_valid
                unit[k] = np.where(reached | band_valid, band, np.float32(fills[indexes[k] - 1]))
        return unit[:, top - t : top - t + bottom - top, left - l : left - l + right - left]

    return read
