"""Process layout (single process or torchrun DDP), the device, and the seeded data order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from fatsr.devices import resolve_device, torchrun_layout


@dataclass(frozen=True)
class Dist:
    """Where this process stands: ``rank`` of ``world`` processes, on ``device``."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        """True for the process that writes files, logs and validates."""
        return self.rank == 0


def setup(device_name: str) -> Dist:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1): NCCL on CUDA,
    gloo on the CPU. A single process needs no group."""
    rank, world, local_rank = torchrun_layout()
    device = resolve_device(device_name, local_rank, kinds=("cpu", "cuda"))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Dist(rank=rank, world=world, device=device)


def teardown(layout: Dist) -> None:
    if layout.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def barrier(layout: Dist) -> None:
    """Wait for every process."""
    if layout.world > 1:
        dist.barrier()


def all_true(flag: bool, layout: Dist) -> bool:
    """True when ``flag`` is true on every process."""
    if layout.world == 1:
        return flag
    t = torch.tensor([0.0 if flag else 1.0], device=layout.device)
    dist.all_reduce(t)
    return t.item() == 0.0


def any_true(flag: bool, layout: Dist) -> bool:
    """True when ``flag`` is true on some process."""
    return not all_true(not flag, layout)


def mean_over_processes(values: dict[str, float], layout: Dist) -> dict[str, float]:
    """Average each value over the processes (all must pass the same keys in the same order)."""
    if layout.world == 1 or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=layout.device)
    dist.all_reduce(t)
    return {k: v / layout.world for k, v in zip(values, t.tolist(), strict=True)}


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled sample order of ``epoch``: a permutation drawn from rng([seed, epoch])."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class BatchSampler:
    """This process's share of each global batch of one epoch, from batch ``start`` on.

    The epoch's order is cut into global batches of ``batch_size`` (the last partial batch is
    dropped); process ``rank`` takes the ``rank``-th slice of ``batch_size / world`` samples of
    each, so K processes see exactly the samples of a single-process run.
    """

    def __init__(self, n: int, batch_size: int, layout: Dist, seed: int, epoch: int, start: int = 0) -> None:
        self.order = epoch_order(n, seed, epoch)
        self.batch_size = batch_size
        self.local = batch_size // layout.world
        self.rank = layout.rank
        self.start = start

    def __len__(self) -> int:
        return len(self.order) // self.batch_size - self.start

    def __iter__(self) -> Iterator[list[int]]:
        for b in range(self.start, len(self.order) // self.batch_size):
            first = b * self.batch_size + self.rank * self.local
            yield self.order[first : first + self.local].tolist()
