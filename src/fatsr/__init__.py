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
    device: str = "cpu",
    precision: str = "float32",
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    **raster_options,
):
    """Super-resolve ``image`` in overlapping, blended tiles of ``tile`` LR pixels.

    ``image``: an HWC array (uint8/uint16 full range, float in [0, 1]) -> the upscaled array
    (same integer dtype, or float32 unclipped); or a path -> the array, or, with ``output``,
    the written file's path. GeoTIFFs with a CRS, > 4 bands or other dtypes need ``output``
    and take ``raster_options`` (see :class:`fatsr.raster.RasterOptions`).
    ``model``: an ``SRModel``, a model file path, or None for the shipped default model.
    ``precision``: "float32", or "bfloat16"/"float16" autocast (a tile giving NaN/Inf is
    redone in float32).
    """
    import numpy as np
    import torch

    from fatsr.engine.tiling import Tiling, upscale_image
    from fatsr.errors import FatsrError

    tiling = Tiling(tile, overlap, batch)
    if precision not in ("float32", "bfloat16", "float16"):
        raise FatsrError(f"precision {precision!r}: choose float32, bfloat16 or float16")
    autocast = None if precision == "float32" else getattr(torch, precision)
    model_file = None
    if model is None or isinstance(model, (str, os.PathLike)):
        model_file = default_model_path() if model is None else Path(model)
        model = load_model(model, device=device, seed=seed)
    if not isinstance(image, (str, os.PathLike)):
        if output is not None:
            raise FatsrError("output= is for path inputs; write the returned array yourself")
        return upscale_image(model, np.asarray(image), tiling, autocast=autocast)
    from fatsr.io import read_image, write_image
    from fatsr.raster import RasterOptions, is_raster, upscale_raster

    source = Path(image)
    if output is not None and Path(output).resolve() == source.resolve():
        raise FatsrError(f"{source}: output= would replace this input; choose another output")
    if is_raster(source):
        if output is None:
            raise FatsrError(f"{source}: a georeferenced raster is written window by window; pass output=PATH.tif")
        options = RasterOptions(**raster_options)
        upscale_raster(
            source, output, model, model_file=model_file, tiling=tiling, options=options, autocast=autocast,
            overwrite=overwrite,
        )
        return Path(output)
    if raster_options:
        raise FatsrError(f"{', '.join(raster_options)}: options for georeferenced rasters only; {source} is a plain image")
    result = upscale_image(model, read_image(source), tiling, autocast=autocast)
    if output is None:
        return result
    write_image(output, result, overwrite=overwrite)
    return Path(output)
