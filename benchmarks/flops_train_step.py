"""FLOPs of one training step as ``fatsr train`` runs it (forward, L1 + LEV loss, backward,
Adam), counted by ``torch.utils.flop_counter.FlopCounterMode`` on the CPU, and the step count
that fits a time budget at an assumed throughput. It is how configs/gpu-fat-x4.yaml chose its
steps without a GPU.

FlopCounterMode counts the matrix products and convolutions (2 FLOPs a multiply-add), not the
FFTs, the element-wise work or the LSH gathers: the assumed throughput must be an effective one
for this network, far below the card's peak.

    python benchmarks/flops_train_step.py --preset fat --batch 16 --patch 48 --budget-s 480 --tflops 40
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from fatsr.losses import FATLoss
from fatsr.models.registry import build_network
from fatsr.training.train import training_step


def step_flops(preset: str, batch: int, patch: int, scale: int, bicubic_skip: bool) -> tuple[int, int, float]:
    """(FLOPs of one step, parameters, seconds the counted step took on this CPU)."""
    torch.manual_seed(0)
    network = build_network(preset, scale=scale, bicubic_skip=bicubic_skip)
    loss_fn = FATLoss(l1_weight=1.0, perceptual_weight=0.0, lev_weight=0.1)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    lr = torch.rand(batch, 3, patch, patch) * 2 - 1
    hr = torch.rand(batch, 3, patch * scale, patch * scale) * 2 - 1
    counter = FlopCounterMode(display=False)
    start = time.perf_counter()
    with counter:
        training_step(network, loss_fn, optimizer, lr, hr)
    return counter.get_total_flops(), sum(p.numel() for p in network.parameters()), time.perf_counter() - start


class OpCounter(TorchDispatchMode):
    """Counts the ATen operations run (each a kernel launch on a GPU, in eager mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def step_ops(preset: str, scale: int, bicubic_skip: bool) -> int:
    """ATen operations of one step (batch 1 of 24x24 LR: the count does not grow with the batch)."""
    network = build_network(preset, scale=scale, bicubic_skip=bicubic_skip)
    loss_fn = FATLoss(l1_weight=1.0, perceptual_weight=0.0, lev_weight=0.1)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4, foreach=True)
    lr, hr = torch.rand(1, 3, 24, 24) * 2 - 1, torch.rand(1, 3, 24 * scale, 24 * scale) * 2 - 1
    training_step(network, loss_fn, optimizer, lr, hr)  # Adam's state made
    with OpCounter() as counter:
        training_step(network, loss_fn, optimizer, lr, hr)
    return counter.ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fat")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48, help="LR patch side")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--no-bicubic-skip", dest="bicubic_skip", action="store_false")
    parser.add_argument("--budget-s", type=float, default=480.0, help="seconds of training steps")
    parser.add_argument("--tflops", type=float, default=40.0, help="assumed effective TFLOP/s of the card")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--launch-us", type=float, default=0.0, help="also count the operations of a step and "
                        "add this many microseconds of launch overhead per operation")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    flops, params, seconds = step_flops(args.preset, args.batch, args.patch, args.scale, args.bicubic_skip)
    per_step = flops / (args.tflops * 1e12)
    if args.launch_us:
        ops = step_ops(args.preset, args.scale, args.bicubic_skip)
        per_step += ops * args.launch_us * 1e-6
        print(f"{ops} ATen operations a step: {ops * args.launch_us / 1e3:.1f} ms at {args.launch_us:g} us each")
    print(f"preset {args.preset}, {params / 1e6:.2f} M parameters, batch {args.batch} of {args.patch}x{args.patch} LR "
          f"(x{args.scale}), bicubic skip {args.bicubic_skip}")  # fmt: skip
    print(f"one training step: {flops / 1e12:.3f} TFLOP counted ({seconds:.1f} s on this CPU, {args.threads} thread)")
    print(f"at {args.tflops:g} effective TFLOP/s: {per_step * 1e3:.1f} ms a step, "
          f"{int(args.budget_s / per_step)} steps in {args.budget_s:g} s")  # fmt: skip


if __name__ == "__main__":
    main()
