"""fatsr: remote-sensing image super-resolution with the Frequency-Aware Transformer."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

__version__ = "0.1.0"

__all__ = ["__version__", "default_model_path", "load_model", "upscale"]


def default_model_path() -> Path | None:
    """The model shipped in the package, or None when this build has none."""
    path = Path(str(files("fatsr") / "weights" / "fatsr-compact-x4.safetensors"))
    return path if path.is_file() else None


def load_model(path: str | os.PathLike | None = None, *, device: str = "cpu", seed: int = 0):
    """A ready :class:`~fatsr.models.wrapper.SRModel` (eval mode) from a fatsr ``.safetensors``
    model file or a published ``.pth`` checkpoint; ``None`` loads the shipped default model."""
    from fatsr.errors import FatsrError
    from fatsr.models.files import load_network
    from fatsr.models.wrapper import SRModel

    if path is None:
        path = default_model_path()
        if path is None:
            raise FatsrError("no default model is installed with this fatsr; pass --model PATH (a .safetensors or .pth file)")
    network, metadata = load_network(path)
    model = SRModel(network, name=metadata.get("name", Path(path).stem), seed=seed)
    if "value_mapping" in metadata:
        from fatsr.data.datasets import BandMapping

        model.mapping = BandMapping.from_json(metadata["value_mapping"])
    return model.to(device).eval()


def upscale(
    image,
    model=None,
    *,
    tile: int = 96,
    overlap: int = 24,
    batch: int = 4,
    seed: int = 0,
    device: str | None = None,
    precision: str = "float32",
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    layout: str | None = None,
    bands: tuple[int, ...] | None = None,
    **raster_options,
):
    """Super-resolve ``image`` in overlapping, blended tiles of ``tile`` LR pixels.

    ``image``:
      * a numpy array or torch tensor: 2-D grey, HWC or CHW (``layout="HWC"|"CHW"``; guessed
        from the shape otherwise, with a warning when ambiguous); uint8/uint16 (full range),
        float ([0, 1], returned unclipped), int16 and other integers (per-band stretch); grey
        or RGB as they are, any other band count with ``bands`` (1-based, the bands the network
        takes; the rest bicubic). Returns the same type, layout and dtype (see :mod:`fatsr.inference.arrays`).
      * a path of a picture (PNG, JPEG, plain TIFF) -> the HWC array; with ``output``, the
        written file's path.
      * a path of a raster (GeoTIFF, JP2, VRT, ...; see :func:`fatsr.inference.raster.is_raster`) ->
        with ``output``, the written COG's path; without, ``(array, profile)``: the CHW array
        and the rasterio profile (georeference rescaled) of the output. ``bands`` and
        ``raster_options`` (see :class:`fatsr.inference.raster.RasterOptions`) apply.
    ``model``: an ``SRModel``, a model file path, or None for the shipped default model.
    ``device``: where the model runs ("cpu", "cuda", ...; a model object is moved there);
    None: the model's device (CPU for a loaded file).
    ``precision``: "float32", or "bfloat16"/"float16" autocast (a tile giving NaN/Inf is
    redone in float32).
    """
    import tempfile

    import torch

    from fatsr.inference.tiling import Tiling, model_device, upscale_image
    from fatsr.errors import FatsrError

    tiling = Tiling(tile, overlap, batch)
    if precision not in ("float32", "bfloat16", "float16"):
        raise FatsrError(f"precision {precision!r}: choose float32, bfloat16 or float16")
    autocast = None if precision == "float32" else getattr(torch, precision)
    model_file = None
    if model is None or isinstance(model, (str, os.PathLike)):
        model_file = default_model_path() if model is None else Path(model)
        model = load_model(model, device=device or "cpu", seed=seed)
    elif device is not None and isinstance(model, torch.nn.Module):
        model.to(device)
    target = model_device(model)
    if not isinstance(image, (str, os.PathLike)):
        from fatsr.inference.arrays import upscale_array

        if output is not None:
            raise FatsrError("output= is for path inputs; write the returned array yourself")
        if raster_options:
            raise FatsrError(f"{', '.join(raster_options)}: options for raster files only; arrays take layout= and bands=")
        return upscale_array(model, image, tiling, layout=layout, bands=bands, device=target, autocast=autocast)
    from fatsr.io import read_image, write_image
    from fatsr.inference.raster import RasterOptions, is_raster, upscale_raster

    source = Path(image)
    if output is not None and Path(output).resolve() == source.resolve():
        raise FatsrError(f"{source}: output= would replace this input; choose another output")
    if is_raster(source):
        options = RasterOptions(bands=tuple(bands) if bands is not None else None, **raster_options)
        if output is not None:
            upscale_raster(
                source, output, model, model_file=model_file, tiling=tiling, options=options, autocast=autocast,
                overwrite=overwrite,
            )
            return Path(output)
        import rasterio

        with tempfile.TemporaryDirectory(prefix="fatsr-") as folder:
            written = Path(folder) / f"{source.stem}.tif"
            upscale_raster(source, written, model, model_file=model_file, tiling=tiling, options=options, autocast=autocast)
            with rasterio.open(written) as ds:
                return ds.read(), ds.profile
    if raster_options or bands is not None or layout is not None:
        given = [*raster_options, *(["bands"] if bands is not None else []), *(["layout"] if layout is not None else [])]
        raise FatsrError(f"{', '.join(given)}: not for a plain picture; {source} is read as an HWC image")
    result = upscale_image(model, read_image(source), tiling, device=target, autocast=autocast)
    if output is None:
        return result
    write_image(output, result, overwrite=overwrite)
    return Path(output)
