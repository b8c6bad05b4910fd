"""How the networks compute, chosen once by their caller for a stretch of code.

The default :class:`Runtime` is the fast path that inference and training run (chunked LSH
attention, FFTs, token chunks in the MLP). :func:`fatsr.export.export_onnx` chooses the
export path around its trace, and :class:`~fatsr.models.wrapper.SRModel` and the trainer
choose the generator the LSH rotations are drawn from::

    with runtime(generator=torch.Generator().manual_seed(0)):
        y = network(x)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Runtime:
    """``export``: compute what an ONNX graph can hold, in plain operations with fixed sizes:
    DFTs as matrix products, equal hash codes ordered by token position (ONNX has only a
    stable TopK), no chunk loops. Differs from the fast path by the order of equal hash codes
    (on a real 96x96 crop with the built-in model: 5.7e-4 on average, 1.5e-2 at most, on [0, 1]).

    ``generator``: the LSH rotations are drawn from it (None: the global RNG, as published).

    ``kept_rotations``: a store (an empty dict to start): each LSH attention keeps there the
    first rotations it draws and reuses them in every later forward (inputs of that size only),
    so a traced graph holds them as constants."""

    export: bool = False
    generator: torch.Generator | None = None
    kept_rotations: dict[nn.Module, Tensor] | None = None


_current: ContextVar[Runtime] = ContextVar("fatsr_runtime", default=Runtime())


def current() -> Runtime:
    """The runtime chosen by the innermost :func:`runtime` around this call (default: the fast path)."""
    return _current.get()


@contextmanager
def runtime(**choices: Any) -> Iterator[Runtime]:
    """Within the block, the current runtime with ``choices`` (fields of :class:`Runtime`) changed."""
    token = _current.set(replace(_current.get(), **choices))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
