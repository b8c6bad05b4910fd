"""``fatsr compare``: one offline HTML page to look at LR, bicubic, models and HR side by side."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from fatsr.cli.options import add_model_options
from fatsr.errors import FatsrError

# library arguments whose flag is not --name (see fatsr.cli.flags.flag_of)
FLAGS = {"specs": "--model", "hr_files": "--hr", "points": "--region", "value_range": "--range"}

DESCRIPTION = """\
Write one self-contained HTML page (no server, no network: open it from disk) that
shows, for every image, its layers: LR (nearest-neighbour pixels), bicubic, each
--model and, with --hr, the HR original, with the numbers where HR is known
(PSNR/SSIM-Y, gain over bicubic, PSNR-Y in the low/mid/high texture thirds).

On the page: a swipe slider between any two layers or the two side by side, zoom to
32x with square pixels and pan (mouse and keyboard), a magnifier, a thumbnail list,
and the keyboard shortcuts, listed on the page.

Inputs are LR images: files, folders and glob patterns. With --hr (file, folder, glob)
the HR images are matched by name; with --hr and no inputs, the LR images are made
from the HR by bicubic downscaling (as in fatsr evaluate).

A GeoTIFF input makes a scene page: an overview of the scene (read decimated, from its
overviews where it has them), a grid of regions of --region-size LR pixels, and for the
regions computed (all of them for a small scene, else the --regions most textured ones
and those at --region X Y) LR, bicubic and each model at full resolution, read window
by window. Bands and stretch follow the file's value mapping (as fatsr upscale);
the cursor shows coordinates in the raster's CRS.
"""

EXAMPLES = """\
examples:
  fatsr compare examples/harbor55.png --model bicubic --model default -o page.html
  fatsr compare --hr val/HR --model runs/a/model.safetensors --model runs/b/model.safetensors -o ab.html
  fatsr compare lr/ --hr hr/ -o page.html
  fatsr compare scene.tif --regions 24 --region 402115 3285320 -o scene.html
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr compare``'s arguments."""
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="LR image or GeoTIFF file, folder, or glob pattern (quoted)"
    )
    parser.add_argument("--hr", metavar="PATH", help="HR image file, folder or glob; matched to the inputs by name")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="MODEL",
        help="a model file, 'default' (the built-in model) or 'bicubic'; repeat to compare several (default: default)",
    )
    parser.add_argument(
        "-o", "--output", default="compare.html", metavar="PAGE.html", help="the page to write (default: compare.html)"
    )
    parser.add_argument("--title", help="title of the page (default: from the inputs)")
    parser.add_argument("--scale", type=int, help="scale factor (default: the models'; bicubic alone: 4)")
    parser.add_argument("--border", type=int, help="pixels cropped from every side before scoring (default: scale)")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda", "mps"),
        default="auto",
        help="where to run the models (default: auto)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the models' random hashing (default: 0)")
    add_model_options(parser)
    parser.add_argument(
        "--uncertainty",
        action="store_true",
        help="add a layer per model: a heat map of the --tta ensemble's per-pixel spread, where the network is "
        "unsure (one scale per image, in the layer's name; implies --tta)",
    )
    parser.add_argument("--tile", type=int, default=96, help="tile side in LR pixels, a multiple of 12 (default: 96)")
    parser.add_argument("--overwrite", action="store_true", help="replace the page if it exists")
    geo = parser.add_argument_group("GeoTIFF scenes")
    geo.add_argument(
        "--bands", type=_band_list, metavar="B,B,B", help="bands shown (and fed to the network) as RGB (default: 1,2,3)"
    )
    geo.add_argument("--range", type=float, nargs=2, metavar=("LO", "HI"), dest="value_range",
                     help="values mapped to 0..1 (default: as fatsr upscale: dtype range for 8-bit, else 0.5-99.5 percentiles)")  # fmt: skip
    geo.add_argument("--region-size", type=int, default=128, help="side of a region in LR pixels (default: 128)")
    geo.add_argument("--regions", type=int, default=16, help="regions computed when the scene has more (default: 16)")
    geo.add_argument("--region", type=float, nargs=2, action="append", default=[], metavar=("X", "Y"),
                     help="also compute the region at these coordinates of the raster's CRS (repeatable)")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the page, write it; return the exit code."""
    from fatsr.devices import resolve_device
    from fatsr.evaluation.compare import comparison_page, load_models, write_page
    from fatsr.inference.tiling import Tiling

    output = Path(args.output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise FatsrError(f"{output}: the page is HTML; give -o PAGE.html")
    if output.exists() and not args.overwrite:
        raise FatsrError(f"{output} exists; pass --overwrite to replace it")
    if args.regions < 1:
        raise FatsrError(f"--regions {args.regions}: give at least 1")
    device = resolve_device(args.device)
    models = load_models(
        args.model,
        scale=args.scale,
        device=device,
        seed=args.seed,
        tta=args.tta or args.uncertainty,
        denoise=args.denoise,
    )
    data = comparison_page(
        args.inputs, models, hr=args.hr, title=args.title, border=args.border, tiling=Tiling(args.tile, args.tile // 4),
        device=device, region_size=args.region_size, max_regions=args.regions, points=[tuple(p) for p in args.region],
        bands=args.bands, value_range=tuple(args.value_range) if args.value_range else None, command=_command(args),
        uncertainty=args.uncertainty,
    )  # fmt: skip
    write_page(output, data, overwrite=args.overwrite)
    print(f"wrote {output}", file=sys.stderr)
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command that makes this scene page, for the page to extend with --region X Y."""
    words = ["fatsr", "compare", *args.inputs]
    for model in args.model:
        words += ["--model", model]
    if args.bands:
        words += ["--bands", ",".join(map(str, args.bands))]
    if args.value_range:
        words += ["--range", *(f"{v:g}" for v in args.value_range)]
    if args.uncertainty:
        words.append("--uncertainty")
    words += ["--region-size", str(args.region_size), "--regions", str(args.regions)]
    for x, y in args.region:
        words += ["--region", f"{x:g}", f"{y:g}"]
    words += ["-o", args.output, "--overwrite"]
    return shlex.join(words)


def _band_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give band numbers separated by commas, e.g. 3,2,1") from None
