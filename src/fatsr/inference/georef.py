"""What an output GeoTIFF keeps of its input and says of itself: the georeference rescaled to
the new pixel grid (CRS and transform, GCPs, RPCs), tags, band descriptions, colour
interpretation, overviews, and fatsr's provenance (``FATSR_*`` tags)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.enums import Resampling
from rasterio.io import DatasetReader, DatasetWriter
from rasterio.rpc import RPC

from fatsr.inference.options import BLOCK, RasterOptions
from fatsr.inference.tiling import Tiling
from fatsr.models.contract import Resampler
from fatsr.values import ValueMapping


def output_profile(ds: DatasetReader, scale: int, compress: str) -> dict:
    """A tiled GeoTIFF ``scale`` times larger, with the input's georeference rescaled: CRS and
    transform, or GCPs (pixel and line times ``scale``), or RPCs (their image offsets and scales)."""
    profile = {
        "driver": "GTiff",
        "dtype": ds.dtypes[0],
        "count": ds.count,
        "width": ds.width * scale,
        "height": ds.height * scale,
        "nodata": ds.nodata,
        "crs": ds.crs,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "interleave": "band",
        "compress": compress,
        "predictor": 3 if ds.dtypes[0].startswith("float") else 2,
        "BIGTIFF": "IF_SAFER",
    }
    if ds.crs is not None or not ds.transform.is_identity:
        profile["transform"] = ds.transform @ Affine.scale(1 / scale)
    gcps, gcps_crs = ds.gcps
    if gcps:
        profile["gcps"] = [
            GroundControlPoint(row=g.row * scale, col=g.col * scale, x=g.x, y=g.y, z=g.z, id=g.id, info=g.info)
            for g in gcps
        ]
        profile["gcps_crs"] = gcps_crs
    if ds.rpcs is not None:
        profile["rpcs"] = scaled_rpcs(ds.rpcs, scale)
    return profile


def scaled_rpcs(rpcs: RPC, scale: int) -> RPC:
    """RPCs of the image enlarged ``scale`` times. RPC image coordinates count from the
    centre of the first pixel, so line' = scale * line + (scale - 1) / 2 (and samples alike)."""
    values = rpcs.to_dict()
    for axis in ("line", "samp"):
        values[f"{axis}_off"] = rpcs.to_dict()[f"{axis}_off"] * scale + (scale - 1) / 2
        values[f"{axis}_scale"] = rpcs.to_dict()[f"{axis}_scale"] * scale
    return RPC(**values)


POINTS = ("gcps", "gcps_crs", "rpcs")  # georeference set on the open dataset, not through the profile


def set_georeference(out: DatasetWriter, profile: dict) -> None:
    """GCPs and RPCs, which ``rasterio.open`` does not take from a profile."""
    if "gcps" in profile:
        out.gcps = (profile["gcps"], profile["gcps_crs"])
    if "rpcs" in profile:
        out.rpcs = profile["rpcs"]


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


def provenance(
    model: Resampler,
    model_file: str | os.PathLike | None,
    tiling: Tiling,
    mapping: ValueMapping,
    groups: list[tuple[tuple[int, ...], str]],
) -> dict[str, str]:
    from fatsr.version import __version__

    return {
        "FATSR_VERSION": __version__,
        "FATSR_MODEL": model.info.name,
        "FATSR_MODEL_SHA256": _sha256(Path(model_file)) if model_file is not None else "unknown",
        "FATSR_SCALE": str(model.scale),
        "FATSR_TILE": str(tiling.tile),
        "FATSR_OVERLAP": str(tiling.overlap),
        "FATSR_SEED": "" if model.info.seed is None else str(model.info.seed),
        "FATSR_VALUE_MAPPING": mapping.describe(),
        "FATSR_BANDS": json.dumps({",".join(map(str, idx)): kind for idx, kind in groups}),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_metadata(ds: DatasetReader, out: DatasetWriter, tags: dict[str, str], options: RasterOptions) -> None:
    _copy_metadata(ds, out)
    out.update_tags(**tags)
    if options.overviews and not options.cog:  # the COG driver makes its own
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
