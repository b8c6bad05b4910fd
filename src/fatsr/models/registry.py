"""The architecture registry: every network fatsr knows, one :class:`~fatsr.models.contract.Architecture`
record each. Model files, ``fatsr train --preset``, export and the trainer find networks here.

Adding an architecture: write its module (a :class:`~fatsr.models.contract.Network`), its
config dataclass and its record in one new file under ``models/`` (``cnn.py`` is the example),
then add the record to :data:`ARCHITECTURES` below (or call :func:`register` from your code).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fatsr.errors import FatsrError
from fatsr.models import cnn, fat
from fatsr.models.contract import Architecture, Network, Preset, SizeRule

ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (fat.ARCHITECTURE, cnn.ARCHITECTURE)}
DEFAULT = "FAT"  # the architecture of a model file that names none (files from before the entry)


def register(architecture: Architecture) -> Architecture:
    """Add ``architecture`` (its name and preset names must be new); returns it."""
    if architecture.name in ARCHITECTURES:
        raise ValueError(f"architecture {architecture.name!r} is already registered")
    taken = sorted(set(architecture.presets) & set(presets()))
    if taken:
        raise ValueError(f"preset {', '.join(taken)} is already registered")
    ARCHITECTURES[architecture.name] = architecture
    return architecture


def unregister(name: str) -> None:
    """Remove architecture ``name`` (a test's throwaway one)."""
    del ARCHITECTURES[name]


def architecture(name: str | None) -> Architecture:
    """The record of architecture ``name`` (None: :data:`DEFAULT`); FatsrError naming the known ones."""
    found = ARCHITECTURES.get(DEFAULT if name is None else name)
    if found is None:
        raise FatsrError(f"architecture {name!r} is not supported; fatsr runs {' and '.join(ARCHITECTURES)} models")
    return found


def of(network: Network) -> Architecture:
    """The record of ``network``'s class."""
    for record in ARCHITECTURES.values():
        if type(network) is record.module:
            return record
    raise FatsrError(f"{type(network).__name__} is not a registered architecture ({', '.join(ARCHITECTURES)})")


def size_rule(network: Network) -> SizeRule:
    """The sides ``network`` computes on as they are (its architecture's rule for its config)."""
    return of(network).size_rule(network.config)


def presets() -> dict[str, tuple[Architecture, Preset]]:
    """Every preset name -> its architecture and preset, in registration order."""
    return {name: (a, p) for a in ARCHITECTURES.values() for name, p in a.presets.items()}


def presets_help() -> str:
    """The presets in words, for ``fatsr train --preset``'s help."""
    items = [f"{name} ({a.name}: {p.about})" for name, (a, p) in presets().items()]
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else items[0]


def build_network(preset: str = "fat", scale: int = 4, **overrides: Any) -> Network:
    """A freshly initialised network of the named preset (``overrides`` change its fields)."""
    found = presets().get(preset)
    if found is None:
        raise FatsrError(f"unknown preset {preset!r}; choose one of {', '.join(presets())}")
    record, chosen = found
    return record.module(replace(chosen.config, **overrides, scale=scale))
