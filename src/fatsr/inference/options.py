"""What ``fatsr upscale`` can be asked to do with a raster (:class:`RasterOptions`) and the
formats it reads and writes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile

from fatsr.errors import ArgumentError, FatsrError
from fatsr.inference.reading import quiet

COMPRESSIONS = ("deflate", "zstd")
OTHER_BANDS = ("network", "bicubic")
BLOCK = 256


def _check_compress(method: str) -> None:
    """Refuse a COMPRESS value this GDAL does not write (it would write the file uncompressed,
    with a warning at most): a tiny GeoTIFF in memory is written with it and read back."""
    if method.upper() == "NONE":
        return
    try:
        with quiet(), MemoryFile() as mem:  # 3 bands of uint8: what WEBP and JPEG need
            with mem.open(driver="GTiff", width=16, height=16, count=3, dtype="uint8", compress=method) as ds:
                ds.write(np.zeros((3, 16, 16), np.uint8))
            with mem.open() as ds:
                applied = ds.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION", "NONE")
    except RasterioError:
        applied = "NONE"
    if applied.upper() != method.upper():
        raise ArgumentError(
            "{arg}: this GDAL does not write that compression; use e.g. DEFLATE, LZW, ZSTD or NONE",
            "co",
            f"COMPRESS={method}",
        )


@dataclass(frozen=True)
class RasterOptions:
    """``bands``: 1-based bands fed to the network together (None: a multispectral model's
    training bands, else red, green, blue as the file declares them, see
    :func:`~fatsr.inference.bands.rgb_roles`); ``value_range``: (LO, HI) mapped to [0, 1] for
    every band (None: automatic); ``other_bands``: "bicubic" or "network" (each alone, as grey;
    None: bicubic, see :func:`~fatsr.inference.bands.choose_bands`); ``alpha_as_data``: alpha
    bands upscaled as data, not used as a mask; ``cog``: a Cloud-Optimized GeoTIFF (else a
    plain tiled one); ``overviews``: averaged internal overviews; ``back_project``: see
    :func:`~fatsr.inference.bitdepth.back_project`; ``creation_options``: GDAL creation
    options (KEY, VALUE) of the output GeoTIFF, replacing fatsr's own of the same name."""

    bands: tuple[int, ...] | None = None
    value_range: tuple[float, float] | None = None
    other_bands: str | None = None
    alpha_as_data: bool = False
    compress: str = "deflate"
    overviews: bool = True
    cog: bool = True
    back_project: bool = False
    creation_options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.other_bands is not None and self.other_bands not in OTHER_BANDS:
            raise FatsrError(f"other bands {self.other_bands!r}: choose one of {', '.join(OTHER_BANDS)}")
        if self.compress not in COMPRESSIONS:
            raise FatsrError(f"compression {self.compress!r}: choose one of {', '.join(COMPRESSIONS)}")
        for key, _ in self.creation_options:
            if not key or not key.replace("_", "").isalnum():
                raise ArgumentError("{arg}: give GDAL creation options as KEY=VALUE", "co", key)
        _check_compress(dict((k.upper(), v) for k, v in self.creation_options).get("COMPRESS", "NONE"))
        if self.value_range is not None and not all(map(math.isfinite, self.value_range)):
            raise ArgumentError("{arg}: give finite numbers", "value_range", self.value_range)
        if self.value_range is not None and not self.value_range[0] < self.value_range[1]:
            raise ArgumentError("{arg}: LO must be below HI", "value_range", self.value_range)


DEFAULT_OPTIONS = RasterOptions()
