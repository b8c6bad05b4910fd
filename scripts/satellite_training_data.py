"""8-bit RGB images from 16-bit satellite rasters, for training and validating across ground
sample distances (the default model's satellite domain).

Each scene's red, green and blue bands are stretched band by band from their 2nd to 98th
percentile to 0..255, the way a viewer shows them, and written as PNG, whole or cut into
``--tile`` x ``--tile`` tiles (the remainder at the right and bottom is dropped). A scene is
RASTER:R,G,B (1-based bands of one file; default 1,2,3) or RED+GREEN+BLUE (three one-band files).

    python scripts/satellite_training_data.py SCENE ... -o OUT [--tile N]

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


def read_scene(scene: str) -> tuple[str, np.ma.MaskedArray]:
    """(name, 3 x H x W masked float64) of RASTER:R,G,B or RED+GREEN+BLUE."""
    if "+" in scene:
        planes = []
        for name in scene.split("+"):
            with rasterio.open(name) as ds:
                planes.append(ds.read(1, masked=True).astype(np.float64))
        return Path(scene.split("+")[0]).stem, np.ma.stack(planes)
    name, _, spec = scene.partition(":")
    bands = [int(v) for v in (spec or "1,2,3").split(",")]
    with rasterio.open(name) as ds:
        return Path(name).stem, ds.read(bands, masked=True).astype(np.float64)


def stretched(data: np.ma.MaskedArray) -> np.ndarray:
    """HWC uint8 of three bands, each stretched from its 2nd to 98th percentile (nodata ignored)."""
    out = np.empty(data.shape[1:] + (3,), np.uint8)
    for i, band in enumerate(data):
        valid = band.compressed()
        lo, hi = np.percentile(valid, [2, 98])
        out[:, :, i] = np.clip(np.round((band.filled(lo) - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenes", nargs="+", help="RASTER[:R,G,B] (1-based bands; default 1,2,3) or RED+GREEN+BLUE")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--tile", type=int, default=0, help="cut into tiles of this side (default: whole scenes)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    for scene in args.scenes:
        name, data = read_scene(scene)
        image = stretched(data)
        h, w = image.shape[:2]
        side = args.tile
        tiles = {name: image} if not side else {
            f"{name}_{r:02d}{c:02d}": image[r * side : (r + 1) * side, c * side : (c + 1) * side]
            for r in range(h // side) for c in range(w // side)
        }  # fmt: skip
        for stem, tile in tiles.items():
            Image.fromarray(np.ascontiguousarray(tile)).save(args.output / f"{stem}.png")
        print(f"{args.output}: {len(tiles)} image(s) from {w}x{h} {scene}")


if __name__ == "__main__":
    main()
