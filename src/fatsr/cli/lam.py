"""``fatsr lam``: Local Attribution Map of an output window, for one model or two side by side."""

from __future__ import annotations

import argparse
import math
import sys

import torch

from fatsr.cli.options import add_model_options
from fatsr.errors import FatsrError
from fatsr.evaluation.lam import DEFINITIONS, Window, lam_report, report_files
from fatsr.models.contract import Model
from fatsr.models.loading import load_model
from fatsr.models.zoo import model_path

DESCRIPTION = """\
Which input pixels does a model use to reconstruct a window of its output?

The attribution integrates gradients of the window's summed gradient magnitude
along a path from a Gaussian-blurred LR input to the real one (Gu & Dong, CVPR
2021); the model's random hashing is fixed by --seed so the path is consistent.
The diffusion index DI = (1 - Gini) x 100 grows with the area the model uses.

--definition lam (default) computes the map, Gini and DI as the reference code
(LAM_Demo) does, so DI can be set beside published figures: objective = sum over
the window and the channels of each pixel's gradient magnitude; gradient at the
right end of each path step; map = |sum over channels|; Gini of the map / max
+ 1e-7. --definition fatsr-0.1 keeps fatsr 0.1's variant (channel-mean
objective, left-end gradient, map = sum over channels of |.|), whose DI differs.
With --from-hr the image is an HR image, made into the LR input as LAM_Demo does
(cropped to a multiple of the scale, Pillow bicubic downscale).

Writes <stem>_lam.png (output with the window, heat map with colour bar, and the
map over the input) and <stem>_lam.json (Gini, DI, settings) into -o FOLDER.
"""

EXAMPLES = """\
examples:
  fatsr lam lr.png --model fat_x4.safetensors --window 120 80 16
  fatsr lam lr.png --model fat_x4.safetensors --compare bicubic -o lam/
  fatsr lam hr/buildings05.png --from-hr --window 120 120 16   # LAM_Demo's set-up
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr lam``'s arguments."""
    parser.add_argument("image", metavar="LR_IMAGE", help="the LR input image")
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="model file or built-in model name, or 'bicubic' (default: the shipped model)",
    )
    parser.add_argument("--compare", metavar="PATH", help="a second model file, or 'bicubic', shown beside the first")
    parser.add_argument(
        "--window", nargs=3, type=int, metavar=("X", "Y", "SIZE"),
        help="output window: top-left column, row and side in SR pixels (default: 16 px at the centre)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=50, help="steps of the path integral (default: 50)")
    parser.add_argument("--sigma", type=float, default=1.2, help="Gaussian sigma of the blurred start (default: 1.2)")
    parser.add_argument("--kernel", type=int, default=9, help="side of the Gaussian kernel, odd (default: 9)")
    parser.add_argument("--scale", type=int, help="scale of --model bicubic (default: 4)")
    parser.add_argument(
        "--definition",
        choices=DEFINITIONS,
        default="lam",
        help="lam: LAM_Demo's map, Gini and DI (default); fatsr-0.1: the earlier variant",
    )
    parser.add_argument(
        "--from-hr",
        action="store_true",
        help="the image is HR: crop it to a multiple of the scale and downscale it by Pillow bicubic",
    )
    parser.add_argument("-o", "--output", metavar="FOLDER", default=".", help="output folder (default: .)")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="where to run (default: auto)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's random hashing (default: 0)")
    add_model_options(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    parser.set_defaults(func=run)


def _load(
    spec: str | None,
    flag: str,
    *,
    scale: int | None,
    device: torch.device,
    seed: int,
    tta: bool,
    denoise: float | str | None,
) -> Model:
    """The model ``spec`` names, if gradients flow through it (an ONNX graph gives none)."""
    path = model_path(spec)
    if path is not None and path.suffix.lower() == ".onnx":
        raise FatsrError(
            f"{flag} {spec}: an ONNX graph gives no gradients; "
            "give the model file it was exported from (.safetensors or .pth)"
        )
    return load_model(spec, scale=scale, device=device, seed=seed, tta=tta, denoise=denoise)


def run(args: argparse.Namespace) -> int:
    """Compute the map(s), print Gini and DI, write the figure and JSON; return the exit code."""
    from fatsr.devices import resolve_device

    if args.steps < 1 or args.kernel < 1 or args.kernel % 2 == 0 or not (math.isfinite(args.sigma) and args.sigma > 0):
        raise FatsrError(
            f"need --steps >= 1, an odd --kernel and a finite --sigma > 0; got {args.steps}, {args.kernel}, {args.sigma}"
        )
    if args.scale is not None and args.scale < 1:
        raise FatsrError(f"--scale must be at least 1, got {args.scale}")
    figure, report_file = report_files(args.output, args.image, overwrite=args.overwrite)
    device = resolve_device(args.device)
    load = {"device": device, "seed": args.seed, "tta": args.tta}
    models = [_load(args.model, "--model", scale=args.scale, denoise=args.denoise, **load)]
    if args.compare:
        models.append(_load(args.compare, "--compare", scale=models[0].scale, denoise=None, **load))
    report = lam_report(args.image, models, window=Window(*args.window) if args.window else None, steps=args.steps,
                        sigma=args.sigma, kernel=args.kernel, definition=args.definition, from_hr=args.from_hr,
                        seed=args.seed, device=device)  # fmt: skip
    for result in report.results:
        print(f"{result.name}: Gini {result.gini:.4f}  DI {result.diffusion_index:.2f}  ({result.seconds:.1f} s)")
    report.write(figure, report_file, overwrite=args.overwrite)
    print(f"wrote {figure}\nwrote {report_file}", file=sys.stderr)
    return 0
