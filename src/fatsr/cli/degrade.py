"""``fatsr degrade``: turn a folder of HR images into realistic LR images (Real-ESRGAN
second-order degradation, see :mod:`fatsr.data.degrade`), in parallel processes.

Each image draws from its own generator seeded by ``--seed`` and its file name, so a run
gives identical bytes whatever the number of workers or the order they finish in.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fatsr.cli.options import add_degradation_options, check_options
from fatsr.data.jobs import Job, input_images, refuse_existing, run_jobs
from fatsr.errors import FatsrError
from fatsr.io import image_size

LOSSY_SUFFIXES = (".jpg", ".jpeg", ".webp")  # their LR is written as PNG, not compressed again

DESCRIPTION = (
    "Degrade every image of IN_DIR into an LR image of exactly 1/scale its size, "
    "written to OUT_DIR under the same name (same bit depth and channels; the LR of a "
    ".jpg/.webp image is written as <stem>.png so it is not compressed twice)."
)

EXAMPLES = """\
examples:
  fatsr degrade datasets/train/HR -o datasets/train/LR --scale 4 --preset fat --seed 0 --workers 2
  fatsr degrade hr/ -o lr/ --scale 3 --preset my_degradation.yaml
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr degrade``'s arguments."""
    parser.add_argument("input", type=Path, metavar="IN_DIR", help="folder of HR images")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR", help="folder for the LR images")
    add_degradation_options(parser, default_preset="fat")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Degrade IN_DIR into OUT_DIR."""
    preset = check_options(args)
    files = input_images(args.input)
    if args.output.resolve() == args.input.resolve():
        raise FatsrError("OUT_DIR is IN_DIR; give another output folder")
    uneven = [f"{p.name} ({w}x{h})" for p in files for h, w in [image_size(p)] if h % args.scale or w % args.scale]
    if uneven:
        raise FatsrError(
            f"{len(uneven)} image(s) not divisible by scale {args.scale}, e.g. {uneven[0]}; "
            "mod-crop them with `fatsr prepare pairs`"
        )
    jobs = [Job(p, args.output / (f"{p.stem}.png" if p.suffix.lower() in LOSSY_SUFFIXES else p.name)) for p in files]
    if len({j.lr_path for j in jobs}) != len(jobs):
        raise FatsrError(f"{args.input}: a .jpg/.webp and another image share a name stem; rename one of them")
    refuse_existing([j.lr_path for j in jobs], args.overwrite)
    run_jobs(jobs, scale=args.scale, preset=preset, seed=args.seed, workers=args.workers, overwrite=args.overwrite)
    print(f"wrote {len(jobs)} LR images (x{args.scale}, preset {args.preset}, seed {args.seed}) to {args.output}")
    return 0
