"""Time one tile through PyTorch (SRModel) and through onnxruntime (an exported graph) on CPU.

For each preset (random weights: the cost is that of trained ones) and tile size: export the
model (fatsr.export.export_onnx, which checks the graph against PyTorch), then time one
1x3xTILExTILE tile per backend, median of --runs after one warm-up, and print LR Mpx/s and
each time as a ratio to the yardstick (benchmarks/yardstick.py, timed in the same process).

    python benchmarks/bench_onnx.py [--preset compact --preset fat] [--tile 96 --tile 120] [--threads 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from yardstick import Yardstick

import fatsr
from fatsr.export import export_onnx, onnx_metadata
from fatsr.models.files import save_model
from fatsr.models.onnx_runner import load_onnx_model
from fatsr.models.registry import build_network


def median_seconds(run: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time of ``runs`` calls after one warm-up call."""
    run()
    times, cpu_times = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        run()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
    return statistics.median(times), statistics.median(cpu_times)


def bench(preset: str, tile: int, runs: int, folder: Path, yardstick: Yardstick) -> str:
    """One result line for ``preset`` at ``tile``."""
    torch.manual_seed(0)
    model_file = folder / f"{preset}.safetensors"
    if not model_file.exists():
        save_model(model_file, build_network(preset, scale=4), name=preset)
    start = time.perf_counter()
    onnx_file = export_onnx(model_file, folder / f"{preset}-{tile}.onnx", tile=tile, overwrite=True)
    export_s = time.perf_counter() - start
    pytorch, onnxrt = fatsr.load_model(model_file), load_onnx_model(onnx_file)
    x = torch.rand(1, 3, tile, tile)
    with torch.inference_mode():
        t_pt, cpu_pt = median_seconds(lambda: pytorch(x), runs)
        t_ort, cpu_ort = median_seconds(lambda: onnxrt(x), runs)
    yardstick.measure()
    mpx = tile * tile / 1e6
    return (
        f"preset={preset} tile={tile} threads={torch.get_num_threads()} "
        f"pytorch={t_pt:.3f}s ({yardstick.ratio(t_pt)} yardstick, {mpx / t_pt:.4f} LR Mpx/s) "
        f"onnxruntime={t_ort:.3f}s ({yardstick.ratio(t_ort)} yardstick, {mpx / t_ort:.4f} LR Mpx/s) "
        f"ort/pytorch speed={t_pt / t_ort:.2f}x (CPU time {cpu_pt:.3f} vs {cpu_ort:.3f}s: {cpu_pt / cpu_ort:.2f}x) export={export_s:.1f}s check_max_abs_diff={onnx_metadata(onnx_file)['check_max_abs_diff']} "
        f"onnx_size={onnx_file.stat().st_size / 2**20:.1f}MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset", action="append", choices=("compact", "fat"), help="repeatable (default: compact, fat)"
    )
    parser.add_argument("--tile", action="append", type=int, help="repeatable (default: 96, 120)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # onnxruntime sessions take the same number
    yardstick = Yardstick()
    yardstick.measure()
    with tempfile.TemporaryDirectory() as folder:
        for preset in args.preset or ["compact", "fat"]:
            for tile in args.tile or [96, 120]:
                print(bench(preset, tile, args.runs, Path(folder), yardstick), flush=True)
    print(yardstick.describe())


if __name__ == "__main__":
    main()
