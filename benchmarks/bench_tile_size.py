"""What the tile size does to the built-in model's output: difference between tilings, seams,
agreement with the untiled output, and PSNR against ground truth.

For each tiling (the first is the reference) it prints
  * on ``examples/harbor55.png`` and a 400x400 mosaic of four UC Merced training images
    (benchmarks/inputs.py, ``train_mosaic``), each as LR input:
    the largest difference from the reference tiling (on [0, 1] and in 8-bit levels), the PSNR
    of the tiled output against the whole image in one forward pass, and the phase-matched
    seam ratio (see bench_seams.py) beside the whole-image output's at the same positions;
  * on 1024^2 HR mosaics of 16 UC Merced val images each (LR by Pillow bicubic x4): PSNR-Y
    (border 4) against the HR, and the mean difference from the reference in 8-bit levels.
It also times the yardstick (benchmarks/yardstick.py) and each tiling's CPU seconds on the
mosaics, as ratios to it.

    python benchmarks/bench_tile_size.py [--tilings 96/24 192/24] [--mosaics 2] [--threads 1] [--model NAME|PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from bench_seams import seam_ratio, to_8bit
from inputs import DATA, existing, train_mosaic
from PIL import Image
from yardstick import Yardstick

import fatsr
from fatsr.evaluation.metrics import psnr
from fatsr.inference.tiling import Tiling, upscale_tiled

HARBOR = Path(__file__).resolve().parents[1] / "examples" / "harbor55.png"
VAL = DATA / "ucmerced" / "val"


def whole(model, image: np.ndarray) -> np.ndarray:
    side = max(image.shape[1:])
    return upscale_tiled(model, image, Tiling(-(-side // 12) * 12, 0))  # one tile: a plain forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tilings", nargs="+", default=["96/24", "192/24"], help="TILE/OVERLAP, the first is the reference"
    )
    parser.add_argument("--mosaics", type=int, default=2, help="HR mosaics of 16 val images (default: 2)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", help="model file or built-in name (default: the built-in model)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = fatsr.load_model(args.model)
    tilings = [Tiling(*map(int, t.split("/"))) for t in args.tilings]
    yardstick = Yardstick()
    yardstick.measure()
    print(f"model {model.name} x{model.scale}, threads {args.threads}, tilings {' '.join(args.tilings)}")
    images = {"harbor55": np.asarray(Image.open(HARBOR).convert("RGB")).transpose(2, 0, 1).astype(np.float32) / 255}
    images["train mosaic"] = train_mosaic()
    for name, image in images.items():
        one = whole(model, image)
        reference = None
        for tiling, label in zip(tilings, args.tilings):
            y = upscale_tiled(model, image, tiling)
            reference = y if reference is None else reference
            y8, one8 = to_8bit(y), to_8bit(one)
            print(
                f"{name} {label}: max |diff| from {args.tilings[0]} {np.abs(y - reference).max():.4f} "
                f"({np.abs(y8 - to_8bit(reference)).max():.0f} levels); "
                f"vs whole image PSNR {10 * np.log10(255**2 / np.mean((y8 - one8) ** 2)):.2f} dB; "
                f"seam ratio {seam_ratio(y8, tiling, model.scale):.4f} (whole image there {seam_ratio(one8, tiling, model.scale):.4f})",
                flush=True,
            )
    files = sorted(existing(VAL, "folder", "(data)").glob("*.png"))
    for m in range(args.mosaics):
        hr = np.zeros((1024, 1024, 3), np.uint8)
        for k in range(16):
            with Image.open(files[(m * 16 + k) % len(files)]) as im:
                hr[k // 4 * 256 : k // 4 * 256 + 256, k % 4 * 256 : k % 4 * 256 + 256] = np.asarray(
                    im.convert("RGB").resize((256, 256))
                )
        lr = (
            np.asarray(Image.fromarray(hr).resize((256, 256), Image.BICUBIC)).transpose(2, 0, 1).astype(np.float32)
            / 255
        )
        reference = None
        for tiling, label in [*zip(tilings, args.tilings), (Tiling(264, 0), "whole")]:
            cpu = time.process_time()
            y = np.rint(np.clip(upscale_tiled(model, lr, tiling), 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
            cpu = time.process_time() - cpu
            reference = y if reference is None else reference
            print(
                f"mosaic {m} {label}: PSNR-Y vs HR {psnr(y, hr, border=4):.3f} dB, mean |diff| from {args.tilings[0]} "
                f"{np.abs(y.astype(float) - reference).mean():.3f} levels, {cpu:.1f} s CPU = {yardstick.cpu_ratio(cpu)} yardstick",
                flush=True,
            )
    yardstick.measure()
    print(yardstick.describe())


if __name__ == "__main__":
    main()
