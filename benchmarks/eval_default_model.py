"""Validation figures of a model (default: the shipped one) on UC Merced val, x4, next to
bicubic, with the literature's convention (PSNR/SSIM on BT.601 Y, border 4, 8-bit images),
and the time to upscale one 256x256 image on this CPU.

    python benchmarks/eval_default_model.py [--model PATH] [--val DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from inputs import DATA, existing
from yardstick import Yardstick

import fatsr
from fatsr.data import ValDataset
from fatsr.evaluation.metrics import psnr, ssim

VAL = DATA / "ucmerced" / "val"


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--val", type=Path, default=VAL, help="folder of HR validation images (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = fatsr.load_model(args.model)
    scores: dict[str, list[float]] = {"sr_psnr": [], "sr_ssim": [], "bic_psnr": [], "bic_ssim": []}
    dataset = ValDataset(existing(args.val, "folder", "--val"), 4)
    for i in range(len(dataset)):
        item = dataset[i]
        lr, hr = item["lr"][None], to_uint8(item["hr"][None])
        with torch.inference_mode():
            sr = to_uint8(model(lr))
        bic = to_uint8(F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False))
        scores["sr_psnr"].append(psnr(sr, hr, border=4))
        scores["sr_ssim"].append(ssim(sr, hr, border=4))
        scores["bic_psnr"].append(psnr(bic, hr, border=4))
        scores["bic_ssim"].append(ssim(bic, hr, border=4))
    mean = {k: statistics.fmean(v) for k, v in scores.items()}
    print(f"{len(dataset)} images, x4, Y channel (BT.601), border 4")
    print(f"bicubic: PSNR {mean['bic_psnr']:.3f} dB  SSIM {mean['bic_ssim']:.4f}")
    print(
        f"model:   PSNR {mean['sr_psnr']:.3f} dB  SSIM {mean['sr_ssim']:.4f}  "
        f"(+{mean['sr_psnr'] - mean['bic_psnr']:.3f} dB)"
    )

    x = torch.rand(1, 3, 256, 256)
    yardstick = Yardstick()
    yardstick.measure()
    times = []
    with torch.inference_mode():
        for _ in range(4):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    yardstick.measure()
    seconds = statistics.median(times[1:])
    print(
        f"upscale 256x256 -> 1024x1024: {seconds:.2f} s = {yardstick.ratio(seconds)} yardstick "
        f"(median of 3 after a warm-up, {args.threads} threads)"
    )
    print(yardstick.describe())


if __name__ == "__main__":
    main()
