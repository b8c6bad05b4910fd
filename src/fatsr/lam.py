"""Local Attribution Maps (Gu & Dong, CVPR 2021) for any SR model.

The attribution of an output window is the path integral of the gradient of the window's
summed gradient magnitude, along a progressive-blurring path from the LR input blurred by a
Gaussian (``sigma``, ``kernel`` x ``kernel``) to the LR input itself. The Gini index of the
map measures how concentrated it is; the diffusion index DI = (1 - Gini) x 100 how widely
the model looks. Models must be deterministic (an :class:`~fatsr.models.wrapper.SRModel`
re-seeds its LSH rotations at every call, so the path sees one fixed network).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fatsr.errors import FatsrError
from fatsr.io import atomic_write


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


def blur(x: Tensor, sigma: float, kernel: int) -> Tensor:
    """Per-channel Gaussian blur of NCHW ``x`` (reflect padding); ``sigma`` 0 returns ``x``."""
    if sigma <= 0:
        return x
    offsets = torch.arange(kernel, dtype=x.dtype, device=x.device) - (kernel - 1) / 2
    g = torch.exp(-(offsets**2) / (2 * sigma**2))
    g = g / g.sum()
    channels = x.shape[1]
    weight = (g[:, None] * g[None, :]).expand(channels, 1, kernel, kernel)
    pad = kernel // 2
    return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), weight, groups=channels)


def window_gradient_magnitude(sr: Tensor, window: Window) -> Tensor:
    """Sum over ``window`` of the gradient magnitude (forward differences) of the channel mean."""
    patch = sr[:, :, window.y : window.y + window.size, window.x : window.x + window.size].mean(dim=1)
    dx = patch[:, :-1, 1:] - patch[:, :-1, :-1]
    dy = patch[:, 1:, :-1] - patch[:, :-1, :-1]
    return torch.sqrt(dx**2 + dy**2 + 1e-8).sum()


def path_attribution(model: nn.Module, lr: Tensor, window: Window, *, steps: int = 50,
                     sigma: float = 1.2, kernel: int = 9) -> tuple[Tensor, Tensor]:  # fmt: skip
    """(HW attribution = |sum over the path of gradient x step| summed over channels, SR output)
    for a (1, C, H, W) ``lr`` in [0, 1]."""
    if steps < 1 or kernel < 1 or kernel % 2 == 0 or sigma <= 0:
        raise FatsrError(f"need steps >= 1, an odd kernel and sigma > 0; got {steps}, {kernel}, {sigma}")
    if min(lr.shape[-2:]) <= kernel // 2:
        raise FatsrError(f"the input {lr.shape[-1]}x{lr.shape[-2]} is too small for a {kernel}x{kernel} blur")
    with torch.no_grad():
        path = [blur(lr, sigma * (1 - i / steps), kernel) for i in range(steps + 1)]
        sr = model(lr)
    window.check(*sr.shape[-2:])
    total = torch.zeros_like(lr)
    for i in range(steps):
        x = path[i].detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(window_gradient_magnitude(model(x), window), x)
        total += grad * (path[i + 1] - path[i])
    return total[0].abs().sum(dim=0), sr


def gini(values: np.ndarray) -> float:
    """Gini index of non-negative values: 0 when all equal, (n-1)/n when one holds everything;
    nan when all are zero."""
    v = np.sort(np.abs(np.asarray(values, dtype=np.float64)).ravel())
    n, total = v.size, v.sum()
    if total == 0:
        return float("nan")
    ranks = np.arange(1, n + 1)
    return float(2 * np.sum(ranks * v) / (n * total) - (n + 1) / n)


def local_attribution_map(model: nn.Module, lr: Tensor, window: Window, *, name: str = "model",
                          steps: int = 50, sigma: float = 1.2, kernel: int = 9) -> LAMResult:  # fmt: skip
    """LAM of ``model`` for ``window`` of its output on the (1, C, H, W) input ``lr`` in [0, 1]."""
    start = time.perf_counter()
    attribution, sr = path_attribution(model, lr, window, steps=steps, sigma=sigma, kernel=kernel)
    seconds = time.perf_counter() - start
    g = gini(attribution.cpu().numpy())
    return LAMResult(
        name=name,
        attribution=attribution.cpu().numpy(),
        sr=sr[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy(),
        gini=g,
        diffusion_index=(1 - g) * 100,
        seconds=seconds,
    )


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


def _show(ax, image: np.ndarray) -> None:
    """An HWC float image in [0, 1]: RGB, or band 0 in grey."""
    if image.shape[2] == 3:
        ax.imshow(image)
    else:
        ax.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=1)
