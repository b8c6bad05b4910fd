"""The model contract: what the tiler, :func:`fatsr.upscale` and every command may ask of a
model, whether it is a FAT network (:class:`~fatsr.models.wrapper.SRModel`), an exported graph
(:class:`~fatsr.models.onnx_runner.OnnxModel`) or the bicubic baseline
(:class:`~fatsr.models.bicubic.BicubicModel`).

A model maps (N, C, h, w) in [0, 1] to (N, C, scale*h, scale*w), not clamped, and describes
itself in a :class:`ModelInfo`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from torch import Tensor


@dataclass(frozen=True)
class SizeRule:
    """Input sides a model computes on as they are: at least ``minimum`` and a multiple of
    ``multiple_of`` (other sides it pads); none larger than ``maximum`` (None: no limit)."""

    minimum: int = 1
    multiple_of: int = 1
    maximum: int | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What a model is: ``scale``; channels in and out; the sides it takes (``size``); the
    tile side it advises for tiled inference; whether float16 / bfloat16 autocast is sound;
    its ``name`` and free-form ``metadata`` (e.g. a model file's)."""

    name: str
    scale: int
    in_channels: int
    out_channels: int
    size: SizeRule = SizeRule()
    tile: int = 192
    float16: bool = True
    bfloat16: bool = True
    metadata: Mapping[str, str] = field(default_factory=dict)


class Resampler(Protocol):
    """What the tiler needs: a callable that enlarges by ``scale``."""

    scale: int

    def __call__(self, x: Tensor) -> Tensor: ...  # (N, C, h, w) -> (N, C, scale*h, scale*w)


class Model(Resampler, Protocol):
    """The calling convention every model follows, with its description."""

    name: str

    @property
    def info(self) -> ModelInfo: ...


def info_of(model: object) -> ModelInfo:
    """``model.info``; for a plain callable with only ``.scale`` (a test double, a resampler)
    a description that asks nothing of the input size."""
    info = getattr(model, "info", None)
    if isinstance(info, ModelInfo):
        return info
    scale = int(model.scale)  # type: ignore[attr-defined]
    channels = int(getattr(model, "channels", 3))
    return ModelInfo(name=type(model).__name__, scale=scale, in_channels=channels, out_channels=channels)


def size_rule_of(model: object) -> SizeRule:
    """The sides ``model`` takes as they are (no rule for a plain callable)."""
    info = getattr(model, "info", None)
    return info.size if isinstance(info, ModelInfo) else SizeRule()
