"""Image quality metrics: PSNR and SSIM with the BasicSR/SwinIR/HAT convention, the
remote-sensing metrics SAM and ERGAS, and PSNR split by texture strata.

Images are numpy arrays HW or HWC (grey, RGB, or any other number of bands, used as given: drop
an alpha channel first): uint8, uint16 (scaled to 0..255) or float in [0, 1]. Everything is computed in float64 on the 0..255 scale,
either on BT.601 "MATLAB" luma Y (``y_channel=True``, ignored for grey images) or per RGB
channel. ``border`` pixels are cropped from every side first. Float inputs are used as given:
round them to 8 bit first to reproduce numbers published with that convention. Which pixels a
metric scores is said once, by the keywords of :class:`Region` and :class:`Scoring`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import numpy as np

from fatsr.errors import FatsrError

if TYPE_CHECKING:
    from typing_extensions import Unpack

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])
_SSIM_RADIUS = 5  # 11x11 window
_SSIM_SIGMA = 1.5


def _to_unit(img: np.ndarray) -> np.ndarray:
    """HWC float64 in [0, 1] (nominally) from uint8, uint16 or float input."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] == 0:
        raise ValueError(f"expected an HW or HWC image, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 65535.0
    if np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float64)
    raise ValueError(f"unsupported image dtype {img.dtype}; use uint8, uint16 or float in [0, 1]")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma of an RGB image, HW float64 on the 0..255 scale (16..235)."""
    unit = _to_unit(img)
    if unit.shape[2] != 3:
        raise ValueError(f"rgb_to_y needs an RGB image, got {unit.shape[2]} channel(s)")
    return 16.0 + unit @ _Y_WEIGHTS


class Region(TypedDict, total=False):
    """The pixels a metric scores: ``border`` pixels cropped from every side (default 0) and,
    where ``valid`` (an HW bool array) is given, only the pixels it marks."""

    border: int
    valid: np.ndarray | None


class Scoring(Region, total=False):
    """:class:`Region`, and ``y_channel``: score luma Y of an RGB image (default True) or
    every band as given (False; grey images are always scored as given)."""

    y_channel: bool


def _prepare(
    sr: np.ndarray, hr: np.ndarray, *, border: int = 0, y_channel: bool = True, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both images as HWC float64 on 0..255 (Y or RGB), border cropped, and the HW mask of
    pixels to score (``valid``, all where None), cropped alike."""
    a, b = _to_unit(sr), _to_unit(hr)
    if a.shape != b.shape:
        raise FatsrError(f"SR image {a.shape[:2]} and HR image {b.shape[:2]} differ in size or channels; "
                         "compare images of the same size")  # fmt: skip
    if y_channel and a.shape[2] == 3:
        a, b = rgb_to_y(a)[:, :, None], rgb_to_y(b)[:, :, None]
    else:
        a, b = a * 255.0, b * 255.0
    if border < 0 or 2 * border >= min(a.shape[:2]):
        raise FatsrError(f"border {border} does not fit a {a.shape[0]}x{a.shape[1]} image; use a smaller border")
    mask = np.ones(a.shape[:2], bool) if valid is None else np.asarray(valid, bool)
    if border:
        a, b, mask = (x[border:-border, border:-border] for x in (a, b, mask))
    if not mask.any():
        raise FatsrError("no valid pixel to score (all nodata or masked)")
    return a, b, mask


def psnr(sr: np.ndarray, hr: np.ndarray, *, data_range: float = 255.0, **scoring: Unpack[Scoring]) -> float:
    """Peak signal-to-noise ratio in dB; ``data_range`` is the peak on the 0..255 scale. inf if
    equal."""
    a, b, mask = _prepare(sr, hr, **scoring)
    return _decibels(float(np.mean((a[mask] - b[mask]) ** 2)), data_range)


def _decibels(mse: float, peak: float) -> float:
    """PSNR of a mean squared error: ``10 log10(peak^2 / mse)``, inf for 0."""
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak**2 / mse))


def _gaussian_valid(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable correlation of an HW image with ``kernel``, keeping only the 'valid' part."""
    n = len(kernel)
    h, w = img.shape
    rows = sum(k * img[i : h - n + 1 + i] for i, k in enumerate(kernel))
    return sum(k * rows[:, i : w - n + 1 + i] for i, k in enumerate(kernel))


def _ssim_channel(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    offsets = np.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1)
    kernel = np.exp(-(offsets**2) / (2 * _SSIM_SIGMA**2))
    kernel /= kernel.sum()
    mu_a, mu_b = _gaussian_valid(a, kernel), _gaussian_valid(b, kernel)
    var_a = _gaussian_valid(a * a, kernel) - mu_a**2
    var_b = _gaussian_valid(b * b, kernel) - mu_b**2
    cov = _gaussian_valid(a * b, kernel) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map[mask].mean())


def _window_valid(mask: np.ndarray) -> np.ndarray:
    """Centres of the 11x11 windows ('valid' filtering) that hold valid pixels only."""
    n = 2 * _SSIM_RADIUS + 1
    return np.asarray(np.lib.stride_tricks.sliding_window_view(mask, (n, n)).all(axis=(2, 3)))


def ssim(sr: np.ndarray, hr: np.ndarray, **scoring: Unpack[Scoring]) -> float:
    """Structural similarity: 11x11 Gaussian window (sigma 1.5), 'valid' filtering, mean of the
    map (over windows holding valid pixels only); per-channel mean for RGB. The image after the
    border crop must be at least 11x11."""
    a, b, mask = _prepare(sr, hr, **scoring)
    if min(a.shape[:2]) < 2 * _SSIM_RADIUS + 1:
        raise FatsrError(f"SSIM needs at least 11x11 pixels after the border crop, got {a.shape[0]}x{a.shape[1]}")
    windows = _window_valid(mask)
    if not windows.any():
        return float("nan")
    return float(np.mean([_ssim_channel(a[:, :, c], b[:, :, c], windows) for c in range(a.shape[2])]))


def sam(sr: np.ndarray, hr: np.ndarray, **region: Unpack[Region]) -> float:
    """Spectral angle mapper: mean over pixels of the angle between the SR and HR band vectors,
    in degrees. Pixels where either vector is zero have no angle and are left out (nan if all)."""
    a, b, mask = _prepare(sr, hr, y_channel=False, **region)
    dot = np.sum(a * b, axis=2)
    norms = np.linalg.norm(a, axis=2) * np.linalg.norm(b, axis=2)
    ok = (norms > 0) & mask
    if not ok.any():
        return float("nan")
    cosine = np.clip(dot[ok] / norms[ok], -1.0, 1.0)
    return float(np.degrees(np.arccos(cosine)).mean())


def ergas(sr: np.ndarray, hr: np.ndarray, *, scale: int, **region: Unpack[Region]) -> float:
    """ERGAS = 100 / scale * sqrt(mean over bands of RMSE_k^2 / mean(HR_k)^2) (lower is better);
    nan when an HR band has mean 0."""
    a, b, mask = _prepare(sr, hr, y_channel=False, **region)
    mse = np.mean((a[mask] - b[mask]) ** 2, axis=0)
    mean_sq = np.mean(b[mask], axis=0) ** 2
    if np.any(mean_sq == 0):
        return float("nan")
    return float(100.0 / scale * np.sqrt(np.mean(mse / mean_sq)))


STRATA = ("low", "mid", "high")


def local_variance(img: np.ndarray, size: int = 7) -> np.ndarray:
    """Variance of every ``size`` x ``size`` neighbourhood (reflect-padded) of an HW image."""
    pad = size // 2
    padded = np.pad(img, pad, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size))
    return windows.var(axis=(2, 3))


def psnr_by_texture(sr: np.ndarray, hr: np.ndarray, *, window: int = 7, **scoring: Unpack[Scoring]) -> dict[str, float]:
    """PSNR in the low-, mid- and high-texture thirds of the (valid) pixels, ranked by the local
    variance (``window`` x ``window``) of the HR image (band mean when there is no Y)."""
    a, b, mask = _prepare(sr, hr, **scoring)
    variance = local_variance(b.mean(axis=2), window).ravel()
    order = np.argsort(variance, kind="stable")
    order = order[mask.ravel()[order]]
    error = ((a - b) ** 2).mean(axis=2).ravel()
    result = {}
    for name, part in zip(STRATA, np.array_split(order, len(STRATA)), strict=True):
        result[name] = _decibels(float(error[part].mean()), 255.0)
    return result
