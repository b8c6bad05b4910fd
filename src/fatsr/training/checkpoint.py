"""Training checkpoints: everything needed to continue a run bit for bit, written atomically."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import torch

from fatsr.errors import FatsrError
from fatsr.io import atomic_write, write_error

FORMAT = "fatsr-train-checkpoint"
VERSION = 1


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global generators' states, in types a ``weights_only`` load accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys).astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this process's device
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a checkpoint (``state`` plus the format tag) atomically: an interruption leaves
    the previous file intact."""
    with atomic_write(path, overwrite=True) as tmp:
        try:
            torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
        except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
            raise write_error(path, exc) from None


def read(path: str | os.PathLike) -> object:
    """Whatever a ``.pt``/``.pth`` file holds, loaded on the CPU with ``weights_only``
    (FatsrError if unreadable); :func:`is_checkpoint` tells whether it is a training checkpoint."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, the user must replace it
        if isinstance(exc, pickle.UnpicklingError):
            reason = "not plain tensors: damaged, or pickled Python objects, which are never loaded"
        else:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise FatsrError(f"{path}: not a readable checkpoint ({reason})") from None


def is_checkpoint(obj: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(obj, dict) and obj.get("format") == FORMAT
