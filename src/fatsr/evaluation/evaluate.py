"""Evaluation of super-resolved images against their HR originals.

Pairs HR, SR and LR files by name, runs a model (or bicubic) on the LR images when no SR
files are given, and scores every pair with the conventions of the SR literature (see
:mod:`fatsr.evaluation.metrics`), always beside the bicubic baseline (Pillow's bicubic upscale of the
same LR, the MATLAB ``imresize`` kernel the literature reports). LR images missing from disk
are made from the HR by Pillow's bicubic (or torch's, ``downscale="torch"``). Results go to a
per-image CSV, a JSON summary, a terminal table and an optional PNG of crops of the worst and
best images.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from torch import Tensor

from fatsr.data import bicubic_downscale, find_images
from fatsr.data.datasets import read_mapped
from fatsr.data.resize import pillow_bicubic, pillow_bicubic_downscale
from fatsr.errors import ArgumentError, FatsrError, within
from fatsr.evaluation import metrics
from fatsr.evaluation.lpips import LPIPS
from fatsr.inference.bitdepth import nbits
from fatsr.io import PILLOW_SUFFIXES, atomic_write, check_picture_size, read_image
from fatsr.models.bicubic import BicubicModel
from fatsr.models.contract import Model
from fatsr.values import ValueMapping

DOWNSCALES = {
    "pillow": "Pillow bicubic (8-bit path) of the HR (float rasters: torch's)",
    "torch": "torch antialiased bicubic of the HR, rounded",
}
_HEADERS = {
    "psnr_y": "PSNR-Y", "ssim_y": "SSIM-Y", "psnr_rgb": "PSNR-RGB", "ssim_rgb": "SSIM-RGB", "sam_deg": "SAM(deg)",
    "ergas": "ERGAS", "lr_psnr": "LR-PSNR", "psnr_low": "PSNR-lo", "psnr_mid": "PSNR-mid", "psnr_high": "PSNR-hi",
}  # fmt: skip


@dataclass(frozen=True)
class ValueScale:
    """The values scored as 0..1 (``low`` .. ``high``, the PSNR/SSIM peak their span) and where
    that came from: ``--range``, the file's ``NBITS``, or the dtype."""

    low: float
    high: float
    source: str

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g} ({self.source})"


def value_scale(path: Path, dtype: np.dtype, value_range: tuple[float, float] | None = None) -> ValueScale:
    """The :class:`ValueScale` of an image: ``value_range``, else 0..2**NBITS - 1 where a
    raster declares NBITS, else its dtype's range (8/16-bit) or 0..1 (float)."""
    if value_range is not None:
        return ValueScale(float(value_range[0]), float(value_range[1]), "--range")
    with _raster(path) as ds:
        bits = None if ds is None else nbits(ds)
    if bits is not None and dtype.kind == "u":
        return ValueScale(0.0, float(2**bits - 1), f"NBITS={bits}")
    if dtype.kind == "f":
        return ValueScale(0.0, 1.0, "float, values in 0..1")
    if dtype not in (np.uint8, np.uint16):
        raise ArgumentError(f"{path}: {dtype} values; give the range that maps to 0..peak, e.g. {{arg}}",
                            "value_range", (0, 10000))  # fmt: skip
    return ValueScale(0.0, float(np.iinfo(dtype).max), dtype.name)


def bicubic_baseline(lr: np.ndarray, scale: int, values: ValueScale | None = None) -> np.ndarray:
    """The bicubic baseline of an HWC LR image, ``scale`` times larger: Pillow's bicubic for
    8/16-bit images (:func:`~fatsr.data.resize.pillow_bicubic`), :class:`BicubicModel` else;
    clamped to ``values`` (default: the dtype's)."""
    if lr.dtype in (np.uint8, np.uint16):
        out = pillow_bicubic(lr, lr.shape[0] * scale, lr.shape[1] * scale)
        return out if values is None else np.clip(out, values.low, values.high).astype(lr.dtype)
    with torch.inference_mode():
        return _to_array(BicubicModel(scale)(_to_tensor(lr, values)), lr.dtype, values)


@dataclass(frozen=True)
class Pair:
    """One HR image and, where given, its SR output and LR input files."""

    name: str
    hr: Path
    sr: Path | None = None
    lr: Path | None = None


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        images = find_images(path)
        if not images:
            raise FatsrError(f"{path}: no images in this folder")
        return images
    if not path.is_file():
        raise FatsrError(f"{path}: no such file or folder")
    return [path]


def _match(hr_files: list[Path], others: Path, role: str) -> list[Path]:
    """The file of ``others`` for each HR file, by stem (``<stem>_x<scale>`` also matches)."""
    files = _files(others)
    if len(hr_files) == 1 and others.is_file():
        return files
    by_stem = {p.stem: p for p in files}
    for p in files:
        by_stem.setdefault(re.sub(r"_x\d+$", "", p.stem), p)
    matched = [by_stem[hr.stem] for hr in hr_files if hr.stem in by_stem]
    missing = [hr.stem for hr in hr_files if hr.stem not in by_stem]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise FatsrError(
            f"{others}: no {role} image for {', '.join(missing[:5])}{more}; name {role} files like the HR files"
        )
    return matched


def pair_files(hr: str | os.PathLike, *, sr: str | os.PathLike | None = None,
               lr: str | os.PathLike | None = None) -> list[Pair]:  # fmt: skip
    """Pairs for every HR image (a file or a folder's images); SR and LR matched by name."""
    hr_files = _files(Path(hr))
    srs = _match(hr_files, Path(sr), "SR") if sr is not None else [None] * len(hr_files)
    lrs = _match(hr_files, Path(lr), "LR") if lr is not None else [None] * len(hr_files)
    return [Pair(h.stem, h, s, lr_) for h, s, lr_ in zip(hr_files, srs, lrs, strict=True)]


def _read(path: Path, mapping: ValueMapping | None = None) -> np.ndarray:
    """HWC image (uint8/uint16; from a raster also int16, float, ...: see :func:`value_scale`)
    with any alpha channel dropped; with a multispectral model's ``mapping``, its bands mapped
    to [0, 1]."""
    if mapping is not None:
        return read_mapped(path, mapping)
    image = read_image(path, any_dtype=True)
    if image.dtype.kind not in "uif":
        raise FatsrError(f"{path}: {image.dtype} values; evaluate scores integer or float rasters")
    return image[:, :, :3] if image.shape[2] == 4 and _has_alpha(path) is not False else image


def _has_alpha(path: Path) -> bool | None:
    """Whether a raster's 4th band is alpha (None: not a raster GDAL reads, e.g. a PNG)."""
    with _raster(path) as ds:
        return None if ds is None else ds.count == 4 and ds.colorinterp[3] == ColorInterp.alpha


@contextmanager
def _raster(path: Path) -> Any:
    if path.suffix.lower() in PILLOW_SUFFIXES:
        yield None
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(path)
    except RasterioError:
        yield None
        return
    with ds:
        yield ds


def valid_pixels(path: Path) -> np.ndarray | None:
    """HW bool: pixels with data in every band (GDAL's mask: nodata, dataset mask, alpha; and
    finite); None where all are (or the file is a plain picture)."""
    with _raster(path) as ds:
        if ds is None:
            return None
        check_picture_size(path, ds.height, ds.width)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            valid = (ds.read_masks() > 0).all(axis=0)
            if any(np.dtype(d).kind == "f" for d in ds.dtypes):
                valid &= np.isfinite(ds.read()).all(axis=0)
    return None if valid.all() else valid


def _and(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return b if a is None else a if b is None else a & b


def _peak(dtype: np.dtype) -> float:
    """The value that maps to 1: the top of an 8/16-bit range; 1 for float images (in [0, 1])."""
    return 1.0 if np.dtype(dtype).kind == "f" else float(np.iinfo(dtype).max)


def _to_tensor(image: np.ndarray, values: ValueScale | None = None) -> Tensor:
    """(1, C, H, W) float32 of an HWC image, ``values`` (default: 0..the dtype's peak) as 0..1."""
    if values is None:
        x = image.astype(np.float32) / np.float32(_peak(image.dtype))
    else:
        x = ((image.astype(np.float64) - values.low) / (values.high - values.low)).astype(np.float32)
    return torch.from_numpy(np.nan_to_num(x)).permute(2, 0, 1).unsqueeze(0)  # non-finite: masked, not scored


def _to_array(x: Tensor, dtype: np.dtype, values: ValueScale | None = None) -> np.ndarray:
    """Clamped HWC array of ``dtype`` from a (1, C, H, W) tensor in [0, 1] (mapped to ``values``,
    default 0..the dtype's peak, and rounded to the integer levels; float32 for float images)."""
    y = x[0].clamp(0, 1).permute(1, 2, 0).cpu()
    if values is not None:
        out = y.double().numpy() * (values.high - values.low) + values.low
        if np.dtype(dtype).kind == "f":
            return out.astype(np.float32)
        limits = np.iinfo(dtype)
        return np.clip(np.rint(out), limits.min, limits.max).astype(dtype)  # a range wider than the dtype
    if np.dtype(dtype).kind == "f":
        return y.numpy().astype(np.float32)
    return y.mul(_peak(dtype)).round().numpy().astype(dtype)


def _unit(image: np.ndarray, values: ValueScale) -> np.ndarray:
    """An HWC image as float64 with ``values`` as 0..1: what the metrics score."""
    return (image.astype(np.float64) - values.low) / (values.high - values.low)


@dataclass
class ImageResult:
    """Scores of one image and of its bicubic baseline, and, if asked for, crops (bicubic, SR,
    HR) of its worst region."""

    name: str
    scores: dict[str, float]
    bicubic: dict[str, float] = field(default_factory=dict)
    crops: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    values: ValueScale | None = None
    left_out: int = 0  # HR pixels left out of every score as no data (nodata, masked, non-finite)

    @property
    def gain(self) -> float:
        """:attr:`key` minus the bicubic baseline's (dB)."""
        return self.key - _key(self.bicubic) if self.bicubic else float("nan")

    @property
    def key(self) -> float:
        """The score that ranks images: PSNR-Y where defined, else PSNR over all bands."""
        return _key(self.scores)


def _key(scores: dict[str, float]) -> float:
    y = scores["psnr_y"]
    return scores["psnr_rgb"] if math.isnan(y) else y


@dataclass(frozen=True)
class Masks:
    """HW bool masks of the pixels to score (None: all): HR (and SR file) pixels, LR pixels."""

    hr: np.ndarray | None = None
    lr: np.ndarray | None = None


def _load_pair(
    pair: Pair,
    scale: int,
    downscale: str = "pillow",
    mapping: ValueMapping | None = None,
    value_range: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, Masks, ValueScale]:
    """(HR cropped to a multiple of ``scale``, LR from its file or made from the HR by the
    ``downscale`` bicubic of :data:`DOWNSCALES`, the valid pixels of both: nodata, masked and
    non-finite pixels are left out of every score, the :class:`ValueScale` of the HR).
    ``mapping``: a multispectral model's bands and value mapping."""
    hr = _read(pair.hr, mapping)
    values = (
        ValueScale(0.0, 1.0, "the model's band mapping") if mapping else value_scale(pair.hr, hr.dtype, value_range)
    )
    if min(hr.shape[:2]) < scale:
        raise FatsrError(f"{pair.name}: HR {hr.shape[1]}x{hr.shape[0]} is smaller than the scale ({scale}); "
                         "remove it or give larger images")  # fmt: skip
    h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
    hr = hr[:h, :w]
    valid = valid_pixels(pair.hr)
    valid = None if valid is None else valid[:h, :w]
    if pair.lr is None:
        if downscale == "pillow" and hr.dtype in (np.uint8, np.uint16):  # float and int16 rasters: torch's
            lr = np.clip(pillow_bicubic_downscale(hr, scale), values.low, values.high).astype(hr.dtype)
        else:
            lr = _to_array(bicubic_downscale(_to_tensor(hr, values), scale), hr.dtype, values)
        lr_valid = (
            None if valid is None else np.asarray(valid.reshape(h // scale, scale, w // scale, scale).all(axis=(1, 3)))
        )
    else:
        lr = _read(pair.lr, mapping)
        lr_valid = valid_pixels(pair.lr)
    if lr.shape[:2] != (hr.shape[0] // scale, hr.shape[1] // scale):
        raise ArgumentError(f"{pair.name}: LR {lr.shape[1]}x{lr.shape[0]} is not the HR {hr.shape[1]}x{hr.shape[0]} "
                            "divided by {arg}; check it or the LR file", "scale", scale)  # fmt: skip
    return hr, lr, Masks(valid, lr_valid), values


def _sr_image(pair: Pair, hr: np.ndarray, lr: np.ndarray, model: Model | None,
              device: torch.device | str, values: ValueScale | None = None) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """The SR image of ``pair`` (its SR file, or ``model`` run on ``lr``) and the valid pixels
    of its SR file (None: all)."""
    if model is None:
        if pair.sr is None:
            raise FatsrError("no SR image and no model; give SR files or a model")
        sr = _read(pair.sr)
        valid = valid_pixels(pair.sr)
        if sr.shape[:2] != hr.shape[:2]:  # an SR of the uncropped HR: crop it the same way
            sr = sr[: hr.shape[0], : hr.shape[1]]
            valid = None if valid is None else valid[: hr.shape[0], : hr.shape[1]]
        return sr, valid
    if isinstance(model, BicubicModel):  # the baseline itself
        return bicubic_baseline(lr, model.scale, values), None
    with torch.inference_mode():
        return _to_array(model(_to_tensor(lr, values).to(device)), hr.dtype, values), None


def score(sr: np.ndarray, hr: np.ndarray, lr: np.ndarray, *, scale: int, border: int,
          lpips: Sequence[LPIPS] = (), masks: Masks = Masks(), values: ValueScale | None = None) -> dict[str, float]:  # fmt: skip
    """All metrics of one SR image (HWC arrays; LR for the consistency PSNR), on the pixels of
    ``masks`` only, with ``values`` as 0..1 (the peak; default: the dtype's range)."""
    if values is not None:
        sr, hr, lr = _unit(sr, values), _unit(hr, values), _unit(lr, values)
    has_y = hr.shape[2] in (1, 3)
    nan = float("nan")
    valid = masks.hr
    texture = metrics.psnr_by_texture(sr, hr, border=border, y_channel=has_y, valid=valid)
    back = bicubic_downscale(_to_tensor(sr), scale)[0].permute(1, 2, 0).numpy()
    scores = {
        "psnr_y": metrics.psnr(sr, hr, border=border, valid=valid) if has_y else nan,
        "ssim_y": metrics.ssim(sr, hr, border=border, valid=valid) if has_y else nan,
        "psnr_rgb": metrics.psnr(sr, hr, border=border, y_channel=False, valid=valid),
        "ssim_rgb": metrics.ssim(sr, hr, border=border, y_channel=False, valid=valid),
        "sam_deg": metrics.sam(sr, hr, border=border, valid=valid) if hr.shape[2] > 1 else nan,
        "ergas": metrics.ergas(sr, hr, scale=scale, border=border, valid=valid),
        "lr_psnr": metrics.psnr(back, lr, y_channel=False, valid=masks.lr),
        **{f"psnr_{k}": v for k, v in texture.items()},
    }
    for model in lpips:
        scores[f"lpips_{model.net}"] = _lpips(model, sr, hr, border, valid) if has_y else nan
    return scores


def _lpips(model: LPIPS, sr: np.ndarray, hr: np.ndarray, border: int, valid: np.ndarray | None = None) -> float:
    def crop(x: np.ndarray) -> np.ndarray:
        return x[border : x.shape[0] - border, border : x.shape[1] - border]

    a, b = (_to_tensor(crop(x)) for x in (sr, hr))
    if a.shape[1] == 1:
        a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
    device = model.shift.device
    mask = None if valid is None else torch.from_numpy(crop(valid))[None, None].to(device)
    with torch.inference_mode():
        return float(model(a.to(device), b.to(device), mask))


def _worst_region(sr: np.ndarray, hr: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left of the ``size`` x ``size`` window with the largest squared error."""
    error = ((_to_tensor(sr) - _to_tensor(hr)) ** 2).sum(dim=1, keepdim=True)
    sums = F.avg_pool2d(error, size, stride=1)[0, 0]
    index = int(sums.argmax())
    return index // sums.shape[1], index % sums.shape[1]


def _crops(sr: np.ndarray, hr: np.ndarray, bicubic: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    size = min(size, *hr.shape[:2])
    top, left = _worst_region(sr, hr, size)
    window = np.s_[top : top + size, left : left + size]
    return bicubic[window], sr[window], hr[window]


def evaluate(pairs: list[Pair], *, scale: int, border: int, model: Model | None = None,
             device: torch.device | str = "cpu", lpips: Sequence[LPIPS] = (),
             crop_size: int | None = None, downscale: str = "pillow",
             on_images: Callable[[str, np.ndarray, np.ndarray, np.ndarray, Masks], None] | None = None,
             value_range: tuple[float, float] | None = None,
             ) -> Iterator[ImageResult]:  # fmt: skip
    """Score each pair (running ``model`` on its LR when given) and its bicubic baseline
    (Pillow's bicubic upscale of the same LR); LR made by ``downscale`` where no LR file is
    given; crops kept if ``crop_size``; ``on_images(name, lr, sr, hr, masks)`` sees the arrays
    of every pair (for the HTML page). Values are scored with ``value_range`` (LO, HI) as
    0..peak, else the file's NBITS range, else the dtype's (see :func:`value_scale`)."""
    if downscale not in DOWNSCALES:
        raise FatsrError(f"unknown downscale {downscale!r}; use one of {', '.join(DOWNSCALES)}")
    for pair in pairs:
        try:
            mapping = (
                model.info.mapping if model is not None else None
            )  # a multispectral model reads its bands, as upscale does
            hr, lr, masks, values = _load_pair(pair, scale, downscale, mapping, value_range)
            sr, sr_valid = _sr_image(pair, hr, lr, model, device, values)
            left_out = 0 if masks.hr is None else int((~masks.hr).sum())
            masks = Masks(_and(masks.hr, sr_valid), masks.lr)
            scores = score(sr, hr, lr, scale=scale, border=border, lpips=lpips, masks=masks, values=values)
            bicubic = bicubic_baseline(lr, scale, values)
            baseline = scores if isinstance(model, BicubicModel) else score(
                bicubic, hr, lr, scale=scale, border=border, lpips=lpips, masks=masks, values=values)  # fmt: skip
        except FatsrError as exc:
            raise within(exc, "" if str(exc).startswith(pair.name) else f"{pair.name}: ") from None
        crops = _crops(sr, hr, bicubic, crop_size) if crop_size else None
        if on_images is not None:
            on_images(pair.name, lr, sr, hr, masks)
        yield ImageResult(pair.name, scores, baseline, crops, values, left_out)


def _means(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.nanmean([r[k] for r in rows])) if any(not math.isnan(r[k]) for r in rows) else float("nan")
            for k in rows[0]}  # fmt: skip


def summarize(results: list[ImageResult], settings: dict) -> dict:
    """Settings, image count, mean of every score, of the bicubic baseline's and their
    difference (``gain`` = model - bicubic; lower is better for SAM, ERGAS, LPIPS), and the
    best and worst image."""
    means = _means([r.scores for r in results])
    bicubic = _means([r.bicubic for r in results])
    ranked = sorted(results, key=lambda r: r.key)
    values = sorted({r.values.describe() for r in results if r.values is not None})
    return {"settings": settings, "images": len(results), "mean": means, "bicubic": bicubic,
            "gain": {k: means[k] - bicubic[k] for k in means}, "worst": ranked[0].name,
            "best": ranked[-1].name, "values": values,
            "nodata_pixels_left_out": {r.name: r.left_out for r in results if r.left_out}}  # fmt: skip


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def write_json(path: Path, summary: dict, *, overwrite: bool = False) -> None:
    """The summary as JSON; non-finite numbers (nan, inf) become null."""
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(_json_safe(summary), indent=2) + "\n")


def write_csv(path: Path, results: list[ImageResult], *, overwrite: bool = False) -> None:
    """One row per image: the scores, then the bicubic baseline's (``bicubic_<score>``); nan
    written as an empty cell."""
    keys = list(results[0].scores)
    with atomic_write(path, overwrite=overwrite) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", *keys, *(f"bicubic_{k}" for k in keys)])
        for r in results:
            values = [r.scores[k] for k in keys] + [r.bicubic[k] for k in keys]
            writer.writerow([r.name, *("" if math.isnan(v) else f"{v:.6g}" for v in values)])


def format_table(results: list[ImageResult], summary: dict) -> str:
    """A plain-text table of every image (its scores, the bicubic baseline's PSNR and the gain
    over it) and the mean, then the means of the model, of bicubic and their difference."""
    keys = list(results[0].scores)
    key = "PSNR-Y" if not math.isnan(results[0].scores["psnr_y"]) else "PSNR-RGB"
    headers = ["image", *(_HEADERS.get(k, k.upper()) for k in keys), f"bicubic {key}", "gain (dB)"]
    rows = [[r.name, *(_cell(k, r.scores[k]) for k in keys), f"{_key(r.bicubic):.2f}", _signed("psnr", r.gain)]
            for r in results]  # fmt: skip
    mean_gain = float(np.nanmean([r.gain for r in results]))
    rows.append(["mean", *(_cell(k, summary["mean"][k]) for k in keys),
                 f"{_key(summary['bicubic']):.2f}", _signed("psnr", mean_gain)])  # fmt: skip
    per_image = _lines(headers, rows, rules=(1, len(rows)))
    means = [["bicubic", *(_cell(k, summary["bicubic"][k]) for k in keys)],
             [_label(summary["settings"].get("source", "model")), *(_cell(k, summary["mean"][k]) for k in keys)],
             ["gain", *(_signed(k, summary["gain"][k]) for k in keys)]]  # fmt: skip
    title = f"mean of {len(results)} images"
    comparison = _lines([title, *(_HEADERS.get(k, k.upper()) for k in keys)], means, rules=(1, 3))
    note = "gain = model - bicubic (Pillow bicubic of the same LR); lower is better for SAM, ERGAS and LPIPS"
    return "\n".join([per_image, "", comparison, note, *value_notes(results)])


def value_notes(results: list[ImageResult]) -> list[str]:
    """Which values were scored as 0..peak, and how many HR pixels were left out as no data."""
    scales = sorted({r.values.describe() for r in results if r.values is not None})
    lines = [f"values scored as 0..1 (PSNR/SSIM peak = their span): {'; '.join(scales)}"] if scales else []
    out = [r for r in results if r.left_out]
    if out:
        listed = ", ".join(f"{r.name} {r.left_out}" for r in out[:5]) + (
            f" and {len(out) - 5} more" if len(out) > 5 else ""
        )
        lines.append(f"no data: {sum(r.left_out for r in out)} HR pixels left out of every score ({listed})")
    else:
        lines.append("no data: no HR pixel left out")
    return lines


def _label(source: str) -> str:
    return source if source.startswith("model") else "SR files"


def _lines(headers: list[str], rows: list[list[str]], rules: tuple[int, ...]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in [headers, *rows]]  # fmt: skip
    for at in sorted(rules, reverse=True):
        lines.insert(at, "-" * len(lines[0]))
    return "\n".join(lines)


def _cell(key: str, value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.4f}" if key.startswith(("ssim", "lpips")) else f"{value:.2f}"


def _signed(key: str, value: float) -> str:
    return "-" if math.isnan(value) else "+" * (value >= 0) + _cell(key, value)


def write_crops(path: Path, results: list[ImageResult], *, overwrite: bool = False) -> None:
    """A PNG with the worst and best images' crops side by side: bicubic, SR, HR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = sorted(results, key=lambda r: r.key)
    shown = [("worst", ranked[0]), ("best", ranked[-1])]
    if any(result.crops is None for _, result in shown):
        raise FatsrError("these results hold no crops; evaluate them with crop_size")
    fig, axes = plt.subplots(len(shown), 3, figsize=(9, 3.2 * len(shown)), squeeze=False)
    for row, (label, result) in zip(axes, shown, strict=True):
        titles = ("LR, bicubic", f"SR ({result.key:.2f} dB)", "HR")
        for ax, image, title in zip(row, result.crops or (), titles, strict=True):
            _show(ax, image)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"{label}: {result.name}", fontsize=9)
    fig.tight_layout()
    with atomic_write(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _show(ax: Any, image: np.ndarray) -> None:
    """Display an HWC uint8/uint16 (or float [0, 1]) image: RGB, or the first three bands, or
    band 0 in grey."""
    unit = np.clip(np.nan_to_num(image.astype(np.float64) / _peak(image.dtype)), 0, 1)
    if unit.shape[2] < 3:
        ax.imshow(unit[:, :, 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(unit[:, :, :3])
