"""An independent LAM computation, written from the definitions of the reference code
(LAM_Demo, Gu & Dong, CVPR 2021), to check ``fatsr lam``'s default figures against.

Nothing of :mod:`fatsr.evaluation.lam` is used: only the model comes from fatsr. The LR is the HR cropped
to a multiple of 4 and downscaled by Pillow bicubic; the path images are OpenCV ``filter2D``
of the LR with Gaussians of sigma linspace(sigma, 0, steps + 1) + 1e-5; the objective is the
sum over channels and the window of sqrt(vertical^2 + horizontal^2) forward differences on the
whole SR image's (H-1, W-1) grid; each step's gradient is taken at its right end and times
filter2D(LR, k[i+1] - k[i]); NaN gradients are zeroed; the map is |sum over channels|, divided
by its maximum, and its Gini index is computed after adding 1e-7.

    python benchmarks/lam_reference.py HR.png --window 120 120 16 [--model PATH] [--steps 50]

Needs opencv-python (not a fatsr dependency).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch
from PIL import Image

import fatsr


def gaussian(size: int, sigma: float) -> np.ndarray:
    axis = np.arange(size, dtype=np.float64) - size // 2
    xx, yy = np.meshgrid(axis, axis)
    k = np.exp(-(xx**2 + yy**2) / (2.0 * (sigma + 1e-5) ** 2))
    return k / k.sum()


def objective(sr: torch.Tensor, x: int, y: int, size: int) -> torch.Tensor:
    vertical = (sr[:, :, :-1, :] - sr[:, :, 1:, :]) ** 2
    horizontal = (sr[:, :, :, :-1] - sr[:, :, :, 1:]) ** 2
    magnitude = torch.sqrt(vertical[:, :, :, :-1] + horizontal[:, :, :-1, :])
    return magnitude[:, :, y : y + size, x : x + size].sum()


def gini_index(values: np.ndarray) -> float:
    v = np.sort(values.ravel().astype(np.float64) + 1e-7)
    n = v.size
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * v) / (n * v.sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hr")
    parser.add_argument("--window", nargs=3, type=int, required=True, metavar=("X", "Y", "SIZE"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--sigma", type=float, default=1.2)
    parser.add_argument("--kernel", type=int, default=9)
    args = parser.parse_args()
    model = fatsr.load_model(args.model)
    scale = model.scale
    hr = Image.open(args.hr).convert("RGB")
    hr = hr.crop((0, 0, hr.width - hr.width % scale, hr.height - hr.height % scale))
    lr = np.asarray(hr.resize((hr.width // scale, hr.height // scale), Image.BICUBIC), dtype=np.float32) / 255.0
    kernels = [gaussian(args.kernel, s) for s in np.linspace(args.sigma, 0, args.steps + 1)]
    total = np.zeros(lr.shape, dtype=np.float64)
    x, y, size = args.window
    for i in range(args.steps):
        point = cv2.filter2D(lr, -1, kernels[i + 1])
        derivative = cv2.filter2D(lr, -1, (kernels[i + 1] - kernels[i]) * args.steps)
        tensor = torch.from_numpy(np.ascontiguousarray(point.transpose(2, 0, 1)))[None].requires_grad_(True)
        objective(model(tensor), x, y, size).backward()
        grad = tensor.grad[0].numpy().transpose(1, 2, 0)
        grad = np.where(np.isnan(grad), 0.0, grad)
        total += grad * derivative
    attribution = np.abs((total / args.steps).sum(axis=2))
    g = gini_index(attribution / attribution.max())
    print(f"reference LAM: Gini {g:.6f}  DI {(1 - g) * 100:.6f}  (window {x},{y},{size}, {args.steps} steps)")


if __name__ == "__main__":
    main()
