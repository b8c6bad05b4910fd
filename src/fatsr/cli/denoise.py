"""``fatsr denoise``: denoise HR training images (the FAT paper's dataset enhancement),
printing each image's estimated noise level before and after."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from fatsr.data.denoise import METHODS, denoise, estimate_noise
from fatsr.data.jobs import input_images, refuse_existing
from fatsr.errors import FatsrError
from fatsr.io import read_image, write_image

DESCRIPTION = (
    "Denoise an image or a folder of images into OUT (a folder; same names, bit depth "
    "and channels). Prints Immerkaer's noise sigma estimate (0-255 scale) before and after."
)

EXAMPLES = """\
examples:
  fatsr denoise datasets/train/HR -o datasets/train/HR_denoised --strength 5
  fatsr denoise scene.png -o clean/ --strength 3
  fatsr denoise datasets/train/HR -o datasets/train/HR_bm3d --method bm3d --strength 4   # pip install bm3d
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr denoise``'s arguments."""
    parser.add_argument("input", type=Path, metavar="IN", help="an image or a folder of images")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="output folder")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="nlm",
        help="denoiser: nlm (OpenCV non-local means, default) or bm3d (needs the bm3d package: the bm3d extra)",
    )
    parser.add_argument(
        "--strength",
        type=float,
        default=5.0,
        help="nlm: filter strength h; bm3d: the noise sigma; on the 0-255 scale (default 5)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Denoise IN into OUT."""
    if not (math.isfinite(args.strength) and args.strength > 0):
        raise FatsrError(f"--strength must be a positive number, got {args.strength}")
    files = [args.input] if args.input.is_file() else input_images(args.input)
    targets = [args.output / p.name for p in files]
    if any(t.resolve() == p.resolve() for t, p in zip(targets, files)):
        raise FatsrError("OUT would replace the inputs; give another output folder")
    refuse_existing(targets, args.overwrite)
    for source, target in zip(files, targets):
        image = read_image(source)
        clean = denoise(image, args.method, args.strength)
        try:  # may refuse a tiny image: before anything is written
            before, after = estimate_noise(image), estimate_noise(clean)
        except FatsrError as exc:
            raise FatsrError(f"{source}: {exc}") from None
        write_image(target, clean, overwrite=args.overwrite)
        print(f"{source.name}: noise sigma {before:.2f} -> {after:.2f}")
    print(f"wrote {len(files)} denoised image(s) ({args.method}, strength {args.strength:g}) to {args.output}")
    return 0
