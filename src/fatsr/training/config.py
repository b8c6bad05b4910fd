"""The training configuration: :class:`TrainConfig` is the source of truth; YAML files and
command-line flags fill it, and the resolved config is saved with every run."""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fatsr.errors import ArgumentError, FatsrError
from fatsr.io import atomic_write
from fatsr.models import registry

CHOICES: dict[str, tuple[str, ...]] = {
    "recipe": ("fatsr", "published"),
    "sampling": ("crop", "resize"),
    "optimizer": ("adam", "adamw"),
    "schedule": ("constant", "cosine", "multistep"),
    "amp": ("auto", "none", "bf16", "fp16"),
}


def choices() -> dict[str, tuple[str, ...]]:
    """The values each option with a fixed set takes (the presets: those of the architectures registered now)."""
    return {**CHOICES, "preset": tuple(registry.presets())}


@dataclass
class TrainConfig:
    """Everything a training run depends on. The defaults are fatsr's recipe: the published
    network on a GPU (preset ``fat``; on a CPU the ``compact`` one, see :func:`default_preset`),
    loss weights, optimiser, learning rate, batch and length (x4,
    Adam 1e-4, batch 2, 100 epochs, L1 + 0.001 perceptual + 0.1 LEV), trained the way fatsr
    trains: random 48x48 LR crops with flips and rotations, EMA 0.999, ImageNet-normalised VGG
    input, bf16 on CUDA. ``recipe="published"`` starts from :data:`PUBLISHED` instead (see
    :func:`recipe_defaults`); the README lists each departure."""

    recipe: str = "fatsr"  # the defaults the other values start from: fatsr or published
    # data
    data_dir: list[str] = field(default_factory=lambda: ["./datasets/train"])  # one or more folders
    val_dir: str | None = None
    scale: int = 4
    sampling: str = "crop"  # crop: random aligned crops; resize: whole images resized (published)
    patch_size: int = 48  # LR patch side (crop), or the LR shorter side (resize)
    augment: bool = True
    scale_augment: float = 1.0  # > 1: half the HR images shrunk by a random factor up to this first
    cache: bool = False
    workers: int | None = None  # data loading processes; None = by the machine's CPUs (default_workers)
    degradation: str | None = None  # preset name or YAML: LR made per batch from HR crops on the device
    bands: list[int] = field(default_factory=list)  # multispectral rasters: 1-based bands = network channels
    value_range: tuple[float, float] | None = None  # with bands: values mapped to [0, 1] (default: dtype range)
    # network
    preset: str | None = None  # None = by the device: fat on a GPU, compact on a CPU (default_preset)
    network: dict[str, Any] = field(default_factory=dict)  # overrides of the preset's arguments
    # length: steps wins; else epochs (default 100, as published)
    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 2  # global batch, split across DDP processes
    cpu_budget_min: float = 0.0  # stop after this many CPU minutes of training steps (all runs of it); 0 = off
    # optimisation
    optimizer: str = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    ema_decay: float = 0.999
    amp: str = "auto"  # auto = bf16 on CUDA, none on CPU
    compile: bool = False
    # loss
    l1_weight: float = 1.0
    perceptual_weight: float = 0.001
    lev_weight: float = 0.1
    vgg_weights: str | None = None
    published_normalization: bool = False
    # bookkeeping
    model_info: dict[str, Any] = field(default_factory=dict)  # recorded in exported model files (files.INFO_KEYS)
    save_dir: str = "./checkpoints/v1"
    val_every: int = 1000
    save_every: int = 1000  # last.pt
    keep_every: int = 0  # step_XXXXXX.pt every N steps; 0 = never
    save_cycle: int = 0  # step_XXXXXX.pt every N epochs (the published flag); 0 = never
    log_every: int = 50
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads per process; 0 = torch's default
    resume: str | None = None  # PATH or "auto" (= <save_dir>/last.pt if present)
    overwrite: bool = False  # start afresh in a save_dir that holds a run
    tensorboard: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        # From Python a folder may come as a str or a path: data_dir holds it as one folder
        # (not a list of its characters), and paths become the str that config.yaml saves.
        folders: Any = self.data_dir
        self.data_dir = [os.fspath(f) for f in ([folders] if isinstance(folders, (str, os.PathLike)) else folders)]
        for name in ("val_dir", "vgg_weights", "degradation", "save_dir", "resume"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))

    def validate(self) -> None:
        """Raise :class:`FatsrError` for values no run can use."""
        for name, allowed in choices().items():
            if getattr(self, name) not in allowed and not (name == "preset" and self.preset is None):
                raise ArgumentError(f"{{arg}}: must be one of {', '.join(allowed)}", name, getattr(self, name))
        for name in (
            "lr",
            "weight_decay",
            "gamma",
            "grad_clip",
            "ema_decay",
            "l1_weight",
            "perceptual_weight",
            "lev_weight",
            "scale_augment",
        ):
            if not math.isfinite(getattr(self, name)):
                raise ArgumentError("{arg}: must be a finite number", name, getattr(self, name))
        if not all(map(math.isfinite, self.betas)):
            raise ArgumentError("{arg}: must be finite numbers", "betas", self.betas)
        for name in ("l1_weight", "perceptual_weight", "lev_weight"):
            if getattr(self, name) < 0:
                raise ArgumentError("{arg}: must be >= 0", name, getattr(self, name))
        if not self.scale_augment >= 1:
            raise ArgumentError("{arg}: must be >= 1 (1 = off)", "scale_augment", self.scale_augment)
        if not self.gamma > 0:
            raise ArgumentError("{arg}: must be > 0", "gamma", self.gamma)
        positive = ("scale", "patch_size", "batch_size", "val_every", "save_every", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ArgumentError("{arg}: must be >= 1", name, getattr(self, name))
        for name in ("steps", "epochs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ArgumentError("{arg}: must be >= 1", name, getattr(self, name))
        non_negative = (
            "workers", "warmup_steps", "weight_decay", "grad_clip", "keep_every", "save_cycle", "threads", "cpu_budget_min",
        )  # fmt: skip
        for name in non_negative:
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ArgumentError("{arg}: must be >= 0", name, getattr(self, name))
        if not self.lr > 0:
            raise ArgumentError("{arg}: must be > 0", "lr", self.lr)
        if not 0 <= self.ema_decay < 1:
            raise ArgumentError("{arg}: must be in [0, 1)", "ema_decay", self.ema_decay)
        if not all(0 <= b < 1 for b in self.betas):
            raise ArgumentError("{arg}: must be in [0, 1)", "betas", self.betas)
        if self.bands and (min(self.bands) < 1 or len(set(self.bands)) != len(self.bands)):
            raise ArgumentError("{arg}: give different band numbers from 1, e.g. 4,3,2,5", "bands", self.bands)
        if self.value_range is not None and not self.bands:
            raise ArgumentError(
                "{arg} maps raster bands; give {bands} too",
                "value_range",
                self.value_range,
                bands=("bands", (4, 3, 2, 5)),
            )
        if self.value_range is not None and not self.value_range[0] < self.value_range[1]:
            raise ArgumentError("{arg}: LO must be below HI", "value_range", self.value_range)
        if self.bands and len(self.bands) != 3 and self.perceptual_weight:
            raise ArgumentError(
                f"the perceptual loss (VGG19) needs 3 bands, not {len(self.bands)}; add {{arg}}", "perceptual_weight", 0
            )
        if self.bands and len(self.bands) != 3 and self.degradation:
            raise ArgumentError(
                f"{{arg}} works on 3-band images, not {len(self.bands)} bands; drop it", "degradation", self.degradation
            )
        if self.schedule == "multistep" and not self.milestones:
            raise ArgumentError(
                "{arg} needs {milestones}", "schedule", "multistep", milestones=("milestones", "STEP [STEP ...]")
            )
        from fatsr.models.files import INFO_KEYS

        unknown = sorted(set(self.model_info) - set(INFO_KEYS))
        if unknown:
            raise ArgumentError(
                f"{{arg}}: not a model file entry; use {', '.join(INFO_KEYS)}", "model_info", ", ".join(unknown)
            )
        if self.degradation is not None:
            from fatsr.data.degrade_presets import load_preset

            try:
                load_preset(self.degradation)
            except FatsrError as exc:
                raise ArgumentError(f"{{arg}}: {exc}", "degradation", None) from None


# The published train.py (fengyanzi/FAT), as recorded in docs/fat-architecture.md sections 11-12.
PUBLISHED: dict[str, Any] = {
    "preset": "fat", "scale": 4, "sampling": "resize", "patch_size": 120, "augment": False,
    "batch_size": 2, "epochs": 100, "steps": None, "optimizer": "adam", "lr": 1e-4, "betas": (0.9, 0.999),
    "weight_decay": 0.0, "schedule": "constant", "warmup_steps": 0, "grad_clip": 0.0, "ema_decay": 0.0,
    "amp": "none", "l1_weight": 1.0, "perceptual_weight": 0.001, "lev_weight": 0.1,
    "published_normalization": True, "save_cycle": 5,
}  # fmt: skip


def default_preset(device_type: str) -> str:
    """The network trained when no preset is given: the published ``fat`` on a GPU; on a CPU, where
    it takes many seconds a step, the ``compact`` one the built-in models started from."""
    return "compact" if device_type == "cpu" else "fat"


def default_workers() -> int:
    """Data loading processes when not given: half the usable CPUs (the rest run the steps), at most 8."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(8, cpus // 2)


def recipe_defaults(recipe: str) -> TrainConfig:
    """The defaults of ``recipe``: :class:`TrainConfig`'s (fatsr) or with :data:`PUBLISHED` applied."""
    if recipe not in CHOICES["recipe"]:
        raise ArgumentError(f"{{arg}}: must be one of {', '.join(CHOICES['recipe'])}", "recipe", recipe)
    return TrainConfig() if recipe == "fatsr" else dataclasses.replace(TrainConfig(), recipe=recipe, **PUBLISHED)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS: dict[str, Any] = typing.get_type_hints(TrainConfig)


def field_type(name: str) -> tuple[type, bool]:
    """(base type, optional) of a field, e.g. ``str | None`` -> (str, True)."""
    hint = _HINTS[name]
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return typing.get_origin(hint) or hint, False


def coerce(name: str, value: Any) -> Any:
    """``value`` checked and converted to the type of field ``name`` (FatsrError if it cannot be)."""
    base, optional = field_type(name)
    if value is None and optional:
        return None
    try:
        if base is tuple:
            if len(value) != 2:
                raise TypeError
            return tuple(_convert(float, v) for v in value)
        if base is list:
            item = (typing.get_args(_HINTS[name]) or (int,))[0]
            if item is str and isinstance(value, (str, os.PathLike)):
                value = [value]  # one folder
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise TypeError
            return [_convert(item, v) for v in value]
        return _convert(base, value)
    except TypeError:
        raise FatsrError(f"config value {name}: {value!r} is not a valid {_HINTS[name]}") from None


def _convert(base: type, value: Any) -> Any:
    """``value`` as a ``base`` (bool, int, float, str or dict); TypeError if it is not one."""
    if base is bool and isinstance(value, bool):
        return value
    if base is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base is str and isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if base is dict and isinstance(value, dict):
        return dict(value)
    raise TypeError(f"{value!r} is not a {base.__name__}")


def updated(config: TrainConfig, values: dict[str, Any], source: str) -> TrainConfig:
    """A copy of ``config`` with ``values`` (checked and converted) applied."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise FatsrError(f"{source}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(FIELDS)}")
    return dataclasses.replace(config, **{k: coerce(k, v) for k, v in values.items()})


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a YAML config file (FatsrError if missing or not a mapping)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FatsrError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FatsrError(f"{path}: not valid YAML ({what}{where})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FatsrError(f"{path}: a config file must be a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain YAML-safe values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def from_dict(values: dict[str, Any], source: str) -> TrainConfig:
    """A :class:`TrainConfig` from a plain mapping (e.g. a checkpoint's saved config)."""
    return updated(TrainConfig(), values, source)


def write_yaml(config: TrainConfig, path: str | os.PathLike) -> None:
    """Save the resolved config (readable back with ``--config``)."""
    with atomic_write(path, overwrite=True) as tmp:
        tmp.write_text(yaml.safe_dump(to_dict(config), sort_keys=False), encoding="utf-8")
