"""Dataset denoising (the FAT paper's dataset enhancement) and a noise-level estimate."""

from __future__ import annotations

import math

import numpy as np

from fatsr.errors import ArgumentError, FatsrError

METHODS = ("nlm", "bm3d")


def estimate_noise(image: np.ndarray) -> float:
    """Gaussian noise sigma on the 0-255 scale by Immerkaer's method (1996): the mean absolute
    response to the Laplacian-difference mask ``[1 -2 1] x [1 -2 1]`` times ``sqrt(pi/2)/6``,
    averaged over the colour channels (alpha ignored). Needs at least 3x3 pixels."""
    if image.shape[0] < 3 or image.shape[1] < 3:
        raise FatsrError(f"image of {image.shape[1]}x{image.shape[0]} is too small to estimate noise; need 3x3")
    colour = image[:, :, :3] if image.shape[2] == 4 else image
    values = colour.astype(np.float64) * (255 / (65535 if image.dtype == np.uint16 else 255))
    response = np.diff(np.diff(values, 2, axis=0), 2, axis=1)
    return float(math.sqrt(math.pi / 2) / 6 * np.abs(response).mean())


def nlm_denoise(image: np.ndarray, strength: float) -> np.ndarray:
    """OpenCV non-local means with filter strength ``strength`` (0-255 scale), patch 7,
    search window 21. 8-bit colour uses ``fastNlMeansDenoisingColored``; grey and 16-bit
    images ``fastNlMeansDenoising`` (16-bit: L1 norm, strength scaled by 257). Alpha is kept."""
    import cv2

    if strength <= 0:
        raise ArgumentError("{arg}: must be positive", "strength", strength)
    colour, alpha = (image[:, :, :3], image[:, :, 3:]) if image.shape[2] == 4 else (image, image[:, :, :0])
    if image.dtype == np.uint16:
        out = cv2.fastNlMeansDenoising(
            np.ascontiguousarray(colour),
            h=[strength * 257],
            templateWindowSize=7,
            searchWindowSize=21,
            normType=cv2.NORM_L1,
        )
    elif colour.shape[2] == 3:
        out = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(colour), None, strength, strength, 7, 21)
    else:
        out = cv2.fastNlMeansDenoising(np.ascontiguousarray(colour[:, :, 0]), None, strength, 7, 21)
    return np.concatenate([out.reshape(colour.shape), alpha], axis=2)


def bm3d_denoise(image: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D (the ``bm3d`` package, an optional extra) for white Gaussian noise of ``sigma`` on
    the 0-255 scale: colour in the opponent colour space, grey directly, 8 or 16 bits (values
    taken in [0, 1]); alpha is kept."""
    try:
        import bm3d
    except ImportError:
        raise ArgumentError(
            "{arg} needs the bm3d package; install it with pip install bm3d, or use {nlm}",
            "method",
            "bm3d",
            nlm=("method", "nlm"),
        ) from None
    if sigma <= 0:
        raise ArgumentError("{arg}: must be positive", "strength", sigma)
    levels = 65535 if image.dtype == np.uint16 else 255
    colour, alpha = (image[:, :, :3], image[:, :, 3:]) if image.shape[2] == 4 else (image, image[:, :, :0])
    values = colour.astype(np.float64) / levels
    if colour.shape[2] == 3:
        out = bm3d.bm3d_rgb(values, sigma / 255)
    else:
        out = bm3d.bm3d(values[:, :, 0], sigma / 255)
    out = np.round(np.clip(out, 0.0, 1.0) * levels).astype(image.dtype).reshape(colour.shape)
    return np.concatenate([out, alpha], axis=2)


def denoise(image: np.ndarray, method: str, strength: float) -> np.ndarray:
    """Denoise with one of :data:`METHODS`: ``strength`` is the NLM filter strength h or the
    BM3D noise sigma, both on the 0-255 scale."""
    if method not in METHODS:
        raise FatsrError(f"unknown denoising method {method!r}; use one of {', '.join(METHODS)}")
    return bm3d_denoise(image, strength) if method == "bm3d" else nlm_denoise(image, strength)
