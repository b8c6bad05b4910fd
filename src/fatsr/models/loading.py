"""One loader for every model a user can name: :func:`load_model`, used by :func:`fatsr.upscale`,
every command and the trainer's validation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from fatsr.errors import ArgumentError, FatsrError
from fatsr.models import zoo
from fatsr.values import ValueMapping

if TYPE_CHECKING:  # torch is imported where a model is loaded, not to name one
    import torch

    from fatsr.models.contract import Model


def load_model(
    spec: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    scale: int | None = None,
    tta: bool = False,
    denoise: float | str | None = None,
) -> Model:
    """A ready model (eval mode, on ``device``) from ``spec``:

    * None, ``"default"`` or ``"builtin"``: the shipped model;
    * ``"bicubic"``: the bicubic baseline (x``scale``, 4 unless given);
    * a path: a fatsr ``.safetensors`` model file, a published ``.pth`` checkpoint, or a
      ``.onnx`` graph from ``fatsr export`` (run by onnxruntime).

    ``seed``: the LSH rotations' seed (default 0; an ONNX graph holds the rotations of the seed
    it was exported with, and a different ``seed`` is refused). ``scale``: when given, the
    model's scale must be this. ``tta``: the model on the 8 flips and quarter turns of each
    input, averaged (:class:`~fatsr.models.ensemble.SelfEnsemble`, 8 times the work).
    ``denoise``: 0..1, the built-in ``fatsr-x4`` (0) and ``fatsr-real-x4`` (1) weights mixed in
    that proportion (one network, no extra work); ``spec`` must be None or one of the two.
    ``"auto"`` (``fatsr-real-x4``'s default): the strength chosen for each input tile from how
    blurred it looks (:mod:`fatsr.models.strength`).
    """
    model = _load(spec, device=device, seed=seed, scale=scale, denoise=denoise)
    if tta:
        from fatsr.models.ensemble import SelfEnsemble

        return SelfEnsemble(model)
    return model


def _load(
    spec: str | os.PathLike | None,
    *,
    device: str | torch.device,
    seed: int | None,
    scale: int | None,
    denoise: float | str | None,
) -> Model:
    if scale is not None and scale < 1:
        raise ArgumentError("{arg}: the scale must be at least 1", "scale", scale)
    import torch

    model: Model
    if denoise is None and spec == DENOISE[1]:
        denoise = "auto"  # fatsr-real-x4 by its name: the strength that suits each input
    if denoise is not None:
        model = _blend(spec, denoise, torch.device(device), 0 if seed is None else seed)
    elif spec == "bicubic":
        from fatsr.models.bicubic import BicubicModel

        return BicubicModel(4 if scale is None else scale)
    else:
        path = zoo.model_path(spec)
        assert path is not None
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
    mapping = None
    if "value_mapping" in metadata:
        try:
            mapping = ValueMapping.from_json(metadata["value_mapping"])
        except (ValueError, KeyError, TypeError) as exc:
            raise FatsrError(
                f"{path}: its value_mapping entry is not a band mapping ({exc!r}); the file is damaged or from an older fatsr"
            ) from None
    model = SRModel(network, name=metadata.get("name", path.stem), seed=seed, metadata=metadata, mapping=mapping)
    return model.to(device).eval()


DENOISE = ("fatsr-x4", "fatsr-real-x4")  # built-in models of one architecture: clean (0) and real imagery (1)


def _blend(spec: str | os.PathLike | None, strength: float | str, device: torch.device, seed: int) -> Model:
    """The network whose every weight is (1 - strength) * fatsr-x4's + strength * fatsr-real-x4's
    (``"auto"``: :class:`~fatsr.models.strength.AutoDenoise`)."""
    import torch

    from fatsr.models.files import load_network
    from fatsr.models.wrapper import SRModel

    if strength != "auto" and not (isinstance(strength, (int, float)) and 0 <= strength <= 1):
        raise ArgumentError(
            "{arg}: give a strength from 0 (fatsr-x4) to 1 (fatsr-real-x4), or auto", "denoise", strength
        )
    if spec not in (None, *zoo.BUILTIN, *DENOISE):
        raise ArgumentError(
            f"{{arg}} mixes the built-in {DENOISE[0]} and {DENOISE[1]}; drop {{model}} or name one of them",
            "denoise",
            strength,
            model=("model", spec),
        )
    files = [zoo.builtin_models().get(name) for name in DENOISE]
    if None in files:
        raise FatsrError(f"denoise needs the built-in models {' and '.join(DENOISE)}, which this build lacks")
    (clean, _), (real, metadata) = (load_network(f) for f in files if f is not None)
    if strength == "auto":
        from fatsr.models.strength import AutoDenoise

        wrapped = SRModel(real, name=DENOISE[1], seed=seed, metadata=metadata).to(device).eval()
        return AutoDenoise(wrapped, {k: v.to(device) for k, v in clean.state_dict().items()}).eval()
    assert not isinstance(strength, str)
    ends = real.state_dict()
    mixed = {k: torch.lerp(v, ends[k], float(strength)) for k, v in clean.state_dict().items()}
    real.load_state_dict(mixed)
    name = f"{DENOISE[1]} denoise {strength:g}"
    return SRModel(real, name=name, seed=seed, metadata={**metadata, "denoise": f"{strength:g}"}).to(device).eval()


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
