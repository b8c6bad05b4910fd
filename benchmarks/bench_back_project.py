"""``--back-project`` where values clip: the largest gap between an output block's mean and its
input pixel, with the clipped excess handed to the block's other pixels (now) and with one
shift per block clipped afterwards (``--before``: what back-projection did before).

Inputs: the two uint8 NEON orthophoto files (valid pixels only), and the Landsat L1TP uint16
crop turned into a 12-bit product ((DN - 6000) * 2, clipped to 0..4095, NBITS=12: about
1% of its pixels at each end), upscaled x4 by the built-in model.

    python benchmarks/bench_back_project.py [--model fatsr-x4] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import torch
from inputs import DATA, existing

from fatsr.inference.options import RasterOptions
from fatsr.inference.raster import upscale_raster
from fatsr.models.loading import load_model
from fatsr.values import ValueMapping

NEON = DATA / "neon"


def twelve_bit(src: Path, dst: Path) -> Path:
    with rasterio.open(src) as ds:
        data = np.clip((ds.read().astype(np.float64) - 6000) * 2, 0, 4095).astype(np.uint16)
        profile = ds.profile | {"nbits": 12, "predictor": 1}
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
    return dst


def worst_gap(src: Path, dst: Path, scale: int) -> tuple[float, float, float]:
    """(largest |block mean - input| over valid pixels, share of them above 0.5, share of input
    pixels at either end of the range)."""
    with rasterio.open(src) as ds:
        lr, valid = ds.read().astype(np.float64), ds.read_masks() > 0
        top = 2 ** int(ds.tags(1, ns="IMAGE_STRUCTURE").get("NBITS", 8 * np.dtype(ds.dtypes[0]).itemsize)) - 1
    with rasterio.open(dst) as ds:
        out = ds.read().astype(np.float64)
    c, h, w = lr.shape
    gap = np.abs(out.reshape(c, h, scale, w, scale).mean(axis=(2, 4)) - lr)[valid]
    ends = float(np.mean((lr[valid] == 0) | (lr[valid] == top)))
    return float(gap.max()), float(np.mean(gap > 0.5)), ends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fatsr-x4")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    limits = ValueMapping.unit_limits
    print(
        "| input | valid pixels at 0 or the top | before: largest gap (DN), share > 0.5 DN | now: largest gap (DN), share > 0.5 DN |"
    )
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        files = [existing(NEON / "OSBS_029.tif", "file", "(the data folder)"),
                 existing(NEON / "RGB.byte_crop512.tif", "file", "(the data folder)"),
                 twelve_bit(existing(NEON / "LC08_L1TP_224078_20200518_uint16_3band_crop512.tif", "file",
                                     "(the data folder)"), Path(tmp) / "l1tp_12bit.tif")]  # fmt: skip
        for src in files:
            cells = []
            for before in (True, False):
                ValueMapping.unit_limits = (lambda *a, **k: None) if before else limits  # type: ignore[method-assign]
                dst = Path(tmp) / "out.tif"
                upscale_raster(src, dst, model, options=RasterOptions(back_project=True, cog=False), overwrite=True)
                gap, share, ends = worst_gap(src, dst, model.scale)
                cells.append(f"{gap:.2f}, {share:.2%}")
            print(f"| {src.name} | {ends:.2%} | {cells[0]} | {cells[1]} |", flush=True)
    ValueMapping.unit_limits = limits  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
