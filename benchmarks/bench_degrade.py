"""Degradation throughput (images/s) on 256x256 HR images, 1 process, 1 thread.

Usage: python benchmarks/bench_degrade.py [--preset fat] [--images 20]
Reads UC Merced training images from ../shared/data (decoding not timed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from fatsr.data.datasets import find_images
from fatsr.data.degrade import degrade, image_rng
from fatsr.data.degrade_presets import load_preset
from fatsr.io import read_image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ucmerced" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fat")
    parser.add_argument("--images", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    preset = load_preset(args.preset)
    images = [read_image(p) for p in find_images(DATA)[: args.images]]
    degrade(images[0], 4, preset, image_rng(0, "warm-up"))
    start = time.perf_counter()
    for i, hr in enumerate(images):
        degrade(hr, 4, preset, image_rng(0, str(i)))
    elapsed = time.perf_counter() - start
    shape = "x".join(map(str, images[0].shape[:2]))
    print(
        f"preset {args.preset}, x4, {len(images)} images of {shape}: {len(images) / elapsed:.1f} images/s "
        f"({1000 * elapsed / len(images):.0f} ms/image), 1 thread"
    )


if __name__ == "__main__":
    main()
