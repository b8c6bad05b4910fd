"""Inference: a model over images and rasters of any size, independent of the trainer.

:mod:`~fatsr.inference.tiling` cuts an image into overlapping, blended tiles;
:mod:`~fatsr.inference.arrays` maps numpy/torch arrays in and out;
:mod:`~fatsr.inference.raster` reads and writes GDAL rasters window by window.
Nothing here imports :mod:`fatsr.training`.
"""

from fatsr.inference.tiling import DEFAULT_TILING, Tiling, upscale_image, upscale_tiled

__all__ = ["DEFAULT_TILING", "Tiling", "upscale_image", "upscale_tiled"]
