"""GeoTIFF super-resolution window by window (rasterio): the output keeps CRS, origin,
extent, nodata, dtype and band order, with the pixel size divided by the scale.

Pixel values are mapped to the network's [0, 1] with a recorded per-band linear mapping;
nodata pixels are filled for the network and put back (mask upsampled by nearest) after.
The chosen bands go through the network as RGB, every other band alone (as grey through the
network, or bicubic). Provenance goes into ``FATSR_*`` tags; stale ``STATISTICS_*`` are dropped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader, DatasetWriter
from rasterio.windows import Window
from torch import Tensor, nn

from fatsr.engine.tiling import DEFAULT_TILING, Block, Tiling, upscale_blocks
from fatsr.errors import FatsrError
from fatsr.io import atomic_write

SUFFIXES = (".tif", ".tiff")
SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
COMPRESSIONS = ("deflate", "zstd")
OTHER_BANDS = ("network", "bicubic")
STATS_SIZE = 1024  # longest side of the decimated read behind the stretch and fill values
PERCENTILES = (0.5, 99.5)
BLOCK = 256
WRITE_ROWS = 16  # LR rows mapped back and written at a time


@dataclass(frozen=True)
class RasterOptions:
    """``bands``: 1-based bands fed to the network as RGB (None: 1,2,3 when there are three
    or more); ``value_range``: (LO, HI) mapped to [0, 1] for every band (None: automatic)."""

    bands: tuple[int, ...] | None = None
    value_range: tuple[float, float] | None = None
    other_bands: str = "network"
    compress: str = "deflate"
    overviews: bool = False

    def __post_init__(self) -> None:
        if self.other_bands not in OTHER_BANDS:
            raise FatsrError(f"other bands {self.other_bands!r}: choose one of {', '.join(OTHER_BANDS)}")
        if self.compress not in COMPRESSIONS:
            raise FatsrError(f"compression {self.compress!r}: choose one of {', '.join(COMPRESSIONS)}")
        if self.value_range is not None and not self.value_range[0] < self.value_range[1]:
            raise FatsrError(f"range {self.value_range[0]:g} {self.value_range[1]:g}: LO must be below HI")


@dataclass(frozen=True)
class ValueMapping:
    """Per band: ``unit = (value - low) / (high - low)``; back, clipped to the dtype's range."""

    method: str
    low: tuple[float, ...]
    high: tuple[float, ...]

    def to_unit(self, data: np.ndarray, indexes: tuple[int, ...]) -> np.ndarray:
        low, span = self._params(indexes)
        return ((data - low) / span).astype(np.float32)

    def from_unit(self, unit: np.ndarray, indexes: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        low, span = self._params(indexes)
        values = unit * span + low
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            return np.clip(np.rint(values), info.min, info.max).astype(dtype)
        info = np.finfo(dtype)
        return np.clip(values, info.min, info.max).astype(dtype)

    def _params(self, indexes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        low = np.array([self.low[i - 1] for i in indexes])[:, None, None]
        high = np.array([self.high[i - 1] for i in indexes])[:, None, None]
        return low, high - low

    def describe(self) -> str:
        return json.dumps({"method": self.method, "unit": "(value - low) / (high - low)", "low": self.low, "high": self.high})


class Bicubic(nn.Module):
    """Bicubic interpolation with the :class:`~fatsr.models.wrapper.SRModel` calling convention."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)


def is_georaster(path: str | os.PathLike) -> bool:
    """A .tif/.tiff that needs this module: it has a CRS, more than 4 bands or a dtype
    other than uint8/uint16. Unreadable files are left to the image reader's error."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES or not path.is_file():
        return False
    try:
        with _quiet(), rasterio.open(path) as ds:
            return ds.crs is not None or ds.count > 4 or any(dt not in ("uint8", "uint16") for dt in ds.dtypes)
    except RasterioError:
        return False


def upscale_raster(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    model: Callable,
    *,
    model_file: str | os.PathLike | None = None,
    tiling: Tiling = DEFAULT_TILING,
    options: RasterOptions = RasterOptions(),
    autocast: torch.dtype | None = None,
    overwrite: bool = False,
    checkpoint_seconds: float = 60.0,
) -> None:
    """Write ``dst``, a tiled compressed GeoTIFF: ``src`` super-resolved by ``model``
    (an ``SRModel``), read and written one panel block at a time.

    The work goes to a hidden partial file beside ``dst`` that is renamed onto it at the end.
    Every ``checkpoint_seconds`` the partial file is flushed and its progress recorded, so a
    run that crashes or is interrupted resumes there when started again with the same source,
    model and settings. A run that fails before its first checkpoint leaves nothing.
    """
    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() not in SUFFIXES:
        raise FatsrError(f"{dst}: a georeferenced raster is written as GeoTIFF; give an output ending in .tif")
    if dst.resolve() == src.resolve():
        raise FatsrError(f"{src}: its output {dst} would replace this input; choose another output")
    if dst.exists() and not overwrite:
        raise FatsrError(f"{dst} exists; pass --overwrite to replace it")
    if dst.is_dir():
        raise FatsrError(f"{dst} is a folder; give a file name")
    with _open(src) as ds:
        groups = _band_groups(ds.count, options, getattr(model, "channels", 3))
        mapping, fills = _value_mapping(ds, options.value_range)
        runners = {"rgb": model, "network": model, "bicubic": Bicubic(model.scale)}
        tags = _provenance(model, model_file, tiling, mapping, groups)
        profile = _output_profile(ds, model.scale, options.compress)
        job = _job(src, tags, tiling, options, autocast)
        panel_width = min(profile["width"], tiling.panel * model.scale)
        block_row = BLOCK * panel_width * ds.count * np.dtype(ds.dtypes[0]).itemsize
        with rasterio.Env(GDAL_CACHEMAX=2 * block_row + (16 << 20)):
            writer = PartialWriter(dst, profile, job, checkpoint_seconds)
            try:
                for g, (indexes, kind) in enumerate(groups):
                    if g < writer.position[0]:
                        continue
                    resume = writer.position[1:] if g == writer.position[0] else (0, 0)
                    read = _read_bands(ds, indexes, mapping, fills)
                    blocks = upscale_blocks(
                        runners[kind], read, ds.height, ds.width, tiling, autocast=autocast, resume=resume,
                        progress=f"{src.name} band{'s' * (len(indexes) > 1)} {','.join(map(str, indexes))}",
                    )
                    for block in blocks:
                        _write_block(ds, writer.dataset(), indexes, mapping, block, model.scale)
                        writer.progress(g, block.panel, block.top + block.data.shape[1])
                writer.finish(lambda out: _finish(ds, out, tags, options.overviews), overwrite=overwrite)
            except RasterioError as exc:
                writer.abandon()
                raise FatsrError(f"{dst}: could not write the GeoTIFF ({exc}); choose another output") from None
            except BaseException:
                writer.abandon()
                raise


class PartialWriter:
    """The output GeoTIFF while it is being written: a hidden partial file beside the
    destination and a JSON journal of how far it got (group, panel, output row)."""

    def __init__(self, dst: Path, profile: dict, job: dict, checkpoint_seconds: float) -> None:
        self.dst, self.job, self.every = dst, job, checkpoint_seconds
        self.path = dst.with_name(f".{dst.name}.fatsr-partial.tif")
        self.journal = dst.with_name(f".{dst.name}.fatsr-partial.json")
        self.position: tuple[int, int, int] = (0, 0, 0)
        self._out: DatasetWriter | None = None
        self._last = time.monotonic()
        self._pending: tuple[int, int, int] | None = None
        recorded = self._recorded_position()
        if recorded is not None:
            self.position = recorded
            print(f"{dst}: resuming an interrupted run at {self._describe(self.position)}", file=sys.stderr)
        else:
            self.journal.unlink(missing_ok=True)
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                self._out = rasterio.open(self.path, "w", **profile)
            except (OSError, RasterioError) as exc:
                self.path.unlink(missing_ok=True)
                raise FatsrError(f"{dst}: could not write the GeoTIFF ({exc}); choose a writable output") from None

    def _recorded_position(self) -> tuple[int, int, int] | None:
        """The journal's position when the partial file exists and was made by this same job."""
        try:
            journal = json.loads(self.journal.read_text())
            if self.path.is_file() and journal["job"] == self.job:
                return tuple(journal["position"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    @staticmethod
    def _describe(position: tuple[int, int, int]) -> str:
        return f"band group {position[0] + 1}, panel {position[1] + 1}, output row {position[2]}"

    def dataset(self) -> DatasetWriter:
        if self._out is None:
            self._out = rasterio.open(self.path, "r+")
        return self._out

    def progress(self, group: int, panel: int, row: int) -> None:
        """Note that everything before ``row`` of ``panel`` in ``group`` is written; record it
        on disk when the last checkpoint is ``checkpoint_seconds`` old."""
        self._pending = (group, panel, row)
        if time.monotonic() - self._last >= self.every:
            self.checkpoint()

    def checkpoint(self) -> None:
        if self._pending is None:
            return
        self._close()
        with atomic_write(self.journal, overwrite=True) as tmp:
            tmp.write_text(json.dumps({"job": self.job, "position": self._pending}))
        self.position, self._pending, self._last = self._pending, None, time.monotonic()

    def finish(self, last_steps: Callable[[DatasetWriter], None], *, overwrite: bool) -> None:
        """Metadata and overviews, then the partial file becomes the destination."""
        last_steps(self.dataset())
        self._close()
        if self.dst.exists() and not overwrite:
            raise FatsrError(f"{self.dst} appeared while upscaling; pass --overwrite to replace it")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.path, 0o666 & ~umask)
        os.replace(self.path, self.dst)
        self.journal.unlink(missing_ok=True)

    def abandon(self) -> None:
        """On failure: keep the partial file when progress was recorded, else remove it."""
        try:
            self.checkpoint() if self.journal.exists() else self._close()
        except (OSError, RasterioError):
            pass
        if self.journal.exists():
            print(f"{self.dst}: stopped at {self._describe(self.position)}; run the same command again to resume", file=sys.stderr)
        else:
            self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def _job(src: Path, tags: dict[str, str], tiling: Tiling, options: RasterOptions, autocast: torch.dtype | None) -> dict:
    """What a partial output was made from: a resumed run must match it exactly."""
    stat = src.stat()
    return {
        "source": str(src.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "tags": tags,
        "tiling": [tiling.tile, tiling.overlap, tiling.batch, tiling.panel], "compress": options.compress,
        "autocast": str(autocast),
    }


def _finish(ds: DatasetReader, out: DatasetWriter, tags: dict[str, str], overviews: bool) -> None:
    _copy_metadata(ds, out)
    out.update_tags(**tags)
    if overviews:
        factors = overview_factors(out.width, out.height)
        if factors:
            out.build_overviews(factors, Resampling.average)
            out.update_tags(ns="rio_overview", resampling="average")


def overview_factors(width: int, height: int) -> list[int]:
    """2, 4, 8, ... until the smallest overview fits in one 256-pixel block."""
    factors, f = [], 2
    while max(width, height) / (f // 2) > BLOCK:
        factors.append(f)
        f *= 2
    return factors


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


@contextmanager
def _open(path: Path) -> Iterator[DatasetReader]:
    """Open a raster fatsr can upscale, or raise FatsrError saying why not."""
    if not path.is_file():
        raise FatsrError(f"{path}: no such file")
    try:
        with _quiet():
            ds = rasterio.open(path)
    except RasterioError as exc:
        raise FatsrError(f"{path}: not a readable raster ({str(exc).splitlines()[0]}); give a GeoTIFF") from None
    with ds:
        if ds.count == 0:
            raise FatsrError(f"{path}: the raster has no bands")
        if ds.width == 0 or ds.height == 0:
            raise FatsrError(f"{path}: the raster is {ds.width}x{ds.height} pixels; there is nothing to upscale")
        unsupported = sorted(set(ds.dtypes) - set(SUPPORTED_DTYPES))
        if unsupported:
            raise FatsrError(f"{path}: {unsupported[0]} pixels are not supported; convert to one of {', '.join(SUPPORTED_DTYPES)}")
        if len(set(ds.dtypes)) > 1:
            raise FatsrError(f"{path}: bands of different dtypes ({', '.join(sorted(set(ds.dtypes)))}) are not supported")
        with _quiet():
            yield ds


def _band_groups(count: int, options: RasterOptions, channels: int) -> list[tuple[tuple[int, ...], str]]:
    """(1-based bands, how) per pass: "rgb" through the network together, then every
    other band alone ("network" or "bicubic")."""
    rgb = options.bands
    if rgb is not None:
        if len(rgb) != channels or len(set(rgb)) != len(rgb):
            raise FatsrError(f"--bands {','.join(map(str, rgb))}: give {channels} different band numbers, e.g. 3,2,1")
        if not all(1 <= b <= count for b in rgb):
            raise FatsrError(f"--bands {','.join(map(str, rgb))}: the raster has bands 1 to {count}")
    elif count >= channels == 3:
        rgb = (1, 2, 3)
    groups = [(tuple(rgb), "rgb")] if rgb else []
    return groups + [((b,), options.other_bands) for b in range(1, count + 1) if b not in (rgb or ())]


def nodata_mask(data: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """True where a pixel holds the nodata value (NaN nodata matches NaN); None without nodata."""
    if nodata is None:
        return None
    return np.isnan(data) if math.isnan(nodata) else data == nodata


def _value_mapping(ds: DatasetReader, value_range: tuple[float, float] | None) -> tuple[ValueMapping, np.ndarray]:
    """The mapping of every band to [0, 1], and each band's fill value (its valid mean) in
    unit space, both from a decimated read (an overview where the file has one)."""
    factor = max(1, math.ceil(max(ds.width, ds.height) / STATS_SIZE))
    shape = (ds.count, math.ceil(ds.height / factor), math.ceil(ds.width / factor))
    sample = ds.read(out_shape=shape, resampling=Resampling.nearest).astype(np.float64)
    mask = nodata_mask(sample, ds.nodata)
    if mask is None:
        mask = np.zeros(sample.shape, bool)
    valid = [band[~m & np.isfinite(band)] for band, m in zip(sample, mask)]
    dtype = np.dtype(ds.dtypes[0])
    if value_range is not None:
        method, low, high = "range", [value_range[0]] * ds.count, [value_range[1]] * ds.count
    elif dtype.itemsize == 1:
        info = np.iinfo(dtype)
        method, low, high = "dtype range", [float(info.min)] * ds.count, [float(info.max)] * ds.count
    else:
        method = f"percentile {PERCENTILES[0]}-{PERCENTILES[1]} per band, read decimated by {factor}"
        bounds = [np.percentile(v, PERCENTILES) if v.size else (0.0, 1.0) for v in valid]
        low = [float(lo) for lo, _ in bounds]
        high = [float(hi) if hi > lo else float(lo) + 1.0 for lo, hi in bounds]
    mapping = ValueMapping(method, tuple(low), tuple(high))
    means = np.array([v.mean() if v.size else lo for v, lo in zip(valid, low)])
    return mapping, (means - np.array(low)) / (np.array(high) - np.array(low))


def _read_bands(ds: DatasetReader, indexes: tuple[int, ...], mapping: ValueMapping, fills: np.ndarray):
    """A window reader for the tiler: bands in [0, 1], nodata pixels replaced by the fill value."""

    def read(top: int, bottom: int, left: int, right: int) -> np.ndarray:
        data = ds.read(list(indexes), window=Window(left, top, right - left, bottom - top))
        unit = mapping.to_unit(data.astype(np.float64), indexes)
        mask = nodata_mask(data, ds.nodata)
        if mask is not None:
            unit = np.where(mask, fills[[i - 1 for i in indexes]].astype(np.float32)[:, None, None], unit)
        return unit

    return read


def _write_block(
    ds: DatasetReader, out: DatasetWriter, indexes: tuple[int, ...], mapping: ValueMapping, block: Block, scale: int
) -> None:
    """Map a finished block back to the dtype, put nodata back, write it (in chunks of
    ``WRITE_ROWS`` LR rows, so the temporaries stay small)."""
    dtype = np.dtype(out.dtypes[0])
    cols = block.data.shape[2]
    for first in range(0, block.data.shape[1], WRITE_ROWS * scale):
        unit, top = block.data[:, first : first + WRITE_ROWS * scale], block.top + first
        values = mapping.from_unit(unit, indexes, dtype)
        if ds.nodata is not None:
            window = Window(block.left // scale, top // scale, cols // scale, unit.shape[1] // scale)
            mask = nodata_mask(ds.read(list(indexes), window=window), ds.nodata).repeat(scale, axis=1).repeat(scale, axis=2)
            values[~mask & nodata_mask(values, ds.nodata)] = _beside(ds.nodata, dtype)
            values[mask] = ds.nodata
        out.write(values, indexes=list(indexes), window=Window(block.left, top, cols, unit.shape[1]))


def _beside(nodata: float, dtype: np.dtype) -> float:
    """The representable value next to ``nodata``, for valid pixels that landed on it."""
    if np.issubdtype(dtype, np.integer):
        return nodata + 1 if nodata < np.iinfo(dtype).max else nodata - 1
    return float(np.nextafter(dtype.type(nodata), dtype.type(np.inf)))


def _output_profile(ds: DatasetReader, scale: int, compress: str) -> dict:
    profile = {
        "driver": "GTiff", "dtype": ds.dtypes[0], "count": ds.count, "width": ds.width * scale,
        "height": ds.height * scale, "nodata": ds.nodata, "crs": ds.crs, "tiled": True, "blockxsize": BLOCK,
        "blockysize": BLOCK, "interleave": "band", "compress": compress,
        "predictor": 3 if ds.dtypes[0].startswith("float") else 2, "BIGTIFF": "IF_SAFER",
    }
    if ds.crs is not None or not ds.transform.is_identity:
        profile["transform"] = ds.transform @ Affine.scale(1 / scale)
    return profile


def _copy_metadata(ds: DatasetReader, out: DatasetWriter) -> None:
    """Tags, band descriptions, colour interpretation, scales/offsets/units; no STATISTICS_*."""
    out.update_tags(**_fresh(ds.tags()))
    for i in ds.indexes:
        out.update_tags(i, **_fresh(ds.tags(i)))
        if ds.descriptions[i - 1]:
            out.set_band_description(i, ds.descriptions[i - 1])
    out.colorinterp = ds.colorinterp
    out.scales, out.offsets, out.units = ds.scales, ds.offsets, ds.units


def _fresh(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith("STATISTICS_")}


def _provenance(
    model: Callable, model_file: str | os.PathLike | None, tiling: Tiling, mapping: ValueMapping,
    groups: list[tuple[tuple[int, ...], str]],
) -> dict[str, str]:
    from fatsr import __version__

    return {
        "FATSR_VERSION": __version__,
        "FATSR_MODEL": str(getattr(model, "name", type(model).__name__)),
        "FATSR_MODEL_SHA256": _sha256(Path(model_file)) if model_file is not None else "unknown",
        "FATSR_SCALE": str(model.scale),
        "FATSR_TILE": str(tiling.tile),
        "FATSR_OVERLAP": str(tiling.overlap),
        "FATSR_SEED": str(getattr(model, "seed", "")),
        "FATSR_VALUE_MAPPING": mapping.describe(),
        "FATSR_BANDS": json.dumps({",".join(map(str, idx)): kind for idx, kind in groups}),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
