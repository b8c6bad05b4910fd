"""Soak: long batches and memory limits, each run as a whole ``fatsr upscale`` process.

1. A batch of N small pictures (PNG, 32x32 RGB) and one of M small GeoTIFFs (64x64, 3 bands,
   georeferenced, every fifth one float32 with nodata) upscaled by one process each. While it
   runs, the process's resident memory is sampled (``/proc/PID/status``, every 20 ms) and the
   moment each output line appears is noted. Reported: peak RSS of the first and last tenth of
   the files and their ratio (target: within 10%), the median time per file in both tenths and
   their ratio (flat), the same for the CPU time per file (``/proc/PID/stat``; with one thread,
   the default, it does not depend on what else runs), and that every output reads back with
   four times the input's size.
2. Under ``prlimit --as`` (address space, default 2 GiB): a 12000x12000 GeoTIFF upscaled by
   bicubic x4 (read and written window by window) must complete, and a 20000x20000 PNG
   (read whole) must be refused with one line and exit code 2.

The pictures are made here (seeded noise, smoothed); nothing is downloaded. Times also print
as ratios to the yardstick workload (benchmarks/yardstick.py), timed in this process.

    python benchmarks/bench_soak.py [--pictures 2000] [--rasters 200] [--model fatsr-x4]
        [--big 12000] [--bomb 20000] [--limit-gib 2] [--parts batch limits] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from yardstick import Yardstick


def smooth(rng: np.random.Generator, size: int) -> np.ndarray:
    """HWC uint8 RGB: coarse noise resized by bicubic (texture a network can work on)."""
    coarse = rng.integers(0, 256, (max(2, size // 5), max(2, size // 5), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC))


def make_pictures(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(count):
        Image.fromarray(smooth(rng, 32)).save(folder / f"p{k:05d}.png")


def make_rasters(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for k in range(count):
        data = smooth(rng, 64).transpose(2, 0, 1)
        profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 3, "crs": "EPSG:32617",
                   "transform": from_origin(500000 + 64 * k, 4000000, 1.0, 1.0)}  # fmt: skip
        if k % 5 == 4:  # float with nodata: the other path through the value mapping and the mask
            values = data.astype(np.float32) * 10.0
            values[:, :4, :4] = -9999.0
            profile.update(dtype="float32", nodata=-9999.0)
        else:
            values = data
            profile.update(dtype="uint8")
        with rasterio.open(folder / f"r{k:04d}.tif", "w", **profile) as ds:
            ds.write(values)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` so far (``/proc/PID/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def soak(inputs: Path, output: Path, model: str, extra: list[str]) -> dict:
    """Run one batch, sampling RSS; per-file times and peak RSS between output lines."""
    command = [sys.executable, "-m", "fatsr", "upscale", str(inputs), "-o", str(output), "--model", model, *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []
    cpu: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            value, used = rss_kib(process.pid), cpu_seconds(process.pid)
            now = time.monotonic()
            if value is not None:
                samples.append((now, value))
            if used is not None:
                cpu.append((now, used))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.monotonic()
    sampler.start()
    assert process.stdout is not None
    stamps = [(time.monotonic(), line.strip()) for line in process.stdout]
    err = process.stderr.read() if process.stderr else ""
    process.wait()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"error: the batch failed (exit {process.returncode}): {err.strip().splitlines()[-1:]}")
    times = np.diff([start] + [t for t, _ in stamps])
    # CPU seconds of the process at each output line (the last sample before it): per file,
    # a figure the machine's other load does not inflate
    used = [max((c for s, c in cpu if s <= t), default=0.0) for t, _ in stamps]
    cpu_times = np.diff([0.0] + used)
    peaks = []
    for i, (t, _) in enumerate(stamps):
        before = stamps[i - 1][0] if i else start
        window = [v for s, v in samples if before <= s <= t]
        peaks.append(max(window) if window else (peaks[-1] if peaks else 0))
    return {
        "times": times,
        "cpu_times": cpu_times,
        "peaks": peaks,
        "outputs": [Path(p) for _, p in stamps],
        "wall": time.monotonic() - start,
    }


def check_outputs(inputs: Path, outputs: list[Path], scale: int) -> int:
    """How many outputs read back whole with ``scale`` times the size of their input."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain pictures opened by GDAL
    good = 0
    for out in outputs:
        src = next(inputs.glob(out.stem + ".*"))
        with rasterio.open(src) as a, rasterio.open(out) as b:
            b.read()
            good += (b.width, b.height) == (scale * a.width, scale * a.height)
    return good


def report(name: str, result: dict, good: int, yard: float) -> None:
    times, peaks = result["times"], result["peaks"]
    n = len(times)
    tenth = max(1, n // 10)
    first_rss, last_rss = max(peaks[:tenth]), max(peaks[-tenth:])
    first_t, last_t = statistics.median(times[1:tenth + 1]), statistics.median(times[-tenth:])  # fmt: skip
    print(f"{name}: {n} files in {result['wall']:.1f} s; every output valid: {good == n} ({good}/{n})")
    print(f"  peak RSS first tenth {first_rss / 1024:.1f} MiB, last tenth {last_rss / 1024:.1f} MiB: "
          f"ratio {last_rss / first_rss:.3f} (target within 10%)")  # fmt: skip
    print(f"  median time per file first tenth {first_t * 1000:.1f} ms, last tenth {last_t * 1000:.1f} ms: "
          f"ratio {last_t / first_t:.3f}; {first_t / yard:.3f} / {last_t / yard:.3f} yardsticks")  # fmt: skip
    cpu = result["cpu_times"]
    first_c, last_c = cpu[1 : tenth + 1].mean(), cpu[-tenth:].mean()
    print(f"  CPU time per file (mean) first tenth {first_c * 1000:.1f} ms, last tenth {last_c * 1000:.1f} ms: "
          f"ratio {last_c / first_c:.3f} (target flat)")  # fmt: skip


def big_geotiff(path: Path, side: int) -> None:
    """A tiled uint8 RGB GeoTIFF of side x side, written block row by block row."""
    rng = np.random.default_rng(2)
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 3, "dtype": "uint8", "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "crs": "EPSG:32617",
               "transform": from_origin(500000, 4000000, 1.0, 1.0)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        for row in range(0, side, 256):
            h = min(256, side - row)
            strip = np.concatenate([smooth(rng, 256) for _ in range(0, side, 256)], axis=1)[:h, :side]
            ds.write(strip.transpose(2, 0, 1), window=((row, row + h), (0, side)))


def big_png(path: Path, side: int) -> None:
    """A real side x side RGB PNG (black: a megabyte or so of compressed rows)."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * side)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def limited(limit: int, argv: list[str]) -> tuple[int, str, float, int]:
    """Run ``fatsr ARGV`` under ``prlimit --as``: exit code, stderr, wall seconds, peak RSS (KiB)."""
    start = time.monotonic()
    command = ["prlimit", f"--as={limit}", "--", sys.executable, "-m", "fatsr", *argv]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        # prlimit execs the command: the same process id
        peak = max(peak, rss_kib(process.pid) or 0)
        time.sleep(0.1)
    err = process.stderr.read() if process.stderr else ""
    return process.returncode, err, time.monotonic() - start, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pictures", type=int, default=2000)
    parser.add_argument("--rasters", type=int, default=200)
    parser.add_argument("--model", default="fatsr-x4")
    parser.add_argument("--big", type=int, default=12000, help="side of the GeoTIFF upscaled under the limit")
    parser.add_argument("--bomb", type=int, default=20000, help="side of the PNG refused under the limit")
    parser.add_argument("--limit-gib", type=float, default=2.0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of the batch runs (default 1: CPU time per file is then "
        "not inflated by threads spinning while they wait for a core on a busy machine)",
    )
    parser.add_argument("--parts", nargs="+", default=["batch", "limits"], choices=["batch", "limits"])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fatsr-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    yard = Yardstick()
    yard.measure()
    print(f"yardstick: {yard.seconds:.3f} s; work in {work}")
    try:
        if "batch" in args.parts:
            for name, count, make in (
                ("pictures", args.pictures, make_pictures),
                ("rasters", args.rasters, make_rasters),
            ):
                folder, out = work / name, work / f"{name}-out"
                shutil.rmtree(out, ignore_errors=True)
                make(folder, count)
                result = soak(folder, out, args.model, ["--threads", str(args.threads)])
                report(f"{name} ({args.model})", result, check_outputs(folder, result["outputs"], 4), yard.seconds)
        if "limits" in args.parts:
            limit = int(args.limit_gib * (1 << 30))
            big = work / f"big{args.big}.tif"
            if not big.exists():
                big_geotiff(big, args.big)
            out = work / "big-out.tif"
            out.unlink(missing_ok=True)
            code, err, wall, peak = limited(limit, ["upscale", str(big), "-o", str(out), "--model", "bicubic"])
            with rasterio.open(out) if code == 0 else open(os.devnull) as ds:
                size = f"{ds.width}x{ds.height}" if code == 0 else "none"
            print(f"{args.big}x{args.big} GeoTIFF under prlimit --as={args.limit_gib:g} GiB (bicubic x4): exit {code}, "
                  f"{wall:.0f} s, peak RSS {peak / 1024:.0f} MiB, output {size}; {err.strip().splitlines()[-1:]}")  # fmt: skip
            out.unlink(missing_ok=True)
            bomb = work / f"bomb{args.bomb}.png"
            if not bomb.exists():
                big_png(bomb, args.bomb)
            code, err, wall, peak = limited(limit, ["upscale", str(bomb), "-o", str(work / "bomb-out.png")])
            lines = err.strip().splitlines()
            print(f"{args.bomb}x{args.bomb} PNG under the same limit: exit {code}, {len(lines)} line(s) on stderr, "
                  f"{wall:.1f} s, peak RSS {peak / 1024:.0f} MiB: {lines}")  # fmt: skip
    finally:
        yard.measure()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
