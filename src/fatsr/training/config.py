"""The training configuration: :class:`TrainConfig` is the source of truth; YAML files and
command-line flags fill it, and the resolved config is saved with every run."""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, InitVar, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fatsr.errors import ArgumentError, FatsrError
from fatsr.io import atomic_write
from fatsr.losses import TERMS, check_weights, default_weights
from fatsr.models import registry


def option(
    default: Any = MISSING,
    help: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    flags: tuple[str, ...] = (),
    metavar: str | tuple[str, ...] | None = None,
) -> Any:
    """A :class:`TrainConfig` field declared once: its default, its ``--help`` text, the values
    it takes (``choices``, or bounds: ``>= at_least``, ``> above``, ``< below``; each number of
    a pair), more flags that set it (the published train.py's spellings) and its metavar. The
    ``fatsr train`` flags and :meth:`TrainConfig.validate` are generated from these."""
    metadata = {"help": help, "choices": choices, "at_least": at_least, "above": above, "below": below,
                "flags": flags, "metavar": metavar}  # fmt: skip
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _presets() -> tuple[str, ...]:
    return tuple(registry.presets())


def _preset_help() -> str:
    return f"network: {registry.presets_help()} (default: fat on a GPU, compact on a CPU)"


def _losses_help() -> str:
    terms = ", ".join(f"{name} ({term.about})" for name, term in TERMS.items())
    return f"loss terms and their weights, e.g. --losses lev=0.2 perceptual=0 (0 = off; terms: {terms})"


# The loss weights' former options (config files, run folders, flags): term -> option name.
LOSS_ALIASES = {f"{name}_weight": name for name in ("l1", "perceptual", "lev")}


@dataclass
class TrainConfig:
    """Everything a training run depends on. The defaults are fatsr's recipe: the published
    network on a GPU (preset ``fat``; on a CPU the ``compact`` one, see :func:`default_preset`),
    loss weights, optimiser, learning rate, batch and length (x4,
    Adam 1e-4, batch 2, 100 epochs, L1 + 0.001 perceptual + 0.1 LEV), trained the way fatsr
    trains: random 48x48 LR crops with flips and rotations, EMA 0.999, ImageNet-normalised VGG
    input, bf16 on CUDA. ``recipe="published"`` starts from :data:`PUBLISHED` instead (see
    :func:`recipe_defaults`); the README lists each departure. Each field is declared once
    (:func:`option`); ``l1_weight``, ``perceptual_weight`` and ``lev_weight`` set a term of
    ``losses``, as they did before it."""

    recipe: str = option(
        "fatsr",
        "defaults to start from: fatsr (random crops, augmentation, EMA, ImageNet-normalised VGG "
        "input) or published (the published train.py: whole images resized to 120/480, no augmentation, "
        "no EMA, raw [-1, 1] VGG input, Adam 1e-4 constant, batch 2, 100 epochs); other flags override it",
        choices=("fatsr", "published"),
    )
    # data
    data_dir: list[str] = option(
        help="training images: HR/ (or GT/) + LR/, or HR only; several folders train on all of them "
        "(--data-dir A B or --data-dir A --data-dir B)",
        factory=lambda: ["./datasets/train"],
        flags=("--data_dir",),
        metavar="DIR",
    )
    val_dir: str | None = option(None, "validation images (same layouts); none = no validation", metavar="DIR")
    scale: int = option(4, "upscaling factor", at_least=1)
    sampling: str = option(
        "crop",
        "crop: random aligned --patch-size crops; resize: whole images resized so the LR's "
        "shorter side is --patch-size (published)",
        choices=("crop", "resize"),
    )
    patch_size: int = option(
        48,
        "LR crop side in pixels, or the LR shorter side with --sampling resize (a multiple of 12 for the presets)",
        at_least=1,
    )
    augment: bool = option(True, "random flips and 90-degree rotations")
    scale_augment: float = option(
        1.0,
        "F > 1: half of the HR images are first shrunk by a random factor in [1, F] (log-uniform, "
        "Pillow bicubic), so one ground sample distance also teaches coarser ones (HR-only data); 1 = off",
        at_least=1,
    )
    cache: bool = option(False, "keep decoded training images in memory")
    workers: int | None = option(
        None,
        "data loading processes (default: half the usable CPUs, at most 8; 0 = in the training process)",
        at_least=0,
    )
    degradation: str | None = option(
        None,
        "make each batch's LR on the training device from HR crops with this degradation "
        "(a `fatsr degrade` preset or .yaml file), fresh random parameters per image; LR/ files are not used",
        metavar="PRESET|YAML",
    )
    bands: list[int] = option(
        help="train on these bands of multispectral rasters (GeoTIFF, JP2, ...), e.g. 4,3,2,5: "
        "the network gets as many channels; the bands and value mapping are saved in the model for upscale",
        factory=list,
        metavar="B,B,...",
    )
    value_range: tuple[float, float] | None = option(
        None,
        "with --bands: values mapped to 0..1 (default: the dtype range of 8/16-bit data; needed for int16/float)",
        metavar=("LO", "HI"),
    )
    # network
    preset: str | None = option(None, "", choices=_presets)  # None: by the device (default_preset)
    network: dict[str, Any] = option(
        help="override a preset argument, e.g. --network dim=48 (repeatable)", factory=dict
    )
    # length: steps wins; else epochs (default 100, as published)
    steps: int | None = option(None, "training steps (wins over --epochs)", at_least=1)
    stop_at: int | None = option(
        None, "stop at this step, the schedule still spanning --steps (a stage cut short)", at_least=1
    )
    epochs: int | None = option(None, "training epochs when --steps is not given (default 100)", at_least=1)
    batch_size: int = option(2, "GLOBAL batch size, split across DDP processes", at_least=1, flags=("--batch_size",))
    cpu_budget_min: float = option(
        0.0,
        "stop once the training steps have used this many CPU minutes (process time, summed over resumes; "
        "validation not counted); 0 = off. With --threads 1 it compares runs fairly on a busy machine",
        at_least=0,
    )
    # optimisation
    optimizer: str = option("adam", "optimiser", choices=("adam", "adamw"))
    lr: float = option(1e-4, "peak learning rate", above=0)
    betas: tuple[float, float] = option((0.9, 0.999), "Adam betas", at_least=0, below=1, metavar=("B1", "B2"))
    weight_decay: float = option(0.0, "weight decay (decoupled with adamw)", at_least=0)
    schedule: str = option(
        "constant", "learning-rate schedule after warm-up", choices=("constant", "cosine", "multistep")
    )
    warmup_steps: int = option(0, "linear learning-rate warm-up steps", at_least=0)
    milestones: list[int] = option(
        help="steps where multistep multiplies the learning rate by --gamma", factory=list, metavar="STEP"
    )
    gamma: float = option(0.5, "multistep factor", above=0)
    grad_clip: float = option(0.0, "clip the gradient norm to this; 0 = off", at_least=0)
    ema_decay: float = option(0.999, "decay of the weights' moving average (updated every step)", at_least=0, below=1)
    amp: str = option(
        "auto",
        "mixed precision on CUDA (auto = bf16 on CUDA, none on CPU; fp16 uses a grad scaler)",
        choices=("auto", "none", "bf16", "fp16"),
    )
    compile: bool = option(False, "torch.compile the network")
    # loss
    losses: dict[str, float] = option(help="", factory=default_weights)
    vgg_weights: str | None = option(
        None, "path of torchvision's ImageNet VGG19 weights vgg19-dcbb9e9d.pth", metavar="PATH"
    )
    published_normalization: bool = option(
        False, "feed VGG the [-1, 1] images as published (default: ImageNet normalisation)"
    )
    # bookkeeping
    model_info: dict[str, Any] = option(
        help="recorded in the exported model files, e.g. --model-info gsd_m=0.3 --model-info licence=MIT "
        "(entries: description, bands, value_range, training_data, gsd_m, degradation, licence; repeatable)",
        factory=dict,
    )
    save_dir: str = option("./checkpoints/v1", "run folder", flags=("--save_dir",), metavar="DIR")
    val_every: int = option(1000, "validate the EMA weights every N steps", at_least=1)
    save_every: int = option(1000, "write last.pt every N steps", at_least=1)
    keep_every: int = option(0, "also keep step_XXXXXX.pt every N steps; 0 = never", at_least=0)
    save_cycle: int = option(
        0, "also keep step_XXXXXX.pt every N epochs; 0 = never", at_least=0, flags=("--save_cycle",)
    )
    log_every: int = option(50, "log the mean losses every N steps", at_least=1)
    seed: int = option(0, "seed of weights, sample order, crops and LSH rotations")
    device: str = option("auto", "auto, cpu, cuda or cuda:N", metavar="DEVICE")
    threads: int = option(
        0,
        "torch CPU threads per process; 0 = torch's default (one per usable CPU). The same seed and "
        "thread count give the same weights, to the bit",
        at_least=0,
    )
    resume: str | None = option(
        None,
        "continue from a checkpoint PATH, or 'auto' = <save-dir>/last.pt if present; "
        "a model file or published .pth starts from its weights",
        metavar="PATH|auto",
    )
    overwrite: bool = option(False, "start afresh in a --save-dir that holds a run")
    tensorboard: bool = option(False, "also log to <save-dir>/tensorboard (needs tensorboard)")
    progress: bool = option(True, "show a progress bar")
    # the loss weights' former names (init only: each sets its term of `losses`)
    l1_weight: InitVar[float | None] = None
    perceptual_weight: InitVar[float | None] = None
    lev_weight: InitVar[float | None] = None

    def __post_init__(
        self, l1_weight: float | None = None, perceptual_weight: float | None = None, lev_weight: float | None = None
    ) -> None:
        # From Python a folder may come as a str or a path: data_dir holds it as one folder
        # (not a list of its characters), and paths become the str that config.yaml saves.
        folders: Any = self.data_dir
        self.data_dir = [os.fspath(f) for f in ([folders] if isinstance(folders, (str, os.PathLike)) else folders)]
        for name in ("val_dir", "vgg_weights", "degradation", "save_dir", "resume"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        aliases = {"l1_weight": l1_weight, "perceptual_weight": perceptual_weight, "lev_weight": lev_weight}
        given = {LOSS_ALIASES[k]: v for k, v in aliases.items() if v is not None}
        self.losses = coerce("losses", {**self.losses, **given})

    def validate(self) -> None:
        """Raise :class:`FatsrError` for values no run can use: each field against its declared
        choices and bounds, then the rules between fields."""
        for f in dataclasses.fields(self):
            check_option(f, getattr(self, f.name))
        try:
            check_weights(self.losses)
        except FatsrError as exc:
            raise ArgumentError(f"{{arg}}: {exc}", "losses", None) from None
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
        for name, weight in self.losses.items():
            if self.bands and len(self.bands) != 3 and weight and TERMS[name].three_bands:
                raise ArgumentError(
                    f"the {name} loss ({TERMS[name].about}) needs 3 bands, not {len(self.bands)}; add {{arg}}",
                    "losses",
                    f"{name}=0",
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


def choices_of(f: dataclasses.Field) -> tuple[str, ...] | None:
    """The values an option takes, or None."""
    declared = f.metadata.get("choices")
    return declared() if callable(declared) else declared


def help_of(f: dataclasses.Field) -> str:
    """An option's ``--help`` text."""
    return {"preset": _preset_help, "losses": _losses_help}.get(f.name, lambda: f.metadata["help"])()


def check_option(f: dataclasses.Field, value: Any) -> None:
    """``value`` within what field ``f`` declares (ArgumentError naming it otherwise); None passes."""
    if value is None:
        return
    allowed = choices_of(f)
    if allowed is not None and value not in allowed:
        raise ArgumentError(f"{{arg}}: must be one of {', '.join(allowed)}", f.name, value)
    numbers = list(value) if isinstance(value, (tuple, list)) else [value]
    if not all(isinstance(v, (int, float)) for v in numbers):
        return
    if not all(math.isfinite(v) for v in numbers):
        raise ArgumentError(
            f"{{arg}}: must be {'finite numbers' if len(numbers) > 1 else 'a finite number'}", f.name, value
        )
    low, above, below = f.metadata.get("at_least"), f.metadata.get("above"), f.metadata.get("below")
    if low is not None and below is not None and not all(low <= v < below for v in numbers):
        raise ArgumentError(f"{{arg}}: must be in [{low:g}, {below:g})", f.name, value)
    if low is not None and not all(v >= low for v in numbers):
        raise ArgumentError(f"{{arg}}: must be >= {low:g}", f.name, value)
    if above is not None and not all(v > above for v in numbers):
        raise ArgumentError(f"{{arg}}: must be > {above:g}", f.name, value)


# The published train.py (github.com/fengyanzi/FAT, commit 82a977b): its losses and training recipe.
PUBLISHED: dict[str, Any] = {
    "preset": "fat", "scale": 4, "sampling": "resize", "patch_size": 120, "augment": False,
    "batch_size": 2, "epochs": 100, "steps": None, "optimizer": "adam", "lr": 1e-4, "betas": (0.9, 0.999),
    "weight_decay": 0.0, "schedule": "constant", "warmup_steps": 0, "grad_clip": 0.0, "ema_decay": 0.0,
    "amp": "none", "losses": {"l1": 1.0, "perceptual": 0.001, "lev": 0.1},
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
    check_option(FIELDS["recipe"], recipe)
    return TrainConfig() if recipe == "fatsr" else dataclasses.replace(TrainConfig(), recipe=recipe, **PUBLISHED)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS: dict[str, Any] = typing.get_type_hints(TrainConfig)


def field_type(name: str) -> tuple[type, bool]:
    """(base type, optional) of a field, e.g. ``str | None`` -> (str, True)."""
    hint = _HINTS[name]
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return typing.get_origin(inner) or inner, True
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
        if name == "losses":  # term -> weight
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise TypeError
            return {k: _convert(float, v) for k, v in value.items()}
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
    """A copy of ``config`` with ``values`` (checked and converted) applied; the loss weights'
    former options (:data:`LOSS_ALIASES`) set their term of ``losses``."""
    aliases = {LOSS_ALIASES[k]: v for k, v in values.items() if k in LOSS_ALIASES}
    if aliases:
        values = {k: v for k, v in values.items() if k not in LOSS_ALIASES}
        values["losses"] = {**config.losses, **coerce("losses", values.get("losses", {})), **coerce("losses", aliases)}
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


def write_yaml(config: TrainConfig, path: str | os.PathLike) -> None:
    """Save the resolved config (readable back with ``--config``)."""
    with atomic_write(path, overwrite=True) as tmp:
        tmp.write_text(yaml.safe_dump(to_dict(config), sort_keys=False), encoding="utf-8")
