"""SRModel: the one object every caller (CLI, tiler, trainer's validation, LAM) runs.

It takes [0, 1] NCHW images of any size with 1, 3 or 4 channels, pads them (reflect) to what
the network needs, maps to the network's [-1, 1] space and back, crops, and draws the LSH
rotations from a generator re-seeded at every call, so the same input gives the same output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fatsr.errors import FatsrError
from fatsr.models import registry
from fatsr.models.contract import ModelInfo, Network
from fatsr.models.runtime import runtime
from fatsr.values import ValueMapping


def pad_reflect(x: Tensor, bottom: int, right: int) -> Tensor:
    """Pad the bottom/right by reflection, repeatedly when the pad exceeds the image;
    a 1-pixel side, which cannot reflect, is replicated."""
    while bottom > 0 or right > 0:
        h, w = x.shape[-2:]
        pb, pr = min(bottom, h - 1), min(right, w - 1)
        if (bottom and pb == 0) or (right and pr == 0):
            return F.pad(x, (0, right, 0, bottom), mode="replicate")
        x = F.pad(x, (0, pr, 0, pb), mode="reflect")
        bottom, right = bottom - pb, right - pr
    return x


class SRModel(nn.Module):
    """A network ready for images: [0, 1] in, [0, 1] out (not clamped), any size."""

    def __init__(
        self,
        network: Network,
        *,
        name: str = "fat",
        seed: int = 0,
        metadata: dict[str, str] | None = None,
        mapping: ValueMapping | None = None,
    ) -> None:
        """``mapping``: a multispectral model's bands and value mapping (from its file)."""
        super().__init__()
        self.network = network
        self.name = name
        self.seed = seed
        self.scale: int = network.scale
        self.channels: int = network.config.in_channels
        self.metadata = dict(metadata or {})
        self.mapping = mapping
        self.size = registry.size_rule(network)

    @property
    def info(self) -> ModelInfo:
        config = self.network.config
        return ModelInfo(self.name, self.scale, config.in_channels, config.out_channels, self.size,
                         metadata=self.metadata, mapping=self.mapping, seed=self.seed)  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:  # (N, C, H, W) in [0, 1], C in {1, 3, 4}
        n, c, height, width = x.shape
        if c == self.channels:
            return self._run(x)
        if c == 1 and self.channels == 3:  # grey: through the colour model, back to grey
            return self._run(x.expand(n, 3, height, width)).mean(dim=1, keepdim=True)
        if c == 4 and self.channels == 3:  # RGBA: colour through the model, alpha bicubic
            alpha = F.interpolate(x[:, 3:], scale_factor=self.scale, mode="bicubic", align_corners=False)
            return torch.cat([self._run(x[:, :3]), alpha.clamp(0, 1)], dim=1)
        raise FatsrError(
            f"{c}-channel image for a {self.channels}-channel model; give an image with {self.channels} channels"
        )

    def _run(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        ph, pw = self.size.padded(height, width)
        x = pad_reflect(x, ph - height, pw - width)
        with runtime(generator=torch.Generator().manual_seed(self.seed)):
            y = self.network(x * 2 - 1)
        s = self.scale
        return (y[..., : s * height, : s * width] + 1) / 2
