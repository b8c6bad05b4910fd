"""Where models run: one device choice for every command, the API and the trainer."""

from __future__ import annotations

import os

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
