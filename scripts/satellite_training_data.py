"""8-bit RGB training images from 16-bit satellite rasters, for training across ground sample
distances (the default model's satellite domain).

Each raster's red, green and blue bands (``--rgb``, 1-based) are stretched band by band from
their 2nd to 98th percentile to 0..255, the way a viewer shows them, and written as PNG.

    python scripts/satellite_training_data.py RASTER[:R,G,B] ... -o OUT

Example (the Landsat 8 surface-reflectance clip of scikit-eo's tests, bands B2 B3 B4 B5 B6 B7):
    python scripts/satellite_training_data.py ../shared/data/neon/LC08_232066_20190727_sr_int16_6band.tif:3,2,1 \
        -o data/satellite-train
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image


def stretched(path: Path, bands: tuple[int, int, int]) -> np.ndarray:
    """HWC uint8 of ``bands``, each stretched from its 2nd to 98th percentile (nodata ignored)."""
    with rasterio.open(path) as ds:
        data = ds.read(list(bands), masked=True).astype(np.float64)
    out = np.empty(data.shape[1:] + (3,), np.uint8)
    for i, band in enumerate(data):
        valid = band.compressed()
        lo, hi = np.percentile(valid, [2, 98])
        out[:, :, i] = np.clip(np.round((band.filled(lo) - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rasters", nargs="+", help="RASTER or RASTER:R,G,B (1-based bands; default 1,2,3)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    for item in args.rasters:
        name, _, spec = item.partition(":")
        r, g, b = (int(v) for v in (spec or "1,2,3").split(","))
        image = stretched(Path(name), (r, g, b))
        target = args.output / f"{Path(name).stem}.png"
        Image.fromarray(image).save(target)
        print(f"{target}: {image.shape[1]}x{image.shape[0]} from bands {r},{g},{b} of {name}")


if __name__ == "__main__":
    main()
