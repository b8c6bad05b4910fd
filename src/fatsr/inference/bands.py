"""What the bands of a raster are, as the file declares them: which are red, green and blue
(colour interpretation, else band names such as "red", "B04", "nir" in the band description
or a ``BAND_NAME``/``NAME`` tag), which go through the network and which go bicubic, and
alpha bands that look like data (GDAL tags the 4th band of a 4-band byte file alpha by
default, whatever it holds).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from rasterio.enums import ColorInterp, MaskFlags, Resampling

from fatsr.errors import ArgumentError
from fatsr.inference.options import RasterOptions
from fatsr.models.contract import Resampler

if TYPE_CHECKING:
    from rasterio.io import DatasetReader

RGB = ("red", "green", "blue")
_INTERP = {ColorInterp.red: "red", ColorInterp.green: "green", ColorInterp.blue: "blue"}
_WORDS = {"red": "red", "green": "green", "blue": "blue", "nir": "nir", "nir08": "nir", "swir": "swir",
          "swir1": "swir", "swir2": "swir", "pan": "pan", "panchromatic": "pan", "coastal": "coastal",
          "aerosol": "coastal", "cirrus": "cirrus", "thermal": "thermal", "tir": "thermal"}  # fmt: skip
_SENTINEL2 = {"b01": "coastal", "b02": "blue", "b03": "green", "b04": "red", "b05": "red edge", "b06": "red edge",
              "b07": "red edge", "b08": "nir", "b8a": "nir", "b09": "water vapour", "b10": "cirrus",
              "b11": "swir", "b12": "swir"}  # fmt: skip
_NAME_TAGS = ("BAND_NAME", "NAME")
SINGLE_BAND = "network"  # a raster without red, green and blue: measured in docs/bands-and-bit-depths.md
ALPHA_LEVELS = 8  # an alpha band with more distinct values than this ...
ALPHA_BETWEEN = 0.1  # ... and more than this share of pixels neither transparent nor opaque looks like data
SAMPLE = 512  # longest side of the decimated read that judges an alpha band


def name_role(text: str) -> str | None:
    """The role a band name says ("red", "nir", "red edge", ...; None when it says none):
    whole words such as "Red", "NIR", "near infrared", or a Sentinel-2 band code ("B04")."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    if "edge" in words or "rededge" in words:
        return "red edge"
    if "near" in words and "infrared" in words:
        return "nir"
    if "short" in words and "infrared" in words:
        return "swir"
    roles = {_WORDS.get(w) or _SENTINEL2.get(w) for w in words} - {None}
    return cast("str", roles.pop()) if len(roles) == 1 else None


def band_role(ds: DatasetReader, index: int) -> str | None:
    """A band's role: "alpha" by its colour interpretation; else what its description or name
    tag says; else its colour interpretation where that is red, green or blue. Names come
    first: GDAL tags every 3-band byte GeoTIFF red, green, blue by default, whatever it holds."""
    interp = ds.colorinterp[index - 1]
    if interp == ColorInterp.alpha:
        return "alpha"
    tags = {k.upper(): v for k, v in ds.tags(index).items()}
    names = [ds.descriptions[index - 1] or "", *(tags.get(k, "") for k in _NAME_TAGS)]
    roles = {name_role(n) for n in names if n} - {None}
    return cast("str", roles.pop()) if len(roles) == 1 else _INTERP.get(interp)


@dataclass(frozen=True)
class Roles:
    """``rgb``: the bands that are red, green, blue (in that order), or None; ``declared``:
    whether the file says so (else they are the first three bands not declared as something
    else)."""

    rgb: tuple[int, int, int] | None
    declared: bool


def rgb_roles(ds: DatasetReader) -> Roles:
    """Red, green and blue by :func:`band_role` when each is one band; else the first three
    bands not declared alpha (nor another role, while enough are left), in file order."""
    roles = {i: band_role(ds, i) for i in ds.indexes}
    found = {role: [i for i, r in roles.items() if r == role] for role in RGB}
    if all(len(found[role]) == 1 for role in RGB):
        return Roles(cast("tuple[int, int, int]", tuple(found[role][0] for role in RGB)), True)
    data = [i for i in ds.indexes if roles[i] != "alpha"]
    unnamed = [i for i in data if roles[i] in (None, *RGB)]
    pick = unnamed if len(unnamed) >= 3 else data
    return Roles(cast("tuple[int, int, int]", tuple(pick[:3])), False) if len(pick) >= 3 else Roles(None, False)


def choose_bands(ds: DatasetReader, src: Path | str, options: RasterOptions, channels: int) -> RasterOptions:
    """``options`` with the network's bands and the other bands' treatment filled in from the
    file (printing a one-line notice where the colour order is a guess): for a 3-channel
    model without ``bands``, red, green, blue by :func:`rgb_roles`; ``other_bands`` None
    becomes "bicubic" beside them and :data:`SINGLE_BAND` for a raster without them."""
    bands = options.bands
    if bands is None and channels == 3:
        roles = rgb_roles(ds)
        bands = roles.rgb
        if roles.rgb is not None and not roles.declared:
            listed = ",".join(map(str, roles.rgb))
            print(f"note: {src}: bands {listed} taken as red, green, blue (no colour interpretation or band name "
                  "says which is which); choose others with --bands", file=sys.stderr)  # fmt: skip
    other = options.other_bands
    if other is None:
        other = "bicubic" if bands is not None else SINGLE_BAND
    if not options.alpha_as_data:
        for index, levels in data_like_alphas(ds):
            print(f"warning: {src}: band {index} is tagged alpha but holds {levels} distinct values; it may be a "
                  "spectral band (GDAL tags a 4th band alpha by default): pass --alpha-as-data to upscale it "
                  "as data instead of using it as a mask", file=sys.stderr)  # fmt: skip
    return replace(options, bands=bands, other_bands=other)


def data_like_alphas(ds: DatasetReader) -> list[tuple[int, int]]:
    """(band, distinct values) of the alpha bands of a 4+ band raster whose values are not
    0/255-like: more than :data:`ALPHA_LEVELS` distinct values, more than
    :data:`ALPHA_BETWEEN` of the pixels neither 0 nor the dtype's top (read decimated)."""
    alphas = [i for i, ci in zip(ds.indexes, ds.colorinterp) if ci == ColorInterp.alpha]
    if ds.count < 4 or not alphas:
        return []
    factor = max(1, math.ceil(max(ds.width, ds.height) / SAMPLE))
    shape = (len(alphas), math.ceil(ds.height / factor), math.ceil(ds.width / factor))
    sample = ds.read(alphas, out_shape=shape, resampling=Resampling.nearest)
    dtype = np.dtype(ds.dtypes[0])
    top = np.iinfo(dtype).max if dtype.kind in "ui" else 1
    found = []
    for index, band in zip(alphas, sample):
        levels = len(np.unique(band))
        between = float(np.mean((band != 0) & (band != top)))
        if levels > ALPHA_LEVELS and between > ALPHA_BETWEEN:
            found.append((index, levels))
    return found


class AlphaAsData:
    """A dataset whose alpha bands are data: colour interpretation undefined, and no mask
    derived from them (every other attribute is the wrapped dataset's)."""

    def __init__(self, ds: DatasetReader) -> None:
        self._ds = ds
        self._alpha = [MaskFlags.alpha in flags for flags in ds.mask_flag_enums]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ds, name)

    @property
    def colorinterp(self) -> list[ColorInterp]:
        return [ColorInterp.undefined if ci == ColorInterp.alpha else ci for ci in self._ds.colorinterp]

    @property
    def mask_flag_enums(self) -> list[list[MaskFlags]]:
        return [[MaskFlags.all_valid] if a else flags for a, flags in zip(self._alpha, self._ds.mask_flag_enums)]

    def read_masks(self, indexes: int | list[int] | None = None, **kwargs: Any) -> np.ndarray:
        masks = self._ds.read_masks(indexes, **kwargs)
        chosen = self._ds.indexes if indexes is None else [indexes] if isinstance(indexes, int) else indexes
        for k, index in enumerate(chosen):
            if self._alpha[index - 1]:
                (masks[k] if masks.ndim == 3 else masks)[...] = 255
        return masks

    def dataset_mask(self, **kwargs: Any) -> np.ndarray:
        return self.read_masks(**kwargs).min(axis=0)


def alpha_as_data(ds: DatasetReader) -> DatasetReader:
    """``ds`` with its alpha bands as data (see :class:`AlphaAsData`)."""
    has_alpha = ColorInterp.alpha in ds.colorinterp
    return cast("DatasetReader", AlphaAsData(ds)) if has_alpha else ds


def band_groups(ds: DatasetReader, options: RasterOptions, channels: int) -> list[tuple[tuple[int, ...], str]]:
    """(1-based bands, how) per pass: "rgb" through the network together, then every
    other band alone ("network" or "bicubic"; an alpha band "nearest"). ``options`` as
    :func:`choose_bands` filled them in."""
    count, rgb = ds.count, options.bands
    alpha = {i for i, ci in zip(ds.indexes, ds.colorinterp) if ci == ColorInterp.alpha}
    if rgb is not None:
        if len(rgb) != channels or len(set(rgb)) != len(rgb):
            raise ArgumentError(f"{{arg}}: give {channels} different band numbers, e.g. 3,2,1", "bands", rgb)
        if not all(1 <= b <= count for b in rgb):
            raise ArgumentError(f"{{arg}}: the raster has bands 1 to {count}", "bands", rgb)
    groups = [(tuple(rgb), "rgb")] if rgb else []
    rest = [b for b in range(1, count + 1) if b not in (rgb or ())]
    other = options.other_bands or "bicubic"
    return groups + [((b,), "nearest" if b in alpha else other) for b in rest]


def trained_bands(
    ds: DatasetReader, src: str, model: Resampler, options: RasterOptions
) -> tuple[RasterOptions, dict[int, tuple[float, float]]]:
    """A multispectral model (trained with ``--bands``) brings its bands and value mapping:
    its bands are the default ``bands`` and keep the training's (low, high) unless ``--range``
    is given; a raster they do not fit is refused. Bands outside the model go bicubic when it
    is not a 3-channel model (it cannot take one band alone)."""
    trained, channels = model.info.mapping, model.info.channels
    if channels != 3 and options.other_bands == "network":
        options = replace(options, other_bands="bicubic")
    if trained is None:
        if options.bands is None and channels != 3:
            raise ArgumentError(
                f"{src}: the model takes {channels} bands; choose them, e.g. {{arg}}",
                "bands",
                tuple(range(1, channels + 1)),
            )
        return options, {}
    listed = ",".join(map(str, trained.bands))
    if max(trained.bands) > ds.count and options.bands is None:
        raise ArgumentError(
            f"{src}: has {ds.count} band{'s' * (ds.count > 1)}, but the model was trained on bands {listed} "
            f"of {max(trained.bands)}+ band rasters; give a raster like those, or choose {channels}, e.g. {{arg}}",
            "bands",
            tuple(range(1, channels + 1)),
        )
    bands = options.bands or trained.bands
    options = replace(options, bands=bands)
    if options.value_range is not None:
        return options, {}
    return options, {b: (lo, hi) for b, lo, hi in zip(bands, trained.low, trained.high)}
