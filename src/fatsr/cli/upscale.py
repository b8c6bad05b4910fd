"""``fatsr upscale``: super-resolve image files with a FAT model file.

Inputs are files, folders (their images, sorted) and glob patterns. Each image keeps its
bit depth (8 or 16) and channel count (grey, RGB, RGBA). Nothing existing is replaced
without ``--overwrite``; every output is written atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fatsr.errors import FatsrError
from fatsr.io import IMAGE_SUFFIXES, read_image, write_image

DESCRIPTION = """\
Upscale images with a FAT model.

Where the outputs go:
  no -o            next to each input, as <stem>_x<scale>.png
  -o FOLDER        into FOLDER (created if needed), as <stem>.png
  -o FILE.<ext>    exactly there; only when there is a single input image.
                   .png/.tif keep everything; .jpg/.bmp/.webp only where they
                   can hold the image's bit depth and channels.
Outputs keep the input's bit depth (8/16-bit) and channels (grey, RGB, RGBA).
Existing files are never replaced unless --overwrite is given.

The published inference.py flags also work: --test_img DIR, --model_path PATH,
--save_dir DIR, --no-cuda, --fp16.
"""

EXAMPLES = """\
examples:
  fatsr upscale scene.png --model fat_x4.safetensors           # -> scene_x4.png
  fatsr upscale tiles/ 'extra/*.tif' -o upscaled/ --model m.safetensors
  fatsr upscale lr.png -o sr.tif --model m.safetensors --device cuda --fp16
"""

# Formats with limits: suffix -> (dtypes it can hold, channel counts it can hold).
_FORMAT_LIMITS: dict[str, tuple[tuple[type, ...], tuple[int, ...]]] = {
    ".jpg": ((np.uint8,), (1, 3)),
    ".jpeg": ((np.uint8,), (1, 3)),
    ".bmp": ((np.uint8,), (1, 3)),
    ".webp": ((np.uint8,), (3, 4)),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fatsr upscale``."""
    parser = subparsers.add_parser(
        "upscale",
        help="upscale images with a FAT model",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help="image file, folder of images, or glob pattern (quote it: 'tiles/*.png')",
    )
    parser.add_argument("-o", "--output", metavar="OUT", help="output folder, or output file for a single input")
    parser.add_argument(
        "--model", metavar="PATH",
        help="model file (.safetensors, or a published .pth state dict); default: the shipped model",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
        help="where to run; auto = cuda if available, else mps, else cpu (default: auto)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's random hashing; same seed, same output (default: 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    parser.add_argument("--fp16", action="store_true", help="run in half precision (CUDA only)")
    # The published inference.py flags, kept working but out of the help.
    parser.add_argument("--test_img", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--model_path", dest="model", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--save_dir", help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-cuda", dest="device", action="store_const", const="cpu", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Upscale every input image; return the exit code."""
    inputs = collect_inputs([*args.inputs, *args.test_img])
    device = resolve_device(args.device)
    if args.fp16 and device.type != "cuda":
        raise FatsrError(f"--fp16 runs on CUDA only, but the device is {device.type}; use --device cuda or drop --fp16")
    target = _output_target(args.output, args.save_dir)
    model = _load_model(args.model, device, args.seed)
    jobs = plan_outputs(inputs, target, model.scale, overwrite=args.overwrite)
    _prepare_folders([dst for _, dst in jobs])
    for src, dst in tqdm(jobs, desc="upscale", unit="image", file=sys.stderr, disable=None):
        image = read_image(src)
        _check_format(dst, image)
        result = upscale_array(model, image, device=device, fp16=args.fp16)
        try:
            write_image(dst, result, overwrite=args.overwrite)
        except OSError as exc:
            raise FatsrError(f"{dst}: could not write ({exc}); choose another -o") from None
        tqdm.write(str(dst), file=sys.stdout)
    return 0


def collect_inputs(specs: list[str]) -> list[Path]:
    """Expand files, folders and glob patterns into image paths (first occurrence kept)."""
    if not specs:
        raise FatsrError("no input given; name image files, folders or glob patterns (fatsr upscale scene.png)")
    unique: dict[Path, Path] = {}
    for spec in specs:
        for path in _expand(spec):
            unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _expand(spec: str) -> list[Path]:
    path = Path(spec)
    if path.is_dir():
        images = _image_files(path.iterdir())
        if not images:
            raise FatsrError(f"{spec}: no images in this folder (looked for {', '.join(IMAGE_SUFFIXES)})")
        return images
    if path.exists():
        return [path]
    if any(ch in spec for ch in "*?["):
        images = _image_files(Path(p) for p in glob.glob(spec, recursive=True))
        if not images:
            raise FatsrError(f"{spec}: no image files match this pattern")
        return images
    raise FatsrError(f"{spec}: no such file or folder")


def _image_files(paths: Iterable[Path]) -> list[Path]:
    """Regular, non-hidden files with an image suffix, sorted."""
    return sorted(
        p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda, else mps, else cpu; an explicit device must be available."""
    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise FatsrError(f"--device {name}: {name.upper()} is not available on this machine; use --device cpu or auto")
    return torch.device(name)


def _output_target(output: str | None, save_dir: str | None) -> tuple[Path, bool] | None:
    """The ``-o`` path and whether it names a folder; None for "next to each input"."""
    if output is not None and save_dir is not None:
        raise FatsrError("give either -o or --save_dir, not both")
    if save_dir is not None:
        return Path(save_dir), True
    if output is None:
        return None
    path = Path(output)
    is_folder = path.is_dir() or output.endswith(("/", os.sep)) or path.suffix.lower() not in IMAGE_SUFFIXES
    return path, is_folder


def _load_model(path: str | None, device: torch.device, seed: int):
    import fatsr

    try:
        return fatsr.load_model(path, device=device.type, seed=seed)
    except FatsrError as exc:
        if path is None and "--model" not in str(exc):
            raise FatsrError(f"{exc}; pass --model PATH to use a model file") from None
        raise


def plan_outputs(
    inputs: list[Path], target: tuple[Path, bool] | None, scale: int, *, overwrite: bool = False
) -> list[tuple[Path, Path]]:
    """Pair each input with its output path; refuse clashes before any work is done."""
    if target is None:
        outputs = [src.with_name(f"{src.stem}_x{scale}.png") for src in inputs]
    elif target[1]:
        outputs = [target[0] / f"{src.stem}.png" for src in inputs]
    elif len(inputs) == 1:
        outputs = [target[0]]
    else:
        raise FatsrError(f"-o {target[0]} names one file but there are {len(inputs)} input images; give a folder to -o")
    sources = {src.resolve(): src for src in inputs}
    claimed: dict[Path, Path] = {}
    for src, dst in zip(inputs, outputs):
        key = dst.resolve()
        if key in sources:
            victim = "this input" if sources[key] == src else f"the input {sources[key]}"
            raise FatsrError(f"{src}: its output {dst} would replace {victim}; choose another -o")
        if key in claimed:
            raise FatsrError(f"{claimed[key]} and {src} would both be written to {dst}; upscale them separately")
        claimed[key] = src
        if dst.exists() and not overwrite:
            raise FatsrError(f"{dst} exists; pass --overwrite to replace it")
    return list(zip(inputs, outputs))


def _prepare_folders(outputs: list[Path]) -> None:
    for folder in sorted({dst.parent for dst in outputs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FatsrError(f"cannot create output folder {folder} ({exc.strerror}); choose a writable -o") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise FatsrError(f"output folder {folder} is not writable; choose a writable -o")


def _check_format(dst: Path, image: np.ndarray) -> None:
    """Refuse an output format that would lose the image's bit depth or channels."""
    limits = _FORMAT_LIMITS.get(dst.suffix.lower())
    if limits is None:
        return
    dtypes, channels = limits
    if image.dtype.type not in dtypes or image.shape[2] not in channels:
        kind = f"{image.dtype.itemsize * 8}-bit {image.shape[2]}-channel"
        raise FatsrError(f"{dst}: {dst.suffix} cannot hold this {kind} image; use .png or .tif")


def upscale_array(model, image: np.ndarray, *, device: torch.device, fp16: bool = False) -> np.ndarray:
    """Upscale an HWC uint8/uint16 array; returns the same dtype and channels, rounded."""
    peak = float(np.iinfo(image.dtype).max)
    x = torch.from_numpy(image.astype(np.float32) / peak).permute(2, 0, 1).unsqueeze(0).to(device)
    half = torch.autocast("cuda", dtype=torch.float16) if fp16 else contextlib.nullcontext()
    with torch.inference_mode(), half:
        y = model(x)
    y = y.float().clamp(0.0, 1.0).mul(peak).round()
    return y[0].permute(1, 2, 0).cpu().numpy().astype(image.dtype)
