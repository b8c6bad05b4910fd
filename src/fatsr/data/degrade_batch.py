"""The degradation of ``fatsr degrade`` on whole training batches, on the batch's device.

:class:`BatchDegrader` runs :func:`fatsr.data.degrade.run_degradation` with noise sampled by
torch generators on the batch's device and the torch JPEG of :mod:`fatsr.data.jpeg`, so nothing
leaves the device; only the parameter draws (a few numbers and kernels per image) come from
NumPy on the CPU. Kernels, noise and JPEG qualities are drawn per image; sizes, resize modes
and the final order once per batch, as in Real-ESRGAN's training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from fatsr.data.degrade import NoiseDraw, poisson_base, poisson_counts, run_degradation
from fatsr.data.jpeg import jpeg
from fatsr.data.resize import quantize
from fatsr.errors import FatsrError

_STREAM = 0x6465_6772  # keeps these draws apart from the datasets' [seed, epoch, index] streams


def degradation_rngs(
    seed: int, step: int, first: int, count: int
) -> tuple[np.random.Generator, list[np.random.Generator]]:
    """The generators of training step ``step``'s degradation: one for the draws the global
    batch shares, and one for each of its images ``first`` .. ``first + count - 1``. They
    depend on these numbers only, so a resumed run degrades as an uninterrupted one, and K
    processes holding slices of a global batch degrade it as one process does."""
    shared = np.random.default_rng([seed, step, _STREAM])
    return shared, [np.random.default_rng([seed, step, first + i, _STREAM]) for i in range(count)]


def torch_noise(x: Tensor, draws: Sequence[NoiseDraw], rngs: Sequence[np.random.Generator]) -> Tensor:
    """Add each image's drawn noise to an NCHW batch, sampled on its device by a torch generator
    seeded from the image's generator, clamped to [0, 1]. Grey noise takes the first channel's
    field for every channel."""
    noisy = []
    for image, draw, rng in zip(x.split(1), draws, rngs):
        generator = torch.Generator(device=x.device).manual_seed(int(rng.integers(2**63)))
        if draw.gaussian:
            field = torch.randn(image.shape, generator=generator, device=x.device, dtype=x.dtype)
        else:
            base = poisson_base(image, draw.grey)
            counts = poisson_counts(base).to(x.dtype)
            field = torch.poisson(base * counts, generator=generator) / counts - base
        if draw.grey:
            field = field[:, :1]
        noisy.append((image + field * draw.level).clamp(0.0, 1.0))
    return torch.cat(noisy)


class BatchDegrader:
    """Degrade HR batches into LR batches with a preset (see :func:`fatsr.data.degrade_presets.load_preset`)."""

    def __init__(self, preset: dict, scale: int) -> None:
        if scale < 1:
            raise FatsrError(f"scale must be a positive integer, got {scale}")
        self.preset, self.scale = preset, scale

    def __call__(
        self, hr: Tensor, rng: np.random.Generator, rngs: Sequence[np.random.Generator] | None = None
    ) -> Tensor:
        """The LR batch (N, C, H/scale, W/scale) on the 8-bit grid, on ``hr``'s device, of an HR
        batch (N, C, H, W) in [0, 1], C = 1 or 3. The batch's shared draws come from ``rng``,
        each image's from its generator in ``rngs`` (default: ``rng`` for all)."""
        h, w = hr.shape[-2:]
        if hr.ndim != 4 or hr.shape[1] not in (1, 3) or h % self.scale or w % self.scale:
            raise FatsrError(
                f"cannot degrade a batch of shape {tuple(hr.shape)} by x{self.scale}; give (N, 1 or 3, H, W) "
                f"with H and W multiples of {self.scale}"
            )
        return quantize(run_degradation(hr.float(), self.scale, self.preset, rng, torch_noise, jpeg, rngs), 255)
