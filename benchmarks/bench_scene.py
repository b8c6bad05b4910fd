"""Scene-scale GeoTIFF upscaling: peak RSS and time for mosaics of real images.

Builds uint8 RGB GeoTIFF mosaics of the UC Merced training images (256x256 each, written
strip by strip), then upscales each with a fresh compact-preset model (random weights, the
cost is the same) in its own process and reports wall time, LR megapixels per second and
peak RSS (ru_maxrss of that process); the child also times the yardstick (benchmarks/yardstick.py)
before and after, and the time prints as a ratio to it too. Issue 4 targets: peak RSS of the 8192^2 case at most
1.3x that of the 1024^2 case; time proportional to area (+-20%).

    python benchmarks/bench_scene.py [--sizes 1024 8192] [--preset compact] [--scale 4]
        [--tile 96] [--overlap 24] [--panel 2048] [--threads 2] [--workdir /tmp/fatsr-bench-scene]
        [--model NAME|PATH]   (a built-in or trained model instead of a random preset network)

Besides wall time it reports LR megapixels per CPU-second of the upscaling process, a figure
a busy machine disturbs much less than the wall clock.

The 8192^2 case at x4 writes a 32768^2 output (a few GB of disk) and takes more than an
hour on a 2-core CPU; start with --sizes 256 1024.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.windows import Window

from inputs import DATA, existing
from yardstick import Yardstick

TILES = DATA / "ucmerced" / "train"
PIECE = 256


def build_mosaic(path: Path, size: int, tiles: Path) -> None:
    """A size x size uint8 RGB GeoTIFF (UTM 17N, 0.3 m) of real images, one strip at a time."""
    images = sorted(tiles.glob("*.png"))
    profile = {
        "driver": "GTiff", "dtype": "uint8", "count": 3, "width": size, "height": size, "crs": "EPSG:32617",
        "transform": Affine.translation(400000.0, 3280000.0) @ Affine.scale(0.3, -0.3),
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }
    with rasterio.open(path, "w", **profile) as out:
        for row in range(0, size, PIECE):
            strip = np.zeros((3, min(PIECE, size - row), size), np.uint8)
            for col in range(0, size, PIECE):
                k = (row // PIECE * 7 + col // PIECE) % len(images)
                with Image.open(images[k]) as im:
                    piece = np.asarray(im.convert("RGB")).transpose(2, 0, 1)
                width = min(PIECE, size - col)
                strip[:, :, col : col + width] = piece[:, : strip.shape[1], :width]
            out.write(strip, window=Window(0, row, size, strip.shape[1]))


def run_one(args: argparse.Namespace) -> None:
    """Child process: upscale one mosaic, print a JSON line with time and peak RSS."""
    import torch

    from fatsr import load_model
    from fatsr.inference.tiling import Tiling
    from fatsr.inference.raster import upscale_raster

    torch.set_num_threads(args.threads)
    model = load_model(args.model_file)
    yardstick = Yardstick()
    yardstick.measure()
    start, cpu_start = time.perf_counter(), time.process_time()
    upscale_raster(args.source, args.output, model, model_file=args.model_file, tiling=Tiling(args.tile, args.overlap, panel=args.panel), overwrite=True)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    yardstick.measure()
    with rasterio.open(args.source) as ds:
        megapixels = ds.width * ds.height / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"lr_mpix": megapixels, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_gib": peak,
                      "yardstick_s": yardstick.seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--tiles", type=Path, default=TILES, help="folder of PNG images the mosaics are made of (default: %(default)s)")
    parser.add_argument("--preset", default="compact")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--tile", type=int, default=96)
    parser.add_argument("--overlap", type=int, default=24)
    parser.add_argument("--panel", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fatsr-bench-scene"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help="a built-in model name or model file (default: a random --preset network)")
    parser.add_argument("--model-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one(args)
        return

    import torch

    from fatsr.models import zoo
    from fatsr.models.files import save_model
    from fatsr.models.presets import build_network

    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.model:
        model = zoo.resolve(args.model)
        args.preset = args.model
    else:
        model = args.workdir / f"{args.preset}-x{args.scale}.safetensors"
        torch.manual_seed(0)
        save_model(model, build_network(args.preset, args.scale), name=f"{args.preset}-random", overwrite=True)
    results = {}
    for size in args.sizes:
        source, output = args.workdir / f"mosaic{size}.tif", args.workdir / f"mosaic{size}_x{args.scale}.tif"
        if not source.exists():
            build_mosaic(source, size, existing(args.tiles, "folder", "--tiles"))
        child = [
            sys.executable, __file__, "--child", "--source", str(source), "--output", str(output),
            "--model-file", str(model), "--tile", str(args.tile), "--overlap", str(args.overlap), "--panel", str(args.panel),
            "--threads", str(args.threads),
        ]
        result = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        results[size] = result
        print(
            f"{size}^2 LR x{args.scale} preset={args.preset} tile={args.tile}/{args.overlap} panel={args.panel} "
            f"threads={args.threads}: "
            f"{result['seconds']:.1f} s = {result['seconds'] / result['yardstick_s']:.1f}x yardstick "
            f"({result['yardstick_s']:.3f} s), {result['lr_mpix'] / result['seconds']:.4f} LR Mpx/s, "
            f"{result['lr_mpix'] / result['cpu_seconds']:.4f} LR Mpx per CPU-s, "
            f"peak RSS {result['peak_rss_gib']:.2f} GiB",
            flush=True,
        )
        output.unlink(missing_ok=True)
    smallest, largest = results[min(results)], results[max(results)]
    print(
        f"peak RSS ratio {max(results)}^2 / {min(results)}^2: {largest['peak_rss_gib'] / smallest['peak_rss_gib']:.2f} (target <= 1.3); "
        f"time per LR Mpx ratio: {(largest['seconds'] / largest['lr_mpix']) / (smallest['seconds'] / smallest['lr_mpix']):.2f} (target 0.8-1.2)"
    )


if __name__ == "__main__":
    main()
