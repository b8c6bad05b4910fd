"""Rasters that GDAL reads (GeoTIFF, JPEG2000, VRT, ...) super-resolved window by window
(rasterio). The output is a Cloud-Optimized GeoTIFF (or a plain tiled one) that keeps what the
input had: CRS and transform (pixel size divided by the scale), or GCPs / RPCs rescaled to the
new pixel grid; nodata, the dataset mask, dtype, band order, descriptions, colour
interpretation and tags.

Pixel values are mapped to the network's [0, 1] with a recorded per-band linear mapping.
Values outside [0, 1] (the tails of a percentile stretch) are not fed to the network as they
are: it sees them softly compressed into [-0.05, 1.05] and the rest (the residual) is
upsampled bicubically and added back (:class:`TailSafe`). Invalid pixels (nodata, masked,
non-finite) are inpainted for the network (``rasterio.fill.fillnodata``) and put back after
(mask upsampled by nearest). The red, green and blue bands (:mod:`fatsr.inference.bands`)
go through the network together, every other band alone (bicubic, or the network as grey);
an alpha band is upsampled by nearest. A declared bit depth (``NBITS``) bounds the values
and is written back (:mod:`fatsr.inference.bitdepth`).
Palette and thematic rasters (class codes) are refused. Provenance goes into ``FATSR_*``
tags; stale ``STATISTICS_*`` are dropped.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.io import DatasetReader

from fatsr.errors import ArgumentError, FatsrError
from fatsr.inference import sources
from fatsr.inference.bands import alpha_as_data, band_groups, choose_bands, trained_bands
from fatsr.inference.bitdepth import BackProjection, nbits
from fatsr.inference.georef import output_profile, provenance, write_metadata
from fatsr.inference.options import BLOCK, DEFAULT_OPTIONS, RasterOptions
from fatsr.inference.reading import (
    PLAIN_SUFFIXES,
    SUFFIXES,
    ValueMapping,
    band_reader,
    georeferenced,
    open_raster,
    value_mapping,
)
from fatsr.inference.resample import Bicubic, Nearest, TailSafe
from fatsr.inference.tiling import DEFAULT_TILING, Tiling, upscale_blocks
from fatsr.inference.uncertainty import spread_raster
from fatsr.inference.windows import BBox, PixelWindow, scene_window, window_profile
from fatsr.inference.writer import (
    PartialWriter,
    job_record,
    libtiff_quiet,
    with_creation_options,
    write_block,
)
from fatsr.models.contract import Resampler


def upscale_raster(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    model: Resampler,
    *,
    model_file: str | os.PathLike | None = None,
    tiling: Tiling = DEFAULT_TILING,
    options: RasterOptions = DEFAULT_OPTIONS,
    autocast: torch.dtype | None = None,
    overwrite: bool = False,
    checkpoint_seconds: float = 60.0,
    window: PixelWindow | BBox | None = None,
    tags: dict[str, str] | None = None,
    uncertainty: bool = False,
) -> None:
    """Write ``dst``, a Cloud-Optimized GeoTIFF (``options.cog``; else a plain tiled one):
    ``src`` super-resolved by ``model`` (an ``SRModel``), read and written one panel block at
    a time. ``src``: a file, or a path or URL GDAL reads over the network (see
    :mod:`fatsr.inference.sources`). ``window``: only that part of the scene (see
    :mod:`fatsr.inference.windows`), with the same pixels as the whole-scene output there;
    ``tags``: provenance tags to add. The work goes to a hidden partial tiled GeoTIFF beside ``dst``; at the end it is copied
    into a COG (GDAL's COG driver: overviews, then the image, in cloud-optimized order) that
    is renamed onto ``dst``. Every ``checkpoint_seconds`` the partial file is flushed and its
    progress recorded, so a run that crashes or is interrupted resumes there when started
    again with the same source, model and settings. A run that fails before its first
    checkpoint leaves nothing. ``uncertainty``: write instead the spread of the model's x8
    test-time ensemble on the same grid (see :mod:`fatsr.inference.uncertainty`); a finished
    ``dst`` made by the same job is then kept as it is."""
    src, dst, name = _paths(src, dst, overwrite or uncertainty)  # a sidecar checks its own job
    with open_raster(src) as ds:
        _check_suffix(ds, dst)
        area = scene_window(ds, window, name) if window is not None else None
        if options.alpha_as_data:
            ds = alpha_as_data(ds)
        if uncertainty:
            return spread_raster(ds, src, dst, name, area, model, model_file, tiling, options, autocast, overwrite,
                                 checkpoint_seconds, tags)  # fmt: skip
        plan = _plan(ds, name, model, model_file, tiling, options, area, tags)
        job = job_record(src, plan.tags, tiling, plan.options, autocast)
        panel_width = min(plan.profile["width"], tiling.panel * model.scale)
        block_row = BLOCK * panel_width * ds.count * np.dtype(ds.dtypes[0]).itemsize
        # Every write is checked (errors raise; the finished file is read back before it is
        # renamed), so a failure gives one clear line and libtiff's own messages are muted.
        with rasterio.Env(GDAL_CACHEMAX=2 * block_row + (16 << 20)):
            writer = PartialWriter(dst, plan.profile, job, checkpoint_seconds)
            with writer.guarded():
                unmatched = writer.write_or_restart(
                    lambda: _write(ds, writer, plan, model, tiling, autocast, overwrite)
                )
                _report_unmatched(name, unmatched)


def _paths(src: str | os.PathLike, dst: str | os.PathLike, overwrite: bool) -> tuple[Path | str, Path, str]:
    """The source (a Path, or a remote path or URL as given), the destination and the source's
    name for messages (a URL without credentials); an output that would replace the input,
    exists (without ``overwrite``) or is a folder is refused."""
    (source, name), out = sources.source_and_name(src), Path(dst)
    if isinstance(source, Path) and out.resolve() == source.resolve():
        raise FatsrError(f"{source}: its output {out} would replace this input; choose another output")
    if out.exists() and not overwrite:
        raise ArgumentError(f"{out} exists; pass {{arg}} to replace it", "overwrite", True)
    if out.is_dir():
        raise FatsrError(f"{out} is a folder; give a file name")
    return source, out, name


def _check_suffix(ds: DatasetReader, dst: Path) -> None:
    """Rasters are written as GeoTIFFs: another suffix is refused, saying what it would lose."""
    if dst.suffix.lower() not in SUFFIXES:
        picture = dst.suffix.lower() in PLAIN_SUFFIXES
        what = "would lose its georeference" if georeferenced(ds) and picture else "is not what rasters are written as"
        raise FatsrError(
            f"{dst}: {dst.suffix or 'a file without suffix'} {what}; give an output ending in .tif (a Cloud-Optimized GeoTIFF)"
        )


@dataclass(frozen=True)
class _Plan:
    """What a run writes: ``options`` with the bands chosen, the band groups and how each is
    upscaled, the value mapping and each band's fill value, the tags, the output profile and
    the window (None: the whole scene); ``name``: the source's, for messages."""

    options: RasterOptions
    groups: list[tuple[tuple[int, ...], str]]
    mapping: ValueMapping
    fills: np.ndarray
    tags: dict[str, str]
    profile: dict
    area: PixelWindow | None
    name: str


def _plan(
    ds: DatasetReader,
    name: str,
    model: Resampler,
    model_file: str | os.PathLike | None,
    tiling: Tiling,
    options: RasterOptions,
    area: PixelWindow | None,
    tags: dict[str, str] | None,
) -> _Plan:
    options, fixed = trained_bands(ds, name, model, options)
    options = choose_bands(ds, name, options, model.info.channels)
    groups = band_groups(ds, options, model.info.channels)
    bits = nbits(ds)
    mapping, fills = value_mapping(ds, options.value_range, fixed, bits)
    tags = provenance(model, model_file, tiling, mapping, groups) | (tags or {})
    if area is not None:
        tags["FATSR_WINDOW"] = f"{area.describe()} (source column, row, width, height)"
    if options.back_project:
        tags["FATSR_BACK_PROJECT"] = (
            "each scale x scale output block's mean = its input pixel (to rounding; what clips at the range's "
            "ends goes to the block's other pixels)"
        )
    profile = output_profile(ds, model.scale, options.compress)
    if bits is not None:  # libtiff's predictor takes whole bytes only
        profile.update(nbits=bits, predictor=1)
    if area is not None:
        profile = window_profile(profile, area, model.scale)
    if options.cog:  # the partial file is read once, by the COG copy: the fastest compression
        profile.update(compress="zstd", zstd_level=1)
    else:
        profile = with_creation_options(profile, options.creation_options)
    return _Plan(options, groups, mapping, fills, tags, profile, area, name)


def _write(
    ds: DatasetReader,
    writer: PartialWriter,
    plan: _Plan,
    model: Resampler,
    tiling: Tiling,
    autocast: torch.dtype | None,
    overwrite: bool,
) -> dict[tuple[int, ...], BackProjection]:
    """Every band group upscaled block by block into the partial file (from where the writer
    stopped), then the metadata and the final file; the back-projections made (by bands)."""
    runners: dict[str, Resampler] = {
        "rgb": TailSafe(model),
        "network": TailSafe(model),
        "bicubic": Bicubic(model.scale),
        "nearest": Nearest(model.scale),
    }
    projections: dict[tuple[int, ...], BackProjection] = {}
    origin = (0, 0) if plan.area is None else (plan.area.row, plan.area.col)
    for g, (indexes, kind) in enumerate(plan.groups):
        if g < writer.position[0]:
            continue
        resume = writer.position[1:] if g == writer.position[0] else (0, 0)
        read = band_reader(ds, indexes, plan.mapping, plan.fills, fill=kind != "nearest")
        blocks = upscale_blocks(
            runners[kind],
            read,
            ds.height,
            ds.width,
            tiling,
            autocast=autocast,
            resume=resume,
            progress=f"{Path(plan.name).name} band{'s' * (len(indexes) > 1)} {','.join(map(str, indexes))}",
            window=None if plan.area is None else plan.area.area,
        )
        limits = plan.mapping.unit_limits(indexes, np.dtype(ds.dtypes[0]), ds.nodata)
        project = BackProjection(read, model.scale, limits) if plan.options.back_project else None
        if project is not None:
            projections[indexes] = project
        for block in blocks:
            with libtiff_quiet():
                write_block(ds, writer.dataset(), indexes, plan.mapping, block, model.scale,
                            mask=g == 0, project=project, origin=origin)  # fmt: skip
                writer.progress(g, block.panel, block.top + block.data.shape[1])
    with libtiff_quiet():
        writer.finish(lambda out: write_metadata(ds, out, plan.tags, plan.options), plan.options, overwrite=overwrite)
    return projections


def _report_unmatched(src: str, projections: dict[tuple[int, ...], BackProjection]) -> None:
    """Warn about output blocks whose mean cannot equal their input pixel (an input value
    outside the declared bit depth's range)."""
    for indexes, projection in projections.items():
        if projection.off:
            print(f"warning: {src}: bands {','.join(map(str, indexes))}: {projection.off} of {projection.blocks} "
                  "output blocks cannot keep their input pixel's mean under --back-project (the input value is "
                  "outside the range the output can hold)", file=sys.stderr)  # fmt: skip
