"""Blur kernels of the Real-ESRGAN degradation, written from their formulas.

With the covariance ``S = R(theta) diag(sx^2, sy^2) R(theta)^T`` and ``q = x^T S^-1 x`` at
the pixel offset ``x = (column, row)`` from the centre:
Gaussian ``exp(-q/2)``, generalized Gaussian ``exp(-q^beta/2)``, plateau ``1/(1 + q^beta)``;
the circular sinc (ideal low-pass of cut-off ``w``) is ``w J1(w r) / (2 pi r)``, ``w^2/(4 pi)``
at the centre. Every kernel is normalised to sum 1. Rows grow downwards, so ``theta`` turns
the x axis towards the rows.
"""

from __future__ import annotations

import math

import numpy as np
import torch

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _offsets(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(column, row) offsets from the centre of an odd ``size`` x ``size`` grid."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    r = np.arange(size, dtype=np.float64) - size // 2
    return np.meshgrid(r, r, indexing="xy")


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """``x^T S^-1 x`` on the grid (see the module docstring)."""
    cos, sin = math.cos(theta), math.sin(theta)
    rot = np.array([[cos, -sin], [sin, cos]])
    inverse = rot @ np.diag([sigma_x**-2, sigma_y**-2]) @ rot.T
    x, y = _offsets(size)
    return inverse[0, 0] * x * x + 2 * inverse[0, 1] * x * y + inverse[1, 1] * y * y


def _normalised(kernel: np.ndarray) -> np.ndarray:
    return kernel / kernel.sum()


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float = 0.0) -> np.ndarray:
    """Anisotropic Gaussian (isotropic when ``sigma_x == sigma_y``)."""
    return _normalised(np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta)))


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Generalized Gaussian: flatter top for ``beta > 1``, heavier tails for ``beta < 1``."""
    return _normalised(np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta) ** beta))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped kernel ``1 / (1 + q^beta)``."""
    return _normalised(1.0 / (1.0 + _quadratic_form(size, sigma_x, sigma_y, theta) ** beta))


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Circular sinc (2-D ideal low-pass) with cut-off frequency ``cutoff`` in radians/pixel."""
    x, y = _offsets(size)
    radius = torch.from_numpy(np.hypot(x, y))
    safe = torch.where(radius == 0, torch.ones_like(radius), radius)
    values = cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    values = torch.where(radius == 0, torch.full_like(radius, cutoff**2 / (4 * math.pi)), values)
    return _normalised(values.numpy())


def pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a square odd kernel to ``size`` x ``size`` (centre kept)."""
    pad = (size - kernel.shape[0]) // 2
    if pad < 0:
        raise ValueError(f"kernel of {kernel.shape[0]} does not fit in {size}")
    return np.pad(kernel, pad)


def pulse_kernel(size: int) -> np.ndarray:
    """Identity kernel: 1 at the centre."""
    kernel = np.zeros((size, size))
    kernel[size // 2, size // 2] = 1.0
    return kernel


def _split_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Real-ESRGAN's shape draw: half the time in [low, 1), else in [1, high)."""
    return rng.uniform(low, 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, high)


def random_mixed_kernel(rng: np.random.Generator, size: int, spec: dict) -> np.ndarray:
    """One of :data:`KERNEL_TYPES` drawn with ``spec["types"]`` probabilities, sigmas from
    ``spec["sigma"]``, angle from ``spec["rotation"]``, shape beta from ``spec["generalized_beta"]`` /
    ``spec["plateau_beta"]``."""
    names = list(spec["types"])
    probs = np.array([spec["types"][n] for n in names], dtype=np.float64)
    kind = names[rng.choice(len(names), p=probs / probs.sum())]
    sigma_x = rng.uniform(*spec["sigma"])
    if kind.endswith("iso") and not kind.endswith("aniso"):
        sigma_y, theta = sigma_x, 0.0
    else:
        sigma_y, theta = rng.uniform(*spec["sigma"]), rng.uniform(*spec["rotation"])
    if kind.startswith("generalized"):
        return generalized_gaussian_kernel(
            size, sigma_x, sigma_y, theta, _split_uniform(rng, *spec["generalized_beta"])
        )
    if kind.startswith("plateau"):
        return plateau_kernel(size, sigma_x, sigma_y, theta, _split_uniform(rng, *spec["plateau_beta"]))
    return gaussian_kernel(size, sigma_x, sigma_y, theta)


def random_blur_kernel(rng: np.random.Generator, sizes: list[int], spec: dict) -> np.ndarray:
    """A stage's blur kernel, zero-padded to the largest size: a sinc with probability
    ``spec["sinc_prob"]`` (cut-off from ``sinc_cutoff_small`` below ``sinc_small_below``
    pixels, else ``sinc_cutoff_large``), otherwise :func:`random_mixed_kernel`."""
    size = int(rng.choice(sizes))
    if rng.uniform() < spec["sinc_prob"]:
        band = spec["sinc_cutoff_small"] if size < spec["sinc_small_below"] else spec["sinc_cutoff_large"]
        kernel = sinc_kernel(size, rng.uniform(*band))
    else:
        kernel = random_mixed_kernel(rng, size, spec)
    return pad_kernel(kernel, max(sizes))
