"""``fatsr prepare``: make training data from large scenes and check a dataset.

``split`` cuts images into overlapping tiles, ``pairs`` builds ``HR/`` + ``LR/`` from HR
images, ``check`` reports problems (exit 2) before a long training run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from fatsr.cli.options import add_degradation_options, check_options
from fatsr.data.check import check_dataset, format_problems
from fatsr.data.jobs import Job, input_images, refuse_existing, run_jobs
from fatsr.data.prepare import tile_boxes, write_raster_tiles
from fatsr.errors import FatsrError
from fatsr.inference.reading import is_raster
from fatsr.io import image_size, read_image, write_image

DESCRIPTION = "Prepare and check super-resolution training data."

EXAMPLES = """\
examples:
  fatsr prepare split scenes/ -o tiles/ --size 480 --step 240 --min-size 48
  fatsr prepare pairs tiles/ -o datasets/train --scale 4 --preset bicubic
  fatsr prepare check datasets/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr prepare {split,pairs,check}``'s arguments."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    split = sub.add_parser(
        "split", help="cut images into overlapping tiles (PNG; rasters such as GeoTIFFs: GeoTIFF tiles, georeferenced)"
    )
    split.add_argument("input", type=Path, metavar="IN", help="an image or a folder of images")
    split.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="folder for the tiles")
    split.add_argument("--size", type=int, default=480, help="tile side in pixels (default 480)")
    split.add_argument("--step", type=int, default=240, help="distance between tiles (default 240)")
    split.add_argument("--min-size", type=int, default=48, help="skip images with a side below this (default 48)")
    split.add_argument("--overwrite", action="store_true", help="replace existing tiles")
    split.set_defaults(func=run_split)

    pairs = sub.add_parser(
        "pairs",
        help="mod-crop HR images to the scale and write OUT/HR and OUT/LR (PNG)",
        description="Write OUT/HR/<stem>.png (HR cropped to a multiple of the scale) and OUT/LR/<stem>.png.",
    )
    pairs.add_argument("input", type=Path, metavar="HR_DIR", help="folder of HR images")
    pairs.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="dataset folder to create")
    add_degradation_options(pairs, default_preset="bicubic")
    pairs.set_defaults(func=run_pairs)

    check = sub.add_parser("check", help="report unreadable files, duplicates, bad pairs, sizes, bit depths, bands")
    check.add_argument("input", type=Path, metavar="DIR", help="dataset folder")
    check.add_argument("--scale", type=int, default=None, help="expected HR/LR scale of pairs (default: any integer)")
    check.set_defaults(func=run_check)


def _sources(path: Path) -> list[Path]:
    return [path] if path.is_file() else input_images(path)


def run_split(args: argparse.Namespace) -> int:
    """Cut every image into tiles of ``--size`` every ``--step`` pixels, covering it all."""
    if not 1 <= args.step <= args.size or args.min_size < 1:
        raise FatsrError(
            f"need 1 <= --step <= --size and --min-size >= 1, got {args.step}, {args.size}, {args.min_size}"
        )
    plan: dict[Path, list[tuple[Path, tuple[int, int, int, int]]]] = {}
    skipped = []
    for source in _sources(args.input):
        h, w = image_size(source)
        if min(h, w) < args.min_size:
            skipped.append(f"{source.name} ({w}x{h})")
            continue
        suffix = ".tif" if is_raster(source) else ".png"
        plan[source] = [
            (args.output / f"{source.stem}_y{top}_x{left}{suffix}", (top, left, th, tw))
            for top, left, th, tw in tile_boxes(h, w, args.size, args.step)
        ]
    targets = [t for tiles in plan.values() for t, _ in tiles]
    if len(set(targets)) != len(targets):
        raise FatsrError(f"{args.input}: several images share a name stem; rename them so the tile names differ")
    refuse_existing(targets, args.overwrite)
    for source, tiles in tqdm(plan.items(), unit="img", desc="split", disable=None):
        if is_raster(source):
            write_raster_tiles(source, tiles, overwrite=args.overwrite)
            continue
        image = read_image(source)
        for target, (top, left, th, tw) in tiles:
            write_image(target, image[top : top + th, left : left + tw], overwrite=args.overwrite)
    if skipped:
        print(f"skipped {len(skipped)} image(s) smaller than {args.min_size} pixels: {', '.join(skipped)}")
    print(f"wrote {len(targets)} tiles of up to {args.size}x{args.size} from {len(plan)} image(s) to {args.output}")
    return 0


def run_pairs(args: argparse.Namespace) -> int:
    """Mod-crop HR images and make their LR with a degradation preset."""
    preset = check_options(args)
    files = _sources(args.input)
    small = [f"{p.name} ({w}x{h})" for p in files for h, w in [image_size(p)] if min(h, w) < args.scale]
    if small:
        raise FatsrError(f"{len(small)} image(s) smaller than the scale {args.scale}, e.g. {small[0]}; remove them")
    stems = [p.stem for p in files]
    if len(set(stems)) != len(stems):
        raise FatsrError(f"{args.input}: several images share a name stem; rename them")
    jobs = [Job(p, args.output / "LR" / f"{p.stem}.png", args.output / "HR" / f"{p.stem}.png") for p in files]
    refuse_existing([j.lr_path for j in jobs] + [j.hr_path for j in jobs if j.hr_path], args.overwrite)
    run_jobs(jobs, scale=args.scale, preset=preset, seed=args.seed, workers=args.workers, overwrite=args.overwrite)
    print(f"wrote {len(jobs)} pairs (x{args.scale}, preset {args.preset}) to {args.output}/HR and {args.output}/LR")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Print a dataset report; exit 2 with a one-line summary if there are problems."""
    if args.scale is not None and args.scale < 1:
        raise FatsrError(f"--scale must be a positive integer, got {args.scale}")
    report = check_dataset(args.input, args.scale)
    print(f"layout: {report.layout}")
    for line in report.lines + [f"note: {n}" for n in report.notes]:
        print(f"  {line}")
    if report.problem_count:
        print("problems:")
        for line in format_problems(report):
            print(f"  {line}")
        kinds = ", ".join(f"{len(v)} {k}" for k, v in report.problems.items() if v)
        raise FatsrError(f"{report.problem_count} problem(s) in {args.input}: {kinds}; see the list above")
    print("no problems found")
    return 0
