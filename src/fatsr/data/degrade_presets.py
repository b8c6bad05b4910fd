"""Degradation presets: YAML files holding every parameter of :func:`fatsr.data.degrade.degrade`.

``load_preset`` takes a shipped name (``realesrgan``, ``fat``, ``bicubic``) or a path to a
YAML file of the same form and checks every key, so a typo fails before any image is made.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from fatsr.data.kernels import KERNEL_TYPES
from fatsr.errors import FatsrError

PRESET_DIR = Path(__file__).with_name("presets")
PRESET_NAMES = tuple(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
MODES = ("area", "bilinear", "bicubic")
STEPS = ("resize", "sinc", "jpeg")

Check = Callable[[Any], bool]


class _Maybe:
    """A sub-schema that may also be ``null``."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _prob(v: Any) -> bool:
    return _number(v) and 0 <= v <= 1


def _range(low: float, high: float | None = None) -> Check:
    return lambda v: (
        isinstance(v, list)
        and len(v) == 2
        and all(_number(x) for x in v)
        and low <= v[0] <= v[1]
        and (high is None or v[1] <= high)
    )


def _weights(keys: tuple[str, ...]) -> Check:
    return lambda v: (
        isinstance(v, dict)
        and bool(v)
        and set(v) <= set(keys)
        and all(_number(x) and x >= 0 for x in v.values())
        and sum(v.values()) > 0
    )


def _subset(choices: tuple[str, ...]) -> Check:
    return lambda v: isinstance(v, list) and bool(v) and all(x in choices for x in v)


def _steps(v: Any) -> bool:
    return isinstance(v, list) and v.count("resize") == 1 and len(set(v)) == len(v) and set(v) <= set(STEPS)


_KERNEL = {
    "sinc_prob": _prob,
    "sinc_small_below": lambda v: isinstance(v, int),
    "sinc_cutoff_small": _range(0.0),
    "sinc_cutoff_large": _range(0.0),
    "types": _weights(KERNEL_TYPES),
    "sigma": _range(1e-3),
    "rotation": _range(-10.0),
    "generalized_beta": _range(1e-3),
    "plateau_beta": _range(1e-3),
}
_STAGE = {
    "blur_prob": _prob,
    "kernel": _KERNEL,
    "resize": {
        "of": lambda v: v in ("input", "lr"),
        "probs": _weights(("up", "down", "keep")),
        "up": _range(1.0),
        "down": _range(1e-3, 1.0),
        "modes": _subset(MODES),
    },
    "noise": _Maybe(
        {
            "gaussian_prob": _prob,
            "gaussian_sigma": _range(0.0),
            "poisson_scale": _range(0.0),
            "gray_prob": _prob,
        }
    ),
    "jpeg": _Maybe({"quality": _range(1, 100)}),
    "resize_to": lambda v: v is None or (_number(v) and 0 < v <= 1),
}
# Keys a preset may leave out, with their values then (presets written before they existed).
DEFAULTS = {"noise_type": "image", "usm_target": False}
SCHEMA = {
    "noise_type": lambda v: v in ("image", "batch"),
    "usm_target": lambda v: isinstance(v, bool),
    "usm": _Maybe({"radius": lambda v: isinstance(v, int) and v > 0, "weight": _number, "threshold": _number}),
    "antialias": lambda v: isinstance(v, bool),
    "kernel_sizes": lambda v: (
        isinstance(v, list) and bool(v) and all(isinstance(k, int) and k > 0 and k % 2 for k in v)
    ),
    "first": _Maybe(_STAGE),
    "second": _Maybe(_STAGE),
    "final": {
        "order_prob": _prob,
        "order_a": _steps,
        "order_b": _steps,
        "sinc_prob": _prob,
        "sinc_cutoff": _range(0.0),
        "jpeg": _Maybe({"quality": _range(1, 100)}),
        "modes": _subset(MODES),
    },
}


def _validate(value: Any, schema: Any, where: str) -> None:
    if isinstance(schema, _Maybe):
        if value is not None:
            _validate(value, schema.schema, where)
        return
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise FatsrError(f"preset key {where or 'top level'} must be a mapping")
        missing, unknown = sorted(set(schema) - set(value)), sorted(set(value) - set(schema))
        if missing or unknown:
            raise FatsrError(
                f"preset {where or 'top level'}: missing keys {missing}, unknown keys {unknown}; "
                f"compare with {PRESET_DIR / 'realesrgan.yaml'}"
            )
        for key, sub in schema.items():
            _validate(value[key], sub, f"{where}.{key}" if where else key)
        return
    if not schema(value):
        raise FatsrError(
            f"preset key {where} has an invalid value {value!r}; see the comments in {PRESET_DIR / 'realesrgan.yaml'}"
        )


def load_preset(name_or_path: str | os.PathLike) -> dict:
    """The checked preset dict of a shipped preset name or a YAML file path."""
    text = str(name_or_path)
    path = PRESET_DIR / f"{text}.yaml" if text in PRESET_NAMES else Path(text)
    if not path.is_file():
        raise FatsrError(f"unknown preset {text!r}; use one of {', '.join(PRESET_NAMES)} or a path to a .yaml file")
    try:
        preset = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise FatsrError(f"{path}: not valid YAML ({exc}); fix the preset file") from None
    if isinstance(preset, dict):
        preset = {**DEFAULTS, **preset}
    try:
        _validate(preset, SCHEMA, "")
        if preset["usm_target"] and preset["usm"] is None:
            raise FatsrError("preset key usm_target is true but usm is null; give usm settings or set it false")
    except FatsrError as exc:
        raise FatsrError(f"{path}: {exc}") from None
    return preset
