"""A plain residual CNN: the yardstick FAT has to beat at equal CPU time.

EDSR-style body (3x3 conv blocks with a residual each, no normalisation), pixel-shuffle
upsampler and a bicubic skip, so it learns only the detail bicubic misses. Input and output
in [-1, 1], like :class:`~fatsr.models.fat.FAT`. It is registered the way any architecture
is (a :class:`~fatsr.models.contract.Network`, its config, and the :data:`ARCHITECTURE`
record listed in :mod:`fatsr.models.registry`), so the trainer, the model files and
:class:`~fatsr.models.wrapper.SRModel` run it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from fatsr.models.contract import Architecture, Network, Preset


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


@dataclass(frozen=True)
class CNNConfig:
    """Everything that defines a :class:`ResidualCNN`."""

    in_channels: int = 3
    out_channels: int = 3
    channels: int = 48
    num_blocks: int = 8
    scale: int = 4

    # the range a model file may declare for each number (checked before anything is built)
    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "in_channels": (1, 16), "out_channels": (1, 16), "channels": (1, 1024), "num_blocks": (1, 256), "scale": (1, 16),
    }  # fmt: skip

    def __post_init__(self) -> None:
        if self.in_channels != self.out_channels:
            raise ValueError("the bicubic skip needs as many input as output channels")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in model files and checkpoints."""
        return asdict(self)


class ResidualCNN(Network):
    """head conv -> ``num_blocks`` residual blocks -> conv (+ head) -> pixel shuffle -> + bicubic."""

    def __init__(self, config: CNNConfig | None = None, /, **arguments: Any) -> None:
        """``ResidualCNN(CNNConfig(...))``, or the config's fields as keywords."""
        super().__init__()
        self.config = c = config if config is not None else CNNConfig(**arguments)
        in_channels, out_channels, channels, num_blocks, scale = (
            c.in_channels, c.out_channels, c.channels, c.num_blocks, c.scale,
        )  # fmt: skip
        self.scale = scale
        self.head = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.body = nn.Sequential(*(ResBlock(channels) for _ in range(num_blocks)))
        self.body_end = nn.Conv2d(channels, channels, 3, padding=1)
        stages: list[nn.Module] = []
        if scale & (scale - 1) == 0:  # 2^n: n stages of x2
            for _ in range(int(math.log2(scale))):
                stages += [nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2)]
        else:
            stages += [nn.Conv2d(channels, scale * scale * channels, 3, padding=1), nn.PixelShuffle(scale)]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, sH, sW)
        h = self.head(x)
        h = self.body_end(self.body(h)) + h
        y = self.tail(self.upsample(h))
        return y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)


# computes on any size (the default size rule); no foreign checkpoint layout to read
ARCHITECTURE = Architecture(
    name="ResidualCNN",
    config=CNNConfig,
    module=ResidualCNN,
    presets={
        "rcnn": Preset(
            CNNConfig(channels=48, num_blocks=8), "not FAT: the plain residual CNN yardstick, 0.52 M parameters"
        )
    },
)
