"""``fatsr evaluate``: score SR images against HR, or run a model (or bicubic) and score it."""

from __future__ import annotations

import argparse
import sys

from fatsr.cli.options import add_model_options
from fatsr.errors import FatsrError
from fatsr.evaluation.evaluate import DOWNSCALES
from fatsr.evaluation.lpips import NETWORKS
from fatsr.models.loading import load_model

# library arguments whose flag is not --name (see fatsr.cli.flags.flag_of)
FLAGS = {"weights_dir": "--lpips-weights", "value_range": "--range"}

DESCRIPTION = """\
Score super-resolved images against their HR originals.

Either give SR images (--sr) or a model to run on LR inputs (--model FILE or
--model bicubic). Files are matched by name (an SR file <stem>_x<scale> also
matches <stem>). LR inputs come from --lr, else from the HR images downscaled
by Pillow's bicubic (--downscale pillow, the default: what Image.resize gives,
as in most SR papers' data scripts) or torch's antialiased bicubic (--downscale
torch, as `fatsr train` makes LR on the fly), rounded to the HR bit depth. HR
images are cropped to a multiple of the scale. Rasters (GeoTIFF, JP2, ...) are
read through GDAL; their nodata, masked and non-finite pixels are left out of
every metric, and the table says how many. The values scored as 0..peak are
--range LO HI, else 0..2^NBITS-1 where a raster declares NBITS (12-bit data in
uint16: peak 4095), else the dtype's (0..255, 0..65535; float: 0..1); int16 and
other signed rasters need --range.

Every score is reported beside that of bicubic: Pillow's bicubic upscale of the
same LR (kernel a = -0.5, MATLAB imresize's), with the gain = model - bicubic.

Metrics (border pixels cropped from every side, default: the scale):
  PSNR-Y, SSIM-Y    BT.601 "MATLAB" luma (16..235), the BasicSR/SwinIR/HAT convention
  PSNR-RGB, SSIM-RGB  all bands, on the 0..255 scale (other ranges are scaled)
  SAM               mean spectral angle in degrees;  ERGAS (lower is better)
  LR-PSNR           the SR image downscaled back (bicubic) against the LR input
  PSNR-lo/mid/hi    PSNR-Y in the thirds of pixels with the lowest, middle and
                    highest local variance (7x7) of the HR image: texture bias
  LPIPS             with --lpips alex|vgg (weights from local files, see --lpips-weights)
"""

EXAMPLES = """\
examples:
  fatsr evaluate val/HR --model bicubic --scale 4
  fatsr evaluate val/HR --model fat_x4.safetensors -o results/ --crops
  fatsr evaluate val/HR --model fat_x4.safetensors -o results/ --html   # results/report.html
  fatsr evaluate val/HR --sr upscaled/ --lr val/LR -o results/ --lpips alex --lpips-weights weights/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr evaluate``'s arguments."""
    parser.add_argument("hr", metavar="HR", help="HR image file or folder of HR images")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--sr", metavar="PATH", help="SR image file or folder to score")
    source.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="model file or built-in model name (`fatsr models`) to run on the LR images, or 'bicubic'",
    )
    parser.add_argument("--lr", metavar="PATH", help="LR image file or folder (default: bicubic downscale of HR)")
    parser.add_argument(
        "--downscale",
        choices=tuple(DOWNSCALES),
        default="pillow",
        help="bicubic that makes LR from HR when --lr is not given (default: pillow)",
    )
    parser.add_argument(
        "--range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        dest="value_range",
        help="values scored as 0..peak (default: the raster's NBITS range, else the dtype's; int16/float rasters)",
    )
    parser.add_argument("--scale", type=int, help="scale factor (default: the model's; bicubic: 4; --sr: from --lr)")
    parser.add_argument("--border", type=int, help="pixels cropped from every side before scoring (default: scale)")
    parser.add_argument(
        "--lpips",
        action="append",
        choices=tuple(NETWORKS),
        default=[],
        help="add LPIPS with this backbone (repeatable)",
    )
    parser.add_argument(
        "--lpips-weights", metavar="FOLDER", help="folder with the LPIPS files (default: torch hub cache)"
    )
    parser.add_argument("-o", "--output", metavar="FOLDER", help="write metrics.csv and summary.json here")
    parser.add_argument(
        "--crops", action="store_true", help="also write crops.png: worst and best image, bicubic/SR/HR"
    )
    parser.add_argument("--html", action="store_true",
                        help="also write report.html: the compare page of every image (LR, bicubic, SR, HR), worst gain first")  # fmt: skip
    parser.add_argument("--crop-size", type=int, default=96, help="side of the crops in HR pixels (default: 96)")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda", "mps"),
        default="auto",
        help="where to run the model (default: auto)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's random hashing (default: 0)")
    add_model_options(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table and write the report files; return the exit code."""
    from fatsr.devices import resolve_device
    from fatsr.evaluation.report import evaluation_report, report_files

    if args.scale is not None and args.scale < 1:
        raise FatsrError(f"--scale must be at least 1, got {args.scale}")
    if args.border is not None and args.border < 0:
        raise FatsrError(f"--border must be at least 0, got {args.border}")
    if args.output is None and (args.crops or args.html):
        raise FatsrError(f"{'--crops' if args.crops else '--html'} needs an output folder; add -o FOLDER")
    files = report_files(args.output, crops=args.crops, html=args.html, overwrite=args.overwrite) if args.output else {}
    value_range = tuple(args.value_range) if args.value_range else None
    if value_range is not None and not value_range[0] < value_range[1]:
        raise FatsrError(f"--range {value_range[0]:g} {value_range[1]:g}: LO must be below HI")
    if args.crops and args.crop_size < 1:
        raise FatsrError(f"--crop-size must be at least 1, got {args.crop_size}")
    device = resolve_device(args.device)
    model = None
    if args.model:
        model = load_model(
            args.model, scale=args.scale, device=device, seed=args.seed, tta=args.tta, denoise=args.denoise
        )
    elif args.tta or args.denoise is not None:
        raise FatsrError("--tta and --denoise are for --model; SR files are scored as they are")
    report = evaluation_report(
        args.hr, sr=args.sr, lr=args.lr, model=model, scale=args.scale, border=args.border, lpips=args.lpips,
        lpips_weights=args.lpips_weights, crop_size=args.crop_size if args.crops else None, html=args.html,
        downscale=args.downscale, value_range=value_range, device=device,
    )  # fmt: skip
    print(report.heading)
    print(report.table())
    report.write(files, overwrite=args.overwrite)
    for path in files.values():
        print(f"wrote {path}", file=sys.stderr)
    return 0
