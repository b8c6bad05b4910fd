"""The degradation of ``fatsr degrade`` on whole training batches, on the batch's device.

:class:`BatchDegrader` runs :func:`fatsr.data.degrade.run_degradation` with noise sampled by a
torch generator on the batch's device and the torch JPEG of :mod:`fatsr.data.jpeg`, so nothing
leaves the device; only the parameter draws (a few numbers and kernels per image) come from
NumPy on the CPU. Kernels, noise and JPEG qualities are drawn per image; sizes, resize modes
and the final order once per batch, as in Real-ESRGAN's training.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import torch
from torch import Tensor

from fatsr.data.degrade import NoiseDraw, poisson_base, poisson_counts, run_degradation
from fatsr.data.jpeg import jpeg
from fatsr.data.resize import quantize
from fatsr.errors import FatsrError

_STREAM = 0x6465_6772  # keeps these draws apart from the datasets' [seed, epoch, index] streams


def degradation_rng(seed: int, step: int, rank: int) -> np.random.Generator:
    """The generator of training step ``step``'s degradation on process ``rank``: a function of
    these three numbers only, so a resumed run degrades every batch as an uninterrupted one."""
    return np.random.default_rng([seed, step, rank, _STREAM])


def torch_noise(x: Tensor, draws: Sequence[NoiseDraw], generator: torch.Generator) -> Tensor:
    """Add each image's drawn noise to an NCHW batch, sampled on its device from ``generator``,
    clamped to [0, 1]. Grey noise takes the first channel's field for every channel."""

    def per_image(values: list) -> Tensor:  # (K, 1, 1, 1)
        return torch.tensor(values, device=x.device)[:, None, None, None]

    noise = torch.zeros_like(x)
    for gaussian in (True, False):
        index = [i for i, d in enumerate(draws) if d.gaussian == gaussian]
        if not index:
            continue
        part, grey = x[index], per_image([draws[i].grey for i in index])
        if gaussian:
            field = torch.randn(part.shape, generator=generator, device=x.device, dtype=x.dtype)
        else:
            base = torch.where(grey, poisson_base(part, True), poisson_base(part, False))
            counts = poisson_counts(base).to(x.dtype)[:, None, None, None]
            field = torch.poisson(base * counts, generator=generator) / counts - base
        field = torch.where(grey, field[:, :1], field)
        noise[index] = field * per_image([draws[i].level for i in index]).to(x.dtype)
    return (x + noise).clamp(0.0, 1.0)


class BatchDegrader:
    """Degrade HR batches into LR batches with a preset (see :func:`fatsr.data.degrade_presets.load_preset`)."""

    def __init__(self, preset: dict, scale: int) -> None:
        if scale < 1:
            raise FatsrError(f"scale must be a positive integer, got {scale}")
        self.preset, self.scale = preset, scale

    def __call__(self, hr: Tensor, rng: np.random.Generator) -> Tensor:
        """The LR batch (N, C, H/scale, W/scale) on the 8-bit grid, on ``hr``'s device, of an HR
        batch (N, C, H, W) in [0, 1], C = 1 or 3; every random draw comes from ``rng``."""
        h, w = hr.shape[-2:]
        if hr.ndim != 4 or hr.shape[1] not in (1, 3) or h % self.scale or w % self.scale:
            raise FatsrError(
                f"cannot degrade a batch of shape {tuple(hr.shape)} by x{self.scale}; give (N, 1 or 3, H, W) "
                f"with H and W multiples of {self.scale}"
            )
        generator = torch.Generator(device=hr.device).manual_seed(int(rng.integers(2**63)))
        noise = partial(torch_noise, generator=generator)
        return quantize(run_degradation(hr.float(), self.scale, self.preset, rng, noise, jpeg), 255)
