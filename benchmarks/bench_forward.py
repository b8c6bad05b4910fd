"""Time the full published-size FAT forward (random weights) on 1x3x120x120 on CPU.

Prints the median time of several passes after a warm-up and the peak RSS of the process
(ru_maxrss, includes the interpreter and the model). Published code on the 2-core machine:
3.1-3.2 s, 0.94-1.04 GiB (shared/reference/README.md section 3).

    python benchmarks/bench_forward.py [--preset fat] [--size 120] [--runs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from fatsr.models.presets import build_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fat")
    parser.add_argument("--size", type=int, default=120)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = build_network(args.preset).eval()
    net.set_generator(torch.Generator().manual_seed(0))
    x = torch.rand(1, 3, args.size, args.size) * 2 - 1
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in net.parameters())
    times = []
    with torch.inference_mode():
        for i in range(args.runs + 1):
            start = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - start)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"preset={args.preset} params={params / 1e6:.2f}M input=1x3x{args.size}x{args.size} threads={args.threads} "
        f"warm-up={times[0]:.2f}s median={statistics.median(times[1:]):.2f}s peak_rss={peak_gib:.2f}GiB"
    )


if __name__ == "__main__":
    main()
