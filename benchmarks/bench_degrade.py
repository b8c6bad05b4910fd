"""Degradation throughput (images/s) on 256x256 HR images, 1 process, 1 thread.

Usage: python benchmarks/bench_degrade.py [--preset fat] [--images 20]
       python benchmarks/bench_degrade.py --batched [--preset fat] [--batch 16] [--repeats 3]
Reads UC Merced training images from ../shared/data (decoding not timed). Times print also as
ratios to the yardstick (benchmarks/yardstick.py), timed in the same process.

--batched times BatchDegrader (the degradation of `fatsr train --degradation`) on one batch
with 1 and 2 threads, then the overhead it adds to a compact-preset x4 training step (batch 8,
LR 48x48, L1 + 0.1 LEV, Adam, 2 threads) over the same step on bicubic LR.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from inputs import DATA, existing
from yardstick import Yardstick

from fatsr.data import bicubic_downscale, quantize
from fatsr.data.datasets import find_images
from fatsr.data.degrade import degrade, image_rng
from fatsr.data.degrade_batch import BatchDegrader, degradation_rngs
from fatsr.data.degrade_presets import load_preset
from fatsr.io import read_image

YARDSTICK = Yardstick()

TRAIN = DATA / "ucmerced" / "train"


def hr_batch(folder: Path, count: int, size: int) -> torch.Tensor:
    """(count, 3, size, size) float HR crops of UC Merced training images."""
    crops = [read_image(p)[:size, :size, :3] for p in find_images(folder)[:count]]
    return torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy()).float() / 255


def median_seconds(runs: list[Callable[[int], object]], repeats: int) -> list[float]:
    """Median time of each ``run(i)`` for i in 1..repeats, after a warm-up run(0); the runs
    take turns, so that a change in the machine's load hits them alike."""
    for run in runs:
        run(0)
    times: list[list[float]] = [[] for _ in runs]
    for i in range(1, repeats + 1):
        for run, seconds in zip(runs, times):
            start = time.perf_counter()
            run(i)
            seconds.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def step_overhead(degrader: BatchDegrader, hr: torch.Tensor, repeats: int) -> None:
    """Compact x4 training step, batch 8 of 48x48 LR, on bicubic LR and with the degradation."""
    from fatsr.losses import FATLoss
    from fatsr.models.registry import build_network
    from fatsr.training.train import training_step

    torch.set_num_threads(2)
    torch.manual_seed(0)
    network = build_network("compact", scale=4)
    loss_fn = FATLoss({"l1": 1.0, "perceptual": 0.0, "lev": 0.1})
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    hr = hr[:8, :, :192, :192]
    bicubic = quantize(bicubic_downscale(hr, 4), 255)

    def degrade_only(i: int) -> torch.Tensor:
        return degrader(hr, *degradation_rngs(0, i, 0, hr.shape[0]))

    def plain(i: int) -> None:
        training_step(network, loss_fn, optimizer, bicubic * 2 - 1, hr * 2 - 1)

    def degraded(i: int) -> None:
        training_step(network, loss_fn, optimizer, degrade_only(i) * 2 - 1, hr * 2 - 1)

    alone, base, with_degradation = median_seconds([degrade_only, plain, degraded], repeats)
    print(
        f"compact x4 training step, batch 8, LR 48x48, 2 threads: {base:.2f} s on bicubic LR, "
        f"{with_degradation:.2f} s with the degradation ({with_degradation - base:+.2f} s, "
        f"{100 * (with_degradation - base) / base:+.0f}%; degradation alone {alone:.2f} s = "
        f"{YARDSTICK.ratio(alone)} yardstick)"
    )


def batched(folder: Path, preset_name: str, batch: int, repeats: int) -> None:
    """Throughput of BatchDegrader on one batch of 256x256 HR images, 1 and 2 threads."""
    degrader = BatchDegrader(load_preset(preset_name), 4)
    hr = hr_batch(folder, max(batch, 8), 256)[:batch]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        (seconds,) = median_seconds([lambda i: degrader(hr, *degradation_rngs(0, i, 0, hr.shape[0]))], repeats)
        print(
            f"batched, preset {preset_name}, x4, batch {batch} of 256x256: {batch / seconds:.1f} images/s "
            f"({1000 * seconds / batch:.0f} ms/image, batch {YARDSTICK.ratio(seconds)} yardstick), "
            f"{threads} thread{'s' if threads > 1 else ''}"
        )
    step_overhead(degrader, hr_batch(folder, 8, 192), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-dir", type=Path, default=TRAIN, help="folder of HR images (default: %(default)s)")
    parser.add_argument("--preset", default="fat")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--batched", action="store_true", help="time the batched training degradation")
    parser.add_argument("--batch", type=int, default=16, help="batch size of --batched")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of --batched (median)")
    args = parser.parse_args()
    folder = existing(args.images_dir, "folder", "--images-dir")
    YARDSTICK.measure()
    if args.batched:
        batched(folder, args.preset, args.batch, args.repeats)
        YARDSTICK.measure()
        print(YARDSTICK.describe())
        return
    torch.set_num_threads(1)
    preset = load_preset(args.preset)
    images = [read_image(p) for p in find_images(folder)[: args.images]]
    degrade(images[0], 4, preset, image_rng(0, "warm-up"))
    start = time.perf_counter()
    for i, hr in enumerate(images):
        degrade(hr, 4, preset, image_rng(0, str(i)))
    elapsed = time.perf_counter() - start
    YARDSTICK.measure()
    shape = "x".join(map(str, images[0].shape[:2]))
    print(
        f"preset {args.preset}, x4, {len(images)} images of {shape}: {len(images) / elapsed:.1f} images/s "
        f"({1000 * elapsed / len(images):.0f} ms/image; {len(images)} images {YARDSTICK.ratio(elapsed)} yardstick), 1 thread"
    )
    print(YARDSTICK.describe())


if __name__ == "__main__":
    main()
