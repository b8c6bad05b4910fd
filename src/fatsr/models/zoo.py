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

from fatsr.errors import ArgumentError
from fatsr.models.header import safetensors_header

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
    :func:`~fatsr.models.zoo.model_path` reads it, which must exist."""
    path = model_path(spec)
    if path is not None and path.is_file():
        return path
    names = ", ".join(builtin_models()) or "none in this build"
    raise ArgumentError(
        f"{{arg}}: model file not found, and no built-in model has that name (built-in: {names}; see `fatsr models`)",
        "model",
        spec,
    )


BUILTIN = ("default", "builtin")  # names of the shipped model, besides its file's stem
# The model files of a `fatsr train` run folder, in the order --model RUN_DIR takes them: the final
# export, else the best validated weights, else the last weights (written at every validation
# and when the run stops).
RUN_FILES = {
    "model.safetensors": "the run's final model",
    "best.safetensors": "the weights with the best validation PSNR so far",
    "last.safetensors": "the latest weights",
}
_SAID: set[Path] = set()  # run folders' model files whose choice was announced


def default_model_path() -> Path | None:
    """The default model shipped in the package, or None when this build has none."""
    name = default_name()
    return None if name is None else builtin_models()[name]


def builtin_names() -> set[str]:
    """What names a shipped model: every built-in model's name (``fatsr models``) and former
    name (``ALIASES``), and ``default`` / ``builtin`` for the default one."""
    shipped = builtin_models()
    names = set(shipped) | {old for old, (new, _) in ALIASES.items() if new in shipped}
    return names | set(BUILTIN) if default_model_path() is not None else names


def model_path(spec: str | os.PathLike | None) -> Path | None:
    """The file a spec names (a built-in model's for its name, the default model's for None,
    ``default`` or ``builtin``, a run folder's model file for a run folder); None for ``"bicubic"``."""
    if spec == "bicubic":
        return None
    if isinstance(spec, str) and not Path(spec).is_file():
        builtin = builtin_file(spec)
        if builtin is not None:
            return builtin
    if spec is None or (isinstance(spec, str) and spec in BUILTIN and not Path(spec).is_file()):
        path = default_model_path()
        if path is None:
            raise ArgumentError(
                "no default model is installed with this fatsr; pass {arg} (a .safetensors or .pth file)",
                "model",
                "PATH",
            )
        return path
    path = Path(spec)
    return run_model_file(path, spec) if path.is_dir() else path


def run_model_file(folder: Path, spec: object = None) -> Path:
    """The model file of a ``fatsr train`` run folder (:data:`RUN_FILES`), announced once on stderr."""
    from fatsr.progress import note

    for name, what in RUN_FILES.items():
        path = folder / name
        if path.is_file():
            if path.resolve() not in _SAID:
                _SAID.add(path.resolve())
                note(f"model: {path} ({what})")
            return path
    raise ArgumentError(
        f"{{arg}}: a folder without a model file ({', '.join(RUN_FILES)} of a `fatsr train` run); "
        "give a model file, or a run folder that has validated or stopped once",
        "model",
        spec if spec is not None else str(folder),
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
        from fatsr.models import registry
        from fatsr.models.files import load_network

        network, loaded = load_network(path)
        info = dict(loaded)
        info["parameters"] = sum(p.numel() for p in network.parameters())
        info.setdefault("scale", str(network.scale))
        info.setdefault("architecture", registry.of(network).name)
    for key in ("config", "extra", "evaluation", "speed"):
        if key in info:
            try:
                info[key] = json.loads(info[key])
            except ValueError:
                pass
    info.setdefault("architecture", "FAT")
    return info
