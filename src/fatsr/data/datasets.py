"""Training and validation datasets of HR/LR image pairs.

A root folder is either paired (``HR/`` or ``GT/`` beside ``LR/``, files matched by stem, HR
exactly ``scale`` times the LR size) or holds HR images only, whose LR is synthesised with
:func:`bicubic_downscale` and rounded to the file's bit depth (so it equals a stored LR file).
Items are ``{"lr": CHW float32, "hr": CHW float32, "name": str}`` in [0, 1]; grey images are
replicated to RGB and alpha is dropped. With a :class:`~fatsr.values.ValueMapping` (``fatsr train --bands``),
files are rasters read by GDAL: the chosen bands, mapped to [0, 1] by its per-band range,
invalid pixels (nodata, masked, non-finite) inpainted. Errors in the data raise
:class:`FatsrError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from fatsr.data.resize import bicubic_downscale, pillow_resize, quantize
from fatsr.errors import ArgumentError, FatsrError
from fatsr.io import IMAGE_SUFFIXES, image_size, read_image
from fatsr.values import ValueMapping

_SHOWN = 5  # names listed in an error message
# LR pixels kept around a training crop before downscaling: more than the reach of the
# antialiased bicubic kernel (1.5 LR pixels), so the crop's LR equals that of the whole image.
_LR_MARGIN = 2


def band_mapping(path: Path, bands: tuple[int, ...], value_range: tuple[float, float] | None) -> ValueMapping:
    """The mapping of ``bands`` of a ``--bands`` run for data like the raster ``path``:
    ``value_range`` for every band, else the range of its 8- or 16-bit unsigned dtype."""
    with _raster(path) as ds:
        _check_bands(path, ds.count, bands)
        dtype = np.dtype(ds.dtypes[0])
    n = len(bands)
    if value_range is not None:
        return ValueMapping("range", (float(value_range[0]),) * n, (float(value_range[1]),) * n, bands=bands)
    if dtype in (np.uint8, np.uint16):
        return ValueMapping("dtype range", (0.0,) * n, (float(np.iinfo(dtype).max),) * n, bands=bands)
    raise ArgumentError(
        f"{path}: {dtype} values need {{arg}}, the values mapped to 0..1 (saved in the model file)",
        "value_range",
        "LO HI",
    )


def read_mapped(path: Path, mapping: ValueMapping) -> np.ndarray:
    """HWC float32 of ``mapping``'s bands of ``path`` in [0, 1] (invalid pixels inpainted from
    their neighbours)."""
    from rasterio.fill import fillnodata

    with _raster(path) as ds:
        _check_bands(path, ds.count, mapping.bands)
        data = ds.read(list(mapping.bands)).astype(np.float32)
        valid = (ds.read_masks(list(mapping.bands)) > 0) & np.isfinite(data)
    low = np.array(mapping.low, np.float32)[:, None, None]
    unit = mapping.to_unit(np.where(valid, data, low), mapping.bands)
    for k in range(unit.shape[0]):
        if valid[k].any() and not valid[k].all():
            unit[k] = fillnodata(unit[k], valid[k].astype(np.uint8), max_search_distance=64)
    return np.ascontiguousarray(unit.transpose(1, 2, 0))


def _raster(path: Path) -> Any:
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioError as exc:
        raise ArgumentError(
            f"{path}: not a raster GDAL reads ({str(exc).splitlines()[0]}); {{arg}} needs GeoTIFF/JP2/... files",
            "bands",
            None,
        ) from None


def _check_bands(path: Path, count: int, bands: tuple[int, ...]) -> None:
    if max(bands) > count or min(bands) < 1:
        raise ArgumentError(f"{path}: has bands 1 to {count}; {{arg}} does not fit it", "bands", bands)


@dataclass(frozen=True)
class _Pair:
    name: str
    hr: Path
    lr: Path | None
    hr_size: tuple[int, int]  # (height, width) of the HR file


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (by suffix, hidden files skipped), sorted by name."""
    folder = Path(folder)
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def _listing(names: list[str]) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in find_images(folder):
        if path.stem in files:
            raise FatsrError(f"{folder}: both {files[path.stem].name} and {path.name}; keep one image per name")
        files[path.stem] = path
    if not files:
        raise FatsrError(
            f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}); give a folder of HR images "
            "or one with HR/ (or GT/) and LR/ sub-folders"
        )
    return files


def _layout(root: Path) -> tuple[Path, Path | None]:
    """(HR folder, LR folder or None) of a dataset root."""
    if not root.is_dir():
        raise FatsrError(f"{root}: no such folder; give a folder of images")
    hr_dirs = [root / d for d in ("HR", "GT") if (root / d).is_dir()]
    lr_dir = root / "LR" if (root / "LR").is_dir() else None
    if len(hr_dirs) == 2:
        raise FatsrError(f"{root}: has both HR/ and GT/; keep one of them")
    if not hr_dirs and lr_dir is not None:
        raise FatsrError(f"{root}: has LR/ but no HR/ or GT/; add the HR images as HR/")
    return (hr_dirs[0], lr_dir) if hr_dirs else (root, None)


def _scan(root: Path, scale: int) -> list[_Pair]:
    """All pairs of a dataset root, sizes checked against ``scale``."""
    if scale < 1:
        raise FatsrError(f"scale must be a positive integer, got {scale}")
    hr_dir, lr_dir = _layout(root)
    hr_files = _by_stem(hr_dir)
    sizes = {stem: image_size(path) for stem, path in hr_files.items()}
    if lr_dir is None:
        small = [f"{s} ({w}x{h})" for s, (h, w) in sizes.items() if h < scale or w < scale]
        if small:
            raise FatsrError(f"{hr_dir}: images smaller than the scale {scale}: {_listing(small)}; remove them")
        return [_Pair(s, p, None, sizes[s]) for s, p in hr_files.items()]
    lr_files = _by_stem(lr_dir)
    problems = []
    no_lr = sorted(set(hr_files) - set(lr_files))
    no_hr = sorted(set(lr_files) - set(hr_files))
    if no_lr:
        problems.append(f"HR without LR: {_listing(no_lr)}")
    if no_hr:
        problems.append(f"LR without HR: {_listing(no_hr)}")
    mis_sized = []
    for stem in sorted(set(hr_files) & set(lr_files)):
        (hh, hw), (lh, lw) = sizes[stem], image_size(lr_files[stem])
        if (hh, hw) != (lh * scale, lw * scale):
            mis_sized.append(f"{stem} (HR {hw}x{hh}, LR {lw}x{lh})")
    if mis_sized:
        problems.append(f"HR not {scale}x the LR size: {_listing(mis_sized)}")
    if problems:
        raise FatsrError(f"{root}: {'; '.join(problems)}; fix or remove these pairs")
    return [_Pair(s, p, lr_files[s], sizes[s]) for s, p in hr_files.items()]


def _read_rgb(path: Path, mapping: ValueMapping | None = None) -> np.ndarray:
    """HWC uint8/uint16 RGB: grey replicated, alpha dropped; with ``mapping``, HWC float32
    of its bands in [0, 1]."""
    if mapping is not None:
        return read_mapped(path, mapping)
    img = read_image(path)
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return img[:, :, :3]


def _levels(img: np.ndarray) -> int | None:
    """Grey levels of an integer image (None for values already in [0, 1])."""
    return None if img.dtype == np.float32 else 65535 if img.dtype == np.uint16 else 255


def _round(x: Tensor, levels: int | None) -> Tensor:
    return x if levels is None else quantize(x, levels)


def _to_tensor(img: np.ndarray) -> Tensor:
    """CHW float32 in [0, 1] from an HWC uint8/uint16 array (float32: already in [0, 1])."""
    chw = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    levels = _levels(img)
    return chw.to(torch.float32) if levels is None else chw.to(torch.float32) / levels


def shorter_side_to(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(height, width) with the shorter side of ``size`` made ``side`` and the aspect ratio kept,
    the longer side truncated (torchvision's ``Resize(int)``)."""
    h, w = size
    if h <= w:
        return side, int(side * w / h)
    return int(side * h / w), side


class TrainDataset(Dataset):
    """Random aligned ``patch_size`` LR crops from one dataset root or several (and ``scale`` times larger HR crops), with random
    flips and 90-degree rotations if ``augment``. With ``resize`` (the published recipe) every
    item is instead the whole image pair, resized by Pillow's bilinear filter so that the LR's
    shorter side is ``patch_size`` and the HR's ``patch_size * scale`` (torchvision's
    ``Resize(int)`` on PIL images, as the published ``train.py``); all images must then resize
    to one size. Draws come from
    ``numpy.random.default_rng([seed, epoch, index])``: independent of worker processes and
    exactly repeatable; call :meth:`set_epoch` each epoch. ``cache`` keeps decoded images in memory.
    ``hr_only``: items hold no ``"lr"`` (made later, e.g. by a batched degradation) and LR
    files are not read; the HR crops are the same as without it.
    ``scale_augment`` > 1 (HR-only data): half of the items first shrink their whole HR image by
    a factor drawn log-uniformly from [1, ``scale_augment``] (Pillow bicubic, antialiased; at
    most down to the HR crop size), so one ground sample distance also teaches coarser ones.
    """

    def __init__(
        self,
        root: str | os.PathLike | Sequence[str | os.PathLike],
        scale: int,
        patch_size: int = 48,
        augment: bool = True,
        cache: bool = False,
        seed: int = 0,
        hr_only: bool = False,
        mapping: ValueMapping | None = None,
        resize: bool = False,
        scale_augment: float = 1.0,
    ) -> None:
        if patch_size < 1 or seed < 0:
            raise FatsrError(f"patch size must be >= 1 and seed >= 0, got {patch_size} and {seed}")
        self.roots = [Path(root)] if isinstance(root, (str, os.PathLike)) else [Path(r) for r in root]
        self.scale, self.patch_size = scale, patch_size
        self.augment, self.seed, self.epoch, self.hr_only, self.resize = augment, seed, 0, hr_only, resize
        self.mapping, self.scale_augment = mapping, scale_augment
        self.pairs = [pair for folder in self.roots for pair in _scan(folder, scale)]
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] | None = {} if cache else None
        if resize:
            self.lr_size = self._resized_size()
            return
        self.lr_size = (patch_size, patch_size)
        too_small = [p for p in self.pairs if min(p.hr_size) // scale < patch_size]
        if too_small:
            hr_patch = patch_size * scale
            folders = ", ".join(dict.fromkeys(str(p.hr.parent) for p in too_small))
            small = [f"{p.name} ({p.hr_size[1]}x{p.hr_size[0]})" for p in too_small]
            raise FatsrError(
                f"{folders}: images smaller than the {hr_patch}x{hr_patch} HR crop ({patch_size}x{patch_size} LR): "
                f"{_listing(small)}; use a smaller patch size or remove them"
            )

    def _resized_size(self) -> tuple[int, int]:
        """The one LR size of every resized image (FatsrError if they differ)."""
        sizes: dict[tuple[int, int], list[str]] = {}
        for pair in self.pairs:
            hr = shorter_side_to(pair.hr_size, self.patch_size * self.scale)
            lr = shorter_side_to(pair.hr_size, self.patch_size)
            if hr != (lr[0] * self.scale, lr[1] * self.scale):
                raise ArgumentError(f"{pair.name}: resized to {lr[1]}x{lr[0]} LR and {hr[1]}x{hr[0]} HR, which are not "
                                    f"x{self.scale} apart; use images of another aspect ratio or {{arg}}",
                                    "sampling", "crop")  # fmt: skip
            sizes.setdefault(lr, []).append(pair.name)
        if len(sizes) > 1:
            listing = "; ".join(f"{w}x{h}: {_listing(names)}" for (h, w), names in sizes.items())
            folders = ", ".join(str(r) for r in self.roots)
            raise ArgumentError(f"{folders}: the images resize to different LR sizes ({listing}), which cannot form "
                                "a batch; use images of one aspect ratio or {arg}", "sampling", "crop")  # fmt: skip
        return next(iter(sizes))

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` (>= 0)."""
        self.epoch = int(epoch)

    def _arrays(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        pair = self.pairs[index]
        lr = None if pair.lr is None or self.hr_only else _read_rgb(pair.lr, self.mapping)
        arrays = _read_rgb(pair.hr, self.mapping), lr
        if self._cache is not None:
            self._cache[index] = arrays
        return arrays

    def _synthesise_lr(self, hr: np.ndarray, top: int, left: int) -> Tensor:
        """LR crop at (top, left) equal to that of the whole image's bicubic downscale."""
        s, p = self.scale, self.patch_size
        t0, l0 = max(top - _LR_MARGIN, 0), max(left - _LR_MARGIN, 0)
        t1 = min(top + p + _LR_MARGIN, hr.shape[0] // s)
        l1 = min(left + p + _LR_MARGIN, hr.shape[1] // s)
        region = bicubic_downscale(_to_tensor(hr[t0 * s : t1 * s, l0 * s : l1 * s]), s)
        return _round(region, _levels(hr))[:, top - t0 : top - t0 + p, left - l0 : left - l0 + p]

    def _resized(self, index: int) -> dict[str, Tensor]:
        """The whole pair of ``index`` resized (see the class)."""
        hr, lr = self._arrays(index)
        h, w = self.lr_size
        s = self.scale
        items = {"hr": _to_tensor(pillow_resize(hr, h * s, w * s, "bilinear"))}
        if not self.hr_only:
            if lr is None:
                cropped = hr[: hr.shape[0] // s * s, : hr.shape[1] // s * s]
                lr = _to_array(_round(bicubic_downscale(_to_tensor(cropped), s), _levels(hr)), hr.dtype)
            items["lr"] = _to_tensor(pillow_resize(lr, h, w, "bilinear"))
        return items

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.resize:
            patches = self._resized(index)
            if self.augment:
                hflip, vflip, transpose = (bool(f) for f in rng.integers(0, 2, size=3))
                square = self.lr_size[0] == self.lr_size[1]  # a transposed oblong would not batch
                patches = {k: _dihedral(v, hflip, vflip, transpose and square) for k, v in patches.items()}
            return {**patches, "name": self.pairs[index].name}
        hr, lr = self._arrays(index)
        s, p = self.scale, self.patch_size
        if self.scale_augment > 1 and (lr is None or self.hr_only):
            hr = _shrunk(hr, p * s, self.scale_augment, rng)
        top = int(rng.integers(0, hr.shape[0] // s - p + 1))
        left = int(rng.integers(0, hr.shape[1] // s - p + 1))
        patches = {"hr": _to_tensor(hr[top * s : (top + p) * s, left * s : (left + p) * s])}
        if not self.hr_only:
            patches["lr"] = (
                self._synthesise_lr(hr, top, left) if lr is None else _to_tensor(lr[top : top + p, left : left + p])
            )
        if self.augment:
            hflip, vflip, transpose = (bool(f) for f in rng.integers(0, 2, size=3))
            patches = {k: _dihedral(v, hflip, vflip, transpose) for k, v in patches.items()}
        return {**patches, "name": self.pairs[index].name}


def _shrunk(hr: np.ndarray, crop: int, most: float, rng: np.random.Generator) -> np.ndarray:
    """``hr`` shrunk by a factor drawn log-uniformly from [1, ``most``] (no more than its shorter
    side allows for a ``crop`` x ``crop`` crop), for half of the draws; else ``hr`` itself."""
    if rng.random() < 0.5:
        return hr
    most = min(most, min(hr.shape[:2]) / crop)
    factor = float(np.exp(rng.uniform(0.0, np.log(most)))) if most > 1 else 1.0
    height, width = (max(round(side / factor), crop) for side in hr.shape[:2])
    return hr if (height, width) == hr.shape[:2] else pillow_resize(hr, height, width, "bicubic")


def _to_array(x: Tensor, dtype: np.dtype) -> np.ndarray:
    """HWC array of ``dtype`` from a CHW tensor in [0, 1] (on that dtype's grid if an integer)."""
    hwc = x.permute(1, 2, 0).numpy()
    levels = _levels(np.zeros(0, dtype))
    return hwc.astype(dtype) if levels is None else np.round(hwc * levels).astype(dtype)


def _dihedral(x: Tensor, hflip: bool, vflip: bool, transpose: bool) -> Tensor:
    """One of the 8 flips/90-degree rotations of a CHW tensor."""
    if hflip:
        x = x.flip(-1)
    if vflip:
        x = x.flip(-2)
    if transpose:
        x = x.transpose(-1, -2)
    return x.contiguous()


class ValSample(TypedDict):
    lr: Tensor  # (C, h, w) in [0, 1]
    hr: Tensor  # (C, scale*h, scale*w) in [0, 1]
    name: str


class ValDataset(Dataset):
    """Whole images: HR cropped to a multiple of ``scale``; LR from ``LR/`` if paired, else its
    deterministic bicubic downscale rounded to the HR file's bit depth."""

    def __init__(self, root: str | os.PathLike, scale: int, mapping: ValueMapping | None = None) -> None:
        self.root, self.scale, self.mapping = Path(root), scale, mapping
        self.pairs = _scan(self.root, scale)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> ValSample:
        pair, s = self.pairs[index], self.scale
        hr = _read_rgb(pair.hr, self.mapping)
        hr = hr[: hr.shape[0] // s * s, : hr.shape[1] // s * s]
        hr_tensor = _to_tensor(hr)
        if pair.lr is None:
            lr_tensor = _round(bicubic_downscale(hr_tensor, s), _levels(hr))
        else:
            lr_tensor = _to_tensor(_read_rgb(pair.lr, self.mapping))
        return ValSample(lr=lr_tensor, hr=hr_tensor, name=pair.name)
