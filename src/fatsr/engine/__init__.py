"""Training: :func:`train` runs a :class:`TrainConfig` (see :mod:`fatsr.engine.train`)."""

from fatsr.engine.config import TrainConfig
from fatsr.engine.train import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
