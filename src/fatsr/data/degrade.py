"""Real-ESRGAN second-order degradation of HR images into realistic LR images.

Order (every parameter from a preset, see :mod:`fatsr.data.degrade_presets`): unsharp mask
of the HR; per stage: blur with a random kernel, random resize, Gaussian or Poisson noise
(colour or grey), JPEG at a drawn quality, optional fixed resize; final: resize to exactly
HR/scale, sinc filter and JPEG in one of two drawn orders.

:func:`run_degradation` is the pipeline on an NCHW batch: sizes, resize modes and the final
order are drawn once per batch (a batch is one tensor), kernels, noise and JPEG qualities
per image, and the noise type (Gaussian or Poisson) per image or, with the preset's
``noise_type: batch`` (Real-ESRGAN), per batch. It takes the noise sampler and the JPEG codec as arguments: :func:`degrade` (one
file, ``fatsr degrade``) samples noise with NumPy and compresses with Pillow;
:class:`fatsr.data.degrade_batch.BatchDegrader` (training) does both in torch on the batch's
device. Every draw comes from the ``numpy.random.Generator`` passed in, so a seeded generator
gives identical output. Filtering is a depthwise ``conv2d`` with reflect padding (replicate
where the image is smaller than the padding), resizing is ``torch.nn.functional.interpolate``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

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


def _jpeg_one(x: Tensor, quality: int, levels: int) -> Tensor:
    """Pillow JPEG artefacts of a (1, C, H, W) image at 8 bits; for 16-bit images
    (``levels`` 65535) the 8-bit artefact is added to the 16-bit signal."""
    x = x.clamp(0.0, 1.0)
    eight = np.round(_to_hwc(x) * 255).astype(np.uint8)
    decoded = jpeg_roundtrip(eight, quality)
    if levels == 255:
        out = decoded.astype(np.float32) / 255
    else:
        out = np.clip(_to_hwc(x) + (decoded.astype(np.float32) - eight) / 255, 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))[None]


def pillow_jpeg(x: Tensor, qualities: Sequence[int], levels: int = 255) -> Tensor:
    """Pillow JPEG round trip of every image of a CPU batch at its quality (see :func:`_jpeg_one`)."""
    return torch.cat([_jpeg_one(x[i : i + 1], q, levels) for i, q in enumerate(qualities)])


def _pad(x: Tensor, pad_h: int, pad_w: int) -> Tensor:
    """Reflect padding; replicate where the image is too small to reflect."""
    fits = pad_h < x.shape[-2] and pad_w < x.shape[-1]
    return F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect" if fits else "replicate")


def filter2d(x: Tensor, kernel: np.ndarray | Tensor) -> Tensor:
    """Filter every channel of an NCHW image with point-symmetric kernels: one (kh, kw) kernel
    for every image, or one per image (N, kh, kw); same size out. The batch is folded into
    the channels of one grouped conv (much faster on the CPU than a batched depthwise conv)."""
    n, c, h, w = x.shape
    weight = torch.as_tensor(kernel, dtype=torch.float32).to(x.device)
    kh, kw = weight.shape[-2:]
    weight = weight.expand(n * c, kh, kw) if weight.ndim == 2 else weight.repeat_interleave(c, dim=0)
    out = F.conv2d(_pad(x.reshape(1, n * c, h, w), kh // 2, kw // 2), weight[:, None], groups=n * c)
    return out.reshape(n, c, h, w)


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


def _scaled(size: Sequence[int], factor: float) -> tuple[int, int]:
    return max(1, int(size[0] * factor)), max(1, int(size[1] * factor))


def _random_resize(
    x: Tensor, spec: dict, lr_size: tuple[int, int], antialias: bool, rng: np.random.Generator
) -> Tensor:
    """Up, down or keep (``spec["probs"]``) by a drawn factor of the input or LR size, drawn mode."""
    names = list(spec["probs"])
    probs = np.array([spec["probs"][n] for n in names], dtype=np.float64)
    direction = names[rng.choice(len(names), p=probs / probs.sum())]
    factor = 1.0 if direction == "keep" else rng.uniform(*spec[direction])
    mode = str(rng.choice(spec["modes"]))
    return resize(x, _scaled(x.shape[-2:] if spec["of"] == "input" else lr_size, factor), mode, antialias)


@dataclass(frozen=True)
class NoiseDraw:
    """One image's noise: grey (the same in every channel) or colour, Gaussian or Poisson."""

    grey: bool
    gaussian: bool
    level: float  # Gaussian sigma in [0, 1] units, or the Poisson strength


def draw_noise(spec: dict, rng: np.random.Generator, gaussian: bool | None = None) -> NoiseDraw:
    """One image's noise parameters from a stage's ``noise`` spec; the type (Gaussian or
    Poisson) is drawn here unless given (drawn once for the batch)."""
    grey = bool(rng.uniform() < spec["gray_prob"])
    if gaussian is None:
        gaussian = bool(rng.uniform() < spec["gaussian_prob"])
    if gaussian:
        return NoiseDraw(grey, True, rng.uniform(*spec["gaussian_sigma"]) / 255)
    return NoiseDraw(grey, False, rng.uniform(*spec["poisson_scale"]))


def grey_luma(x: Tensor) -> Tensor:
    """(N, 1, H, W) BT.601 luma of an RGB batch."""
    r, g, b = (w * x[:, i : i + 1] for i, w in enumerate(_GREY_WEIGHTS))
    return r + g + b


def poisson_base(x: Tensor, grey: bool) -> Tensor:
    """The signal whose photon counts make Poisson noise: the image (its luma if ``grey``) on
    the 8-bit grid."""
    base = grey_luma(x) if grey and x.shape[1] == 3 else x
    return torch.round(base.clamp(0.0, 1.0) * 255) / 255


def poisson_counts(base: Tensor) -> Tensor:
    """(N,) counts per unit signal of each image of an 8-bit-grid batch: Real-ESRGAN's next
    power of two above the number of grey levels it holds (at least 2)."""
    present = torch.zeros(base.shape[0], 256, dtype=torch.float64, device=base.device)
    present.scatter_(1, torch.round(base.flatten(1) * 255).long(), 1.0)
    return torch.exp2(torch.ceil(torch.log2(present.sum(1).clamp(min=2))))


def numpy_noise(x: Tensor, draws: Sequence[NoiseDraw], rngs: Sequence[np.random.Generator]) -> Tensor:
    """Add each image's noise, sampled with NumPy from its generator (CPU batch), clamped to [0, 1]."""
    noisy = []
    for image, draw, rng in zip(x.split(1), draws, rngs):
        if draw.gaussian:
            shape = (1, 1, *image.shape[-2:]) if draw.grey else tuple(image.shape)
            noise = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32)) * draw.level
        else:
            base = poisson_base(image, draw.grey)
            counts = int(poisson_counts(base)[0])
            sample = rng.poisson(base.double().numpy() * counts) / counts
            noise = (torch.from_numpy(sample).float() - base) * draw.level
        noisy.append((image + noise).clamp(0.0, 1.0))
    return torch.cat(noisy)


def draw_quality(spec: dict, rng: np.random.Generator) -> int:
    """A JPEG quality, uniform over the integers of ``spec["quality"]``."""
    low, high = spec["quality"]
    return int(rng.integers(round(low), round(high), endpoint=True))


def draw_sinc(spec: dict, sizes: list[int], rng: np.random.Generator) -> np.ndarray | None:
    """The final sinc kernel padded to the largest size, or None (probability 1 - ``sinc_prob``)."""
    if rng.uniform() >= spec["sinc_prob"]:
        return None
    return pad_kernel(sinc_kernel(int(rng.choice(sizes)), rng.uniform(*spec["sinc_cutoff"])), max(sizes))


def filter_each(x: Tensor, kernels: Sequence[np.ndarray | None]) -> Tensor:
    """Filter each image with its kernel (None: unchanged), all in one grouped conv."""
    if all(k is None for k in kernels):
        return x
    size = next(k for k in kernels if k is not None).shape[0]
    return filter2d(x, np.stack([pulse_kernel(size) if k is None else k for k in kernels]))


NoiseFn = Callable[
    [Tensor, Sequence[NoiseDraw], Sequence[np.random.Generator]], Tensor
]  # adds each image's noise, clamps
JpegFn = Callable[[Tensor, Sequence[int]], Tensor]  # JPEG round trip of each image at its quality


def _stage(
    x: Tensor,
    spec: dict,
    preset: dict,
    hr_size: tuple[int, int],
    lr_size: tuple[int, int],
    rng: np.random.Generator,
    rngs: Sequence[np.random.Generator],
    noise: NoiseFn,
    jpeg: JpegFn,
) -> Tensor:
    sizes = preset["kernel_sizes"]
    kernels = [random_blur_kernel(r, sizes, spec["kernel"]) if r.uniform() < spec["blur_prob"] else None for r in rngs]
    x = filter_each(x, kernels)
    x = _random_resize(x, spec["resize"], lr_size, preset["antialias"], rng)
    if spec["noise"] is not None:
        batch_type = preset["noise_type"] == "batch"  # Real-ESRGAN: Gaussian or Poisson for the whole batch
        gaussian = bool(rng.uniform() < spec["noise"]["gaussian_prob"]) if batch_type else None
        x = noise(x, [draw_noise(spec["noise"], r, gaussian) for r in rngs], rngs)
    if spec["jpeg"] is not None:
        x = jpeg(x, [draw_quality(spec["jpeg"], r) for r in rngs])
    if spec["resize_to"] is not None:
        mode = str(rng.choice(spec["resize"]["modes"]))
        x = resize(x, _scaled(hr_size, spec["resize_to"]), mode, preset["antialias"])
    return x


def _final(
    x: Tensor,
    preset: dict,
    lr_size: tuple[int, int],
    rng: np.random.Generator,
    rngs: Sequence[np.random.Generator],
    jpeg: JpegFn,
) -> Tensor:
    spec = preset["final"]
    steps = spec["order_a"] if rng.uniform() < spec["order_prob"] else spec["order_b"]
    kernels = [draw_sinc(spec, preset["kernel_sizes"], r) for r in rngs]
    qualities = [draw_quality(spec["jpeg"], r) for r in rngs] if spec["jpeg"] is not None else None
    mode = str(rng.choice(spec["modes"]))
    for step in steps:
        if step == "resize":
            x = resize(x, lr_size, mode, preset["antialias"])
        elif step == "sinc":
            x = filter_each(x, kernels)
        elif step == "jpeg" and qualities is not None:
            x = jpeg(x, qualities)
    return x.clamp(0.0, 1.0)


def run_degradation(
    x: Tensor,
    scale: int,
    preset: dict,
    rng: np.random.Generator,
    noise: NoiseFn,
    jpeg: JpegFn,
    rngs: Sequence[np.random.Generator] | None = None,
) -> Tensor:
    """Degrade an NCHW float batch in [0, 1] (H, W multiples of ``scale``) into its LR batch of
    exactly (H/scale, W/scale) in [0, 1], with the given noise sampler and JPEG codec.
    Draws shared by the batch (sizes, resize modes, the final order) come from ``rng``; each
    image's own (kernels, noise, JPEG quality) from its generator in ``rngs`` (default: ``rng``)."""
    rngs = [rng] * x.shape[0] if rngs is None else rngs
    h, w = x.shape[-2:]
    lr_size = (h // scale, w // scale)
    if preset["usm"] is not None:
        x = usm_sharpen(x, **preset["usm"])
    for name in ("first", "second"):
        if preset[name] is not None:
            x = _stage(x, preset[name], preset, (h, w), lr_size, rng, rngs, noise, jpeg)
    return _final(x, preset, lr_size, rng, rngs, jpeg)


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
    x = run_degradation(x, scale, preset, rng, numpy_noise, partial(pillow_jpeg, levels=levels))
    if alpha.shape[1]:
        x = torch.cat([x, resize(alpha, (h // scale, w // scale), "area", False)], dim=1)
    return _to_hwc(torch.round(x * levels)).astype(hr.dtype)
