"""Datasets of HR/LR image pairs and the bicubic downscaling that synthesises LR images."""

from fatsr.data.datasets import TrainDataset, ValDataset, find_images
from fatsr.data.resize import bicubic_downscale, quantize

__all__ = ["TrainDataset", "ValDataset", "bicubic_downscale", "find_images", "quantize"]
