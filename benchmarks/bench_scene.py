"""Scene-scale GeoTIFF upscaling: peak RSS and time for mosaics of real images.

Builds uint8 RGB GeoTIFF mosaics of the UC Merced training images (256x256 each, written
strip by strip), then upscales each with a fresh compact-preset model (random weights, the
cost is the same) in its own process and reports wall time, LR megapixels per second and
peak RSS (ru_maxrss of that process); the child also times the yardstick (benchmarks/yardstick.py)
before and after, and the time prints as a ratio to it too. Issue 4 targets: peak RSS of the 8192^2 case at most
1.3x that of the 1024^2 case; time proportional to area (+-20%). Issue 15 target: 1024^2 with
2 threads at >= 2x the 0.0245 LR Mpx/s of the code before it (quiet machine).

The upscaling goes through the pipeline of ``fatsr upscale`` (:class:`fatsr.inference.pipeline.Upscaler`)
with its defaults unless --tile, --overlap, --batch or --workers say otherwise.

    python benchmarks/bench_scene.py [--sizes 1024 8192] [--preset compact] [--scale 4]
        [--tile 192] [--overlap 24] [--batch 1] [--workers 2] [--panel 2048] [--threads 2]
        [--workdir /tmp/fatsr-bench-scene] [--model NAME|PATH] [--before]

--model NAME|PATH: a built-in or trained model instead of a random preset network.
--before: each size also runs with the settings before issue 15 (tile 96/24, batch 4, one
forward at a time on all threads), alternating with the default run (--repeats pairs), and
the ratio of the two throughputs prints pair by pair.

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
from inputs import DATA, existing
from PIL import Image
from rasterio.windows import Window
from yardstick import Yardstick

TILES = DATA / "ucmerced" / "train"
BEFORE = 0.0245  # LR Mpx/s, 1024^2, 2 threads, quiet machine, the code before issue 15 (README)
PIECE = 256


def build_mosaic(path: Path, size: int, tiles: Path) -> None:
    """A size x size uint8 RGB GeoTIFF (UTM 17N, 0.3 m) of real images, one strip at a time."""
    images = sorted(tiles.glob("*.png"))
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": 3,
        "width": size,
        "height": size,
        "crs": "EPSG:32617",
        "transform": Affine.translation(400000.0, 3280000.0) @ Affine.scale(0.3, -0.3),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
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
    from dataclasses import replace

    import torch

    from fatsr.inference.pipeline import Upscaler
    from fatsr.inference.tiling import model_device, tile_workers

    torch.set_num_threads(args.threads)
    job = Upscaler.prepare(args.model_file, tile=args.tile, overlap=args.overlap, batch=args.batch)
    job = replace(job, tiling=replace(job.tiling, panel=args.panel, workers=args.workers))
    workers = tile_workers(job.model, model_device(job.model), args.workers)
    yardstick = Yardstick()
    yardstick.measure()
    start, cpu_start = time.perf_counter(), time.process_time()
    job.raster_file(args.source, args.output, overwrite=True)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    yardstick.measure()
    with rasterio.open(args.source) as ds:
        megapixels = ds.width * ds.height / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t = job.tiling
    print(
        json.dumps(
            {
                "lr_mpix": megapixels,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_rss_gib": peak,
                "yardstick_s": yardstick.seconds,
                "tiling": f"{t.tile}/{t.overlap} batch {t.batch}",
                "workers": workers,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument(
        "--tiles", type=Path, default=TILES, help="folder of PNG images the mosaics are made of (default: %(default)s)"
    )
    parser.add_argument("--preset", default="compact")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--tile", type=int, help="default: the pipeline's (the model's advice)")
    parser.add_argument("--overlap", type=int, help="default: the pipeline's (a quarter of the tile, at most 24)")
    parser.add_argument("--batch", type=int, default=0, help="tiles per forward (default 0: by the tile size)")
    parser.add_argument("--workers", type=int, help="tile batches at once (default: one per thread)")
    parser.add_argument("--panel", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--before", action="store_true", help="alternate with the settings before issue 15")
    parser.add_argument("--repeats", type=int, default=1, help="runs (pairs with --before) per size")
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
    from fatsr.models.registry import build_network

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
            sys.executable,
            __file__,
            "--child",
            "--source",
            str(source),
            "--output",
            str(output),
            "--model-file",
            str(model),
            "--panel",
            str(args.panel),
            "--threads",
            str(args.threads),
        ]
        now = child + [
            f"--{k}={v}" for k in ("tile", "overlap", "batch", "workers") if (v := getattr(args, k)) is not None
        ]
        before = child + ["--tile=96", "--overlap=24", "--batch=4", "--workers=1"]
        for _ in range(args.repeats):
            pair = {}
            for name, command in (("now", now), ("before", before))[: 2 if args.before else 1]:
                run = subprocess.run(command, capture_output=True, text=True)
                if run.returncode:
                    raise SystemExit(f"the upscaling process failed:\n{run.stderr[-3000:]}")
                result = json.loads(run.stdout.splitlines()[-1])
                pair[name] = result
                print(
                    f"{size}^2 LR x{args.scale} preset={args.preset} tile {result['tiling']} panel={args.panel} "
                    f"threads={args.threads} workers={result['workers']}{' (before issue 15)' if name == 'before' else ''}: "
                    f"{result['seconds']:.1f} s = {result['seconds'] / result['yardstick_s']:.1f}x yardstick "
                    f"({result['yardstick_s']:.3f} s), {result['lr_mpix'] / result['seconds']:.4f} LR Mpx/s, "
                    f"{result['lr_mpix'] / result['cpu_seconds']:.4f} LR Mpx per CPU-s, "
                    f"peak RSS {result['peak_rss_gib']:.2f} GiB; "
                    f"{result['lr_mpix'] / result['seconds'] / BEFORE:.2f}x the {BEFORE} LR Mpx/s before issue 15",
                    flush=True,
                )
                output.unlink(missing_ok=True)
            if args.before:
                print(
                    f"  throughput now / before, this pair: {pair['before']['seconds'] / pair['now']['seconds']:.2f}x",
                    flush=True,
                )
            results[size] = pair["now"]
    smallest, largest = results[min(results)], results[max(results)]
    print(
        f"peak RSS ratio {max(results)}^2 / {min(results)}^2: {largest['peak_rss_gib'] / smallest['peak_rss_gib']:.2f} (target <= 1.3); "
        f"time per LR Mpx ratio: {(largest['seconds'] / largest['lr_mpix']) / (smallest['seconds'] / smallest['lr_mpix']):.2f} (target 0.8-1.2)"
    )


if __name__ == "__main__":
    main()
