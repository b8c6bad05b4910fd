"""One process vs ``--dask local:N``: the same scene through ``fatsr upscale``, timed.

Builds a uint8 RGB GeoTIFF mosaic of UC Merced training images (as bench_scene.py does),
then runs ``fatsr upscale SCENE -o OUT --model MODEL`` twice, each in its own process:

* one process with --threads torch threads (its tile batches on that many worker threads);
* the same command with ``--dask local:N`` (N one-thread worker processes).

It prints for each: wall time, LR megapixels per second, CPU seconds (of every process of
the run: on a loaded machine the ratio of CPU times says more than that of wall times), the
time spent in model calls
(summed over threads or workers) and the "overhead": the share of the cores' wall time
(threads or workers x wall) spent outside model calls (reading, blending, writing, the COG
copy, and for Dask the cluster's start, scheduling and transfers); the peak RSS of the process
and, for Dask, of each worker. Then the throughput ratio Dask / one process, and whether the
two outputs are the same bytes. Issue 25 targets on a 2-core machine: ratio >= 0.9, Dask
overhead < 10%.

    python benchmarks/bench_dask.py [--size 2048] [--model fatsr-x4] [--threads 2] [--workers 2]
        [--rounds 1] [--tiles ../shared/data/ucmerced/train] [--workdir /tmp/fatsr-bench-dask]

The load average before and after each run is printed: on a shared machine, read the
figures with it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_scene import TILES, build_mosaic
from inputs import existing


def child(args: argparse.Namespace) -> None:
    """Run ``fatsr upscale`` in this process with model calls timed; print a JSON line."""
    import threading

    import torch

    import fatsr.inference.tiling as tiling
    from fatsr.cli import main

    torch.set_num_threads(args.threads)
    spent = [0.0]
    lock = threading.Lock()
    forward = tiling._forward

    def timed(*a, **k):
        start = time.perf_counter()
        try:
            return forward(*a, **k)
        finally:
            with lock:
                spent[0] += time.perf_counter() - start

    tiling._forward = timed  # the local tile runner's model calls (Dask workers time their own)
    command = ["upscale", str(args.source), "-o", str(args.output), "--model", args.model, "--overwrite"]
    if args.dask:
        command += ["--dask", args.dask]
    start = time.perf_counter()
    code = main(command)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak, cpu = usage.ru_maxrss / 2**20, usage.ru_utime + usage.ru_stime
    print(json.dumps({"code": code, "seconds": seconds, "model_seconds": spent[0], "peak_gib": peak, "cpu_seconds": cpu}),
          flush=True)  # fmt: skip


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(args: argparse.Namespace, source: Path, output: Path, dask: str | None) -> dict:
    command = [sys.executable, __file__, "--child", "--source", str(source), "--output", str(output),
               "--model", args.model, "--threads", str(args.threads)] + (["--dask", dask] if dask else [])  # fmt: skip
    before = load()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the run failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.splitlines()[-1])
    result["load"] = f"{before} -> {load()}"
    summary = re.search(r"dask: .*", done.stderr)
    if summary:
        result["summary"] = summary.group(0)
        result["model_seconds"] = float(re.search(r"([\d.]+) s in model calls", summary.group(0)).group(1))
        result["worker_peaks"] = summary.group(0).rsplit("peak RSS per worker ", 1)[1]
        result["cpu_seconds"] += float(re.search(r"([\d.]+) CPU-s on the workers", summary.group(0)).group(1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--model", default="fatsr-x4")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the one-process run")
    parser.add_argument("--workers", type=int, default=2, help="N of --dask local:N")
    parser.add_argument("--rounds", type=int, default=1, help="pairs of runs, alternating which goes first")
    parser.add_argument("--tiles", type=Path, default=TILES)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fatsr-bench-dask"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dask", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = args.workdir / f"mosaic{args.size}.tif"
    if not source.exists():
        build_mosaic(source, args.size, existing(args.tiles, "folder", "--tiles"))
    mpix = args.size**2 / 1e6
    runs = (("one process", None), (f"--dask local:{args.workers}", f"local:{args.workers}"))
    ratios, overheads = [], []
    for round_ in range(args.rounds):
        results = {}
        # odd rounds run Dask first: on a shared machine a change of load then favours neither
        for name, dask in runs if round_ % 2 == 0 else runs[::-1]:
            output = args.workdir / f"out-{'dask' if dask else 'local'}.tif"
            r = results[name] = run(args, source, output, dask)
            cores = args.workers if dask else args.threads
            overhead = 1 - r["model_seconds"] / (cores * r["seconds"])
            if dask:
                overheads.append(overhead)
            peaks = f"; workers {r['worker_peaks']}" if dask else ""
            print(
                f"round {round_ + 1}: {args.size}^2 LR, {args.model}, {name} ({cores} x 1 thread): {r['seconds']:.1f} s, "
                f"{mpix / r['seconds']:.4f} LR Mpx/s, {r['cpu_seconds']:.0f} CPU-s (all processes); "
                f"model calls {r['model_seconds']:.1f} s; overhead "
                f"{overhead:.1%}; peak RSS {r['peak_gib']:.2f} GiB (this process){peaks}; load {r['load']}",
                flush=True,
            )
            if dask:
                print(f"  {r['summary']}")
        local, dask_run = results[runs[0][0]], results[runs[1][0]]
        ratios.append(local["seconds"] / dask_run["seconds"])
        same = (args.workdir / "out-local.tif").read_bytes() == (args.workdir / "out-dask.tif").read_bytes()
        print(
            f"round {round_ + 1}: throughput --dask local:{args.workers} / one process: {ratios[-1]:.3f}x by wall "
            f"time (target >= 0.9), {local['cpu_seconds'] / dask_run['cpu_seconds']:.3f}x by CPU time; "
            f"outputs {'identical' if same else 'DIFFERENT'}",
            flush=True,
        )
    if args.rounds > 1:
        print(
            f"median of {args.rounds} rounds: throughput ratio {statistics.median(ratios):.3f}x (target >= 0.9), "
            f"Dask overhead {statistics.median(overheads):.1%} (target < 10%)"
        )


if __name__ == "__main__":
    main()
