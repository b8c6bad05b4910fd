"""A window of a large COG served over HTTP against the same window of a local copy.

Builds an 8192x8192 uint8 RGB COG (256-pixel blocks, deflate, overviews) from a mosaic of the
UC Merced validation fixtures (tests/fixtures/ucmerced/val, flipped and rotated so neighbours
differ), serves it from a local HTTP server on 127.0.0.1 that honours Range requests and
counts the bytes it sends (tests/range_server.py), and times

    fatsr upscale http://127.0.0.1:PORT/rK/scene.tif --window COL ROW 512 512 ...
    fatsr upscale scene.tif --window COL ROW 512 512 ...

each in a fresh process (no GDAL cache carried over), alternating, ``--repeats`` pairs. It
prints wall time, the bytes the server sent (remote) or the bytes the process read (local,
``rchar`` of /proc/self/io over the run, modules imported before: the model file included), the
ratio remote/local of the median times, and whether both outputs are byte-identical.

    python benchmarks/bench_remote_window.py [--model fatsr-x4] [--repeats 3]
        [--window 3000 3000 512 512] [--workdir /tmp/fatsr-bench-remote] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZE = 8192
CHILD = """
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from fatsr.cli import main
# what the run imports, imported before counting: the count is then the scene and the model file
import rasterio.shutil, rasterio.fill, fatsr.inference.pipeline, fatsr.inference.raster, fatsr.models.loading, tqdm
import fatsr.models.fat, fatsr.models.wrapper, fatsr.models.files, fatsr.models.bicubic, fatsr.progress
def rchar():
    return int(next(l for l in open('/proc/self/io') if l.startswith('rchar')).split()[1])
r0, t0 = rchar(), time.perf_counter()
code = main(sys.argv[2:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - t0, "read": rchar() - r0}))
"""


def build_scene(path: Path) -> None:
    """The 8192x8192 RGB mosaic, written strip by strip, copied into a COG."""
    import rasterio
    from PIL import Image
    from rasterio.shutil import copy as gdal_copy
    from rasterio.transform import from_origin

    tiles = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((REPO / "tests/fixtures/ucmerced/val").glob("*.png"))]
    plain = path.with_suffix(".plain.tif")
    profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint8", tiled=True, compress="deflate")
    with rasterio.open(plain, "w", **profile, crs="EPSG:32617", transform=from_origin(400000, 3300000, 0.3, 0.3)) as out:
        for row in range(SIZE // 256):
            strip = np.concatenate(
                [np.rot90(tiles[(row * 7 + col) % len(tiles)], k=(row + col) % 4) for col in range(SIZE // 256)], axis=1
            )
            out.write(np.transpose(strip, (2, 0, 1)), window=((row * 256, row * 256 + 256), (0, SIZE)))
    gdal_copy(plain, path, driver="COG", BLOCKSIZE=256, COMPRESS="DEFLATE", OVERVIEWS="AUTO", NUM_THREADS="ALL_CPUS")
    plain.unlink()


def run(threads: int, argv: list[str]) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, str(threads), *argv], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fatsr-x4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window", type=int, nargs=4, default=[3000, 3000, 512, 512])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fatsr-bench-remote"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from range_server import range_server

    served = args.workdir / "served"
    served.mkdir(parents=True, exist_ok=True)
    scene = served / "scene.tif"
    if not scene.exists():
        t0 = time.perf_counter()
        build_scene(scene)
        print(f"built {scene} ({scene.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f} s")
    size = scene.stat().st_size
    common = ["--model", args.model, "--window", *map(str, args.window), "--overwrite"]
    times: dict[str, list[float]] = {"local": [], "remote": []}
    with range_server(served) as server:
        for k in range(args.repeats):
            for kind in ("remote", "local"):
                out = args.workdir / f"{kind}.tif"
                source = f"{server.url}/r{k}/scene.tif" if kind == "remote" else str(scene)
                result = run(args.threads, ["upscale", source, *common, "-o", str(out)])
                assert result["code"] == 0, result
                got = server.sent[f"/r{k}/scene.tif"] if kind == "remote" else result["read"]
                what = "sent by the server" if kind == "remote" else "read by the process (rchar)"
                times[kind].append(result["seconds"])
                print(f"{kind:6s} pair {k + 1}: {result['seconds']:6.2f} s, {got / 1e6:7.2f} MB {what} "
                      f"({got / size:.1%} of the {size / 1e6:.1f} MB file)", flush=True)  # fmt: skip
    same = hashlib.sha256((args.workdir / "remote.tif").read_bytes()).digest() == hashlib.sha256(
        (args.workdir / "local.tif").read_bytes()
    ).digest()
    local, remote = statistics.median(times["local"]), statistics.median(times["remote"])
    print(f"median: remote {remote:.2f} s, local {local:.2f} s, ratio {remote / local:.2f}; outputs byte-identical: {same}")


if __name__ == "__main__":
    main()
