"""Model files: ``.safetensors`` with the architecture, its full configuration and the scale
in the metadata, so a file alone rebuilds the network, plus what the model expects and where
it comes from (:data:`INFO_KEYS`). Published ``.pth`` checkpoints (official key layout) load
through the same :func:`load_network`."""

from __future__ import annotations

import json
import math
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from fatsr.errors import FatsrError
from fatsr.io import atomic_write, write_error
from fatsr.models import registry
from fatsr.models.contract import Architecture, Network
from fatsr.models.fat import load_strict
from fatsr.models.header import safetensors_header

FORMAT_VERSION = "1"
# What a model file records about the model besides its network (all optional, plain text;
# "evaluation" and "speed" hold JSON of measured figures with the command that measured them).
INFO_KEYS: dict[str, str] = {
    "description": "what the model is for",
    "bands": "input/output bands in order, comma-separated",
    "value_range": "how pixel values map to the network's [0, 1] input (a multispectral model's exact "
    "mapping is its value_mapping entry)",
    "training_data": "the images it was trained on",
    "gsd_m": "ground sample distance of the training images, metres per pixel",
    "degradation": "how the training LR images were made from the HR ones",
    "licence": "licence of the weights (and of the training data)",
    "training": "recipe and length of the training",
    "evaluation": "measured quality (JSON)",
    "speed": "measured speed (JSON)",
}
DEFAULT_INFO = {  # what the trainer's images are unless told otherwise
    "bands": "red,green,blue",
    "value_range": "[0, 1] = the full range of the integer type (8-bit /255, 16-bit /65535); "
    "other rasters by fatsr upscale's --range or percentile stretch",
}


def save_model(
    path: str | os.PathLike,
    network: Network,
    *,
    name: str,
    extra: dict | None = None,
    info: dict | None = None,
    overwrite: bool = False,
    metadata: dict[str, str] | None = None,
) -> None:
    """Write ``network``'s weights and configuration as a fatsr model file (atomically);
    ``info`` (keys of :data:`INFO_KEYS`; dicts are stored as JSON) describes the model;
    ``metadata``: more entries (e.g. ``value_mapping`` of a multispectral model)."""
    metadata = {
        **(metadata or {}),
        "format": "fatsr-model",
        "format_version": FORMAT_VERSION,
        "architecture": registry.of(network).name,
        "name": name,
        "config": json.dumps(network.config.to_dict()),
        "scale": str(network.scale),
    }
    for key, value in (info or {}).items():
        if key not in INFO_KEYS:
            raise FatsrError(f"model info {key!r} is not one of {', '.join(INFO_KEYS)}")
        if value is not None:
            metadata[key] = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    if extra:
        metadata["extra"] = json.dumps(extra)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in network.state_dict().items()}
    data = _sorted_metadata(save(tensors, metadata=metadata))
    with atomic_write(path, overwrite=overwrite) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:  # a full disk
            raise write_error(path, exc) from None


def _sorted_metadata(data: bytes) -> bytes:
    """A .safetensors file's bytes with its metadata entries in key order. safetensors writes
    them in a random order in each process (safetensors issue 584), so the same model would be
    saved as other bytes; the header is re-written (padded to 8 bytes, as safetensors does)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        header = {"__metadata__": dict(sorted(metadata.items())), **header}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata block of a model file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise FatsrError(f"{path}: not a readable .safetensors model file ({exc})") from None


FLOATS = {"F16", "BF16", "F32", "F64"}  # weight dtypes a model file may hold


def checked_config(architecture: Architecture, text: str) -> dict[str, Any]:
    """A model file's ``config`` metadata (JSON) as keyword arguments of ``architecture``'s
    config class, every field known, of its type and within the config's ``BOUNDS``: FatsrError
    (one line) otherwise, before anything is built or allocated."""
    config_class: Any = architecture.config
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise FatsrError(f"model configuration in the metadata is not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise FatsrError("model configuration in the metadata is not a JSON object")
    known = {f.name: f for f in fields(config_class)}
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise FatsrError(f"model configuration has unknown fields {', '.join(unknown)} for {architecture.name}")
    for name, value in config.items():
        kind = known[name].type
        low, high = config_class.BOUNDS.get(name, (None, None))
        values = value if name == "window_size" and isinstance(value, list) else [value]
        for v in values:
            if "bool" in str(kind):
                ok = isinstance(v, bool)
            elif "float" in str(kind):
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            else:
                ok = isinstance(v, int) and not isinstance(v, bool)
            if ok and low is not None:
                ok = low <= v <= high
            if not ok:
                bounds = f" in {low:g}..{high:g}" if low is not None else ""
                raise FatsrError(f"model configuration {name}={value!r} is not a valid {kind}{bounds}")
    try:
        config_class(**config)  # the config's own rules (dim divisible by num_heads, ...)
    except (ValueError, TypeError) as exc:
        raise FatsrError(f"model configuration in the metadata is invalid ({exc})") from None
    return config


def check_tensors(path: Path, network: Network) -> None:
    """The file's tensors (from its header: names, shapes, dtypes) are exactly ``network``'s
    (built from the file's checked configuration) and floating point."""
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    for key, entry in safetensors_header(path).items():
        if key == "__metadata__":
            continue
        if entry["dtype"] not in FLOATS:
            raise FatsrError(f"weight {key} is stored as {entry['dtype']}; model weights must be floating point")
        shape = tuple(entry["shape"])
        if key in expected and shape != expected[key]:
            raise FatsrError(
                f"weight {key} has shape {list(shape)} where the configuration needs {list(expected[key])}"
            )


def _build(architecture: Architecture, config: dict[str, Any]) -> Network:
    return architecture.module(architecture.config(**config))


def read_foreign(obj: object) -> Network:
    """A network from a published state dict in another layout, by the first architecture
    whose reader takes it (the first reader's FatsrError if none does)."""
    errors: list[FatsrError] = []
    for architecture in registry.ARCHITECTURES.values():
        if architecture.read_foreign is not None:
            try:
                return architecture.read_foreign(obj)
            except FatsrError as exc:
                errors.append(exc)
    raise errors[0] if errors else FatsrError("no architecture reads published checkpoints")


def load_network(path: str | os.PathLike) -> tuple[Network, dict[str, str]]:
    """A network of a registered architecture (eval mode) and the file's metadata, from a fatsr
    model file or a published ``.pth`` checkpoint."""
    path = Path(path)
    try:
        return _load_network(path)
    except FatsrError as exc:
        message = str(exc)
        raise FatsrError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def _load_network(path: Path) -> tuple[Network, dict[str, str]]:
    if not path.is_file():
        raise FatsrError(f"model file {path} not found; give the path of a .safetensors or .pth model")
    if path.suffix == ".safetensors":
        metadata = read_metadata(path)
        architecture = registry.architecture(metadata.get("architecture"))
        config = checked_config(architecture, metadata["config"]) if "config" in metadata else None
        # the network of a checked configuration (bounded in size) is built first, and the file's
        # tensors are checked against it from the header, before any tensor is read
        network = _build(architecture, config) if config is not None else None
        if network is not None:
            check_tensors(path, network)
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise FatsrError(f"{path}: not a readable .safetensors model file ({exc})") from None
        if network is not None:
            load_strict(network, tensors)
        else:  # a bare state dict in a published layout
            network = read_foreign(tensors)
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for foreign or damaged files
            text = str(exc).strip()
            reason = (
                "not a plain weights file (torch.load with weights_only=True refused it)"
                if "Weights only load failed" in text
                else (text.splitlines()[0][:200] if text else type(exc).__name__)
            )
            raise FatsrError(f"{path}: not a readable PyTorch checkpoint ({reason})") from None
        if isinstance(obj, dict) and obj.get("format") == "fatsr-train-checkpoint":
            raise FatsrError(
                f"{path}: a `fatsr train` checkpoint (to resume a run), not a model; give its run folder "
                f"{path.parent} (its model.safetensors, best.safetensors or last.safetensors)"
            )
        network = read_foreign(obj)
        metadata = {
            "architecture": registry.of(network).name,
            "name": path.stem,
            "config": json.dumps(network.config.to_dict()),
        }
    return network.eval(), metadata
