"""``fatsr train``: train FAT on a folder of images (see :mod:`fatsr.training.train`).

Every field of :class:`~fatsr.training.config.TrainConfig` is a flag; ``--config run.yaml`` gives
defaults that flags override; resuming a run starts from the checkpoint's saved config.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from fatsr.training.config import (
    FIELDS,
    LOSS_ALIASES,
    TrainConfig,
    choices_of,
    field_type,
    help_of,
    load_yaml,
    recipe_defaults,
    updated,
)

DESCRIPTION = """\
Train a FAT super-resolution network.

Data: a folder with HR/ (or GT/) and LR/ sub-folders of same-named images, or a folder of
HR images only (LR made by bicubic downscaling). Training uses random aligned crops
(--patch-size LR pixels) with flips and 90-degree rotations, in the network's [-1, 1] space.
With --degradation (realesrgan, fat, bicubic or a preset .yaml, as for `fatsr degrade`) the
data gives HR crops only and each batch's LR is made on the training device, with parameters
drawn from (--seed, step, image's place in the global batch); validation still uses the
clean --val-dir pairs.
--batch-size is the GLOBAL batch: with torchrun each of K processes takes batch/K samples,
so K processes train exactly like one.

Run folder (--save-dir): config.yaml (resolved config), metrics.jsonl (losses every
--log-every steps, validation PSNR/SSIM), progress.png, last.pt (every --save-every steps and
at the end), step_XXXXXX.pt (--keep-every steps / --save_cycle epochs), best.safetensors
(EMA weights with the best validation PSNR-Y), last.safetensors (the latest EMA weights, at
every validation and when the run stops), model.safetensors (the final export) and, with
--degradation, degradation.yaml (the preset used). Ctrl-C saves last.pt and last.safetensors;
continue with --resume auto. `fatsr upscale --model RUN_DIR` runs the run's model.safetensors,
else best.safetensors, else last.safetensors (and says which). After the first steps a line
gives the time per step and how long the run's steps take. Model files name the training
folders (not their paths), with image counts and a hash of the files' names and sizes.

Without --preset, a CPU trains the compact network (fast enough there) and a GPU the
published one; --workers follows the machine's CPUs.

The defaults are fatsr's recipe; --recipe published starts from the published
train.py's instead (whole images resized so LR/HR are 120/480 on their shorter side, no
augmentation, no EMA, VGG fed raw [-1, 1], Adam 1e-4 without schedule, batch 2, 100
epochs, float32); any flag still overrides a value. fatsr's departures from the published
recipe: random 48x48 crops with flips and rotations, EMA 0.999, ImageNet-normalised VGG
input, bf16 on CUDA, no epoch checkpoints. Both recipes drop an epoch's last partial
batch, seed every draw, and export the best validated (or the last) weights.

The published train.py flags also work: --data_dir, --save_dir, --save_cycle (epochs),
--resume, --lr, --batch_size, --no-cuda, --epochs; `python train.py` runs with
--recipe published.
"""

EXAMPLES = """\
examples:
  fatsr train --data-dir data/train --val-dir data/val --preset compact --steps 20000 \\
      --losses perceptual=0 --save-dir runs/compact
  fatsr train --data-dir ucmerced/train ucmerced/train_extra --config configs/fatsr-x4.yaml
  fatsr train --config run.yaml --lr 2e-4           # flags override the YAML file
  fatsr train --data-dir data/train_hr --degradation fat --save-dir runs/real   # realistic LR
  fatsr train --save-dir runs/compact --resume auto  # continue where it stopped
  torchrun --nproc_per_node=4 -m fatsr train --config run.yaml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr train``'s arguments."""
    parser.add_argument("--config", metavar="YAML", help="YAML file of options (flags override it)")
    defaults = TrainConfig()
    for name in FIELDS:
        add_field(parser, name, getattr(defaults, name))
    add_loss_aliases(parser)
    parser.add_argument("--no-cuda", action="store_true", help="train on the CPU (same as --device cpu)")
    parser.set_defaults(func=run)


def add_field(parser: argparse.ArgumentParser, name: str, default: Any) -> None:
    """The flag(s) of config field ``name``, from its declaration (:func:`fatsr.training.config.option`);
    absent from the namespace unless given."""
    declared = FIELDS[name]
    base, _ = field_type(name)
    flags = [f"--{name.replace('_', '-')}", *declared.metadata["flags"]]
    shown = f" (default: {default})" if default not in (None, {}, []) and name != "losses" else ""
    options: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_of(declared) + shown}
    metavar = declared.metadata["metavar"]
    if base is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif base is tuple:
        options.update(nargs=2, type=float, metavar=metavar)
    elif name == "bands":
        options.update(type=_band_list, metavar=metavar)
    elif base is list and name == "data_dir":
        options.update(nargs="+", action="extend", metavar=metavar)
    elif base is list:
        options.update(nargs="*", type=int, metavar=metavar)
    elif name == "losses":
        options.update(nargs="+", action="extend", type=_key_value, metavar="TERM=WEIGHT")
    elif base is dict:
        options.update(action="append", type=_key_value, metavar="KEY=VALUE")
    else:
        generic = {int: "N", float: "X"}.get(base, "PATH")
        options.update(type=base, metavar=metavar or generic)
        choices = choices_of(declared)
        if choices is not None:
            options.update(choices=choices, metavar=None)
    parser.add_argument(*flags, **options)


def add_loss_aliases(parser: argparse.ArgumentParser) -> None:
    """--l1-weight, --perceptual-weight, --lev-weight: the loss weights' former flags."""
    for alias, term in LOSS_ALIASES.items():
        parser.add_argument(
            f"--{alias.replace('_', '-')}", dest=alias, type=float, default=argparse.SUPPRESS, metavar="X",
            help=f"the weight of the {term} loss (same as --losses {term}=X)",
        )  # fmt: skip


def _band_list(text: str) -> list[int]:
    try:
        return [int(b) for b in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give band numbers separated by commas, e.g. 4,3,2,5") from None


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem", None) or "not valid YAML"
        raise argparse.ArgumentTypeError(
            f"{text!r}: the value is not valid YAML ({where}); give a number, true/false, a word or a list such as [6, 6]"
        ) from None


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The config values given on the command line."""
    flags = {name: getattr(args, name) for name in [*FIELDS, *LOSS_ALIASES] if hasattr(args, name)}
    for name in ("network", "model_info", "losses"):
        if name in flags:
            flags[name] = dict(flags[name])
    if getattr(args, "no_cuda", False) and "device" not in flags:
        flags["device"] = "cpu"
    return flags


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults of the recipe (flag, else YAML, else fatsr) <- checkpoint's saved config (when
    resuming a run) <- YAML <- flags."""
    from fatsr.training import checkpoint

    flags = given_flags(args)
    file_values = load_yaml(args.config) if args.config else {}
    layers = [(file_values, str(args.config)), (flags, "command line")]
    recipe = flags.get("recipe", file_values.get("recipe", "fatsr"))
    config = _apply(recipe_defaults(str(recipe)), layers)
    resume = _resume_file(config)
    if resume is not None and resume.suffix != ".safetensors":
        saved = checkpoint.read(resume)
        if checkpoint.is_checkpoint(saved):
            base = updated(TrainConfig(), saved["config"], f"{resume} (saved config)")
            config = _apply(base, layers)
    return config


def _apply(config: TrainConfig, layers: list[tuple[dict[str, Any], str]]) -> TrainConfig:
    for values, source in layers:
        for name in ("network", "model_info", "losses"):  # mappings add up
            if isinstance(values.get(name), dict):
                values = {**values, name: {**getattr(config, name), **values[name]}}
        config = updated(config, values, source)
        if "epochs" in values and "steps" not in values:  # a later --epochs replaces an earlier steps
            config = updated(config, {"steps": None}, source)
    return config


def _resume_file(config: TrainConfig) -> Path | None:
    if config.resume is None:
        return None
    path = Path(config.save_dir) / "last.pt" if config.resume == "auto" else Path(config.resume)
    return path if path.is_file() else None


def run(args: argparse.Namespace) -> int:
    from fatsr.training.train import train

    result = train(resolve_config(args))
    if result.model_path is not None:
        best = f", best validation PSNR-Y {result.best_psnr:.3f} dB" if result.best_psnr is not None else ""
        print(f"done: {result.steps} steps{best}; model: {result.model_path}")
    return 0
