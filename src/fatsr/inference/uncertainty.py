"""``--uncertainty``: where the network is unsure, as a sidecar raster beside the output.

The layer is the spread of the x8 test-time ensemble (:class:`~fatsr.models.ensemble.SelfEnsemble`
with ``spread=True``): for every output pixel, the standard deviation of the 8 outputs (the
model on the 8 flips and quarter turns of the input, turned back), over the 8 with divisor 8,
averaged over the bands that go through the network together, in the network's [0, 1] units
(the fraction of the value range the bands are mapped to: of 255 for an 8-bit picture, of the
stretch for a raster). Where the 8 disagree, the network is inventing detail that the input does
not pin down.

It is written as ``NAME.uncertainty.tif`` beside the output ``NAME.EXT``: float32, one band,

* for a raster: one band per pass through the network (the red, green, blue bands together,
  then each other band that ``--other-bands network`` sends through it alone); the output's
  grid, CRS and transform (or GCPs / RPCs), window, tiling and COG layout; nodata (NaN) where
  the output's pixels are invalid (nodata, masked, alpha 0, non-finite input). It goes through
  the same tiled, resumable and atomic writer as the output
  (:class:`~fatsr.inference.writer.PartialWriter`), before the output, and a finished sidecar
  made by the same job is kept when the same command is run again (so an interrupted run
  resumes where it stopped);
* for a picture: a plain float32 GeoTIFF without georeference, written atomically together
  with the output.

The output itself is the ``--tta`` output, byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, DatasetWriter
from rasterio.windows import Window

from fatsr.errors import ArgumentError, FatsrError
from fatsr.inference.bands import band_groups, choose_bands, trained_bands
from fatsr.inference.bitdepth import nbits
from fatsr.inference.georef import output_profile, provenance
from fatsr.inference.options import BLOCK, RasterOptions
from fatsr.inference.reading import band_reader, quiet, read_source, valid_mask, value_mapping
from fatsr.inference.resample import TailSafe
from fatsr.inference.tiling import DEFAULT_TILING, Tiling, image_peak, upscale_blocks, upscale_tiled
from fatsr.inference.windows import PixelWindow, window_profile
from fatsr.inference.writer import PartialWriter, job_record, libtiff_quiet
from fatsr.io import atomic_write
from fatsr.models.contract import Model, Resampler
from fatsr.models.ensemble import SelfEnsemble

SUFFIX = ".uncertainty.tif"
UNITS = "standard deviation of the 8 flips and quarter turns, in the network's 0..1 units"
JOB_TAG = "FATSR_UNCERTAINTY_JOB"


def sidecar_path(output: str | os.PathLike) -> Path:
    """``NAME.uncertainty.tif`` beside the output ``NAME.EXT``."""
    output = Path(output)
    return output.with_name(output.stem + SUFFIX)


def base_model(model: Model) -> Model:
    """The model inside a test-time ensemble (the model itself otherwise)."""
    return model.model if isinstance(model, SelfEnsemble) else model


def spread_model(model: Resampler) -> SelfEnsemble:
    """The per-pixel spread of ``model``'s x8 ensemble, as a model (every channel the same)."""
    return SelfEnsemble(model, spread=True)  # type: ignore[arg-type]  # a Resampler with .scale suffices


class NamedTailSafe(TailSafe):
    """``model`` behind :class:`TailSafe`, as rasters reach it, under its own name."""

    name: str

    def __init__(self, model: Model) -> None:
        super().__init__(model)
        self.name = model.name


def picture_unit(image: np.ndarray) -> np.ndarray:
    """An HWC picture's colour channels as (C, H, W) float32 in [0, 1] (uint8/uint16 by their
    full range, float as it is), as they reach the network; an alpha channel is left out (it
    goes bicubic, not through the network)."""
    peak = image_peak(image.dtype)
    colour = image[:, :, :3] if image.shape[2] in (3, 4) else image[:, :, :1]
    return np.ascontiguousarray(colour.transpose(2, 0, 1), dtype=np.float32) / np.float32(peak)


def unit_spread(
    model: Model,
    unit: np.ndarray,
    tiling: Tiling = DEFAULT_TILING,
    *,
    device: torch.device | None = None,
    autocast: torch.dtype | None = None,
) -> np.ndarray:
    """The (H * scale, W * scale) float32 spread of (C, H, W) values mapped to [0, 1] with
    tails beyond it, as rasters and stretched arrays reach the network (:class:`TailSafe`,
    which is the model itself on values in [0, 1], such as a :func:`picture_unit`)."""
    runner = spread_model(NamedTailSafe(base_model(model)))
    return np.ascontiguousarray(upscale_tiled(runner, unit, tiling, device=device, autocast=autocast)[0])


def write_picture_spread(
    path: Path, spread: np.ndarray, *, overwrite: bool = False, before: Callable[[], None] | None = None
) -> None:
    """A float32 one-band GeoTIFF without georeference, written atomically; ``before()`` (the
    output's own atomic write) runs once it is complete and before it is renamed into place, so
    a failure of either leaves neither new."""
    with atomic_write(path, overwrite=overwrite) as tmp, quiet():
        profile = {"driver": "GTiff", "width": spread.shape[1], "height": spread.shape[0], "count": 1,
                   "dtype": "float32", "compress": "deflate", "predictor": 3, "tiled": True,
                   "blockxsize": BLOCK, "blockysize": BLOCK}  # fmt: skip
        if spread.shape[0] < BLOCK or spread.shape[1] < BLOCK:
            profile["tiled"] = False
            del profile["blockxsize"], profile["blockysize"]
        with rasterio.open(tmp, "w", **profile) as out:
            out.write(spread.astype(np.float32), 1)
            out.set_band_description(1, "uncertainty")
            out.update_tags(FATSR_UNCERTAINTY=UNITS)
        if before is not None:
            before()


def check_free(path: Path, overwrite: bool) -> None:
    """Refuse an existing sidecar unless ``overwrite``."""
    if path.exists() and not overwrite:
        raise ArgumentError(f"{path} exists; pass {{arg}} to replace it", "overwrite", True)


def spread_raster(
    ds: DatasetReader, src: Path | str, dst: Path, name: str, area: PixelWindow | None, model: Resampler,
    model_file: str | os.PathLike | None, tiling: Tiling, options: RasterOptions, autocast: torch.dtype | None,
    overwrite: bool, checkpoint_seconds: float, tags: dict[str, str] | None,
) -> None:  # fmt: skip
    """``upscale_raster(..., uncertainty=True)`` once ``ds`` (the source ``src``, called ``name``)
    is open: write ``dst``, the x8 spread of ``model`` on the grid of the output (``area``: the
    window of the scene, None for all of it); a finished ``dst`` made by this same job is kept."""
    model = base_model(model)  # type: ignore[arg-type]  # an ensemble is unwrapped; any model has .info
    channels = model.info.channels
    options = replace(options, creation_options=())  # the output's --co are for its dtype and bands
    options, fixed = trained_bands(ds, name, model, options)
    options = choose_bands(ds, name, options, channels)
    groups = [(ix, kind) for ix, kind in band_groups(ds, options, channels) if kind in ("rgb", "network")]
    if not groups:
        raise FatsrError(
            f"{name}: no band goes through the network, so --uncertainty has nothing to measure; "
            "send bands to it with --bands or --other-bands network"
        )
    mapping, fills = value_mapping(ds, options.value_range, fixed, nbits(ds))
    runner = spread_model(NamedTailSafe(model))
    tags = provenance(runner, model_file, tiling, mapping, groups) | (tags or {})
    tags["FATSR_UNCERTAINTY"] = UNITS
    if area is not None:
        tags["FATSR_WINDOW"] = f"{area.describe()} (source column, row, width, height)"
    profile = output_profile(ds, model.scale, options.compress)
    profile.update(dtype="float32", count=len(groups), nodata=math.nan, predictor=3)
    if area is not None:
        profile = window_profile(profile, area, model.scale)
    if options.cog:
        profile.update(compress="zstd", zstd_level=1)
    job = job_record(src, tags, tiling, options, autocast)
    tags[JOB_TAG] = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()
    if dst.exists() and not overwrite:
        if _made_by(dst) == tags[JOB_TAG]:
            print(f"{dst}: kept (made by the same job)", file=sys.stderr)
            return
        raise ArgumentError(f"{dst} exists; pass {{arg}} to replace it", "overwrite", True)
    origin = (0, 0) if area is None else (area.row, area.col)
    with rasterio.Env(GDAL_CACHEMAX=64 << 20):
        writer = PartialWriter(dst, profile, job, checkpoint_seconds)

        def write_all() -> None:
            for g, (indexes, _) in enumerate(groups):
                if g < writer.position[0]:
                    continue
                resume = writer.position[1:] if g == writer.position[0] else (0, 0)
                read = band_reader(ds, indexes, mapping, fills)
                blocks = upscale_blocks(
                    runner, read, ds.height, ds.width, tiling, autocast=autocast, resume=resume,
                    progress=f"{Path(name).name} uncertainty of bands {','.join(map(str, indexes))}",
                    window=None if area is None else area.area,
                )  # fmt: skip
                for block in blocks:
                    with libtiff_quiet():
                        _write_spread(ds, writer.dataset(), g + 1, indexes, block, model.scale, origin)
                        writer.progress(g, block.panel, block.top + block.data.shape[1])
            with libtiff_quiet():
                writer.finish(lambda out: _finish(out, tags, groups), options, overwrite=overwrite)

        with writer.guarded():
            writer.write_or_restart(write_all)


def _write_spread(
    ds: DatasetReader, out: DatasetWriter, band: int, indexes: tuple[int, ...], block: Any, scale: int,
    origin: tuple[int, int],
) -> None:  # fmt: skip
    """A finished block's spread into ``band``; NaN where any of ``indexes`` is invalid in the input."""
    rows, cols = block.data.shape[1:]
    t, l = origin[0] + block.top // scale, origin[1] + block.left // scale
    window = Window(l, t, cols // scale, rows // scale)
    lr = read_source(ds, list(indexes), window=window).astype(np.float64)
    invalid = ~valid_mask(ds, indexes, lr, window).all(axis=0)
    values = block.data[0].astype(np.float32)
    values[invalid.repeat(scale, axis=0).repeat(scale, axis=1)] = np.nan
    out.write(values, indexes=band, window=Window(block.left, block.top, cols, rows))


def _finish(out: DatasetWriter, tags: dict[str, str], groups: list[tuple[tuple[int, ...], str]]) -> None:
    out.update_tags(**tags)
    for g, (indexes, _) in enumerate(groups):
        out.set_band_description(g + 1, f"uncertainty of bands {','.join(map(str, indexes))}")


def _made_by(path: Path) -> str | None:
    """The job digest a sidecar records (None when it is no readable sidecar)."""
    with contextlib.suppress(RasterioError, OSError), quiet(), rasterio.open(path) as ds:
        return ds.tags().get(JOB_TAG)
    return None


def array_spread(
    model: Model,
    image: Any,
    tiling: Tiling = DEFAULT_TILING,
    *,
    layout: str | None = None,
    bands: tuple[int, ...] | None = None,
    device: torch.device | None = None,
    autocast: torch.dtype | None = None,
) -> np.ndarray:
    """The (H * scale, W * scale) float32 spread of an array as
    :func:`~fatsr.inference.arrays.upscale_array` upscales it (same layout rules, value mapping
    and bands through the network); call that first, it checks the array."""
    from fatsr.inference.arrays import _stretch, band_axis

    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 2:
        hwc = array[:, :, None]
    else:
        hwc = array if band_axis(array.shape, layout) == "HWC" else array.transpose(1, 2, 0)
    plain = hwc.dtype in (np.uint8, np.uint16) or hwc.dtype.kind == "f"
    if bands is None and plain:
        return unit_spread(model, picture_unit(hwc), tiling, device=device, autocast=autocast)
    chw = hwc.transpose(2, 0, 1)
    net = tuple(range(1, chw.shape[0] + 1)) if bands is None else tuple(bands)
    unit = _stretch(chw).to_unit(chw[[b - 1 for b in net]].astype(np.float64), net)
    return unit_spread(model, unit, tiling, device=device, autocast=autocast)


def heat_map(spread: np.ndarray, top: float, mask: np.ndarray | None = None) -> np.ndarray:
    """An HWC uint8 picture of a (H, W) spread: 0..``top`` on matplotlib's ``inferno`` colour
    map (black, purple, orange, pale yellow; above ``top`` as ``top``); RGBA, transparent where
    ``mask`` (True: no data) is set or the spread is NaN."""
    from matplotlib import colormaps

    values = np.clip(np.nan_to_num(spread / top), 0.0, 1.0)
    rgb = colormaps["inferno"](values, bytes=True)[:, :, :3]
    hidden = np.isnan(spread) if mask is None else mask | np.isnan(spread)
    if not hidden.any():
        return np.ascontiguousarray(rgb)
    alpha = np.where(hidden, 0, 255).astype(np.uint8)[:, :, None]
    return np.concatenate([rgb, alpha], axis=2)


def spread_layers(
    spreads: list[tuple[str, np.ndarray]], mask: np.ndarray | None = None
) -> list[tuple[str, np.ndarray]]:
    """(layer name, heat map) of each model's spread, all on one scale (0 to the 99.5th
    percentile of them all, to two significant digits), named with it, for the comparison page."""
    values = np.concatenate([s[np.isfinite(s)].ravel() for _, s in spreads])
    top = float(f"{max(float(np.percentile(values, 99.5)) if values.size else 0.0, 1e-4):.2g}")
    return [(f"{name} uncertainty (0-{top:g})", heat_map(s, top, mask)) for name, s in spreads]
