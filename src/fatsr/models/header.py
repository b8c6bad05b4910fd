"""The JSON header of a ``.safetensors`` file, read without PyTorch (``fatsr models`` and
``fatsr info`` start fast)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fatsr.errors import FatsrError


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a ``.safetensors`` file (tensor names -> dtype, shape, offsets, and
    ``__metadata__``), checked against the file's length: FatsrError if unreadable or truncated."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 2 <= size <= 100_000_000:
                raise ValueError(f"header length {size}")
            header = json.loads(f.read(size))
            data = os.fstat(f.fileno()).st_size - 8 - size
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
        if max(ends, default=0) != data:
            raise ValueError(f"{data} bytes of tensors, the header describes {max(ends, default=0)}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FatsrError(
            f"{path}: not a readable .safetensors model file ({exc}); the file is damaged or truncated"
        ) from None
    return header
