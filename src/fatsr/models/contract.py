"""The model contract: what the tiler, :func:`fatsr.upscale` and every command may ask of a
model, whether it is a FAT network (:class:`~fatsr.models.wrapper.SRModel`), an exported graph
(:class:`~fatsr.models.onnx_runner.OnnxModel`) or the bicubic baseline
(:class:`~fatsr.models.bicubic.BicubicModel`).

A model maps (N, C, h, w) in [0, 1] to (N, C, scale*h, scale*w), not clamped, and describes
itself in a :class:`ModelInfo`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from torch import Tensor, nn

from fatsr.values import ValueMapping


@dataclass(frozen=True)
class SizeRule:
    """Input sides (height, width) a network computes on as they are: multiples of
    ``multiple_of`` that ``enough`` accepts (None: all of them); none larger than ``maximum``
    (None: no limit). Other sides are padded (:meth:`padded`)."""

    multiple_of: int = 1
    maximum: int | None = None
    enough: Callable[[int, int], bool] | None = None

    def fits(self, height: int, width: int) -> bool:
        """Whether the network computes on ``height`` x ``width`` as it is."""
        m = self.multiple_of
        return height % m == 0 and width % m == 0 and (self.enough is None or self.enough(height, width))

    @property
    def minimum(self) -> int:
        """The smallest square side that fits."""
        return next(s for s in itertools.count(self.multiple_of, self.multiple_of) if self.fits(s, s))

    def padded(self, height: int, width: int) -> tuple[int, int]:
        """The smallest size >= (height, width) that fits: each side rounded up to the
        multiple, then the height grown by multiples until ``enough`` accepts it."""
        m = self.multiple_of
        h, w = math.ceil(height / m) * m, math.ceil(width / m) * m
        while self.enough is not None and not self.enough(h, w):
            h += m
        return h, w


@dataclass(frozen=True)
class ModelInfo:
    """What a model is: ``scale``; channels in and out (0: as many as given); the sides it
    takes (``size``); the tile side it advises for tiled inference; whether float16 / bfloat16
    autocast is sound; its ``name``, free-form ``metadata`` (e.g. a model file's), the bands
    and value mapping of a multispectral model (``mapping``) and the ``seed`` of its random
    parts (FAT's LSH rotations; None: it has none)."""

    name: str
    scale: int
    in_channels: int
    out_channels: int
    size: SizeRule = SizeRule()
    tile: int = 192
    float16: bool = True
    bfloat16: bool = True
    metadata: Mapping[str, str] = field(default_factory=dict)
    mapping: ValueMapping | None = None
    seed: int | None = None

    @property
    def channels(self) -> int:
        """The bands that go through the network together (3 for a model that takes any number)."""
        return self.in_channels or 3


class Resampler(Protocol):
    """What the tiler runs: a callable that enlarges by ``scale``, and describes itself."""

    scale: int

    def __call__(self, x: Tensor) -> Tensor: ...  # (N, C, h, w) -> (N, C, scale*h, scale*w)

    @property
    def info(self) -> ModelInfo: ...


class Model(Resampler, Protocol):
    """The calling convention every model follows, with its description."""

    name: str


class NetworkConfig(Protocol):
    """What every architecture's configuration (a frozen dataclass) has: the numbers a model
    file keeps (:meth:`to_dict`), the range a file may declare for each (``BOUNDS``)."""

    in_channels: int
    out_channels: int
    scale: int
    BOUNDS: ClassVar[dict[str, tuple[float, float]]]

    def to_dict(self) -> dict[str, Any]: ...


class Network(nn.Module):
    """The base of every architecture's module: built from its ``config``, it maps (B, C, H, W)
    in [-1, 1] to (B, C', scale*H, scale*W) in [-1, 1] on sides its size rule accepts
    (:class:`~fatsr.models.wrapper.SRModel` pads any input to that)."""

    config: Any
    scale: int


class Interpolation(nn.Module):
    """The base of a fixed resampler (bicubic, nearest, ...): its ``scale``, any number of
    channels, any size, nothing random."""

    scale: int

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(name=type(self).__name__.lower(), scale=self.scale, in_channels=0, out_channels=0)


def no_size_rule(config: Any) -> SizeRule:
    """The size rule of a network that computes on any side (a plain CNN)."""
    return SizeRule()


@dataclass(frozen=True)
class Preset:
    """A named configuration of an architecture, with a few words for ``fatsr train --help``."""

    config: Any
    about: str


@dataclass(frozen=True)
class Architecture:
    """One network fatsr builds, trains, saves, loads, runs and exports: its ``name`` (the
    ``architecture`` entry of its model files), its ``config`` class (a frozen dataclass, see
    :class:`NetworkConfig`), its ``module`` class (a :class:`Network` built as
    ``module(config)``), its ``presets`` (``fatsr train --preset``), the sides it computes on
    (``size_rule``, from a config) and, optionally, ``read_foreign``: a network from a
    published checkpoint's state dict in another layout (FatsrError if it is not one).
    :mod:`fatsr.models.registry` lists them."""

    name: str
    config: type
    module: type[Network]
    presets: Mapping[str, Preset]
    size_rule: Callable[[Any], SizeRule] = no_size_rule
    read_foreign: Callable[[object], Network] | None = None
