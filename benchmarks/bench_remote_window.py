"""A window of a large COG served over HTTP against the same window of a local copy.

Builds an 8192x8192 uint8 RGB COG (256-pixel blocks, deflate, overviews) from a mosaic of the
UC Merced validation fixtures (tests/fixtures/ucmerced/val, flipped and rotated so neighbours
differ), serves it from a local HTTP server on 127.0.0.1 that honours Range requests and
counts the bytes it sends (tests/range_server.py), and times

    fatsr upscale http://127.0.0.1:PORT/rK/scene.tif --window COL ROW 512 512 ...
    fatsr upscale scene.tif --window COL ROW 512 512 ...

each in a fresh process (no GDAL cache carried over), alternating, ``--repeats`` pairs. It
prints wall time (of the upscaling call, imports excluded), the bytes the server sent, the
bytes one more local run reads from the scene file (read/pread64 calls on it, counted with
strace where it is installed), the ratio remote/local of the median times, and whether both
outputs are byte-identical.

    python benchmarks/bench_remote_window.py [--model fatsr-x4] [--repeats 3]
        [--window 3000 3000 512 512] [--workdir /tmp/fatsr-bench-remote] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
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
t0 = time.perf_counter()
code = main(sys.argv[2:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - t0}))
"""


def build_scene(path: Path) -> None:
    """The 8192x8192 RGB mosaic, written strip by strip, copied into a COG."""
    import rasterio
    from PIL import Image
    from rasterio.shutil import copy as gdal_copy
    from rasterio.transform import from_origin

    tiles = [
        np.asarray(Image.open(p).convert("RGB")) for p in sorted((REPO / "tests/fixtures/ucmerced/val").glob("*.png"))
    ]
    plain = path.with_suffix(".plain.tif")
    profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint8", tiled=True, compress="deflate")
    with rasterio.open(
        plain, "w", **profile, crs="EPSG:32617", transform=from_origin(400000, 3300000, 0.3, 0.3)
    ) as out:
        for row in range(SIZE // 256):
            strip = np.concatenate(
                [np.rot90(tiles[(row * 7 + col) % len(tiles)], k=(row + col) % 4) for col in range(SIZE // 256)], axis=1
            )
            out.write(np.transpose(strip, (2, 0, 1)), window=((row * 256, row * 256 + 256), (0, SIZE)))
    gdal_copy(plain, path, driver="COG", BLOCKSIZE=256, COMPRESS="DEFLATE", OVERVIEWS="AUTO", NUM_THREADS="ALL_CPUS")
    plain.unlink()


def run(threads: int, argv: list[str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), *argv], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def bytes_read_under_strace(threads: int, argv: list[str], path: Path, trace: Path) -> int:
    """The bytes the run reads from ``path`` (read/pread64 on its descriptors, by strace)."""
    command = [sys.executable, "-c", CHILD, str(threads), *argv]
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat,close,read,pread64", "-o", str(trace), *command],
                   capture_output=True, text=True, check=True)  # fmt: skip
    open_fds: set[str] = set()  # one process: its threads share the descriptors
    total = 0
    for line in trace.read_text().splitlines():
        call = line.partition(" ")[2]
        if m := re.match(r'\s*openat\(\w+, "([^"]*)".*\) = (\d+)$', call):
            if Path(m[1]).resolve() == path.resolve():
                open_fds.add(m[2])
        elif m := re.match(r"\s*close\((\d+)\)", call):
            open_fds.discard(m[1])
        elif (m := re.match(r"\s*(?:pread64|read)\((\d+),.* = (\d+)$", call)) and m[1] in open_fds:
            total += int(m[2])
    return total


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
                times[kind].append(result["seconds"])
                line = f"{kind:6s} pair {k + 1}: {result['seconds']:6.2f} s"
                if kind == "remote":
                    got = server.sent[f"/r{k}/scene.tif"]
                    line += (
                        f", {got / 1e6:.2f} MB sent by the server ({got / size:.1%} of the {size / 1e6:.1f} MB file)"
                    )
                print(line, flush=True)
    if shutil.which("strace"):
        argv = ["upscale", str(scene), *common, "-o", str(args.workdir / "traced.tif")]
        local_bytes = bytes_read_under_strace(args.threads, argv, scene, args.workdir / "trace.txt")
        print(
            f"local: {local_bytes / 1e6:.2f} MB read from the scene file ({local_bytes / size:.1%}; strace, one more run)"
        )
    same = (
        hashlib.sha256((args.workdir / "remote.tif").read_bytes()).digest()
        == hashlib.sha256((args.workdir / "local.tif").read_bytes()).digest()
    )
    local, remote = statistics.median(times["local"]), statistics.median(times["remote"])
    print(
        f"median: remote {remote:.2f} s, local {local:.2f} s, ratio {remote / local:.2f}; outputs byte-identical: {same}"
    )


if __name__ == "__main__":
    main()
