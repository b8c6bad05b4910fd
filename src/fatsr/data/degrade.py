"""Real-ESRGAN second-order degradation of an HR image into a realistic LR image.

Order (every parameter from a preset, see :mod:`fatsr.data.degrade_presets`): unsharp mask
of the HR; per stage: blur with a random kernel, random resize, Gaussian or Poisson noise
(colour or grey), JPEG (Pillow encode/decode at the drawn quality), optional fixed resize;
final: resize to exactly HR/scale, sinc filter and JPEG in one of two drawn orders. Every
draw comes from the one ``numpy.random.Generator`` passed in, so a seeded generator gives
identical output. Filtering is a depthwise ``conv2d`` with reflect padding (replicate where
the image is smaller than the padding), resizing is ``torch.nn.functional.interpolate``.
"""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from fatsr.data.kernels import pad_kernel, pulse_kernel, random_blur_kernel, sinc_kernel
from fatsr.errors import FatsrError

_GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as in Real-ESRGAN's grey noise


def image_rng(seed: int, key: str) -> np.random.Generator:
    """The generator of one image: from ``seed`` and a key (its file name, or a dataset index),
    so results do not depend on processing order."""
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.default_rng([seed, *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Pillow JPEG bytes of an HWC uint8 image (1 or 3 channels) at ``quality``."""
    buffer = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode an HWC uint8 image with Pillow's JPEG at ``quality``."""
    with Image.open(io.BytesIO(encode_jpeg(image, quality))) as decoded:
        out = np.asarray(decoded)
    return out.reshape(image.shape)


def _to_hwc(x: Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).numpy()


def _jpeg(x: Tensor, quality: int, levels: int) -> Tensor:
    """JPEG artefacts at 8 bits; for 16-bit images the 8-bit artefact is added to the 16-bit signal."""
    x = x.clamp(0.0, 1.0)
    eight = np.round(_to_hwc(x) * 255).astype(np.uint8)
    decoded = jpeg_roundtrip(eight, quality)
    if levels == 255:
        out = decoded.astype(np.float32) / 255
    else:
        out = np.clip(_to_hwc(x) + (decoded.astype(np.float32) - eight) / 255, 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))[None]


def _pad(x: Tensor, pad_h: int, pad_w: int) -> Tensor:
    """Reflect padding; replicate where the image is too small to reflect."""
    fits = pad_h < x.shape[-2] and pad_w < x.shape[-1]
    return F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect" if fits else "replicate")


def filter2d(x: Tensor, kernel: np.ndarray) -> Tensor:
    """Filter every channel of an NCHW image with a point-symmetric ``kernel``, same size out."""
    kh, kw = kernel.shape
    weight = torch.from_numpy(kernel.astype(np.float32)).expand(x.shape[1], 1, kh, kw)
    return F.conv2d(_pad(x, kh // 2, kw // 2), weight, groups=x.shape[1])


def usm_sharpen(x: Tensor, radius: int, weight: float, threshold: float) -> Tensor:
    """Real-ESRGAN's unsharp mask: Gaussian of ``radius`` (+1 if even) pixels with OpenCV's
    sigma rule; sharpened only where the residual exceeds ``threshold``/255, softly masked."""
    size = radius + 1 if radius % 2 == 0 else radius
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    line = np.exp(-0.5 * ((np.arange(size) - size // 2) / sigma) ** 2)
    line /= line.sum()

    def blur(t: Tensor) -> Tensor:
        return filter2d(filter2d(t, line[None, :]), line[:, None])

    residual = x - blur(x)
    soft_mask = blur((residual.abs() * 255 > threshold).to(x.dtype))
    sharp = (x + weight * residual).clamp(0.0, 1.0)
    return soft_mask * sharp + (1 - soft_mask) * x


def resize(x: Tensor, size: tuple[int, int], mode: str, antialias: bool) -> Tensor:
    """Resize an NCHW image to ``size`` (h, w) with area, bilinear or bicubic interpolation."""
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=antialias)


def _random_resize(
    x: Tensor, spec: dict, lr_size: tuple[int, int], antialias: bool, rng: np.random.Generator
) -> Tensor:
    names = list(spec["probs"])
    probs = np.array([spec["probs"][n] for n in names], dtype=np.float64)
    direction = names[rng.choice(len(names), p=probs / probs.sum())]
    factor = 1.0 if direction == "keep" else rng.uniform(*spec[direction])
    mode = str(rng.choice(spec["modes"]))
    base = x.shape[-2:] if spec["of"] == "input" else lr_size
    return resize(x, (max(1, int(base[0] * factor)), max(1, int(base[1] * factor))), mode, antialias)


def _add_noise(x: Tensor, spec: dict, rng: np.random.Generator) -> Tensor:
    """Gaussian noise (sigma on the 0-255 scale) or Poisson noise (Real-ESRGAN's: counts at the
    next power of two above the number of 8-bit grey levels), the same in every channel if grey."""
    grey = rng.uniform() < spec["gray_prob"]
    if rng.uniform() < spec["gaussian_prob"]:
        sigma = rng.uniform(*spec["gaussian_sigma"]) / 255
        shape = (1, 1, *x.shape[-2:]) if grey else tuple(x.shape)
        noise = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32)) * sigma
    else:
        strength = rng.uniform(*spec["poisson_scale"])
        base = x
        if grey and x.shape[1] == 3:
            base = sum(w * x[:, i : i + 1] for i, w in enumerate(_GREY_WEIGHTS))
        base = torch.round(base.clamp(0.0, 1.0) * 255) / 255
        counts = 2 ** math.ceil(math.log2(max(2, len(torch.unique(base)))))
        sample = rng.poisson(base.double().numpy() * counts) / counts
        noise = (torch.from_numpy(sample).float() - base) * strength
    return (x + noise).clamp(0.0, 1.0)


def _quality(rng: np.random.Generator, spec: dict) -> int:
    low, high = spec["quality"]
    return int(rng.integers(round(low), round(high), endpoint=True))


def _stage(
    x: Tensor,
    spec: dict,
    preset: dict,
    hr_size: tuple[int, int],
    lr_size: tuple[int, int],
    levels: int,
    rng: np.random.Generator,
) -> Tensor:
    if rng.uniform() < spec["blur_prob"]:
        x = filter2d(x, random_blur_kernel(rng, preset["kernel_sizes"], spec["kernel"]))
    x = _random_resize(x, spec["resize"], lr_size, preset["antialias"], rng)
    if spec["noise"] is not None:
        x = _add_noise(x, spec["noise"], rng)
    if spec["jpeg"] is not None:
        x = _jpeg(x, _quality(rng, spec["jpeg"]), levels)
    if spec["resize_to"] is not None:
        size = (max(1, int(hr_size[0] * spec["resize_to"])), max(1, int(hr_size[1] * spec["resize_to"])))
        x = resize(x, size, str(rng.choice(spec["resize"]["modes"])), preset["antialias"])
    return x


def _final(x: Tensor, preset: dict, lr_size: tuple[int, int], levels: int, rng: np.random.Generator) -> Tensor:
    spec = preset["final"]
    steps = spec["order_a"] if rng.uniform() < spec["order_prob"] else spec["order_b"]
    sizes = preset["kernel_sizes"]
    if rng.uniform() < spec["sinc_prob"]:
        kernel = pad_kernel(sinc_kernel(int(rng.choice(sizes)), rng.uniform(*spec["sinc_cutoff"])), max(sizes))
    else:
        kernel = pulse_kernel(1)
    quality = _quality(rng, spec["jpeg"]) if spec["jpeg"] is not None else None
    mode = str(rng.choice(spec["modes"]))
    for step in steps:
        if step == "resize":
            x = resize(x, lr_size, mode, preset["antialias"])
        elif step == "sinc" and kernel.shape[0] > 1:
            x = filter2d(x, kernel)
        elif step == "jpeg" and quality is not None:
            x = _jpeg(x, quality, levels)
    return x.clamp(0.0, 1.0)


def degrade(hr: np.ndarray, scale: int, preset: dict, rng: np.random.Generator) -> np.ndarray:
    """Degrade an HWC uint8/uint16 image (1, 3 or 4 channels) into an LR image of exactly
    (H/scale, W/scale), same dtype and channels; alpha is area-downscaled, not degraded."""
    if hr.ndim != 3 or hr.dtype not in (np.uint8, np.uint16) or hr.shape[2] not in (1, 3, 4):
        raise FatsrError(
            f"cannot degrade an image of shape {hr.shape} and type {hr.dtype}; give 8/16-bit grey, RGB or RGBA"
        )
    h, w = hr.shape[:2]
    if scale < 1 or h % scale or w % scale:
        raise FatsrError(
            f"image size {w}x{h} is not divisible by scale {scale}; mod-crop it first (fatsr prepare pairs)"
        )
    levels = 65535 if hr.dtype == np.uint16 else 255
    chw = torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1)).astype(np.float32) / levels)[None]
    x, alpha = (chw[:, :3], chw[:, 3:]) if hr.shape[2] == 4 else (chw, chw[:, :0])
    lr_size = (h // scale, w // scale)
    if preset["usm"] is not None:
        x = usm_sharpen(x, **preset["usm"])
    for name in ("first", "second"):
        if preset[name] is not None:
            x = _stage(x, preset[name], preset, (h, w), lr_size, levels, rng)
    x = _final(x, preset, lr_size, levels, rng)
    if alpha.shape[1]:
        x = torch.cat([x, resize(alpha, lr_size, "area", False)], dim=1)
    return _to_hwc(torch.round(x * levels)).astype(hr.dtype)
