"""The built-in models: the ``.safetensors`` files shipped in ``fatsr/weights``, by name (the
file's stem). Each file carries its own description (:data:`fatsr.models.files.INFO_KEYS`);
this module only finds them, resolves ``--model NAME|PATH`` and summarises a file."""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from importlib.resources import files
from pathlib import Path
from typing import Any

from fatsr.errors import ArgumentError, FatsrError

DEFAULT = "fatsr-x4"  # the default model
# Former names of built-in models (users' scripts keep working, with a warning): the name -> why.
ALIASES: dict[str, tuple[str, str]] = {
    "fatsr-compact-x4": (
        "fatsr-x4",
        "its network grown from 1 to 3 Swin layers per block and trained longer, on all 420 UC Merced images",
    ),
}


def weights_dir() -> Path:
    return Path(str(files("fatsr") / "weights"))


def builtin_models() -> dict[str, Path]:
    """Name -> file of every shipped model, sorted by name."""
    folder = weights_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.safetensors"))}


def default_name() -> str | None:
    """The name of the default model, or None when this build ships none."""
    return DEFAULT if DEFAULT in builtin_models() else None


def builtin_file(name: str) -> Path | None:
    """The file of the built-in model ``name`` (a former name in :data:`ALIASES` gives its
    successor's, with a FutureWarning), None when no built-in model has that name."""
    shipped = builtin_models()
    if name in ALIASES and name not in shipped and ALIASES[name][0] in shipped:
        successor, why = ALIASES[name]
        warnings.warn(f"model {name} is now {successor} ({why}); running {successor}", FutureWarning, stacklevel=3)
        name = successor
    return shipped.get(name)


def resolve(spec: str | os.PathLike | None) -> Path:
    """The file of ``spec`` (the argument ``model`` in errors), named as
    :func:`fatsr.models.loading.model_path` reads it, which must exist."""
    from fatsr.models.loading import model_path

    path = model_path(spec)
    if path is not None and path.is_file():
        return path
    names = ", ".join(builtin_models()) or "none in this build"
    raise ArgumentError(
        f"{{arg}}: model file not found, and no built-in model has that name (built-in: {names}; see `fatsr models`)",
        "model",
        spec,
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def summary(path: Path) -> dict:
    """What a model file says about itself, with its parameter count. A fatsr ``.safetensors``
    file is read from its header alone (no PyTorch: ``fatsr models`` and ``fatsr info`` start
    fast); other files are loaded (``load_network`` checks them)."""
    header = safetensors_header(path) if path.suffix == ".safetensors" else None
    metadata = header.get("__metadata__") if header is not None else None
    if isinstance(metadata, dict) and "config" in metadata and header is not None:
        info: dict[str, Any] = dict(metadata)
        info["parameters"] = sum(math.prod(entry["shape"]) for key, entry in header.items() if key != "__metadata__")
    else:
        from fatsr.models.files import load_network

        network, loaded = load_network(path)
        info = dict(loaded)
        info["parameters"] = sum(p.numel() for p in network.parameters())
        info.setdefault("scale", str(network.scale))
        info.setdefault("architecture", getattr(network, "architecture", "FAT"))
    for key in ("config", "extra", "evaluation", "speed"):
        if key in info:
            try:
                info[key] = json.loads(info[key])
            except ValueError:
                pass
    info.setdefault("architecture", "FAT")
    return info


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
