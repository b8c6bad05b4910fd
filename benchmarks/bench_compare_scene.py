"""Scene comparison pages: time, peak RSS and page size of `fatsr compare` on big GeoTIFFs.

Builds a synthetic uint16 3-band GeoTIFF of N x N pixels (tiled, deflate, written window by
window; smooth noise, so every region differs), then makes its compare page (bicubic and a
fresh compact-preset model, random weights: the cost is the same) in a separate process and
reports wall time, peak RSS (ru_maxrss of that process) and the size of the HTML page. The
page holds an overview and --regions regions whatever N is, so time and memory should hardly
grow with the scene (only the decimated overview and stretch reads do).

    python benchmarks/bench_compare_scene.py [--sizes 1024 10240] [--regions 16] [--overviews]
        [--threads 2] [--workdir /tmp/fatsr-bench-compare]
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
from rasterio.enums import Resampling
from rasterio.windows import Window

STRIP = 512


def build_scene(path: Path, size: int, overviews: bool) -> None:
    """A size x size uint16 RGB GeoTIFF (UTM 21N, 30 m) of smooth noise, one strip at a time."""
    profile = {"driver": "GTiff", "dtype": "uint16", "count": 3, "width": size, "height": size, "crs": "EPSG:32621",
               "transform": Affine(30.0, 0, 600000.0, 0, -30.0, 7000000.0), "tiled": True, "blockxsize": 256,
               "blockysize": 256, "compress": "deflate"}  # fmt: skip
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as out:
        for top in range(0, size, STRIP):
            rows = min(STRIP, size - top)
            coarse = rng.integers(6000, 12000, (3, rows // 16 + 1, size // 16 + 1)).astype(np.float64)
            block = coarse.repeat(16, axis=1).repeat(16, axis=2)[:, :rows, :size]
            block += rng.normal(0, 300, block.shape)
            out.write(block.clip(0, 65535).astype(np.uint16), window=Window(0, top, size, rows))
        if overviews:
            out.build_overviews([2, 4, 8, 16, 32], Resampling.average)


def run_one(scene: str, page: str, regions: int, threads: int, model: str) -> dict:
    import torch

    torch.set_num_threads(threads)
    from fatsr.cli import main

    start = time.perf_counter()
    code = main(
        ["compare", scene, "--model", "bicubic", "--model", model, "--regions", str(regions), "-o", page, "--overwrite"]
    )
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"exit": code, "seconds": seconds, "peak_rss_gib": rss, "page_mb": Path(page).stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 10240])
    parser.add_argument("--regions", type=int, default=16)
    parser.add_argument("--overviews", action="store_true", help="give the scenes internal overviews")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fatsr-bench-compare"))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], args.child[1], args.regions, args.threads, args.child[2])))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.workdir / "compact.safetensors"
    if not model.exists():
        import torch

        from fatsr.models.files import save_model
        from fatsr.models.registry import build_network

        torch.manual_seed(0)
        save_model(model, build_network("compact", 4), name="compact (random)")
    for size in args.sizes:
        scene = args.workdir / f"scene_{size}{'_ovr' if args.overviews else ''}.tif"
        if not scene.exists():
            build_scene(scene, size, args.overviews)
        page = args.workdir / f"page_{size}.html"
        result = subprocess.run(
            [sys.executable, __file__, "--regions", str(args.regions), "--threads", str(args.threads),
             "--child", str(scene), str(page), str(model), "-"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{size}^2 LR ({scene.stat().st_size / 1e6:.0f} MB file), {args.regions} regions of 128: "
              f"{figures['seconds']:.1f} s, peak RSS {figures['peak_rss_gib']:.2f} GiB, page {figures['page_mb']:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
