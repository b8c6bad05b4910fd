"""fatsr: remote-sensing image super-resolution with the Frequency-Aware Transformer."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "default_model_path"]


def default_model_path() -> Path | None:
    """The model shipped in the package, or None when this build has none."""
    path = Path(str(files("fatsr") / "weights" / "fatsr-compact-x4.safetensors"))
    return path if path.is_file() else None


def load_model(path: str | os.PathLike | None = None, *, device: str = "cpu", seed: int = 0):
    """A ready :class:`~fatsr.models.wrapper.SRModel` (eval mode) from a fatsr ``.safetensors``
    model file or a published ``.pth`` checkpoint; ``None`` loads the shipped default model."""
    from fatsr.errors import FatsrError
    from fatsr.models.files import load_network
    from fatsr.models.wrapper import SRModel

    if path is None:
        path = default_model_path()
        if path is None:
            raise FatsrError("no default model is installed with this fatsr; pass --model PATH (a .safetensors or .pth file)")
    network, metadata = load_network(path)
    model = SRModel(network, name=metadata.get("name", Path(path).stem), seed=seed)
    return model.to(device).eval()
