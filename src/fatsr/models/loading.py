"""One loader for every model a user can name: :func:`load_model`, used by :func:`fatsr.upscale`,
every command and the trainer's validation."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from fatsr.errors import ArgumentError, FatsrError
from fatsr.models.contract import Model

BUILTIN = ("default", "builtin")  # names of the shipped model, besides its file's stem


def default_model_path() -> Path | None:
    """The default model shipped in the package, or None when this build has none."""
    from fatsr.models import zoo

    name = zoo.default_name()
    return None if name is None else zoo.builtin_models()[name]


def builtin_names() -> set[str]:
    """What names a shipped model: every built-in model's name (``fatsr models``) and former
    name (``zoo.ALIASES``), and ``default`` / ``builtin`` for the default one."""
    from fatsr.models import zoo

    shipped = zoo.builtin_models()
    names = set(shipped) | {old for old, (new, _) in zoo.ALIASES.items() if new in shipped}
    return names | set(BUILTIN) if default_model_path() is not None else names


def model_path(spec: str | os.PathLike | None) -> Path | None:
    """The file a spec names (a built-in model's for its name, the default model's for None,
    ``default`` or ``builtin``); None for ``"bicubic"``."""
    from fatsr.models import zoo

    if spec == "bicubic":
        return None
    if isinstance(spec, str) and not Path(spec).is_file():
        builtin = zoo.builtin_file(spec)
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
    return Path(spec)


def load_model(
    spec: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    scale: int | None = None,
) -> Model:
    """A ready model (eval mode, on ``device``) from ``spec``:

    * None, ``"default"`` or ``"builtin"``: the shipped model;
    * ``"bicubic"``: the bicubic baseline (x``scale``, 4 unless given);
    * a path: a fatsr ``.safetensors`` model file, a published ``.pth`` checkpoint, or a
      ``.onnx`` graph from ``fatsr export`` (run by onnxruntime).

    ``seed``: the LSH rotations' seed (default 0; an ONNX graph holds the rotations of the seed
    it was exported with, and a different ``seed`` is refused). ``scale``: when given, the
    model's scale must be this.
    """
    if scale is not None and scale < 1:
        raise ArgumentError("{arg}: the scale must be at least 1", "scale", scale)
    if spec == "bicubic":
        from fatsr.models.bicubic import BicubicModel

        return BicubicModel(4 if scale is None else scale)
    path = model_path(spec)
    assert path is not None
    model: Model
    if path.suffix.lower() == ".onnx":
        model = _load_onnx(path, torch.device(device), seed)
    else:
        model = _load_network(path, torch.device(device), 0 if seed is None else seed)
    if scale is not None and scale != model.scale:
        raise ArgumentError(f"{spec} is a x{model.scale} model but {{arg}}; drop it or change it", "scale", scale)
    return model


def _load_network(path: Path, device: torch.device, seed: int) -> Model:
    from fatsr.models.files import load_network
    from fatsr.models.wrapper import SRModel

    network, metadata = load_network(path)
    model = SRModel(network, name=metadata.get("name", path.stem), seed=seed, metadata=metadata)
    if "value_mapping" in metadata:
        from fatsr.data.datasets import BandMapping

        try:
            model.mapping = BandMapping.from_json(metadata["value_mapping"])
        except (ValueError, KeyError, TypeError) as exc:
            raise FatsrError(
                f"{path}: its value_mapping entry is not a band mapping ({exc!r}); the file is damaged or from an older fatsr"
            ) from None
    return model.to(device).eval()


def _load_onnx(path: Path, device: torch.device, seed: int | None) -> Model:
    from fatsr.models.onnx_runner import load_onnx_model

    model = load_onnx_model(path, device=str(device))
    if seed is not None and seed != model.seed:
        raise ArgumentError(
            f"{{arg}}: this ONNX model was exported with seed {model.seed}; export it again with that seed",
            "seed",
            seed,
        )
    return model
