"""STAC items as inputs: the named assets (asset keys or ``eo:bands`` common names) stacked,
in that order, into a VRT of the (remote) COGs, which is then upscaled like any raster. Needs
the ``stac`` extra (``pip install 'fatsr[stac]'``: pystac)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import rasterio
from rasterio.errors import RasterioError

from fatsr.errors import FatsrError
from fatsr.inference import sources

_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


@dataclass(frozen=True)
class Band:
    """One band of the stack: what it was asked as, the asset's GDAL path, its 1-based band."""

    name: str
    path: str
    band: int


def is_item(spec: str) -> bool:
    """Whether ``spec`` looks like a STAC item: a .json file or URL."""
    return spec.lower().split("?", 1)[0].endswith(".json")


@contextmanager
def item_raster(spec: str, assets: tuple[str, ...]) -> Iterator[tuple[Path, dict[str, str]]]:
    """A temporary VRT stacking ``assets`` of the STAC item ``spec`` (a file or URL), and the
    provenance tags naming the item; FatsrError for an unknown asset or assets on different
    pixel grids."""
    try:
        import pystac
    except ImportError:
        raise FatsrError("STAC items need pystac: pip install 'fatsr[stac]'") from None
    where = sources.public(spec)
    try:
        item = pystac.Item.from_file(spec)
    except Exception as exc:  # pystac raises many kinds (HTTP, JSON, schema): all one line here
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise FatsrError(f"{where}: not a readable STAC item ({reason}); give a STAC Item JSON file or URL") from None
    bands = [_band(item, key, where) for key in assets]
    with (
        sources.remote_env(),
        tempfile.TemporaryDirectory(prefix="fatsr-stac-") as folder,
    ):  # GDAL opens the assets lazily
        xml = _vrt(bands, item.id)
        vrt = Path(folder) / f"{item.id}.vrt"
        vrt.write_text(xml)
        yield vrt, {"FATSR_STAC_ITEM": item.id, "FATSR_STAC_ASSETS": ",".join(assets)}


def _band(item: Any, key: str, where: str) -> Band:
    """An asset by key (its first band), else the asset band whose ``eo:bands`` common name is ``key``."""
    if key in item.assets:
        return Band(key, _gdal_path(item.assets[key].get_absolute_href()), 1)
    for asset in item.assets.values():
        for k, name in enumerate(_common_names(asset)):
            if name == key:
                return Band(key, _gdal_path(asset.get_absolute_href()), k + 1)
    known = ", ".join(item.assets)
    raise FatsrError(f"{where}: the item has no asset or eo:bands common name {key!r}; its assets are {known}")


def _common_names(asset: Any) -> list[str | None]:
    """The ``eo:bands`` common names of an asset (STAC 1.0), or of its ``bands`` (STAC 1.1)."""
    from pystac.extensions.eo import EOExtension

    bands = EOExtension.ext(asset).bands if EOExtension.has_extension(asset.owner) else None
    if bands:
        return [band.common_name for band in bands]
    return [band.get("eo:common_name") for band in asset.extra_fields.get("bands", [])]


def _gdal_path(href: str) -> str:
    """The path GDAL opens for an asset href (/vsicurl/, /vsis3/, ... for URLs; local paths absolute)."""
    return sources.gdal_path(href) if sources.is_remote(href) else str(Path(href.removeprefix("file://")).resolve())


def _vrt(bands: list[Band], item_id: str) -> str:
    """A VRT stacking the bands; all must share one pixel grid (CRS, transform, size)."""
    grids = {}
    for band in bands:
        try:
            with rasterio.open(band.path) as ds:
                if not 1 <= band.band <= ds.count:
                    raise FatsrError(
                        f"STAC asset {band.name}: band {band.band} of a file with {ds.count}; check the item's eo:bands"
                    )
                grids[band.name] = (
                    ds.crs,
                    ds.transform,
                    ds.width,
                    ds.height,
                    ds.dtypes[band.band - 1],
                    ds.nodata,
                    ds.block_shapes[0],
                )
        except RasterioError as exc:
            raise (
                sources.failure(band.path, str(exc))
                if sources.is_remote(band.path)
                else FatsrError(f"{band.path}: not a readable raster ({str(exc).splitlines()[0]})")
            ) from None
    first = grids[bands[0].name]
    sizes = {name: (abs(g[1].a), abs(g[1].e)) for name, g in grids.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} ({x:g} x {y:g})" for name, (x, y) in sizes.items())
        raise FatsrError(f"{item_id}: the assets have different resolutions: {listed}; choose assets of one resolution")
    other = [name for name, g in grids.items() if g[:4] != first[:4]]
    if other:
        raise FatsrError(
            f"{item_id}: the assets {bands[0].name} and {other[0]} are on different pixel grids; choose assets of one grid"
        )
    crs, transform, width, height = first[:4]
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">']
    if crs is not None:
        lines.append(f"  <SRS>{escape(crs.to_wkt())}</SRS>")
    lines.append(f"  <GeoTransform>{', '.join(repr(v) for v in transform.to_gdal())}</GeoTransform>")
    for k, band in enumerate(bands, 1):
        _, _, _, _, dtype, nodata, (block_y, block_x) = grids[band.name]
        lines += [
            f'  <VRTRasterBand dataType="{_GDAL_TYPES.get(dtype, "Float64")}" band="{k}">',
            f"    <Description>{escape(band.name)}</Description>",
            *([f"    <NoDataValue>{nodata!r}</NoDataValue>"] if nodata is not None else []),
            "    <SimpleSource>",
            f'      <SourceFilename relativeToVRT="0">{escape(band.path)}</SourceFilename>',
            f"      <SourceBand>{band.band}</SourceBand>",
            f'      <SourceProperties RasterXSize="{width}" RasterYSize="{height}" '
            f'DataType="{_GDAL_TYPES.get(dtype, "Float64")}" BlockXSize="{block_x}" BlockYSize="{block_y}"/>',
            f'      <SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
            f'      <DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
            "    </SimpleSource>",
            "  </VRTRasterBand>",
        ]
    lines.append("</VRTDataset>")
    return "\n".join(lines) + "\n"
