"""fatsr: remote-sensing image super-resolution with the Frequency-Aware Transformer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from fatsr.version import __version__

if TYPE_CHECKING:  # numpy, torch and xarray (an optional extra) for the annotations only
    import numpy as np
    import torch
    import xarray

    Array = np.ndarray
    Src = str | os.PathLike  # a path or URL
    Read = Array | tuple[Array, dict[str, Any]]  # a picture's HWC array, or a raster's (CHW array, profile)

__all__ = ["__version__", "default_model_path", "load_model", "upscale"]

ArrayT = TypeVar("ArrayT", "np.ndarray", "torch.Tensor")


def default_model_path() -> Path | None:
    """The model shipped in the package, or None when this build has none."""
    from fatsr.models.zoo import default_model_path as shipped

    return shipped()


def load_model(
    spec: str | os.PathLike | None = None,
    *,
    device: str = "cpu",
    seed: int | None = None,
    tta: bool = False,
    denoise: float | str | None = None,
) -> Any:
    """A ready model (eval mode): ``spec`` is None (the shipped model), ``"bicubic"``, a fatsr
    ``.safetensors`` model file, a published ``.pth`` checkpoint or a ``.onnx`` graph from
    ``fatsr export``; ``tta``: the 8-fold self-ensemble of it; ``denoise``: 0..1, the mix of the
    built-in fatsr-x4 and fatsr-real-x4. See :func:`fatsr.models.loading.load_model`."""
    from fatsr.models.loading import load_model as load

    return load(spec, device=device, seed=seed, tta=tta, denoise=denoise)


# What fatsr.upscale returns for each kind of input (and ``uncertainty=True``); its other
# parameters (tile=, bands=, window=, ...) stand in **options here, typed in the implementation.
@overload
def upscale(image: ArrayT, model: Any = None, *, uncertainty: Literal[False] = False, **options: Any) -> ArrayT: ...
@overload
def upscale(
    image: ArrayT, model: Any = None, *, uncertainty: Literal[True], **options: Any
) -> tuple[ArrayT, Array]: ...
@overload
def upscale(
    image: xarray.DataArray, model: Any = None, *, uncertainty: Literal[False] = False, **options: Any
) -> xarray.DataArray: ...
@overload
def upscale(
    image: Src, model: Any = None, *, output: Src, uncertainty: Literal[False] = False, **options: Any
) -> Path: ...
@overload
def upscale(
    image: Src, model: Any = None, *, output: Src, uncertainty: Literal[True], **options: Any
) -> tuple[Path, Path]: ...
@overload
def upscale(
    image: Src, model: Any = None, *, output: None = None, uncertainty: Literal[False] = False, **options: Any
) -> Read: ...
@overload
def upscale(
    image: Src, model: Any = None, *, output: None = None, uncertainty: Literal[True], **options: Any
) -> tuple[Read, Array]: ...
@overload
def upscale(image: Any, model: Any = None, **options: Any) -> Any: ...  # e.g. uncertainty= a bool variable
def upscale(
    image: Any,
    model: Any = None,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    batch: int = 0,
    seed: int | None = None,
    device: str | None = None,
    precision: str = "float32",
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    layout: str | None = None,
    bands: tuple[int, ...] | None = None,
    tta: bool = False,
    denoise: float | str | None = None,
    uncertainty: bool = False,
    window: tuple[int, int, int, int] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    bbox_crs: str = "EPSG:4326",
    assets: tuple[str, ...] | list[str] | None = None,
    **raster_options: Any,
) -> Any:
    """Super-resolve ``image`` in overlapping, blended tiles of ``tile`` LR pixels (default:
    the model's advice, 192 for FAT) overlapping by ``overlap`` (default: a quarter of the tile,
    at most 24), ``batch`` tiles per forward pass (0: by the tile size, 1 for 192). On a CPU
    the tile batches run on one worker thread per torch thread (:func:`torch.set_num_threads`).

    ``image``:
      * a numpy array or torch tensor: 2-D grey, HWC or CHW (``layout="HWC"|"CHW"``; guessed
        from the shape otherwise, with a warning when ambiguous); uint8/uint16 (full range),
        float ([0, 1], returned unclipped), int16 and other integers (per-band stretch); grey
        or RGB as they are, any other band count with ``bands`` (1-based, the bands the network
        takes; the rest bicubic). Returns the same type, layout and dtype (see :mod:`fatsr.inference.arrays`).
      * a path of a picture (PNG, JPEG, plain TIFF) -> the HWC array; with ``output``, the
        written file's path.
      * a path of a raster (GeoTIFF, JP2, VRT, ...; see :func:`fatsr.inference.reading.is_raster`) ->
        with ``output``, the written COG's path; without, ``(array, profile)``: the CHW array
        and the rasterio profile (georeference rescaled) of the output. ``bands`` and
        ``raster_options`` (see :class:`fatsr.inference.options.RasterOptions`) apply.
      * a path or URL GDAL reads remotely (``https://``, ``s3://``, ``gs://``, ``/vsicurl/``,
        ``/vsis3/`` ...): a raster, read block by block (see :mod:`fatsr.inference.sources`).
      * a STAC item (a .json file or URL) with ``assets`` (asset keys or ``eo:bands`` common
        names, stacked in that order): a raster (needs ``pip install 'fatsr[stac]'``).
      * an ``xarray.DataArray`` with dims ``(band, y, x)`` or ``(y, x)``, as rioxarray opens a
        raster -> a DataArray with the new pixel centres, CRS, transform, nodata, band
        coordinate, attrs and dtype kept, computed as for the raster file (``bands``,
        ``value_range`` and ``other_bands`` apply); Dask-backed input gives a lazy result
        (needs ``pip install 'fatsr[xarray]'``; see :mod:`fatsr.inference.xarray`).
    ``window=(col, row, width, height)`` in source pixels, or ``bbox=(west, south, east,
    north)`` in ``bbox_crs``: a raster's output covers only that area (clipped to the raster
    with a warning), with the same pixels as the whole-scene output there.
    ``model``: a model object, or what :func:`load_model` takes (None: the shipped model).
    ``seed``: the LSH rotations' seed (default 0; an ONNX graph's own).
    ``device``: where the model runs ("cpu", "cuda", ...; a model object is moved there);
    None: the model's device (CPU for a loaded file).
    ``precision``: "float32", or "bfloat16"/"float16" autocast (a tile giving NaN/Inf is
    redone in float32).
    ``tta``: the model on the 8 flips and quarter turns of each tile, averaged (8 times the
    work). ``denoise``: 0..1, the built-in fatsr-x4 (0) and fatsr-real-x4 (1) mixed.
    ``uncertainty``: ``tta``, and the ensemble's per-pixel spread too (see
    :mod:`fatsr.inference.uncertainty`): the call returns ``(result, spread)``, ``result`` being
    what it returns otherwise and ``spread`` the float32 spread array ((H, W) for a picture or
    an array, (passes, H, W) for a raster, NaN where the raster has no data) or, with
    ``output``, the path of the sidecar ``NAME.uncertainty.tif`` written beside it.
    """
    import tempfile

    from fatsr.errors import FatsrError
    from fatsr.inference.pipeline import Upscaler

    job = Upscaler.prepare(
        model,
        device=device,
        seed=seed,
        tile=tile,
        overlap=overlap,
        batch=batch,
        precision=precision,
        tta=tta,
        denoise=denoise,
        uncertainty=uncertainty,
    )
    if type(image).__module__.startswith("xarray."):
        from fatsr.inference.options import RasterOptions
        from fatsr.inference.xarray import FILE_ONLY, upscale_dataarray

        given = [*(k for k in raster_options if k in FILE_ONLY), *(["output"] if output is not None else [])]
        given += [name for name, value in (("layout", layout), ("window", window), ("bbox", bbox)) if value is not None]
        if given:
            raise FatsrError(f"{', '.join(given)}: not for a DataArray; select its area with da.isel or da.sel")
        if uncertainty:
            raise FatsrError("uncertainty=True: not for a DataArray yet; pass the raster's path, or use tta=True")
        options = RasterOptions(bands=tuple(bands) if bands is not None else None, **raster_options)
        return upscale_dataarray(job, image, options)
    if not isinstance(image, (str, os.PathLike)):
        from fatsr.inference.arrays import upscale_array

        if output is not None:
            raise FatsrError("output= is for path inputs; write the returned array yourself")
        if raster_options:
            raise FatsrError(
                f"{', '.join(raster_options)}: options for raster files only; arrays take layout= and bands="
            )
        result = upscale_array(
            job.model, image, job.tiling, layout=layout, bands=bands, device=job.device, autocast=job.autocast
        )
        if not uncertainty:
            return result
        from fatsr.inference.uncertainty import array_spread

        spread = array_spread(
            job.model, image, job.tiling, layout=layout, bands=bands, device=job.device, autocast=job.autocast
        )
        return result, spread
    from fatsr.inference.options import RasterOptions
    from fatsr.inference.reading import is_raster
    from fatsr.inference.sources import is_remote
    from fatsr.inference.uncertainty import sidecar_path
    from fatsr.inference.windows import BBox, PixelWindow

    if window is not None and bbox is not None:
        raise FatsrError("give window= or bbox=, not both")
    area = PixelWindow(*window) if window is not None else BBox(*bbox, crs=bbox_crs) if bbox is not None else None
    remote = is_remote(image) or assets is not None
    source = str(image) if remote else Path(image)
    if not remote and output is not None and Path(output).resolve() == Path(source).resolve():
        raise FatsrError(f"{source}: output= would replace this input; choose another output")
    if remote or is_raster(source):
        options = RasterOptions(bands=tuple(bands) if bands is not None else None, **raster_options)
        chosen = tuple(assets) if assets is not None else None
        if output is not None:
            written = job.file(source, Path(output), options=options, overwrite=overwrite, window=area, assets=chosen)
            return (written, sidecar_path(written)) if uncertainty else written
        import rasterio

        with tempfile.TemporaryDirectory(prefix="fatsr-") as folder:
            written = Path(folder) / "output.tif"
            job.file(source, written, options=options, window=area, assets=chosen)
            with rasterio.open(written) as ds:
                result = ds.read(), ds.profile
            if not uncertainty:
                return result
            with rasterio.open(sidecar_path(written)) as ds:
                return result, ds.read()
    if raster_options or bands is not None or layout is not None or area is not None:
        given = [
            *raster_options,
            *(["window"] if window is not None else []),
            *(["bbox"] if bbox is not None else []),
            *(["bands"] if bands is not None else []),
            *(["layout"] if layout is not None else []),
        ]
        raise FatsrError(f"{', '.join(given)}: not for a plain picture; {source} is read as an HWC image")
    if output is None:
        from fatsr.io import read_image

        picture = read_image(source)
        return (job.picture(picture), job.spread(picture)) if uncertainty else job.picture(picture)
    written = job.picture_file(Path(source), Path(output), overwrite=overwrite)
    return (written, sidecar_path(written)) if uncertainty else written
