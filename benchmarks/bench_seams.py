"""Seams: tiled against whole-image output of the built-in model on a real 400x400 image.

Upscales a 400x400 RGB image once as a single forward pass and once in blended tiles: by
default a mosaic of four UC Merced training images (benchmarks/inputs.py, ``train_mosaic``;
its joins fall between the borders of the default tiles), or --image. It prints
  * PSNR of the tiled output against the whole-image output (8-bit, all pixels), and
  * the mean absolute gradient across tile borders (output columns/rows where a tile starts,
    ends or its blend ramp is centred) divided by the mean elsewhere (issue 4: within 5%).
    "Elsewhere" is phase-matched: for a border at output index p, the other indices q with
    q = p (mod scale). An x4 network's output is not the same at every phase of the LR grid
    (tile borders all fall on LR pixel edges), so an unmatched ratio is off by that alone; the
    whole-image output at the same positions shows how much.

    python benchmarks/bench_seams.py [--tile 96] [--overlap 24] [--threads 2] [--model PATH]
        [--tiles ../shared/data/ucmerced/train | --image RGB.tif]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from inputs import MOSAIC, TRAIN, existing, train_mosaic
from yardstick import Yardstick

import fatsr
from fatsr.inference.tiling import Tiling, tile_borders, upscale_tiled


def seam_ratio(y: np.ndarray, tiling: Tiling, scale: int, matched: bool = True) -> float:
    """Mean |gradient| across tile borders over the mean elsewhere (phase-matched or not),
    for a (C, H, W) image."""
    across, elsewhere = [], []
    for axis in (1, 2):
        g = np.abs(np.diff(y, axis=axis)).mean(axis=tuple(a for a in (0, 1, 2) if a != axis))  # per index
        at = np.zeros(g.size, bool)
        at[[p - 1 for p in tile_borders(y.shape[axis] // scale, tiling, scale)]] = True
        phase = np.arange(g.size) % scale
        for i in np.flatnonzero(at):
            across.append(g[i])
            elsewhere.append(g[~at & (phase == phase[i])].mean() if matched else g[~at].mean())
    return float(np.mean(across) / np.mean(elsewhere))


def to_8bit(y: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(y, 0, 1) * 255)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=96)
    parser.add_argument("--overlap", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help="model file (default: the built-in model)")
    parser.add_argument("--image", type=Path, help="an 8-bit RGB GeoTIFF instead of the mosaic")
    parser.add_argument(
        "--tiles", type=Path, default=TRAIN, help="folder of the mosaic's UC Merced images (default: %(default)s)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = fatsr.load_model(args.model)
    if args.image:
        name = existing(args.image, "file", "--image").name
        with rasterio.open(args.image) as ds:
            image = ds.read().astype(np.float32) / 255
    else:
        name, image = f"mosaic of UC Merced train {', '.join(MOSAIC)}", train_mosaic(args.tiles)
    yardstick = Yardstick()
    yardstick.measure()
    side = max(image.shape[1:])
    start = time.perf_counter()
    whole = to_8bit(upscale_tiled(model, image, Tiling(-(-side // 12) * 12, 0)))  # one tile: a plain forward
    whole_s = time.perf_counter() - start
    tiling = Tiling(args.tile, args.overlap)
    start = time.perf_counter()
    tiled = to_8bit(upscale_tiled(model, image, tiling))
    tiled_s = time.perf_counter() - start
    yardstick.measure()
    psnr = 10 * np.log10(255**2 / np.mean((tiled - whole) ** 2))
    print(f"{name} {image.shape[2]}x{image.shape[1]}, model {model.name} x{model.scale}, threads {args.threads}")
    print(
        f"whole image: {whole_s:.1f} s ({yardstick.ratio(whole_s)} yardstick); "
        f"tiled {args.tile}/{args.overlap}: {tiled_s:.1f} s ({yardstick.ratio(tiled_s)} yardstick)"
    )
    print(yardstick.describe())
    print(f"tiled vs whole-image PSNR: {psnr:.2f} dB")
    for matched in (True, False):
        name = "phase-matched" if matched else "unmatched"
        print(
            f"seam ratio, {name} (gradient across tile borders / elsewhere): "
            f"tiled {seam_ratio(tiled, tiling, model.scale, matched):.4f}, "
            f"whole image at the same positions {seam_ratio(whole, tiling, model.scale, matched):.4f}"
        )
    print("target: tiled phase-matched ratio within 0.95-1.05")


if __name__ == "__main__":
    main()
