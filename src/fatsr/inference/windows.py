"""Windows and areas of interest of a raster: a pixel window (``--window COL ROW WIDTH
HEIGHT``) or a bounding box in any CRS (``--bbox WEST SOUTH EAST NORTH``), resolved against
the scene to whole source pixels, clipped to it, and the georeference of its upscaled output.

The pixels themselves come from :func:`fatsr.inference.tiling.upscale_window` (or
``upscale_blocks(..., window=...)``): the whole scene's tile grid, so a window's output is
the whole-scene output cut to it, bit for bit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.io import DatasetReader
from rasterio.warp import transform_bounds

from fatsr.errors import FatsrError

SNAP = 1e-6  # pixel fractions this close to a pixel edge count as on it (float round-off of bounds)


class AreaClipped(UserWarning):
    """A window or bbox reached outside the raster and was clipped to it."""


@dataclass(frozen=True)
class PixelWindow:
    """A rectangle of source pixels: first column and row, width and height."""

    col: int
    row: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise FatsrError(f"window {self.describe()}: give a positive WIDTH and HEIGHT")

    def describe(self) -> str:
        return f"{self.col} {self.row} {self.width} {self.height}"

    @property
    def area(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right), as :mod:`fatsr.inference.tiling` takes a window."""
        return self.row, self.row + self.height, self.col, self.col + self.width


@dataclass(frozen=True)
class BBox:
    """WEST SOUTH EAST NORTH in ``crs`` (anything rasterio's CRS takes: EPSG:4326, a WKT, ...)."""

    west: float
    south: float
    east: float
    north: float
    crs: str = "EPSG:4326"

    def __post_init__(self) -> None:
        if not all(map(math.isfinite, (self.west, self.south, self.east, self.north))):
            raise FatsrError(f"bbox {self.describe()}: give finite numbers")
        if not (self.west < self.east and self.south < self.north):
            raise FatsrError(f"bbox {self.describe()}: give WEST SOUTH EAST NORTH with WEST < EAST and SOUTH < NORTH")

    def describe(self) -> str:
        return " ".join(f"{v:.10g}" for v in (self.west, self.south, self.east, self.north))


def scene_window(ds: DatasetReader, area: PixelWindow | BBox, name: str) -> PixelWindow:
    """``area`` as whole source pixels of ``ds`` (a bbox reprojected to its CRS and snapped
    outward), clipped to the scene with a warning; FatsrError when nothing of it is inside."""
    window = area if isinstance(area, PixelWindow) else bbox_window(ds, area, name)
    col0, row0 = max(window.col, 0), max(window.row, 0)
    col1, row1 = min(window.col + window.width, ds.width), min(window.row + window.height, ds.height)
    what = f"bbox {area.describe()} ({area.crs})" if isinstance(area, BBox) else f"window {window.describe()}"
    if col0 >= col1 or row0 >= row1:
        raise FatsrError(
            f"{name}: the {what} is outside the raster ({ds.width}x{ds.height} pixels); give an area inside it"
        )
    clipped = PixelWindow(col0, row0, col1 - col0, row1 - row0)
    if clipped != window:
        warnings.warn(
            f"{name}: the {what} reaches outside the raster; clipped to the window {clipped.describe()}",
            AreaClipped,
            stacklevel=2,
        )
    return clipped


def bbox_window(ds: DatasetReader, bbox: BBox, name: str) -> PixelWindow:
    """The source pixels a bbox covers, snapped outward (not clipped to the scene)."""
    if ds.crs is None:
        raise FatsrError(f"{name}: the raster has no CRS, so a bbox cannot be placed on it; give --window instead")
    if ds.transform.is_identity:
        raise FatsrError(f"{name}: the raster has no geotransform (GCPs or RPCs only); give --window instead")
    try:
        crs = CRS.from_user_input(bbox.crs)
    except CRSError as exc:
        raise FatsrError(f"bbox CRS {bbox.crs!r}: not a CRS ({exc}); give e.g. EPSG:4326") from None
    west, south, east, north = (bbox.west, bbox.south, bbox.east, bbox.north)
    if crs != ds.crs:
        west, south, east, north = transform_bounds(crs, ds.crs, west, south, east, north, densify_pts=21)
    if not all(map(math.isfinite, (west, south, east, north))):
        raise FatsrError(
            f"{name}: the bbox {bbox.describe()} cannot be placed in the raster's CRS ({ds.crs}) from {bbox.crs}; "
            f"give its coordinates in {bbox.crs}, or name the CRS they are in"
        )
    inverse = ~ds.transform
    corners = [inverse @ (x, y) for x in (west, east) for y in (south, north)]
    cols, rows = [c for c, _ in corners], [r for _, r in corners]
    col0, row0 = math.floor(min(cols) + SNAP), math.floor(min(rows) + SNAP)
    col1, row1 = math.ceil(max(cols) - SNAP), math.ceil(max(rows) - SNAP)
    return PixelWindow(col0, row0, max(col1 - col0, 1), max(row1 - row0, 1))


def window_profile(profile: dict, window: PixelWindow, scale: int) -> dict:
    """An output profile of the whole scene (:func:`fatsr.inference.georef.output_profile`)
    made that of ``window``: its size times ``scale``, the transform at the window's origin,
    GCPs and RPCs moved to its pixel grid."""
    profile = dict(profile, width=window.width * scale, height=window.height * scale)
    if "transform" in profile:
        profile["transform"] = profile["transform"] @ Affine.translation(window.col * scale, window.row * scale)
    if "gcps" in profile:
        profile["gcps"] = [
            GroundControlPoint(
                row=g.row - window.row * scale,
                col=g.col - window.col * scale,
                x=g.x,
                y=g.y,
                z=g.z,
                id=g.id,
                info=g.info,
            )
            for g in profile["gcps"]
        ]
    if "rpcs" in profile:
        values = profile["rpcs"].to_dict()
        values["line_off"] -= window.row * scale
        values["samp_off"] -= window.col * scale
        profile["rpcs"] = type(profile["rpcs"])(**values)
    return profile
