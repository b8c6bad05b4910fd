"""``fatsr evaluate``: score SR images against HR, or run a model (or bicubic) and score it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fatsr.cli.options import add_model_options
from fatsr.compare import Item, image_item, page_data, write_page
from fatsr.errors import FatsrError
from fatsr.evaluate import (
    DOWNSCALES,
    Pair,
    evaluate,
    format_table,
    pair_files,
    summarize,
    write_crops,
    write_csv,
    write_json,
)
from fatsr.io import read_image
from fatsr.lpips import NETWORKS, load_lpips
from fatsr.models.loading import load_model

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


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fatsr evaluate``."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score SR images or a model against HR images (PSNR/SSIM Y and RGB, SAM, ERGAS, LPIPS)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    """Evaluate and report; return the exit code."""
    from fatsr.devices import resolve_device

    if args.scale is not None and args.scale < 1:
        raise FatsrError(f"--scale must be at least 1, got {args.scale}")
    if args.border is not None and args.border < 0:
        raise FatsrError(f"--border must be at least 0, got {args.border}")
    outputs = _outputs(args)
    value_range = tuple(args.value_range) if args.value_range else None
    if value_range is not None and not value_range[0] < value_range[1]:
        raise FatsrError(f"--range {value_range[0]:g} {value_range[1]:g}: LO must be below HI")
    device = resolve_device(args.device)
    model = (
        load_model(args.model, scale=args.scale, device=device, seed=args.seed, tta=args.tta, denoise=args.denoise)
        if args.model
        else None
    )
    if model is None and (args.tta or args.denoise is not None):
        raise FatsrError("--tta and --denoise are for --model; SR files are scored as they are")
    pairs = pair_files(args.hr, sr=args.sr, lr=args.lr)
    if model is not None:
        scale = model.scale
    else:
        scale = args.scale if args.scale is not None else _scale_from_lr(pairs[0])
    border = scale if args.border is None else args.border
    lpips = [load_lpips(net, args.lpips_weights).to(device) for net in dict.fromkeys(args.lpips)]
    crop_size = args.crop_size if args.crops else None
    if crop_size is not None and crop_size < 1:
        raise FatsrError(f"--crop-size must be at least 1, got {crop_size}")
    progress = tqdm(total=len(pairs), desc="evaluate", unit="image", file=sys.stderr, disable=None)
    results, items = [], []
    sr_name = model.info.name if model is not None else "SR"

    def keep(
        name: str, lr: Any, sr: Any, hr: Any, masks: Any
    ) -> None:  # the page's layers, made while the arrays are at hand
        items.append(image_item(name, lr, [(sr_name, sr)], hr, scale=scale, border=border, masks=masks).encode())

    for result in evaluate(pairs, scale=scale, border=border, model=model, device=device, lpips=lpips,
                           crop_size=crop_size, downscale=args.downscale,
                           on_images=keep if args.html else None, value_range=value_range):  # fmt: skip
        results.append(result)
        progress.update()
    progress.close()
    settings = {
        "source": f"model {model.name}" if model is not None else f"SR files {args.sr}",
        "hr": str(args.hr), "lr": args.lr or DOWNSCALES[args.downscale], "scale": scale, "border": border,
        "baseline": "bicubic: Pillow bicubic upscale of the LR (a = -0.5, MATLAB imresize kernel)",
        "y": "BT.601 MATLAB luma 16..235 (BasicSR/SwinIR/HAT)", "range": "0..255 (each image's values, see summary 'values', scaled)",
        "texture_strata": "thirds of pixels by 7x7 local variance of HR (Y)",
    }  # fmt: skip
    summary = summarize(results, settings)
    print(f"LR: {settings['lr']}; bicubic: Pillow bicubic upscale of the LR; x{scale}, border {border}")
    print(format_table(results, summary))
    if outputs:
        written = []

        def write(key: str, writer: Callable[..., Any], *what: Any, **options: Any) -> None:
            if key in outputs:
                writer(outputs[key], *what, overwrite=args.overwrite, **options)
                written.append(outputs[key])

        try:  # all the output files or none
            write("csv", write_csv, results)
            write("json", write_json, summary)
            if crop_size:
                write("crops", write_crops, results)
            if args.html:
                items.sort(key=_gain)
                title = f"fatsr evaluate: {settings['source']} on {args.hr}, x{scale}"
                notes = [
                    f"Sorted by gain of PSNR-Y over bicubic, worst first. Scores: {settings['y']}, border {border}."
                ]
                write("html", write_page, page_data(items, title=title, scale=scale, table=True, notes=notes))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        for path in outputs.values():
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _gain(item: Item) -> float:
    """An evaluated item's gain over bicubic (always set: every item has its HR)."""
    assert item.gain is not None
    return item.gain


def _outputs(args: argparse.Namespace) -> dict[str, Path]:
    """Output files, refused early if they exist without --overwrite."""
    if args.output is None:
        if args.crops or args.html:
            raise FatsrError(f"{'--crops' if args.crops else '--html'} needs an output folder; add -o FOLDER")
        return {}
    folder = Path(args.output)
    outputs = {"csv": folder / "metrics.csv", "json": folder / "summary.json"}
    if args.crops:
        outputs["crops"] = folder / "crops.png"
    if args.html:
        outputs["html"] = folder / "report.html"
    for path in outputs.values():
        if path.exists() and not args.overwrite:
            raise FatsrError(f"{path} exists; pass --overwrite to replace it")
    return outputs


def _scale_from_lr(pair: Pair) -> int:
    if pair.lr is None:
        raise FatsrError("the scale is unknown; give --scale (or --lr, to read it from the LR size)")
    hr, lr = read_image(pair.hr, any_dtype=True), read_image(pair.lr, any_dtype=True)
    scale = hr.shape[1] // lr.shape[1]
    if scale < 1 or hr.shape[0] // lr.shape[0] != scale:
        raise FatsrError(f"{pair.name}: HR {hr.shape[1]}x{hr.shape[0]} is no multiple of LR "
                         f"{lr.shape[1]}x{lr.shape[0]}; give --scale")  # fmt: skip
    return scale
