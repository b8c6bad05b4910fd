"""Time one training step as ``fatsr train`` runs it, and its peak memory, on the CPU.

Workload (issue 3): batch 2 of 48x48 LR patches (x4, 192x192 HR), loss L1 + 0.1 LEV, Adam,
two threads. Each preset runs in its own process so that the peak RSS is its own. Prints,
per preset: parameters, first step, median of the steady steps (also as a ratio to the
yardstick of benchmarks/yardstick.py, timed in the same process between the steps), and peak RSS.

    python benchmarks/bench_train_step.py                  # fat and compact
    python benchmarks/bench_train_step.py --presets compact --batch 8 --threads 1 --steps 5
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def measure(preset: str, steps: int, warmup: int, threads: int, batch: int) -> dict:
    """One preset in this process: step times (s), the yardstick (s) and peak RSS (GiB)."""
    import torch
    from yardstick import Yardstick

    from fatsr.losses import FATLoss
    from fatsr.models.registry import build_network
    from fatsr.training.train import training_step

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    network = build_network(preset, scale=4)
    loss_fn = FATLoss({"l1": 1.0, "perceptual": 0.0, "lev": 0.1})
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    lr = torch.rand(batch, 3, 48, 48) * 2 - 1
    hr = torch.rand(batch, 3, 192, 192) * 2 - 1
    yardstick = Yardstick()
    times, cpu_times = [], []
    for i in range(warmup + steps):
        start, cpu = time.perf_counter(), time.process_time()
        training_step(network, loss_fn, optimizer, lr, hr)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
        if i >= warmup - 1:
            yardstick.measure(1)
    return {
        "preset": preset,
        "params": sum(p.numel() for p in network.parameters()),
        "first_s": times[0],
        "median_s": statistics.median(times[warmup:]),
        "min_s": min(times[warmup:]),
        "max_s": max(times[warmup:]),
        "yardstick_s": yardstick.seconds,
        "cpu_ratio": statistics.median(cpu_times[warmup:]) / yardstick.cpu_seconds,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # KiB on Linux
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["fat", "compact"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps after warm-up")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.presets[0], args.steps, args.warmup, args.threads, args.batch)))
        return
    print(f"training step, batch {args.batch}, LR 48x48 -> 192x192, L1 + 0.1 LEV, Adam, {args.threads} threads, CPU")
    print(
        f"{'preset':8} {'params':>10} {'first step':>11} {'median step':>12} {'range':>13} {'/yardstick':>10} {'peak RSS':>9}"
    )
    for preset in args.presets:
        command = [sys.executable, __file__, "--child", "--presets", preset, "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--threads", str(args.threads), "--batch", str(args.batch)]  # fmt: skip
        r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        print(f"{r['preset']:8} {r['params'] / 1e6:9.2f}M {r['first_s']:10.2f}s {r['median_s']:11.3f}s "
              f"{r['min_s']:6.3f}-{r['max_s']:.3f}s {r['median_s'] / r['yardstick_s']:9.2f}x "
              f"{r['peak_rss_gib']:7.2f}GiB  (yardstick {r['yardstick_s']:.3f} s"
              + (f"; CPU time {r['cpu_ratio']:.2f}x the yardstick's)" if args.threads == 1 else ")"))  # fmt: skip


if __name__ == "__main__":
    main()
