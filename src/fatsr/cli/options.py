"""Options that several commands share (parsing and checking only)."""

from __future__ import annotations

import argparse

from fatsr.data.degrade_presets import PRESET_NAMES, load_preset
from fatsr.errors import FatsrError


def add_degradation_options(parser: argparse.ArgumentParser, default_preset: str) -> None:
    """--scale, --preset, --seed, --workers, --overwrite (shared with ``fatsr prepare pairs``)."""
    parser.add_argument("--scale", type=int, default=4, help="integer downscaling factor (default 4)")
    parser.add_argument(
        "--preset",
        default=default_preset,
        help=f"{', '.join(PRESET_NAMES)} or a .yaml file of the same form (default {default_preset})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random degradations (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def check_options(args: argparse.Namespace) -> dict:
    """Validate the shared options; return the loaded preset."""
    if args.scale < 1:
        raise FatsrError(f"--scale must be a positive integer, got {args.scale}")
    if args.seed < 0:
        raise FatsrError(f"--seed must be >= 0, got {args.seed}")
    if args.workers < 1:
        raise FatsrError(f"--workers must be >= 1, got {args.workers}")
    return load_preset(args.preset)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--tta and --denoise: how a model runs, in every command that runs one."""
    parser.add_argument(
        "--tta",
        action="store_true",
        help="test-time ensemble: the model on the 8 flips and quarter turns of each input, averaged "
        "(8 times the work; about +0.1 dB, see the model cards)",
    )
    parser.add_argument(
        "--denoise",
        type=_strength,
        metavar="S",
        help="0..1: the weights of the built-in fatsr-x4 (0, clean imagery) and fatsr-real-x4 (1, heavy blur, "
        "noise and JPEG) mixed in that proportion; auto (fatsr-real-x4's default): chosen for each tile from how "
        "blurred it looks (figures for each strength: docs/ensembles.md)",
    )


def _strength(text: str) -> float | str:
    """--denoise's value: auto or a number (its range is checked where the models are mixed)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a number from 0 to 1 or auto, not {text!r}") from None
