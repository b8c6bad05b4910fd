"""Where models run: one device choice for every command, the API and the trainer."""

from __future__ import annotations

import os
import sys

import torch

from fatsr.errors import ArgumentError

KINDS = ("cpu", "cuda", "mps")


def resolve_device(name: str, rank: int = 0, *, kinds: tuple[str, ...] = KINDS) -> torch.device:
    """``auto`` -> cuda, else mps, else cpu (of ``kinds``); an explicit device must be one of
    ``kinds`` and available. A bare ``cuda`` is the GPU of LOCAL_RANK (torchrun), else ``rank``."""
    cuda, mps = torch.cuda.is_available(), "mps" in kinds and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArgumentError(
            f"{{arg}}: unknown device; use auto, {', '.join(kinds)} or cuda:N", "device", name
        ) from None
    if device.type not in kinds:
        raise ArgumentError(f"{{arg}} is not supported here; use auto, {', '.join(kinds)} or cuda:N", "device", name)
    if (device.type == "cuda" and not cuda) or (device.type == "mps" and not mps):
        raise ArgumentError(
            f"{{arg}}: {device.type.upper()} is not available on this machine; use {{cpu}} or auto",
            "device",
            name,
            cpu=("device", "cpu"),
        )
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    return device


TORCHRUN = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")  # what torchrun always sets


def torchrun_layout() -> tuple[int, int, int]:
    """(rank, world size, local rank) when torchrun started this process: all of its variables
    set and consistent. Stray or inconsistent ones (a ``RANK=1`` left in a shell) give a
    one-line warning and a normal single-process run, (0, 1, 0)."""
    given = {name: os.environ.get(name) for name in TORCHRUN}
    if all(v is None for v in given.values()):
        return 0, 1, 0
    missing = [name for name, v in given.items() if v is None]
    why = f"{', '.join(missing)} not set" if missing else ""
    if not why:
        try:
            rank, world, local = (int(str(given[name])) for name in TORCHRUN[:3])
        except ValueError:
            why = "RANK, WORLD_SIZE and LOCAL_RANK are not all integers"
        else:
            if not (0 <= rank < world and 0 <= local <= rank):
                why = f"RANK {rank} and LOCAL_RANK {local} do not fit WORLD_SIZE {world}"
            else:
                return rank, world, local
    stray = " ".join(f"{name}={v}" for name, v in given.items() if v is not None)
    print(
        f"warning: {stray} in the environment is not a torchrun launch ({why}); running as a single process",
        file=sys.stderr,
    )
    return 0, 1, 0
