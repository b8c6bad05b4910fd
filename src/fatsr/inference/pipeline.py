"""The one upscaling pipeline: :func:`fatsr.upscale` and ``fatsr upscale`` both prepare an
:class:`Upscaler` (model, tiling, device, precision) and send each input through it.

An image file goes ``io.read_image`` -> :func:`~fatsr.inference.tiling.upscale_image` ->
``io.write_image``; a raster goes through :func:`~fatsr.inference.raster.upscale_raster`;
an array through :func:`~fatsr.inference.arrays.upscale_array`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fatsr.errors import ArgumentError, FatsrError, SystemFailure
from fatsr.inference.tiling import DEFAULT_TILING, Tiling, check_tiling, model_device, upscale_image
from fatsr.io import locked_file, part_path, read_image, write_image
from fatsr.models.contract import Model
from fatsr.models.loading import load_model
from fatsr.models.zoo import model_path

PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Formats with limits: suffix -> (dtypes it can hold, channel counts it can hold).
FORMAT_LIMITS: dict[str, tuple[tuple[type, ...], tuple[int, ...]]] = {
    ".jpg": ((np.uint8,), (1, 3)),
    ".jpeg": ((np.uint8,), (1, 3)),
    ".bmp": ((np.uint8,), (1, 3)),
    ".webp": ((np.uint8,), (3, 4)),
}


@dataclass(frozen=True)
class Upscaler:
    """A model ready to upscale: where it runs, how it is tiled, under which autocast, the
    model file it came from (recorded in raster tags) and the quality of lossy picture outputs
    (JPEG/WebP; None: Pillow's default)."""

    model: Model
    tiling: Tiling
    device: torch.device
    autocast: torch.dtype | None = None
    model_file: Path | None = None
    quality: int | None = None
    uncertainty: bool = False  # also write the x8 spread beside each output (fatsr.inference.uncertainty)

    @classmethod
    def prepare(
        cls,
        model: Model | str | os.PathLike | None = None,
        *,
        device: str | torch.device | None = None,
        seed: int | None = None,
        tile: int | None = None,
        overlap: int | None = None,
        batch: int = 0,
        precision: str = "float32",
        channels_last: bool = False,
        tta: bool = False,
        denoise: float | str | None = None,
        uncertainty: bool = False,
    ) -> Upscaler:
        """``model``: a model object, or what :func:`~fatsr.models.loading.load_model` takes
        (None: the shipped model). ``device``: where it runs (a model object is moved there;
        None: the model's device, CPU for a file). ``tile``: the model's advice by default;
        ``overlap``: a quarter of the tile, at most 24, by default; ``batch``: tiles per
        forward pass (0: by the tile size, see :class:`~fatsr.inference.tiling.Tiling`). ``precision``: "float32", or
        "bfloat16"/"float16" autocast (a tile batch giving NaN/Inf is redone in float32).
        ``tta`` and ``denoise``: as :func:`~fatsr.models.loading.load_model` takes them;
        ``uncertainty``: ``tta``, and each file's x8 spread written beside its output (see
        :mod:`fatsr.inference.uncertainty`)."""
        tta = tta or uncertainty
        if precision not in PRECISIONS:
            raise ArgumentError("{arg}: choose float32, bfloat16 or float16", "precision", precision)
        model_file = None
        if model is None or isinstance(model, (str, os.PathLike)):
            model_file = model_path(model if denoise is None else "fatsr-real-x4")
            model = load_model(model, device=device or "cpu", seed=seed, tta=tta, denoise=denoise)
        else:
            if denoise is not None:
                raise ArgumentError("{arg} is for the built-in models, not a model object", "denoise", denoise)
            if device is not None and isinstance(model, nn.Module):
                model.to(device)
            if tta:
                from fatsr.models.ensemble import SelfEnsemble

                model = SelfEnsemble(model)
        info = model.info
        target = model_device(model) if isinstance(model, nn.Module) else torch.device(device or "cpu")
        autocast = PRECISIONS[precision]
        if autocast is not None and not (info.float16 if autocast == torch.float16 else info.bfloat16):
            raise ArgumentError(
                "{arg} is for the pytorch backend; an ONNX model runs as exported (float32)", "precision", precision
            )
        if autocast == torch.float16 and target.type not in ("cuda", "mps"):
            kind = target.type
            raise ArgumentError(
                f"{{arg}} runs on CUDA or MPS, but the device is {kind}; use {{cpu}} on a CPU, or drop {{arg}}",
                "precision",
                precision,
                cpu=("precision", "bfloat16"),
            )
        if channels_last:
            if not isinstance(model, nn.Module) or not info.bfloat16:
                raise ArgumentError(
                    "{arg} is for the pytorch backend; an ONNX model runs as exported (float32)", "channels_last", True
                )
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it
        tile = info.tile if tile is None else tile
        tiling = Tiling(tile, min(tile // 4, DEFAULT_TILING.overlap) if overlap is None else overlap, batch)
        check_tiling(tiling, model)
        return cls(model, tiling, target, autocast, model_file, uncertainty=uncertainty)

    @property
    def scale(self) -> int:
        return self.model.scale

    def picture(self, image: np.ndarray, *, progress: str | None = None) -> np.ndarray:
        """An HWC image (uint8/uint16, or float in [0, 1]) upscaled; same dtype."""
        return upscale_image(
            self.model, image, self.tiling, device=self.device, autocast=self.autocast, progress=progress
        )

    def picture_file(self, source: Path, output: Path, *, overwrite: bool = False, progress: str | None = None) -> Path:
        """Read a picture, upscale it and write it atomically (refusing a format that would
        lose its bit depth or channels)."""
        # The output's temporary file is locked from the start: a second run at it stops at once.
        with locked_file(part_path(output), f"{output}: another fatsr run is writing it now", remove=True):
            image = read_image(source)
            check_format(output, image)
            result = self.picture(image, progress=progress)
            try:
                if self.uncertainty:
                    self._with_spread(image, output, lambda: write_image(output, result, overwrite=overwrite,
                                                                        quality=self.quality), overwrite)  # fmt: skip
                else:
                    write_image(output, result, overwrite=overwrite, quality=self.quality)
            except OSError as exc:
                raise SystemFailure(
                    f"{output}: could not write ({exc.strerror or exc}); free some space or choose another output"
                ) from None
        return output

    def raster_file(
        self, source: Path | str, output: Path, *, options: Any = None, overwrite: bool = False,
        window: Any = None, tags: dict[str, str] | None = None,
    ) -> Path:  # fmt: skip
        """A GDAL raster (a file, or a path or URL GDAL reads remotely) upscaled window by
        window into a COG (see :mod:`fatsr.inference.raster`); ``window``: a
        :class:`~fatsr.inference.windows.PixelWindow` or :class:`~fatsr.inference.windows.BBox`
        of it only; ``tags``: provenance tags to add."""
        from fatsr.inference.options import RasterOptions
        from fatsr.inference.raster import upscale_raster

        run: dict[str, Any] = {
            "model_file": self.model_file,
            "tiling": self.tiling,
            "options": RasterOptions() if options is None else options,
            "autocast": self.autocast,
            "overwrite": overwrite,
            "window": window,
            "tags": tags,
        }
        if self.uncertainty:  # first: a finished sidecar of the same job is kept when a run resumes
            from fatsr.inference.uncertainty import sidecar_path

            if output.exists() and not overwrite:
                raise ArgumentError(f"{output} exists; pass {{arg}} to replace it", "overwrite", True)
            upscale_raster(source, sidecar_path(output), self.model, uncertainty=True, **run)
        upscale_raster(source, output, self.model, **run)
        return output

    def spread(self, image: np.ndarray, *, progress: str | None = None) -> np.ndarray:
        """The (H, W) float32 x8 spread of an HWC picture's upscaling (see
        :func:`~fatsr.inference.uncertainty.unit_spread`)."""
        from fatsr.inference.uncertainty import picture_unit, unit_spread

        return unit_spread(self.model, picture_unit(image), self.tiling, device=self.device, autocast=self.autocast)

    def _with_spread(self, image: np.ndarray, output: Path, write: Callable[[], None], overwrite: bool) -> None:
        """``write()`` the output inside the atomic write of its sidecar: both appear, or neither."""
        from fatsr.inference.uncertainty import check_free, sidecar_path, write_picture_spread

        sidecar = sidecar_path(output)
        check_free(sidecar, overwrite)
        spread = self.spread(image)
        write_picture_spread(sidecar, spread, overwrite=overwrite, before=write)

    def file(
        self,
        source: Path | str,
        output: Path,
        *,
        options: Any = None,
        overwrite: bool = False,
        progress: str | None = None,
        window: Any = None,
        assets: tuple[str, ...] | None = None,
    ) -> Path:
        """A picture, a raster (by :func:`~fatsr.inference.reading.is_raster`; a remote path or
        URL always is one) or a STAC item (with ``assets``) upscaled into ``output``;
        ``window`` (rasters only) as :meth:`raster_file` takes it."""
        from fatsr.inference.reading import is_raster
        from fatsr.inference.sources import is_remote

        if assets is not None:
            from fatsr.inference.stac import item_raster

            with item_raster(str(source), assets) as (vrt, tags):
                return self.raster_file(vrt, output, options=options, overwrite=overwrite, window=window, tags=tags)
        if is_remote(source) or is_raster(source):
            return self.raster_file(source, output, options=options, overwrite=overwrite, window=window)
        if window is not None:
            raise FatsrError(f"{source}: a window or bbox is for rasters (GeoTIFF, ...); this is a plain picture")
        return self.picture_file(Path(source), output, overwrite=overwrite, progress=progress)


def check_format(output: Path, image: np.ndarray) -> None:
    """Refuse an output format that would lose the image's bit depth or channels."""
    limits = FORMAT_LIMITS.get(output.suffix.lower())
    if limits is None:
        return
    dtypes, channels = limits
    if image.dtype.type not in dtypes or image.shape[2] not in channels:
        kind = f"{image.dtype.itemsize * 8}-bit {image.shape[2]}-channel"
        raise FatsrError(f"{output}: {output.suffix} cannot hold this {kind} image; use .png or .tif")


@dataclass(frozen=True)
class JobSpec:
    """What :meth:`Upscaler.prepare` takes (and the picture quality), by value: ``fatsr
    upscale`` prepares its job from it, and a Dask worker the same job, loading the model
    itself, once per process."""

    model: str | None = None
    device: str = "cpu"
    seed: int | None = None
    tile: int | None = None
    overlap: int | None = None
    batch: int = 0
    precision: str = "float32"
    channels_last: bool = False
    tta: bool = False
    denoise: float | str | None = None
    quality: int | None = None
    uncertainty: bool = False

    def prepare(self) -> Upscaler:
        from fatsr.devices import resolve_device

        settings = asdict(self)  # Upscaler.prepare's arguments, and the quality
        quality = settings.pop("quality")
        job = Upscaler.prepare(**settings | {"device": resolve_device(self.device)})
        return job if quality is None else replace(job, quality=quality)
