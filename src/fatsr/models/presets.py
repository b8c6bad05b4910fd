"""Named network configurations: FAT's, and the residual CNN yardstick's."""

from __future__ import annotations

from dataclasses import replace

from fatsr.errors import FatsrError
from fatsr.models.cnn import CNNConfig, ResidualCNN
from fatsr.models.fat import FAT, FATConfig

PRESETS: dict[str, FATConfig | CNNConfig] = {
    # the published network (10.23 M parameters used)
    "fat": FATConfig(dim=128, num_blocks=6, num_layers=3, num_heads=8, window_size=6, mlp_ratio=4.0),
    # same design, small enough to train on a laptop CPU; the bicubic skip makes it learn
    # in hundreds of steps instead of thousands (measured: +0.36 dB over bicubic after 80
    # steps of batch 8, against -1.8 dB without it)
    "compact": FATConfig(
        dim=32, num_blocks=2, num_layers=1, num_heads=4, window_size=6, mlp_ratio=2.0, bicubic_skip=True
    ),
    # not FAT: the plain residual CNN yardstick (0.52 M parameters at x4), see models/cnn.py
    "rcnn": CNNConfig(channels=48, num_blocks=8),
}


def build_network(preset: str = "fat", scale: int = 4, **overrides) -> FAT | ResidualCNN:
    """A freshly initialised network of the named preset (``overrides`` change its fields)."""
    if preset not in PRESETS:
        raise FatsrError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    config = replace(PRESETS[preset], **overrides, scale=scale)
    return ResidualCNN(config) if isinstance(config, CNNConfig) else FAT(config)
