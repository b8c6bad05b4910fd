"""Dataset preparation helpers: mod-crop, overlapping tiles (also of georeferenced rasters)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from fatsr.errors import FatsrError
from fatsr.io import atomic_write


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


def write_raster_tiles(source: Path, tiles: list[tuple[Path, tuple[int, int, int, int]]], *, overwrite: bool) -> None:
    """Write each (target, (top, left, height, width)) window of the raster ``source`` as a
    GeoTIFF: every band, dtype, nodata, dataset mask, tags and band descriptions kept, placed
    where it lies (transform of the window, or GCPs / RPCs shifted to it)."""
    import rasterio
    from rasterio.control import GroundControlPoint
    from rasterio.enums import MaskFlags
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.rpc import RPC
    from rasterio.windows import Window

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(source) as ds:
                own_mask = any(flags == [MaskFlags.per_dataset] for flags in ds.mask_flag_enums)
                gcps, gcps_crs = ds.gcps
                for target, (top, left, th, tw) in tiles:
                    window = Window(left, top, tw, th)
                    profile = {
                        "driver": "GTiff", "dtype": ds.dtypes[0], "count": ds.count, "width": tw, "height": th,
                        "crs": ds.crs, "nodata": ds.nodata, "compress": "deflate",
                    }  # fmt: skip
                    if ds.crs is not None or not ds.transform.is_identity:
                        profile["transform"] = ds.window_transform(window)
                    with atomic_write(target, overwrite=overwrite) as tmp:
                        with rasterio.open(tmp, "w", **profile) as out:
                            out.write(ds.read(window=window))
                            if own_mask:
                                out.write_mask(ds.dataset_mask(window=window))
                            if gcps:
                                out.gcps = ([GroundControlPoint(g.row - top, g.col - left, g.x, g.y, g.z, g.id, g.info)
                                             for g in gcps], gcps_crs)  # fmt: skip
                            if ds.rpcs is not None:
                                rpcs = ds.rpcs.to_dict()
                                rpcs["line_off"] -= top
                                rpcs["samp_off"] -= left
                                out.rpcs = RPC(**rpcs)
                            out.update_tags(**ds.tags())
                            for i in ds.indexes:
                                out.update_tags(i, **ds.tags(i))
                                if ds.descriptions[i - 1]:
                                    out.set_band_description(i, ds.descriptions[i - 1])
                            out.colorinterp = ds.colorinterp
        except RasterioError as exc:
            raise FatsrError(f"{source}: could not cut it into GeoTIFF tiles ({str(exc).splitlines()[0]})") from None
