"""Per-domain validation splits cut from the project's real GeoTIFFs (``../shared/data/neon``),
for reporting every model outside its training domain (UC Merced, 0.3 m urban orthophotos).

  forest/     NEON OSBS_029.tif (0.1 m RGB airborne orthophoto of a forest plot, Florida):
              its four 200x200 quarters
  satellite/  RGB.byte_crop512.tif (300 m RGB satellite composite, rasterio's test image):
              its four 256x256 quarters

Written as 8-bit RGB PNGs (the files are uint8 RGB already; nothing is stretched). None of these
pixels is trained on. Run ``fatsr evaluate OUT/forest --model NAME`` (x4: the sides are
multiples of 4) to score a model.

    python scripts/domain_splits.py [--data ../shared/data/neon] [-o splits]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import rasterio
from PIL import Image

SPLITS = {"forest": ("OSBS_029.tif", 200), "satellite": ("RGB.byte_crop512.tif", 256)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "neon")
    parser.add_argument("-o", "--output", type=Path, default=Path("splits"))
    args = parser.parse_args()
    for split, (name, side) in SPLITS.items():
        folder = args.output / split
        folder.mkdir(parents=True, exist_ok=True)
        with rasterio.open(args.data / name) as ds:
            data = ds.read([1, 2, 3]).transpose(1, 2, 0)
        for row in range(2):
            for col in range(2):
                tile = data[row * side : (row + 1) * side, col * side : (col + 1) * side]
                Image.fromarray(tile).save(folder / f"{Path(name).stem}_{row}{col}.png")
        print(f"{folder}: 4 tiles of {side}x{side} from {name}")


if __name__ == "__main__":
    main()
