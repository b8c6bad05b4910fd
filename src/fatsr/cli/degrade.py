"""``fatsr degrade``: turn a folder of HR images into realistic LR images (Real-ESRGAN
second-order degradation, see :mod:`fatsr.data.degrade`), in parallel processes.

Each image draws from its own generator seeded by ``--seed`` and its file name, so a run
gives identical bytes whatever the number of workers or the order they finish in.
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from fatsr.data.datasets import find_images
from fatsr.data.degrade import degrade, image_rng
from fatsr.data.degrade_presets import PRESET_NAMES, load_preset
from fatsr.data.prepare import mod_crop
from fatsr.errors import FatsrError
from fatsr.io import image_size, read_image, write_image

LOSSY_SUFFIXES = (".jpg", ".jpeg", ".webp")  # their LR is written as PNG, not compressed again

EXAMPLES = """\
examples:
  fatsr degrade datasets/train/HR -o datasets/train/LR --scale 4 --preset fat --seed 0 --workers 2
  fatsr degrade hr/ -o lr/ --scale 3 --preset my_degradation.yaml
"""


@dataclass(frozen=True)
class Job:
    """One image: read ``source``, write its LR to ``lr_path``; with ``hr_path``, mod-crop
    the HR to the scale first and write it there too."""

    source: Path
    lr_path: Path
    hr_path: Path | None = None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fatsr degrade``."""
    parser = subparsers.add_parser(
        "degrade",
        help="make realistic LR images from HR images (Real-ESRGAN degradation)",
        description="Degrade every image of IN_DIR into an LR image of exactly 1/scale its size, "
        "written to OUT_DIR under the same name (same bit depth and channels; the LR of a "
        ".jpg/.webp image is written as <stem>.png so it is not compressed twice).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, metavar="IN_DIR", help="folder of HR images")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR", help="folder for the LR images")
    add_degradation_options(parser, default_preset="fat")
    parser.set_defaults(func=run)


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


def input_images(folder: Path) -> list[Path]:
    """The images of an input folder; FatsrError if it is missing or has none."""
    if not folder.is_dir():
        raise FatsrError(f"{folder}: no such folder; give a folder of images")
    files = find_images(folder)
    if not files:
        raise FatsrError(f"{folder}: no images found; give a folder of .png/.jpg/.tif images")
    return files


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    """FatsrError before any work if outputs exist and ``overwrite`` is false."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise FatsrError(
            f"{len(existing)} output file(s) already exist, e.g. {existing[0]}; pass --overwrite to replace them"
        )


def _run_job(job: Job, scale: int, preset: dict, seed: int, overwrite: bool) -> None:
    torch.set_num_threads(1)
    hr = read_image(job.source)
    if job.hr_path is not None:
        hr = mod_crop(hr, scale)
        write_image(job.hr_path, hr, overwrite=overwrite)
    lr = degrade(hr, scale, preset, image_rng(seed, job.source.name))
    write_image(job.lr_path, lr, overwrite=overwrite)


def run_jobs(jobs: list[Job], *, scale: int, preset: dict, seed: int, workers: int, overwrite: bool) -> None:
    """Run ``jobs`` in ``workers`` processes with a progress bar; the first error stops the rest."""
    bar = tqdm(total=len(jobs), unit="img", desc="degrade", disable=None)  # terminal only: no residue in logs
    with bar:
        if workers == 1:
            for job in jobs:
                _run_job(job, scale, preset, seed, overwrite)
                bar.update()
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
            pending = {pool.submit(_run_job, job, scale, preset, seed, overwrite) for job in jobs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                bar.update(len(done))
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    for future in pending:
                        future.cancel()
                    raise failed[0].exception()  # type: ignore[misc]


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
