"""Arrays given to :func:`fatsr.upscale`: numpy or torch, HWC or CHW, 2-D grey, any dtype,
any band count. Each comes back in its own layout, type and dtype.

* Layout: ``layout="HWC"`` or ``"CHW"``; without it, the band axis is the first or last one,
  shorter than the middle one and not longer than the other end. When both ends qualify
  (e.g. 3x64x3) HWC is assumed, with a warning that says so.
* Values: uint8/uint16 by their full range (as image files), float as [0, 1] (returned
  unclipped), other integers (int16, ...) by a per-band 0.5-99.5 percentile stretch, with
  values beyond it through bicubic (:class:`fatsr.inference.resample.TailSafe`), mapped back and rounded.
* Bands: grey and RGB go through the network as they are. Any other count needs ``bands``: the
  1-based bands that go through the network together (as many as the model takes); the others
  are upscaled bicubically. A 4-band array is never taken for RGBA silently.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from fatsr.errors import FatsrError
from fatsr.inference.tiling import Tiling, upscale_image, upscale_tiled
from fatsr.models.contract import Resampler
from fatsr.values import ValueMapping

LAYOUTS = ("HWC", "CHW")


def band_axis(shape: tuple[int, ...], layout: str | None) -> str:
    """``layout`` checked, or guessed from the shape of a 3-D array."""
    if layout is not None:
        if layout not in LAYOUTS:
            raise FatsrError(f"layout {layout!r}: choose HWC or CHW")
        return layout
    last = shape[2] < shape[1] and shape[2] <= shape[0]
    first = shape[0] < shape[1] and shape[0] <= shape[2]
    if last and first:
        warnings.warn(
            f"array of shape {tuple(shape)}: assumed HWC (bands last); pass layout='CHW' if not", stacklevel=3
        )
    if last or first:
        return "HWC" if last else "CHW"
    raise FatsrError(f"array of shape {tuple(shape)}: no axis is clearly the bands; pass layout='HWC' or 'CHW'")


def upscale_array(
    model: Resampler,
    image: Any,
    tiling: Tiling,
    *,
    layout: str | None = None,
    bands: tuple[int, ...] | None = None,
    device: torch.device | None = None,
    autocast: torch.dtype | None = None,
) -> Any:
    """``image`` (numpy or torch; 2-D, HWC or CHW) upscaled by ``model``, in the same form."""
    from fatsr.inference.resample import Bicubic, TailSafe

    is_torch = isinstance(image, torch.Tensor)
    array = image.detach().cpu().numpy() if is_torch else np.asarray(image)
    if array.ndim == 2:
        hwc, layout = array[:, :, None], "grey"
    elif array.ndim == 3:
        layout = band_axis(array.shape, layout)
        hwc = array if layout == "HWC" else array.transpose(1, 2, 0)
    else:
        raise FatsrError(f"array of shape {tuple(array.shape)}: give a 2-D grey or a 3-D (HWC or CHW) image")
    count, channels = hwc.shape[2], model.info.channels
    if hwc.dtype.kind not in "iuf":
        raise FatsrError(f"{hwc.dtype} array: give integer or float pixels")
    plain = hwc.dtype in (np.uint8, np.uint16) or hwc.dtype.kind == "f"
    if bands is None and count not in (1, channels):
        raise FatsrError(
            f"a {count}-band array: say which bands go through the {channels}-band model with bands=(...), "
            f"e.g. bands={tuple(range(1, channels + 1))}; the others are upscaled bicubically"
        )
    if bands is not None and (
        len(bands) != channels or len(set(bands)) != channels or not all(1 <= b <= count for b in bands)
    ):
        raise FatsrError(f"bands={tuple(bands)}: give {channels} different band numbers from 1 to {count}")
    if bands is None and plain:
        out = upscale_image(model, np.ascontiguousarray(hwc), tiling, device=device, autocast=autocast)
    else:
        chw = hwc.transpose(2, 0, 1)
        mapping, every = _stretch(chw), tuple(range(1, count + 1))
        unit = mapping.to_unit(chw.astype(np.float64), every)
        net = list(range(count)) if bands is None else [b - 1 for b in bands]
        rest = [b for b in range(count) if b not in net]
        result = np.empty((count, unit.shape[1] * model.scale, unit.shape[2] * model.scale), np.float32)
        result[net] = upscale_tiled(TailSafe(model), unit[net], tiling, device=device, autocast=autocast)
        if rest:
            result[rest] = upscale_tiled(Bicubic(model.scale), unit[rest], tiling, device=torch.device("cpu"))
        dtype = chw.dtype if chw.dtype.kind in "iu" else np.dtype(np.float32)
        out = mapping.from_unit(result, every, dtype).transpose(1, 2, 0)
    if layout == "grey":
        out = out[:, :, 0]
    elif layout == "CHW":
        out = out.transpose(2, 0, 1)
    out = np.ascontiguousarray(out)
    return torch.from_numpy(out) if is_torch else out


def _stretch(chw: np.ndarray) -> ValueMapping:
    """The per-band value mapping of an array: uint8/uint16 their range, float [0, 1], other
    integers the 0.5 and 99.5 percentiles."""
    count = chw.shape[0]
    if chw.dtype in (np.uint8, np.uint16):
        return ValueMapping("dtype range", (0.0,) * count, (float(np.iinfo(chw.dtype).max),) * count)
    if chw.dtype.kind == "f":
        return ValueMapping("[0, 1]", (0.0,) * count, (1.0,) * count)
    low, high = np.percentile(chw.reshape(count, -1), (0.5, 99.5), axis=1)
    high = np.maximum(high, low + 1)
    return ValueMapping("percentile 0.5-99.5 per band", tuple(map(float, low)), tuple(map(float, high)))
