"""Before/after comparison pages: LR, bicubic, every model and HR of each image (or of
regions of a GeoTIFF scene) in one self-contained, offline HTML page.

The Python side only prepares pictures and numbers: every layer of an item becomes an 8-bit
PNG embedded as a data URI, with its scores where the HR is known (PSNR/SSIM-Y, gain over
bicubic, PSNR-Y by texture thirds, from :func:`fatsr.evaluation.evaluate.score`). The page itself, its
swipe slider, synchronized zoom, magnifier, thumbnails and shortcuts, is plain
HTML/CSS/JS in ``fatsr/page/`` filled in by :func:`render_page`.

A scene never goes into the page whole: the page holds an overview read decimated (from the
file's overviews where it has them) and a bounded set of regions, a grid of cells of
``region_size`` LR pixels, each read as a window (with a margin of context for the network)
and upscaled. Small scenes get every cell; larger ones the ``max_regions`` most textured
cells and the ones asked for at given coordinates; the page names the command that adds any
other cell.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from fatsr.errors import ArgumentError, FatsrError, within
from fatsr.evaluation.evaluate import (
    BicubicModel,
    Masks,
    Pair,
    _load_pair,
    _to_array,
    _to_tensor,
    bicubic_baseline,
    score,
)
from fatsr.inference.tiling import DEFAULT_TILING, Tiling, upscale_image
from fatsr.io import atomic_write, remove_stale_parts
from fatsr.models.contract import Model, Resampler

SCORE_KEYS = ("psnr_y", "ssim_y", "psnr_low", "psnr_mid", "psnr_high")
OVERVIEW_SIZE = 1024  # longest side of a scene's overview, pixels
MARGIN = 16  # LR pixels of context read around a scene region for the network
THUMB_SIZE = 96
GDAL_CACHE = 64 << 20  # bytes of decompressed blocks GDAL keeps while a scene is read


@dataclass
class Layer:
    """One picture of an item: ``image`` HWC uint8/uint16 at its own size (the LR is
    ``scale`` times smaller and shown with nearest-neighbour pixels), and its scores."""

    name: str
    image: np.ndarray | None
    scores: dict[str, float] | None = None
    src: str | None = None  # the PNG data URI, once encoded
    size: tuple[int, int] = (0, 0)  # (width, height)

    def encode(self) -> None:
        """Keep only the PNG (a page of many images holds no arrays)."""
        if self.image is not None:
            self.src, self.size = png_data_uri(self.image), (int(self.image.shape[1]), int(self.image.shape[0]))
            self.image = None


@dataclass
class Item:
    """One image (or scene region) of a page and its layers, in display order."""

    name: str
    layers: list[Layer]
    geo: dict | None = None  # {"crs", "transform": [a, b, c, d, e, f] of the output pixel grid}
    cell: tuple[int, int] | None = None  # (column, row) of a scene region in the grid
    gain: float | None = field(default=None)
    thumb: str | None = None

    def encode(self) -> Item:
        """Every layer as PNG, and the thumbnail (of the last layer); returns the item."""
        if self.thumb is None:
            image = self.layers[-1].image
            assert image is not None, "an item's thumbnail is made before its layers are encoded"
            self.thumb = png_data_uri(thumbnail(image))
        for layer in self.layers:
            layer.encode()
        return self


def to_display(image: np.ndarray) -> np.ndarray:
    """An HWC uint8 picture (1, 3 or 4 channels) of an HWC uint8/uint16 image or float in
    [0, 1]; 2 channels show the first as grey, more than 4 the first three."""
    if image.dtype == np.uint8:
        out = image
    elif image.dtype == np.uint16:
        out = np.rint(image / 257.0).astype(np.uint8)
    else:
        out = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if out.ndim == 2:
        out = out[:, :, None]
    if out.shape[2] == 2:
        out = out[:, :, :1]
    elif out.shape[2] > 4:
        out = out[:, :, :3]
    return np.ascontiguousarray(out)


def png_data_uri(image: np.ndarray) -> str:
    """The picture of ``image`` as a PNG data URI (deterministic bytes)."""
    picture = to_display(image)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[picture.shape[2]]
    buffer = io.BytesIO()
    Image.fromarray(picture[:, :, 0] if mode == "L" else picture, mode).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail(image: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    picture = to_display(image)
    im = Image.fromarray(picture[:, :, 0] if picture.shape[2] == 1 else picture)
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im)


def _gain(scores: dict[str, float], baseline: dict[str, float]) -> dict[str, float]:
    """``scores`` plus the PSNR-Y gain over the baseline (PSNR over all bands where no Y)."""
    key = "psnr_rgb" if math.isnan(scores["psnr_y"]) else "psnr_y"
    return {**scores, "gain": scores[key] - baseline[key]}


def image_item(name: str, lr: np.ndarray, outputs: Sequence[tuple[str, np.ndarray]], hr: np.ndarray | None,
               *, scale: int, border: int, masks: Masks = Masks(),
               extra: Sequence[tuple[str, np.ndarray]] = ()) -> Item:  # fmt: skip
    """An item of an image: LR, bicubic, each named output, the ``extra`` layers (unscored,
    e.g. uncertainty heat maps) and HR; scores where HR is known (on the pixels of ``masks``,
    as :func:`fatsr.evaluation.evaluate.score`). ``outputs`` may hold "bicubic" itself; otherwise
    the bicubic layer is computed here."""
    bicubic = dict(outputs).get("bicubic")
    if bicubic is None:
        bicubic = bicubic_baseline(lr, scale)  # as fatsr evaluate's
    layers = [Layer("LR", lr), Layer("bicubic", bicubic)]
    layers += [Layer(n, image) for n, image in outputs if n != "bicubic"]
    item = Item(name, layers)
    if hr is not None:
        base = score(bicubic, hr, lr, scale=scale, border=border, masks=masks)
        gains = []
        for layer in layers[1:]:
            image = layer.image
            assert image is not None  # not encoded yet
            scores = base if image is bicubic else score(image, hr, lr, scale=scale, border=border, masks=masks)
            layer.scores = _gain(scores, base)
            gains.append(layer.scores["gain"])
        model_gains = gains[1:]  # of the layers between bicubic and HR
        item.gain = min(model_gains) if model_gains else 0.0
    elif extra:  # the thumbnail shows the last output, not a heat map
        item.thumb = png_data_uri(thumbnail(layers[-1].image))  # type: ignore[arg-type]  # not encoded yet
    layers += [Layer(n, image) for n, image in extra]
    if hr is not None:
        layers.append(Layer("HR", hr))
    return item


# --- models ---------------------------------------------------------------------------


def load_models(
    specs: Sequence[str],
    *,
    scale: int | None,
    device: torch.device,
    seed: int = 0,
    tta: bool = False,
    denoise: float | str | None = None,
) -> list[tuple[str, Model]]:
    """(layer name, model) for each spec: ``bicubic``, ``default`` (the built-in model) or a
    model file; names made unique; all must share one scale. ``tta`` and ``denoise`` apply to
    every model but bicubic (see :func:`~fatsr.models.loading.load_model`)."""
    from fatsr.models.loading import load_model
    from fatsr.models.zoo import BUILTIN, builtin_names

    builtin = builtin_names()
    models: list[tuple[str, Model]] = []
    for spec in dict.fromkeys(specs or ["default"]):
        if spec in builtin:  # a built-in model's name, or default / builtin for the default one
            model = load_model(None if spec in BUILTIN else spec, device=device, seed=seed, tta=tta, denoise=denoise)
        elif spec == "bicubic":
            model = BicubicModel(scale or 4)
        else:
            if not Path(spec).is_file():
                raise ArgumentError(
                    "{arg}: no such file; give a model file, 'bicubic' or 'default' (the built-in model)", "specs", spec
                )
            model = load_model(spec, device=device, seed=seed, tta=tta, denoise=denoise)
        name = model.info.name
        if name in ("LR", "HR") or any(name == n for n, _ in models):
            name = f"{name} ({Path(spec).name})"
        models.append((name, model))
    scales = {m.scale for _, m in models if not isinstance(m, BicubicModel)}
    if len(scales) > 1:
        raise FatsrError(
            f"the models have different scales ({', '.join(f'x{s}' for s in sorted(scales))}); compare models of one scale"
        )
    model_scale = scales.pop() if scales else (scale or 4)
    if scale is not None and scale != model_scale:
        raise ArgumentError(f"the models are x{model_scale} but {{arg}}; drop it or change it", "scale", scale)
    for _, model in models:
        if isinstance(model, BicubicModel):
            model.scale = model_scale
    return models


def run_model(model: Resampler, image: np.ndarray, tiling: Tiling, device: torch.device) -> np.ndarray:
    """``image`` (HWC uint8/uint16, or float in [0, 1]) upscaled, same dtype (float: clipped)."""
    if isinstance(model, BicubicModel):
        if image.dtype in (np.uint8, np.uint16):
            with torch.inference_mode():
                return _to_array(model(_to_tensor(image)), image.dtype)
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        with torch.inference_mode():
            return model(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    out = upscale_image(model, image, tiling, device=device)
    return np.clip(out, 0.0, 1.0) if out.dtype == np.float32 else out


# --- images ---------------------------------------------------------------------------


def compare_images(lr_files: Sequence[Path] | None, hr_files: Sequence[Path] | None,
                   models: Sequence[tuple[str, Model]], *, scale: int, border: int | None = None,
                   tiling: Tiling = DEFAULT_TILING, device: torch.device = torch.device("cpu"),
                   uncertainty: bool = False) -> list[Item]:  # fmt: skip
    """Items for LR files (HR matched by name where given) or, without LR files, HR files
    downscaled by bicubic; ``uncertainty``: a heat map of each model's x8 spread too (see
    :mod:`fatsr.inference.uncertainty`)."""
    pairs = _pairs(lr_files, hr_files)
    border = scale if border is None else border
    items = []
    for name, lr_path, hr_path in tqdm(pairs, desc="compare", unit="image", file=sys.stderr, disable=None):
        masks = Masks()
        if hr_path is not None:
            hr, lr, masks, _ = _load_pair(Pair(name, hr_path, None, lr_path), scale)
        else:
            from fatsr.io import read_image

            hr, lr = None, read_image(lr_path)
            if lr.shape[2] == 4:
                lr = lr[:, :, :3]
        outputs = [(n, bicubic_baseline(lr, scale) if isinstance(m, BicubicModel) else run_model(m, lr, tiling, device))
                   for n, m in models]  # fmt: skip
        extra = _spreads(models, lr, tiling, device) if uncertainty else []
        try:
            items.append(image_item(name, lr, outputs, hr, scale=scale, border=border, masks=masks,
                                    extra=extra).encode())  # fmt: skip
        except FatsrError as exc:
            raise within(exc, f"{name}: ") from None
    return items


def _spreads(models: Sequence[tuple[str, Model]], image: np.ndarray, tiling: Tiling, device: torch.device,
             crop: tuple[slice, slice] | None = None, mask: np.ndarray | None = None) -> list[tuple[str, np.ndarray]]:  # fmt: skip
    """Heat maps of each model's x8 spread on ``image`` (HWC: a picture's pixels, or a scene
    region's [0, 1] values with tails, then ``crop``-ped to the region and ``mask``-ed)."""
    from fatsr.inference.uncertainty import picture_unit, spread_layers, unit_spread

    spreads = []
    for name, model in models:
        if isinstance(model, BicubicModel):
            continue
        if crop is None:
            spreads.append((name, unit_spread(model, picture_unit(image), tiling, device=device)))
        else:
            chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
            spreads.append((name, unit_spread(model, chw, tiling, device=device)[crop]))
    return spread_layers(spreads, mask) if spreads else []


def comparison_page(inputs: Sequence[str], models: Sequence[tuple[str, Model]], *, hr: str | None = None,
                    title: str | None = None, border: int | None = None, tiling: Tiling = DEFAULT_TILING,
                    device: torch.device = torch.device("cpu"), region_size: int = 128, max_regions: int = 16,
                    points: Sequence[tuple[float, float]] = (), bands: tuple[int, ...] | None = None,
                    value_range: tuple[float, float] | None = None, command: str = "",
                    uncertainty: bool = False) -> dict:  # fmt: skip
    """The data of ``fatsr compare``'s page (for :func:`write_page`): the LR images ``inputs``
    (files, folders, globs; HR matched by name from ``hr``, or LR made from ``hr`` alone) by
    :func:`compare_images`, or one GeoTIFF scene by :func:`compare_scene`; ``models`` as
    :func:`load_models` gives them; ``title``: default the models, scale and image count;
    ``uncertainty``: a heat map of each model's x8 spread too."""
    from fatsr.inference.reading import is_raster
    from fatsr.inputs import collect_inputs

    lr_files = collect_inputs(list(inputs)) if inputs else []
    hr_files = collect_inputs([hr]) if hr else []
    scenes = [p for p in lr_files if is_raster(p)]
    if scenes and (len(lr_files) > 1 or hr_files):
        raise ArgumentError("a GeoTIFF scene gets a page of its own; give one scene and no {arg}", "hr_files", None)
    scale = cast(int, models[0][1].scale)  # set by the loader; nn.Module attributes are typed Tensor | Module
    names = ", ".join(n for n, _ in models)
    if scenes:
        scene, items = compare_scene(scenes[0], models, scale=scale, region_size=region_size, max_regions=max_regions,
                                     points=points, bands=bands, value_range=value_range, tiling=tiling,
                                     device=device, command=command, uncertainty=uncertainty)  # fmt: skip
        return page_data(items, title=title or f"{scenes[0].name}: {names} x{scale}", scale=scale, scene=scene)
    items = compare_images(lr_files, hr_files, models, scale=scale, border=border, tiling=tiling, device=device,
                           uncertainty=uncertainty)  # fmt: skip
    title = title or f"{names} x{scale}, {len(items)} image{'s' * (len(items) != 1)}"
    return page_data(items, title=title, scale=scale, table=bool(hr_files) and len(items) > 1)


def _pairs(
    lr_files: Sequence[Path] | None, hr_files: Sequence[Path] | None
) -> list[tuple[str, Path | None, Path | None]]:
    if not lr_files:
        if not hr_files:
            raise ArgumentError(
                "no input given; name LR images (files, folders, globs) or give {arg}", "hr_files", "HR"
            )
        return [(p.stem, None, p) for p in hr_files]
    if not hr_files:
        return [(p.stem, p, None) for p in lr_files]
    by_stem = {p.stem: p for p in hr_files}
    pairs: list[tuple[str, Path | None, Path | None]] = []
    missing = []
    for lr in lr_files:
        hr = by_stem.get(lr.stem) or (hr_files[0] if len(lr_files) == len(hr_files) == 1 else None)
        if hr is None:
            missing.append(lr.name)
        pairs.append((lr.stem, lr, hr))
    if missing:
        raise FatsrError(f"no HR image named like {', '.join(missing[:5])}; give HR files with the LR files' names")
    return pairs


# --- scenes ---------------------------------------------------------------------------


@dataclass
class Scene:
    """What the page shows of a GeoTIFF: the overview, the grid and its computed cells."""

    name: str
    width: int
    height: int
    cell: int
    overview: np.ndarray
    crs: str
    transform: tuple[float, ...]
    bands: tuple[int, ...]
    mapping: str
    command: str


def compare_scene(path: Path, models: Sequence[tuple[str, Model]], *, scale: int, region_size: int = 128,
                  max_regions: int = 16, points: Sequence[tuple[float, float]] = (), bands: tuple[int, ...] | None = None,
                  value_range: tuple[float, float] | None = None, tiling: Tiling = DEFAULT_TILING,
                  device: torch.device = torch.device("cpu"), command: str = "",
                  uncertainty: bool = False) -> tuple[Scene, list[Item]]:  # fmt: skip
    """The scene's overview and an item per computed region (LR, bicubic, each model and,
    with ``uncertainty``, a heat map of each model's x8 spread)."""
    import rasterio
    from rasterio.enums import Resampling

    from fatsr.inference.reading import band_reader, open_raster, valid_mask, value_mapping

    if region_size < 8:
        raise ArgumentError("{arg}: give at least 8 LR pixels", "region_size", region_size)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE), open_raster(path) as ds:  # GDAL's block cache: 5% of RAM by default
        shown = _scene_bands(ds, bands)
        mapping, fills = value_mapping(ds, value_range)
        factor = max(1, math.ceil(max(ds.width, ds.height) / OVERVIEW_SIZE))
        shape = (len(shown), math.ceil(ds.height / factor), math.ceil(ds.width / factor))
        sample = ds.read(
            list(shown), out_shape=shape, resampling=Resampling.average if factor > 1 else Resampling.nearest
        )
        overview = _picture(
            mapping.to_unit(sample.astype(np.float64), shown), ~valid_mask(ds, shown, sample, out_shape=shape)
        )
        cells = _choose_cells(overview, ds.width, ds.height, region_size, max_regions, factor)
        for x, y in points:
            row, col = ds.index(x, y)
            if not (0 <= row < ds.height and 0 <= col < ds.width):
                raise ArgumentError(f"{{arg}} lies outside the scene ({_bounds(ds)})", "points", (x, y))
            cells.add((col // region_size, row // region_size))
        transform = tuple(ds.transform)[:6]
        scene = Scene(path.name, ds.width, ds.height, region_size, overview, _crs_name(ds.crs),
                      transform, shown, mapping.describe(), command)  # fmt: skip
        read = band_reader(ds, shown, mapping, fills)
        items = []
        for col, row in tqdm(
            sorted(cells, key=lambda c: (c[1], c[0])), desc=path.name, unit="region", file=sys.stderr, disable=None
        ):
            items.append(_region_item(ds, read, shown, col, row, region_size, models, scale, tiling, device,
                                      uncertainty).encode())  # fmt: skip
    return scene, items


def _scene_bands(ds: Any, bands: tuple[int, ...] | None) -> tuple[int, ...]:
    """The bands shown (and fed to the models): ``bands``, else the first three that are not
    alpha, as ``fatsr upscale`` takes them, else the first one (grey)."""
    from rasterio.enums import ColorInterp

    if bands is None:
        data = [i for i, ci in zip(ds.indexes, ds.colorinterp) if ci != ColorInterp.alpha] or [1]
        return tuple(data[:3]) if len(data) >= 3 else (data[0],)
    if len(bands) not in (1, 3) or not all(1 <= b <= ds.count for b in bands):
        raise ArgumentError(f"{{arg}}: give 3 (or 1) band numbers between 1 and {ds.count}", "bands", bands)
    return bands


def _picture(unit: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """HWC uint8 from CHW unit values; alpha 0 where ``mask`` (CHW, True: no data) is set."""
    picture = np.rint(np.clip(np.nan_to_num(unit.transpose(1, 2, 0)), 0, 1) * 255).astype(np.uint8)
    if mask is None or not mask.any():
        return picture
    alpha = np.where(mask.any(axis=0), 0, 255).astype(np.uint8)[:, :, None]
    return (
        np.concatenate([picture, alpha], axis=2)
        if picture.shape[2] == 3
        else np.concatenate([picture, picture, picture, alpha], axis=2)
    )


def _choose_cells(
    overview: np.ndarray, width: int, height: int, size: int, limit: int, factor: int
) -> set[tuple[int, int]]:
    """Every cell when there are at most ``limit``; else the ``limit`` cells whose overview
    pixels vary most (texture is where super-resolution shows), cells with valid data and at
    least half a cell each way first."""
    cols, rows = math.ceil(width / size), math.ceil(height / size)
    if cols * rows <= limit:
        return {(c, r) for r in range(rows) for c in range(cols)}
    grey = overview[:, :, :3].astype(np.float64).mean(axis=2)
    valid = overview[:, :, 3] > 0 if overview.shape[2] == 4 else np.ones(grey.shape, bool)
    ranked = []
    for r in range(rows):
        for c in range(cols):
            window = (slice(r * size // factor, max(r * size // factor + 1, (r + 1) * size // factor)),
                      slice(c * size // factor, max(c * size // factor + 1, (c + 1) * size // factor)))  # fmt: skip
            values = grey[window][valid[window]]
            big = min(width - c * size, size) * 2 >= size and min(height - r * size, size) * 2 >= size  # not a sliver
            ranked.append((values.size > 0, big, float(values.std()) if values.size else 0.0, -r, -c))
    ranked.sort(reverse=True)
    return {(-c, -r) for *_, r, c in ranked[:limit]}


def _crs_name(crs: Any) -> str:
    """ "EPSG:32621" where the CRS has an authority code, else its PROJ string; "" for none."""
    if crs is None:
        return ""
    authority = crs.to_authority()
    return ":".join(authority) if authority else crs.to_string()


def _bounds(ds: Any) -> str:
    b = ds.bounds
    return f"x {b.left:g}..{b.right:g}, y {b.bottom:g}..{b.top:g}"


def _region_item(ds: Any, read: Callable, bands: tuple[int, ...], col: int, row: int, size: int,
                 models: Sequence[tuple[str, Model]], scale: int, tiling: Tiling, device: torch.device,
                 uncertainty: bool = False) -> Item:  # fmt: skip
    """A region read as a window with a margin of context, upscaled, margin cropped."""
    from rasterio.windows import Window

    from fatsr.inference.reading import valid_mask
    from fatsr.inference.resample import TailSafe

    left, top = col * size, row * size
    right, bottom = min(left + size, ds.width), min(top + size, ds.height)
    l0, t0 = max(0, left - MARGIN), max(0, top - MARGIN)
    r0, b0 = min(ds.width, right + MARGIN), min(ds.height, bottom + MARGIN)
    unit = read(t0, b0, l0, r0).transpose(1, 2, 0)  # HWC, [0, 1] within the stretch, nodata inpainted
    window = Window(left, top, right - left, bottom - top)
    mask = ~valid_mask(ds, bands, ds.read(list(bands), window=window).astype(np.float64), window)
    inner = (slice((top - t0), (top - t0) + bottom - top), slice(left - l0, left - l0 + right - left))
    layers = [Layer("LR", _picture(unit[inner].transpose(2, 0, 1), mask))]
    up_mask = None if mask is None else mask.repeat(scale, axis=1).repeat(scale, axis=2)
    # as fatsr upscale runs them: values beyond the stretch reach a network softly clipped
    outputs = [
        (n, run_model(m if isinstance(m, BicubicModel) else TailSafe(m), unit, tiling, device)) for n, m in models
    ]
    if not any(n == "bicubic" for n, _ in outputs):
        outputs.insert(0, ("bicubic", run_model(BicubicModel(scale), unit, tiling, device)))
    else:
        outputs.sort(key=lambda o: o[0] != "bicubic")
    big = (slice((top - t0) * scale, (bottom - t0) * scale), slice((left - l0) * scale, (right - l0) * scale))
    layers += [Layer(n, _picture(out[big].transpose(2, 0, 1), up_mask)) for n, out in outputs]
    if uncertainty:
        hidden = None if up_mask is None else np.asarray(up_mask.any(axis=0))
        layers += [Layer(n, heat) for n, heat in _spreads(models, unit, tiling, device, big, hidden)]
    a, b, c, d, e, f = tuple(ds.transform)[:6]
    x0, y0 = c + a * left + b * top, f + d * left + e * top
    geo = {"crs": _crs_name(ds.crs), "transform": [a / scale, b / scale, x0, d / scale, e / scale, y0],
           "origin": [left, top]}  # fmt: skip
    return Item(f"region {col},{row}", layers, geo=geo, cell=(col, row))


# --- the page -------------------------------------------------------------------------


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def page_data(items: Sequence[Item], *, title: str, scale: int, table: bool = False, scene: Scene | None = None,
              notes: Sequence[str] = ()) -> dict:  # fmt: skip
    """The page's data: items with their layers as data URIs, scores, optional scene."""
    out_items = []
    for item in items:
        item.encode()
        layers = []
        for layer in item.layers:
            entry: dict[str, object] = {"name": layer.name, "src": layer.src, "lr": layer.name == "LR",
                                        "width": layer.size[0], "height": layer.size[1]}  # fmt: skip
            if layer.scores is not None:
                entry["scores"] = {k: _number(layer.scores.get(k)) for k in (*SCORE_KEYS, "gain")}
            layers.append(entry)
        width, height = item.layers[-1].size
        out_items.append({
            "name": item.name, "layers": layers, "thumb": item.thumb, "start": opening_layers(layers),
            "width": width, "height": height, "gain": _number(item.gain),
            "geo": item.geo, "cell": list(item.cell) if item.cell else None,
        })  # fmt: skip
    data = {"title": title, "scale": scale, "items": out_items, "table": table, "notes": list(notes)}
    if scene is not None:
        data["scene"] = {
            "name": scene.name, "width": scene.width, "height": scene.height, "cell": scene.cell,
            "overview": png_data_uri(scene.overview), "crs": scene.crs, "transform": list(scene.transform),
            "bands": list(scene.bands), "mapping": json.loads(scene.mapping), "command": scene.command,
        }  # fmt: skip
    return data


def opening_layers(layers: Sequence[dict]) -> list[str]:
    """The two layers an item opens on: bicubic (else LR) against the model with the best PSNR-Y
    (else the first model), so the first view shows what the model adds over the baseline; LR
    against the last layer when there is no model."""
    names = [str(layer["name"]) for layer in layers]
    models = [layer for layer in layers if layer["name"] not in ("LR", "bicubic", "HR")]
    if not models:
        return ["LR", names[-1]]

    def psnr(layer: dict) -> float:
        value = (layer.get("scores") or {}).get("psnr_y")
        return value if isinstance(value, (int, float)) else -math.inf

    best = max(models, key=psnr)  # the first of equals: the first model when none is scored
    return ["bicubic" if "bicubic" in names else "LR", str(best["name"])]


def render_page(data: dict) -> str:
    """The HTML page: the template with its style, script and ``data`` put in."""
    page = files("fatsr") / "page"
    html = (page / "compare.html").read_text(encoding="utf-8")
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    fills = {"STYLE": (page / "compare.css").read_text(encoding="utf-8"),
             "SCRIPT": (page / "compare.js").read_text(encoding="utf-8"),
             "TITLE": _escape(data["title"]), "DATA": payload}  # fmt: skip
    # one pass over the template: text put in (a title such as "{{DATA}}") is never filled again
    return re.sub(r"\{\{(STYLE|SCRIPT|TITLE|DATA)\}\}", lambda m: fills[m.group(1)], html)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_page(path: str | os.PathLike, data: dict, *, overwrite: bool = False) -> Path:
    """Write the page atomically; refuse an existing file without ``overwrite``."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise FatsrError(f"{path}: the page is HTML; give an output ending in .html")
    if path.parent.is_dir():  # what a killed run left
        remove_stale_parts(path.parent, [path.name])
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(render_page(data), encoding="utf-8")
    return path
