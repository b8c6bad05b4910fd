"""Baseline JPEG in torch: a batch compressed and decoded on its own device, one quality per image.

It follows what libjpeg (Pillow) does at a quality: 8-bit samples; RGB to full-range YCbCr
(JFIF); chroma averaged over 2x2 pixels (4:2:0); planes edge-padded to whole 16x16 MCUs;
orthonormal 8x8 DCT of the level-shifted samples; coefficients rounded to multiples of the
standard tables (ITU-T T.81 Annex K) scaled by the IJG quality rule; then the inverse, with
chroma upsampled by libjpeg's "fancy" triangle filter (bilinear, edges replicated). Samples are
rounded to integers where libjpeg rounds them; libjpeg's fixed-point DCT and colour conversion
differ from these float ones by rounding only. One-channel images are coded as luma alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# Annex K.1 (luminance) and K.2 (chrominance) quantisation tables, row-major.
_LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
) + ((99,) * 8,) * 4
_RGB_TO_YCC = ((0.299, 0.587, 0.114), (-0.168735892, -0.331264108, 0.5), (0.5, -0.418687589, -0.081312411))
_YCC_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136286, -0.714136286), (1.0, 1.772, 0.0))
_CHROMA_OFFSET = (0.0, 128.0, 128.0)
_MCU = 16  # pixels of a 4:2:0 minimum coded unit


def quality_tables(quality: Tensor) -> tuple[Tensor, Tensor]:
    """(N, 8, 8) luma and chroma tables of integer qualities (N,), as libjpeg's
    ``jpeg_set_quality(q, force_baseline=TRUE)`` makes them."""
    q = quality.long().clamp(1, 100)
    percent = torch.where(q < 50, 5000 // q, 200 - 2 * q)[:, None, None]  # (N, 1, 1)
    tables = []
    for base in (_LUMA_TABLE, _CHROMA_TABLE):
        table = torch.tensor(base, dtype=torch.long, device=quality.device)
        tables.append(((table * percent + 50) // 100).clamp(1, 255))
    return tables[0], tables[1]


def _dct_matrix(device: torch.device) -> Tensor:
    """(64, 64) orthonormal 2-D DCT-II of a row-major flattened 8x8 block: the Kronecker
    product of the 1-D DCT (row u: c(u) cos((2x + 1) u pi / 16)) with itself."""
    u = torch.arange(8, dtype=torch.float64)[:, None]
    x = torch.arange(8, dtype=torch.float64)[None, :]
    matrix = torch.cos((2 * x + 1) * u * math.pi / 16) * math.sqrt(2 / 8)
    matrix[0] = math.sqrt(1 / 8)
    return torch.kron(matrix, matrix).to(device=device, dtype=torch.float32)


def _code_plane(plane: Tensor, table: Tensor) -> Tensor:
    """Decoded samples of one component (N, H, W), H and W multiples of 8, quantised with its
    tables (N, 8, 8)."""
    n, h, w = plane.shape
    blocks = (plane - 128).reshape(n, h // 8, 8, w // 8, 8).transpose(2, 3).reshape(n, h // 8, w // 8, 64)
    dct = _dct_matrix(plane.device)
    step = table.reshape(n, 1, 1, 64).to(plane.dtype)
    coefficients = torch.round(blocks @ dct.T / step) * step
    samples = (coefficients @ dct).reshape(n, h // 8, w // 8, 8, 8).transpose(2, 3).reshape(n, h, w)
    return torch.round(samples + 128).clamp(0, 255)


def _colour(pixels: Tensor, matrix: tuple, offset: tuple) -> Tensor:
    """(N, 3, H, W) -> matrix @ pixel + offset, per pixel."""
    weights = torch.tensor(matrix, dtype=pixels.dtype, device=pixels.device)
    shift = torch.tensor(offset, dtype=pixels.dtype, device=pixels.device)[:, None, None]
    return torch.einsum("ij,njhw->nihw", weights, pixels) + shift


def jpeg(x: Tensor, qualities: Tensor | Sequence[int]) -> Tensor:
    """JPEG-compress and decode each image of an (N, C, H, W) batch in [0, 1] (C = 1 or 3) at
    its quality (N integers in 1-100); returns the decoded batch, same shape, on the 8-bit grid."""
    n, c, h, w = x.shape
    luma_table, chroma_table = quality_tables(torch.as_tensor(qualities, device=x.device))
    pixels = torch.round(x.float().clamp(0.0, 1.0) * 255)
    pixels = F.pad(pixels, (0, -w % _MCU, 0, -h % _MCU), mode="replicate")  # whole MCUs
    if c == 1:
        return _code_plane(pixels[:, 0], luma_table)[:, None, :h, :w] / 255
    ycc = torch.round(_colour(pixels, _RGB_TO_YCC, _CHROMA_OFFSET))
    luma = _code_plane(ycc[:, 0], luma_table)[:, None]  # (N, 1, H', W')
    chroma = torch.round(F.avg_pool2d(ycc[:, 1:], 2))  # (N, 2, H'/2, W'/2)
    chroma = _code_plane(chroma.flatten(0, 1), chroma_table.repeat_interleave(2, dim=0)).unflatten(0, (n, 2))
    chroma = torch.round(F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False))
    ycc = torch.cat([luma, chroma], dim=1) - torch.tensor(_CHROMA_OFFSET, device=x.device)[:, None, None]
    rgb = torch.round(_colour(ycc, _YCC_TO_RGB, (0.0, 0.0, 0.0))).clamp(0, 255)
    return rgb[:, :, :h, :w] / 255
