"""Training: :func:`train` runs a :class:`TrainConfig` (see :mod:`fatsr.training.train`)."""

from fatsr.training.config import TrainConfig
from fatsr.training.train import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
