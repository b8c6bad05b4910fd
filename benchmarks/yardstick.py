"""The yardstick of every benchmark: a fixed workload timed in the same process, ten 3x3
128->128 convolutions (padding 1) on a 1x128x120x120 float32 tensor, one thread, 42.5 GFLOP.
A benchmark prints its figures also as ratios to it (``3.2x yardstick``), which compare
across days, machines and loads better than seconds do. On a shared machine a one-thread
process also loses time waiting for a core; its CPU time (``time.process_time``) does not, so
one-thread benchmarks print the ratio of CPU times too.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F


class Yardstick:
    """Times the yardstick workload; call :meth:`measure` before and after the benchmarked
    work (or between its runs), then divide by :attr:`seconds`, the median of all samples."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.weights = torch.randn(10, 128, 128, 3, 3, generator=generator) * 0.03
        self.x = torch.randn(1, 128, 120, 120, generator=generator)
        self.samples: list[float] = []
        self.cpu_samples: list[float] = []

    def run(self) -> None:
        with torch.inference_mode():
            for w in self.weights:
                F.conv2d(self.x, w, padding=1)

    def measure(self, repeats: int = 3) -> float:
        """Median of ``repeats`` timed runs after a warm-up, on one thread; returns it and
        adds the runs to :attr:`samples`."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self.run()
            times = []
            for _ in range(repeats):
                start, cpu = time.perf_counter(), time.process_time()
                self.run()
                times.append(time.perf_counter() - start)
                self.cpu_samples.append(time.process_time() - cpu)
        finally:
            torch.set_num_threads(threads)
        self.samples += times
        return statistics.median(times)

    @property
    def seconds(self) -> float:
        if not self.samples:
            self.measure()
        return statistics.median(self.samples)

    @property
    def cpu_seconds(self) -> float:
        if not self.cpu_samples:
            self.measure()
        return statistics.median(self.cpu_samples)

    def ratio(self, seconds: float) -> str:
        """``seconds`` (wall) as a multiple of the yardstick, e.g. ``'3.21x'``."""
        return f"{seconds / self.seconds:.2f}x"

    def cpu_ratio(self, cpu_seconds: float) -> str:
        """CPU seconds as a multiple of the yardstick's CPU seconds."""
        return f"{cpu_seconds / self.cpu_seconds:.2f}x"

    def describe(self) -> str:
        lo, hi = min(self.samples), max(self.samples)
        return (
            f"yardstick (ten 3x3 128->128 convs on 1x128x120x120, 1 thread): median {self.seconds:.3f} s "
            f"({lo:.3f}-{hi:.3f}, {len(self.samples)} runs), CPU {self.cpu_seconds:.3f} s"
        )
