"""The 2-D real DFT as matrix products: what ``torch.fft.rfft2`` / ``irfft2`` (norm "ortho")
compute, in a form ONNX can hold (it has no FFT); equal to the FFTs to ~1e-6."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor


def _cos_sin(rows: int, cols: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of 2 pi j k / n for j < rows, k < cols (float64; the phase j k mod n is exact)."""
    angle = (np.arange(rows)[:, None] * np.arange(cols)[None, :] % n) * (2 * np.pi / n)
    return np.cos(angle), np.sin(angle)


@functools.lru_cache(maxsize=16)
def dft_matrices(height: int, width: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """float32 matrices of the orthonormal 2-D real DFT of an H x W grid (Wf = W // 2 + 1):
    forward along W (W, 2Wf), forward along H (2H, H), inverse along H (2H, 2H), inverse
    along W (2Wf, W). Built in numpy, so a traced graph holds them as constants."""
    wf = width // 2 + 1
    norm = 1 / math.sqrt(height * width)
    cw, sw = _cos_sin(width, wf, width)  # (W, Wf)
    ch, sh = _cos_sin(height, height, height)  # (H, H), symmetric
    # irfft: bins 1 .. (W-1)//2 count twice (they stand for their mirror images too); DC and,
    # for even W, the Nyquist bin count once and their imaginary parts are dropped.
    weight = np.full(wf, 2.0)
    inverse_sin = sw.T.copy()  # (Wf, W)
    weight[0], inverse_sin[0] = 1.0, 0.0
    if width % 2 == 0:
        weight[-1], inverse_sin[-1] = 1.0, 0.0
    forward_w = np.concatenate([cw, sw], axis=1) * norm
    forward_h = np.concatenate([ch, sh], axis=0)
    inverse_h = np.block([[ch, -sh], [sh, ch]])
    inverse_w = np.concatenate([cw.T, -inverse_sin], axis=0) * np.tile(weight, 2)[:, None] * norm
    fw, fh, ih, iw = (torch.from_numpy(m.astype(np.float32)) for m in (forward_w, forward_h, inverse_h, inverse_w))
    return fw, fh, ih, iw


def rfft2_matmul(x: Tensor) -> Tensor:
    """``torch.fft.rfft2(x, norm="ortho")`` by matrix products: (..., H, W) float32 ->
    (..., 2H, Wf), the real parts in rows :H, the imaginary parts in rows H:."""
    height, width = int(x.shape[-2]), int(x.shape[-1])
    wf = width // 2 + 1
    fw, fh, _, _ = (m.to(x.device) for m in dft_matrices(height, width))
    r = fh @ (x @ fw)  # (..., 2H, 2Wf): [[cos_H x cos_W, cos_H x sin_W], [sin_H x cos_W, sin_H x sin_W]]
    real = r[..., :height, :wf] - r[..., height:, wf:]
    imag = -(r[..., :height, wf:] + r[..., height:, :wf])
    return torch.cat([real, imag], dim=-2)


def irfft2_matmul(z: Tensor, width: int) -> Tensor:
    """``torch.fft.irfft2(real + 1j * imag, s=(H, width), norm="ortho")`` by matrix products:
    (..., 2H, Wf) laid out as :func:`rfft2_matmul` returns it -> (..., H, width)."""
    height, width = int(z.shape[-2]) // 2, int(width)  # int(): sizes are tensors while tracing
    _, _, ih, iw = (m.to(z.device) for m in dft_matrices(height, width))
    y = ih @ z  # (..., 2H, Wf): inverse along H, real rows then imaginary rows
    return torch.cat([y[..., :height, :], y[..., height:, :]], dim=-1) @ iw
