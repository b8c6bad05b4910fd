"""``fatsr train``: train FAT on a folder of images (see :mod:`fatsr.training.train`).

Every field of :class:`~fatsr.training.config.TrainConfig` is a flag; ``--config run.yaml`` gives
defaults that flags override; resuming a run starts from the checkpoint's saved config.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from fatsr.models import registry
from fatsr.training.config import (
    FIELDS,
    TrainConfig,
    choices,
    field_type,
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
      --perceptual-weight 0 --save-dir runs/compact
  fatsr train --data-dir ucmerced/train ucmerced/train_extra --config configs/fatsr-x4.yaml
  fatsr train --config run.yaml --lr 2e-4           # flags override the YAML file
  fatsr train --data-dir data/train_hr --degradation fat --save-dir runs/real   # realistic LR
  fatsr train --save-dir runs/compact --resume auto  # continue where it stopped
  torchrun --nproc_per_node=4 -m fatsr train --config run.yaml
"""

HELP: dict[str, str] = {
    "recipe": "defaults to start from: fatsr (random crops, augmentation, EMA, ImageNet-normalised VGG "
    "input) or published (the published train.py: whole images resized to 120/480, no augmentation, "
    "no EMA, raw [-1, 1] VGG input, Adam 1e-4 constant, batch 2, 100 epochs); other flags override it",
    "sampling": "crop: random aligned --patch-size crops; resize: whole images resized so the LR's "
    "shorter side is --patch-size (published)",
    "data_dir": "training images: HR/ (or GT/) + LR/, or HR only; several folders train on all of them "
    "(--data-dir A B or --data-dir A --data-dir B)",
    "val_dir": "validation images (same layouts); none = no validation",
    "scale": "upscaling factor",
    "patch_size": "LR crop side in pixels, or the LR shorter side with --sampling resize (a multiple of 12 "
    "for the presets)",
    "augment": "random flips and 90-degree rotations",
    "scale_augment": "F > 1: half of the HR images are first shrunk by a random factor in [1, F] (log-uniform, "
    "Pillow bicubic), so one ground sample distance also teaches coarser ones (HR-only data); 1 = off",
    "cache": "keep decoded training images in memory",
    "workers": "data loading processes (default: half the usable CPUs, at most 8; 0 = in the training process)",
    "degradation": "make each batch's LR on the training device from HR crops with this degradation "
    "(a `fatsr degrade` preset or .yaml file), fresh random parameters per image; LR/ files are not used",
    "bands": "train on these bands of multispectral rasters (GeoTIFF, JP2, ...), e.g. 4,3,2,5: "
    "the network gets as many channels; the bands and value mapping are saved in the model for upscale",
    "value_range": "with --bands: values mapped to 0..1 (default: the dtype range of 8/16-bit data; "
    "needed for int16/float)",
    "network": "override a preset argument, e.g. --network dim=48 (repeatable)",
    "steps": "training steps (wins over --epochs)",
    "epochs": "training epochs when --steps is not given (default 100)",
    "cpu_budget_min": "stop once the training steps have used this many CPU minutes (process time, "
    "summed over resumes; validation not counted); 0 = off. With --threads 1 it compares runs fairly on a busy machine",
    "batch_size": "GLOBAL batch size, split across DDP processes",
    "optimizer": "optimiser",
    "lr": "peak learning rate",
    "betas": "Adam betas",
    "weight_decay": "weight decay (decoupled with adamw)",
    "schedule": "learning-rate schedule after warm-up",
    "warmup_steps": "linear learning-rate warm-up steps",
    "milestones": "steps where multistep multiplies the learning rate by --gamma",
    "gamma": "multistep factor",
    "grad_clip": "clip the gradient norm to this; 0 = off",
    "ema_decay": "decay of the weights' moving average (updated every step)",
    "amp": "mixed precision on CUDA (auto = bf16 on CUDA, none on CPU; fp16 uses a grad scaler)",
    "compile": "torch.compile the network",
    "l1_weight": "weight of the L1 loss",
    "perceptual_weight": "weight of the VGG19 perceptual loss (needs vgg19-dcbb9e9d.pth; 0 = off)",
    "lev_weight": "weight of the LEV loss",
    "vgg_weights": "path of torchvision's ImageNet VGG19 weights vgg19-dcbb9e9d.pth",
    "published_normalization": "feed VGG the [-1, 1] images as published (default: ImageNet normalisation)",
    "model_info": "recorded in the exported model files, e.g. --model-info gsd_m=0.3 --model-info licence=MIT "
    "(entries: description, bands, value_range, training_data, gsd_m, degradation, licence; repeatable)",
    "save_dir": "run folder",
    "val_every": "validate the EMA weights every N steps",
    "save_every": "write last.pt every N steps",
    "keep_every": "also keep step_XXXXXX.pt every N steps; 0 = never",
    "save_cycle": "also keep step_XXXXXX.pt every N epochs; 0 = never",
    "log_every": "log the mean losses every N steps",
    "seed": "seed of weights, sample order, crops and LSH rotations",
    "device": "auto, cpu, cuda or cuda:N",
    "threads": "torch CPU threads per process; 0 = torch's default (one per usable CPU). The same seed and "
    "thread count give the same weights, to the bit",
    "resume": "continue from a checkpoint PATH, or 'auto' = <save-dir>/last.pt if present; "
    "a model file or published .pth starts from its weights",
    "overwrite": "start afresh in a --save-dir that holds a run",
    "tensorboard": "also log to <save-dir>/tensorboard (needs tensorboard)",
    "progress": "show a progress bar",
}
PUBLISHED_ALIASES = {"data_dir": "--data_dir", "save_dir": "--save_dir", "save_cycle": "--save_cycle",
                     "batch_size": "--batch_size"}  # fmt: skip


METAVARS = {"resume": "PATH|auto", "device": "DEVICE", "degradation": "PRESET|YAML"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fatsr train``."""
    parser = subparsers.add_parser(
        "train", help="train a FAT network", description=DESCRIPTION, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--config", metavar="YAML", help="YAML file of options (flags override it)")
    defaults = TrainConfig()
    for name in FIELDS:
        add_field(parser, name, getattr(defaults, name))
    parser.add_argument("--no-cuda", action="store_true", help="train on the CPU (same as --device cpu)")
    parser.set_defaults(func=run)


def add_field(parser: argparse.ArgumentParser, name: str, default: Any) -> None:
    """One flag for config field ``name``; absent from the namespace unless given."""
    base, _ = field_type(name)
    flags = [f"--{name.replace('_', '-')}"] + ([PUBLISHED_ALIASES[name]] if name in PUBLISHED_ALIASES else [])
    shown = f" (default: {default})" if default not in (None, {}, []) else ""
    about = (
        f"network: {registry.presets_help()} (default: fat on a GPU, compact on a CPU)"
        if name == "preset"
        else HELP[name]
    )
    options: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": about + shown}
    if base is bool:
        options["action"] = argparse.BooleanOptionalAction
    elif base is tuple:
        options.update(nargs=2, type=float, metavar=("LO", "HI") if name == "value_range" else ("B1", "B2"))
    elif name == "bands":
        options.update(type=_band_list, metavar="B,B,...")
    elif base is list and name == "data_dir":
        options.update(nargs="+", action="extend", metavar="DIR")
    elif base is list:
        options.update(nargs="*", type=int, metavar="STEP")
    elif base is dict:
        options.update(action="append", type=_key_value, metavar="KEY=VALUE")
    else:
        metavar = {int: "N", float: "X"}.get(base, "DIR" if name.endswith("_dir") else "PATH")
        options.update(type=base, metavar=METAVARS.get(name, metavar))
        if name in choices():
            options.update(choices=choices()[name], metavar=None)
    parser.add_argument(*flags, **options)


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
    flags = {name: getattr(args, name) for name in FIELDS if hasattr(args, name)}
    for name in ("network", "model_info"):
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
        for name in ("network", "model_info"):  # mappings add up
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
