"""Local Attribution Maps (Gu & Dong, CVPR 2021) for any SR model.

The attribution of an output window is the path integral of the gradient of the window's
summed gradient magnitude, along a progressive-blurring path from the LR input blurred by a
Gaussian (``sigma``, ``kernel`` x ``kernel``) to the LR input itself. The Gini index of the
map measures how concentrated it is; the diffusion index DI = (1 - Gini) x 100 how widely
the model looks. Models must be deterministic (an :class:`~fatsr.models.wrapper.SRModel`
re-seeds its LSH rotations at every call, so the path sees one fixed network).

The default definition is the reference implementation's (LAM_Demo, ``SaliencyModel``), so
the Gini and DI figures can be set beside published ones; ``definition="fatsr-0.1"`` keeps
the variant of fatsr 0.1 (see :func:`path_attribution`).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fatsr.data.resize import pillow_bicubic_downscale
from fatsr.errors import ArgumentError, FatsrError
from fatsr.io import atomic_write, read_image
from fatsr.models.contract import Model


@dataclass(frozen=True)
class Window:
    """A square output window: top-left column ``x``, row ``y`` and side ``size``, in SR pixels."""

    x: int
    y: int
    size: int

    def check(self, height: int, width: int) -> None:
        """Raise :class:`FatsrError` unless the window lies inside an SR image of this size."""
        if self.size < 2 or self.x < 0 or self.y < 0 or self.x + self.size > width or self.y + self.size > height:
            raise FatsrError(f"window x={self.x} y={self.y} size={self.size} is not inside the {width}x{height} "
                             "output (size >= 2); choose a window inside it")  # fmt: skip


@dataclass
class LAMResult:
    """The attribution map (LR pixels, >= 0), its Gini and diffusion index, and the SR image."""

    name: str
    attribution: np.ndarray = field(repr=False)
    sr: np.ndarray = field(repr=False)
    gini: float
    diffusion_index: float
    seconds: float


DEFINITIONS = ("lam", "fatsr-0.1")
_SIGMA_EPSILON = 1e-5  # LAM_Demo adds it to every sigma of the path, so sigma 0 is a valid kernel
_GINI_OFFSET = 1e-7  # LAM_Demo adds it to the max-normalised map before the Gini index


def gaussian_kernel(sigma: float, kernel: int, epsilon: float = _SIGMA_EPSILON) -> Tensor:
    """(kernel, kernel) isotropic Gaussian of ``sigma + epsilon``, summing to one (float64)."""
    offsets = torch.arange(kernel, dtype=torch.float64) - (kernel - 1) / 2
    g = torch.exp(-(offsets**2) / (2 * (sigma + epsilon) ** 2))
    g2 = g[:, None] * g[None, :]
    return g2 / g2.sum()


def filter2d(x: Tensor, weight: Tensor) -> Tensor:
    """Every channel of NCHW ``x`` filtered by the square kernel ``weight``, reflect padding
    (OpenCV's default border, mirror without repeating the edge); same size out."""
    kernel, channels = weight.shape[-1], x.shape[1]
    pad = kernel // 2
    w = weight.to(x.dtype).to(x.device).expand(channels, 1, kernel, kernel)
    return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), w, groups=channels)


def blur(x: Tensor, sigma: float, kernel: int) -> Tensor:
    """Per-channel Gaussian blur of NCHW ``x`` (reflect padding); ``sigma`` 0 returns ``x``."""
    if sigma <= 0:
        return x
    return filter2d(x, gaussian_kernel(sigma, kernel, epsilon=0.0))


def window_gradient_magnitude(sr: Tensor, window: Window) -> Tensor:
    """LAM's objective: the sum over channels and the window of each pixel's gradient magnitude
    sqrt((I[r, c] - I[r+1, c])^2 + (I[r, c] - I[r, c+1])^2), on the (H-1, W-1) grid where both
    differences exist (a window on the last row or column is shortened, as in LAM_Demo). Where
    both differences are exactly zero the square root's derivative is taken as 0 (LAM_Demo gets
    NaN there and zeroes the NaN gradients)."""
    patch = sr[:, :, window.y : window.y + window.size + 1, window.x : window.x + window.size + 1]
    corner = patch[:, :, :-1, :-1]
    squared = (corner - patch[:, :, 1:, :-1]) ** 2 + (corner - patch[:, :, :-1, 1:]) ** 2
    positive = squared > 0
    return (torch.where(positive, squared, torch.ones_like(squared)).sqrt() * positive).sum()


def window_gradient_magnitude_mean(sr: Tensor, window: Window) -> Tensor:
    """fatsr 0.1's objective: the gradient magnitude (forward differences inside the window,
    +1e-8 under the root) of the channel mean, summed over the window."""
    patch = sr[:, :, window.y : window.y + window.size, window.x : window.x + window.size].mean(dim=1)
    dx = patch[:, :-1, 1:] - patch[:, :-1, :-1]
    dy = patch[:, 1:, :-1] - patch[:, :-1, :-1]
    return torch.sqrt(dx**2 + dy**2 + 1e-8).sum()


def path_attribution(model: Callable[[Tensor], Tensor], lr: Tensor, window: Window, *, steps: int = 50, sigma: float = 1.2,
                     kernel: int = 9, definition: str = "lam") -> tuple[Tensor, Tensor]:  # fmt: skip
    """(HW attribution map >= 0, SR output) for a (1, C, H, W) ``lr`` in [0, 1].

    ``definition="lam"`` (LAM_Demo's ``GaussianBlurPath``, ``attr_grad``, ``Path_gradient``,
    ``grad_abs_norm``): path points x_i = lr blurred with sigma_i = sigma (1 - i/steps) + 1e-5,
    i = 0..steps; attribution = |sum over channels of sum_i grad D(F(x_{i+1})) * (x_{i+1} - x_i)|,
    the gradient taken at the right end of each step, D = :func:`window_gradient_magnitude`.
    ``"fatsr-0.1"``: the gradient at the left end of each step, D =
    :func:`window_gradient_magnitude_mean`, map = sum over channels of |...|.
    """
    if definition not in DEFINITIONS:
        raise FatsrError(f"unknown LAM definition {definition!r}; use one of {', '.join(DEFINITIONS)}")
    if steps < 1 or kernel < 1 or kernel % 2 == 0 or sigma <= 0:
        raise FatsrError(f"need steps >= 1, an odd kernel and sigma > 0; got {steps}, {kernel}, {sigma}")
    if min(lr.shape[-2:]) <= kernel // 2:
        raise FatsrError(f"the input {lr.shape[-1]}x{lr.shape[-2]} is too small for a {kernel}x{kernel} blur")
    lam = definition == "lam"
    sigmas = [sigma * (1 - i / steps) for i in range(steps + 1)]
    with torch.no_grad():
        if lam:
            kernels = [gaussian_kernel(s, kernel) for s in sigmas]
            path = [filter2d(lr, k) for k in kernels]
            deltas = [filter2d(lr, kernels[i + 1] - kernels[i]) for i in range(steps)]
        else:
            path = [blur(lr, s, kernel) for s in sigmas]
            deltas = [path[i + 1] - path[i] for i in range(steps)]
        sr = model(lr)
    window.check(*sr.shape[-2:])
    objective = window_gradient_magnitude if lam else window_gradient_magnitude_mean
    total = torch.zeros_like(lr)
    for i in range(steps):
        x = path[i + 1 if lam else i].detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(objective(model(x), window), x)
        total += grad * deltas[i]
    attribution = total[0].sum(dim=0).abs() if lam else total[0].abs().sum(dim=0)
    return attribution, sr


def gini(values: np.ndarray) -> float:
    """Gini index of non-negative values: 0 when all equal, (n-1)/n when one holds everything;
    nan when all are zero."""
    v = np.sort(np.abs(np.asarray(values, dtype=np.float64)).ravel())
    n, total = v.size, v.sum()
    if total == 0:
        return float("nan")
    ranks = np.arange(1, n + 1)
    return float(2 * np.sum(ranks * v) / (n * total) - (n + 1) / n)


def lam_gini(attribution: np.ndarray) -> float:
    """LAM_Demo's Gini index of a map: of the map divided by its maximum, plus 1e-7 everywhere;
    nan when the map is all zero."""
    a = np.abs(np.asarray(attribution, dtype=np.float64))
    peak = a.max()
    return float("nan") if peak == 0 else gini(a / peak + _GINI_OFFSET)


def local_attribution_map(model: Callable[[Tensor], Tensor], lr: Tensor, window: Window, *, name: str = "model", steps: int = 50,
                          sigma: float = 1.2, kernel: int = 9, definition: str = "lam") -> LAMResult:  # fmt: skip
    """LAM of ``model`` for ``window`` of its output on the (1, C, H, W) input ``lr`` in [0, 1];
    ``definition`` as in :func:`path_attribution` (the Gini index of ``"lam"`` is :func:`lam_gini`)."""
    start = time.perf_counter()
    attribution_t, sr = path_attribution(model, lr, window, steps=steps, sigma=sigma, kernel=kernel,
                                         definition=definition)  # fmt: skip
    seconds = time.perf_counter() - start
    attribution = attribution_t.cpu().numpy()
    g = lam_gini(attribution) if definition == "lam" else gini(attribution)
    return LAMResult(
        name=name,
        attribution=attribution,
        sr=sr[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy(),
        gini=g,
        diffusion_index=(1 - g) * 100,
        seconds=seconds,
    )


@dataclass
class LAMReport:
    """``fatsr lam``'s report: the LR input (HWC, [0, 1]), a result per model, the window, the
    scale and the settings, as the figure and the JSON show them."""

    lr: np.ndarray = field(repr=False)
    results: list[LAMResult]
    window: Window
    scale: int
    settings: dict

    def write(self, figure: Path, report: Path, *, overwrite: bool = False) -> None:
        """The figure (PNG) and the JSON report: both or neither."""
        write_figure(figure, self.lr, self.results, self.window, self.scale, overwrite=overwrite)
        try:
            write_json(report, self.results, self.settings, overwrite=overwrite)
        except BaseException:
            figure.unlink(missing_ok=True)
            raise


def report_files(folder: str | os.PathLike, image: str | os.PathLike, *, overwrite: bool = False) -> tuple[Path, Path]:
    """``<stem>_lam.png`` and ``<stem>_lam.json`` in ``folder``; one that exists is refused
    unless ``overwrite``."""
    stem = Path(image).stem
    files = Path(folder) / f"{stem}_lam.png", Path(folder) / f"{stem}_lam.json"
    for path in files:
        if path.exists() and not overwrite:
            raise ArgumentError(f"{path} exists; pass {{arg}} to replace it", "overwrite", True)
    return files


def lam_report(image_path: str | os.PathLike, models: Sequence[Model], *, window: Window | None = None,
               steps: int = 50, sigma: float = 1.2, kernel: int = 9, definition: str = "lam", from_hr: bool = False,
               seed: int = 0, device: torch.device = torch.device("cpu")) -> LAMReport:  # fmt: skip
    """The LAM of each of ``models`` (one scale; the first sets it) for ``window`` of its output
    (default: 16 px at the centre) on the image ``image_path``: an LR input, or with ``from_hr``
    an HR image made into one as LAM_Demo does (cropped to a multiple of the scale, Pillow
    bicubic downscale). ``seed``: the models' seed, recorded in the settings."""
    image = read_image(image_path)
    image = image[:, :, :3] if image.shape[2] == 4 else image
    scale = models[0].scale
    if from_hr:
        if image.shape[0] < scale or image.shape[1] < scale:
            raise FatsrError(f"{image_path}: {image.shape[1]}x{image.shape[0]} is smaller than the scale {scale}")
        image = pillow_bicubic_downscale(
            image[: image.shape[0] // scale * scale, : image.shape[1] // scale * scale], scale
        )
    lr = torch.from_numpy(image.astype(np.float32) / np.iinfo(image.dtype).max).permute(2, 0, 1)[None].to(device)
    window = window or _centre_window(lr.shape[-2:], scale)
    window.check(lr.shape[-2] * scale, lr.shape[-1] * scale)
    if min(lr.shape[-2:]) <= kernel // 2:
        raise FatsrError(f"the input {lr.shape[-1]}x{lr.shape[-2]} is too small for a {kernel}x{kernel} blur")
    results = []
    for model in models:
        print(f"LAM of {model.name}: {steps} steps...", file=sys.stderr)
        results.append(local_attribution_map(model, lr, window, name=model.name, steps=steps, sigma=sigma,
                                             kernel=kernel, definition=definition))  # fmt: skip
    settings = {"image": str(image_path), "window": {"x": window.x, "y": window.y, "size": window.size},
                "scale": scale, "steps": steps, "sigma": sigma, "kernel": kernel,
                "seed": seed, "definition": definition, "from_hr": from_hr}  # fmt: skip
    return LAMReport(lr[0].permute(1, 2, 0).cpu().numpy(), results, window, scale, settings)


def _centre_window(lr_size: torch.Size, scale: int) -> Window:
    height, width = lr_size[0] * scale, lr_size[1] * scale
    size = min(16, height, width)
    return Window((width - size) // 2, (height - size) // 2, size)


def write_json(path: Path, results: list[LAMResult], settings: dict, *, overwrite: bool = False) -> None:
    """Settings and, per model, Gini, DI, run time and the LR pixel of the largest attribution."""
    entries = []
    for r in results:
        row, col = np.unravel_index(int(np.argmax(r.attribution)), r.attribution.shape)
        entries.append({"model": r.name, "gini": _finite(r.gini), "diffusion_index": _finite(r.diffusion_index),
                        "seconds": round(r.seconds, 3), "peak_lr_xy": [int(col), int(row)]})  # fmt: skip
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps({"settings": settings, "models": entries}, indent=2) + "\n")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def write_figure(path: Path, lr: np.ndarray, results: list[LAMResult], window: Window, scale: int,
                 *, overwrite: bool = False) -> None:  # fmt: skip
    """PNG, one row per model: SR output with the window, heat map with colour bar, overlay on the LR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(len(results), 3, figsize=(13, 4.2 * len(results)), squeeze=False)
    lr_window = (window.x / scale, window.y / scale, window.size / scale)
    for row, r in zip(axes, results, strict=True):
        heat = r.attribution / r.attribution.max() if r.attribution.max() > 0 else r.attribution
        _show(row[0], r.sr)
        row[0].set_title(f"{r.name}: output, window {window.size}px at ({window.x}, {window.y})", fontsize=9)
        image = row[1].imshow(heat, cmap="inferno", vmin=0, vmax=1)
        row[1].set_title(f"attribution  Gini {r.gini:.3f}  DI {r.diffusion_index:.2f}", fontsize=9)
        fig.colorbar(image, ax=row[1], fraction=0.046, pad=0.04, label="attribution / max")
        _show(row[2], lr)
        row[2].imshow(heat, cmap="inferno", vmin=0, vmax=1, alpha=0.6)
        row[2].set_title("attribution over the LR input", fontsize=9)
        boxes = [(row[0], (window.x, window.y, window.size)), (row[1], lr_window), (row[2], lr_window)]
        for ax, (x, y, size) in boxes:
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), size, size, fill=False, edgecolor="lime", linewidth=1.5))
            ax.set_xlabel("x (px)")
            ax.set_ylabel("y (px)")
    fig.tight_layout()
    with atomic_write(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _show(ax: Any, image: np.ndarray) -> None:
    """An HWC float image in [0, 1]: RGB, or band 0 in grey."""
    if image.shape[2] == 3:
        ax.imshow(image)
    else:
        ax.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=1)
