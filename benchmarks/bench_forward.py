"""Time the FAT forward (random weights) on CPU: by default published size, 1x3x120x120.

Prints the median time of several passes after a warm-up, as seconds and as a ratio to the
yardstick (benchmarks/yardstick.py, timed between the passes), and the peak RSS of the process
(ru_maxrss, includes the interpreter and the model). Published code (github.com/fengyanzi/FAT,
its FAT(), random weights, float32, median of 3 runs after a warm-up, a fresh process each) on
the 2-core machine: 3.1-3.2 s, 0.94-1.04 GiB at 2 threads.

    python benchmarks/bench_forward.py [--preset fat] [--size 120] [--batch 1] [--runs 3] [--threads 2]
    python benchmarks/bench_forward.py --preset compact --size 96 --batch 4 --threads 1
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch
from yardstick import Yardstick

from fatsr.models.registry import build_network
from fatsr.models.runtime import runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fat")
    parser.add_argument("--size", type=int, default=120)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = build_network(args.preset).eval()
    x = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in net.parameters())
    yardstick = Yardstick()
    times, cpu_times = [], []
    with torch.inference_mode(), runtime(generator=torch.Generator().manual_seed(0)):
        for _ in range(args.runs + 1):
            start, cpu = time.perf_counter(), time.process_time()
            net(x)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu)
            yardstick.measure(2)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    median = statistics.median(times[1:])
    print(
        f"preset={args.preset} params={params / 1e6:.2f}M input={args.batch}x3x{args.size}x{args.size} threads={args.threads} "
        f"warm-up={times[0]:.2f}s median={median:.3f}s ({min(times[1:]):.3f}-{max(times[1:]):.3f}) "
        f"= {yardstick.ratio(median)} yardstick, peak_rss={peak_gib:.2f}GiB"
    )
    if args.threads == 1:  # CPU time: what a loaded machine does not inflate by queueing
        cpu = statistics.median(cpu_times[1:])
        print(f"CPU time: median {cpu:.3f}s = {yardstick.cpu_ratio(cpu)} yardstick CPU time")
    print(yardstick.describe())


if __name__ == "__main__":
    main()
