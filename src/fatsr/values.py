"""How raster values map to a network's [0, 1] and back, per band: the one mapping that
``fatsr upscale`` (rasters and arrays), ``fatsr train --bands`` and the model files share."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np


def value_bounds(dtype: np.dtype, bits: int | None = None) -> tuple[float, float]:
    """The values a band can hold: 0..2**bits - 1 with ``bits``, else the dtype's range."""
    if bits is not None:
        return 0.0, float(2**bits - 1)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    finfo = np.finfo(dtype)
    return float(finfo.min), float(finfo.max)


@dataclass(frozen=True)
class ValueMapping:
    """Per band: ``unit = (value - low) / (high - low)``; back, rounded for integer dtypes and
    clipped to ``bounds`` (a declared bit depth's range; None: the dtype's).

    Entry k of ``low`` and ``high`` is of band ``bands[k]`` (1-based raster bands, in network
    channel order), or of band k + 1 when ``bands`` is empty. ``method`` says where the
    numbers come from. A multispectral model keeps its mapping as JSON (:meth:`to_json`) in
    its file's ``value_mapping`` entry."""

    method: str
    low: tuple[float, ...]
    high: tuple[float, ...]
    bounds: tuple[float, float] | None = None
    bands: tuple[int, ...] = ()

    def to_unit(self, data: np.ndarray, indexes: tuple[int, ...]) -> np.ndarray:
        """(C, ...) values of bands ``indexes`` (1-based) as float32 unit values, computed in
        the precision of ``data`` (float32 or more)."""
        low, span = self._params(indexes, np.result_type(data.dtype, np.float32))
        return ((data - low) / span).astype(np.float32)

    def from_unit(self, unit: np.ndarray, indexes: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """(C, ...) unit values of bands ``indexes`` back as values of ``dtype``."""
        low, span = self._params(indexes)
        values = unit * span + low
        bottom, top = self.bounds or value_bounds(dtype)
        if np.issubdtype(dtype, np.integer):
            return np.clip(np.rint(values), bottom, top).astype(dtype)
        return np.clip(values, bottom, top).astype(dtype)

    def unit_limits(
        self, indexes: tuple[int, ...], dtype: np.dtype, nodata: float | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The (C, 1, 1) unit values that map to the ends of an integer output's range (None
        for floats); a ``nodata`` at an end is left out (valid pixels never take it)."""
        if not np.issubdtype(dtype, np.integer):
            return None
        low, span = self._params(indexes)
        bottom, top = self.bounds or value_bounds(dtype)
        bottom, top = bottom + (nodata == bottom), top - (nodata == top)
        return (bottom - low) / span, (top - low) / span

    def _params(self, indexes: tuple[int, ...], dtype: type | np.dtype = np.float64) -> tuple[np.ndarray, np.ndarray]:
        at = [self.bands.index(i) if self.bands else i - 1 for i in indexes]
        low = np.array([self.low[k] for k in at], dtype)[:, None, None]
        high = np.array([self.high[k] for k in at], dtype)[:, None, None]
        return low, high - low

    def describe(self) -> str:
        """The mapping in words and numbers (JSON), as a GeoTIFF's provenance tag keeps it."""
        described = {"method": self.method, "unit": "(value - low) / (high - low)", "low": self.low, "high": self.high}
        if self.bounds is not None:
            described["clamp"] = list(self.bounds)
        return json.dumps(described)

    def to_json(self) -> str:
        """The ``value_mapping`` entry of a model file."""
        return json.dumps(
            {"bands": list(self.bands), "low": list(self.low), "high": list(self.high), "method": self.method}
        )

    @classmethod
    def from_json(cls, text: str) -> ValueMapping:
        """A model file's ``value_mapping`` entry (ValueError, KeyError or TypeError if it is not one)."""
        d = json.loads(text)
        return cls(d["method"], tuple(d["low"]), tuple(d["high"]), bands=tuple(d["bands"]))
