"""Where models run: one device choice for every command and the API."""

from __future__ import annotations

import os

import torch

from fatsr.errors import ArgumentError


def resolve_device(name: str, rank: int = 0) -> torch.device:
    """``auto`` -> cuda, else mps, else cpu; an explicit device must be available. Under
    torchrun each process takes the GPU of its LOCAL_RANK."""
    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ArgumentError(
            f"{{arg}}: {name.upper()} is not available on this machine; use {{cpu}} or auto", "device", name,
            cpu=("device", "cpu"),
        )
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    return torch.device(name)
