"""``fatsr upscale``: super-resolve image files with a FAT model file.

Inputs are files, folders (their images, sorted) and glob patterns. Each image keeps its
bit depth (8 or 16) and channel count (grey, RGB, RGBA). Nothing existing is replaced
without ``--overwrite``; every output is written atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fatsr.cli.flags import message
from fatsr.cli.options import add_model_options
from fatsr.devices import resolve_device, torchrun_layout
from fatsr.errors import FatsrError
from fatsr.inference.pipeline import JobSpec, Upscaler
from fatsr.inference.reading import is_raster
from fatsr.inputs import collect_inputs
from fatsr.io import IMAGE_SUFFIXES, Busy, remove_stale_parts

# library arguments whose flag is not --name (see fatsr.cli.flags.flag_of)
FLAGS = {"value_range": "--range"}

DESCRIPTION = """\
Upscale images with a FAT model.

Where the outputs go:
  no -o            next to each input, as <stem>_x<scale>.png
  -o FOLDER        into FOLDER (created if needed), as <stem>.png
  -o FILE.<ext>    exactly there; only when there is a single input image.
                   .png/.tif keep everything; .jpg/.bmp/.webp only where they
                   can hold the image's bit depth and channels.
Outputs keep the input's bit depth (8/16-bit) and channels (grey, RGB, RGBA).
Existing files are never replaced unless --overwrite is given; --skip-existing
leaves them and upscales the rest (resuming an interrupted batch).

Images larger than --tile are upscaled in overlapping tiles blended without seams.
Rasters that GDAL reads and that are more than a plain picture (georeferenced by CRS,
transform, GCPs or RPCs; JPEG2000, VRT, ...; int16/float/... pixels; other band counts;
nodata, a mask) are read and written window by window as a Cloud-Optimized GeoTIFF with
overviews (default output <stem>_x<scale>.tif, or <stem>.tif in a folder): georeference
rescaled to the new pixel size, nodata, mask, dtype and every band kept, provenance in
FATSR_* tags. Red, green and blue go to the network in that order as the file's colour
interpretation or band names say; other bands go bicubic. A declared bit depth (NBITS) is
kept and bounds the values. Values beyond the stretch go through bicubic, not the network; nodata is
inpainted for the network and put back. Palette/thematic rasters (class codes) are
refused. A scene that is interrupted resumes where it stopped when the same command is
run again (progress is kept in a hidden .NAME.fatsr-partial.tif beside the output).

Inputs may also be remote rasters (https://, s3://, gs://, /vsicurl/, /vsis3/ ...; only
the blocks needed are read; credentials through GDAL's environment variables), @LIST.txt
(one path or URL a line), and STAC item JSON files or URLs with --assets. --window or
--bbox upscales only that area, with the same pixels as the whole-scene output there.

A file that cannot be upscaled is reported on one line and skipped; the others are
done, and the exit code is 2 with a summary at the end.

Under torchrun (torchrun --nproc_per_node=K -m fatsr upscale ...) each process takes
every K-th input file.

The published inference.py flags also work: --test_img DIR, --model_path PATH,
--save_dir DIR, --no-cuda, --fp16.
"""

EXAMPLES = """\
examples:
  fatsr upscale scene.png --model fat_x4.safetensors           # -> scene_x4.png
  fatsr upscale tiles/ 'extra/*.tif' -o upscaled/ --model m.safetensors
  fatsr upscale lr.png -o sr.tif --model m.safetensors --device cuda --fp16
  fatsr upscale landsat.tif --bands 4,3,2 --compress zstd
  fatsr upscale https://example.com/scene.tif --bbox 11.25 43.76 11.27 43.78 -o aoi.tif
  fatsr upscale item.json --assets red,green,blue --window 5000 5000 512 512
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr upscale``'s arguments."""
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image file, folder of images, or glob pattern (quote it: 'tiles/*.png')",
    )
    parser.add_argument("-o", "--output", metavar="OUT", help="output folder, or output file for a single input")
    parser.add_argument(
        "--model",
        metavar="NAME|PATH",
        help="a built-in model's name (`fatsr models` lists them) or a model file (.safetensors, .onnx, or a "
        "published .pth state dict); default: the shipped default model",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda", "mps"),
        default="auto",
        help="where to run; auto = cuda if available, else mps, else cpu (default: auto)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the model's random hashing; same seed, same output (default: 0; an ONNX model's exported seed)",
    )
    exists = parser.add_mutually_exclusive_group()
    exists.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    exists.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave inputs whose output exists or is being written by another run, upscale the rest "
        "(resumes a batch; two runs over one folder share it)",
    )
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument(
        "--fp16",
        action="store_true",
        help="float16 autocast (CUDA or MPS); FFT, softmax and norms stay float32, a tile with NaN/Inf is redone in float32",
    )
    precision.add_argument(
        "--bf16", action="store_true", help="bfloat16 autocast (CPU, CUDA or MPS), with the same safeguards"
    )
    parser.add_argument(
        "--quality",
        type=_quality,
        metavar="Q",
        help="quality of JPEG and WebP outputs, 1-100 (default: Pillow's, 75)",
    )
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format for the convolutions")
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on Dask workers: a scheduler's address (tcp://host:8786) or local:N (N worker processes started "
        "here); one scene is split into tile batches, several files go file by file (pip install 'fatsr[dask]')",
    )
    add_model_options(parser)
    parser.add_argument(
        "--uncertainty",
        action="store_true",
        help="also write NAME.uncertainty.tif beside each output NAME.EXT: float32, the per-pixel standard "
        "deviation of the --tta ensemble's 8 outputs (0..1 units of the value range; a raster's grid, "
        "georeference and nodata; docs/ensembles.md); implies --tta, twice its work",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "pytorch", "onnxruntime"),
        default="auto",
        help="what runs the model; auto = onnxruntime for a .onnx --model (from fatsr export), else pytorch",
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        help="tile side in input pixels, a multiple of the model's size rule: 12 for window-6 models, "
        "8 for window 4 (default: 192; an ONNX model's exported tile)",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=None,
        help="overlap of neighbouring tiles in input pixels (default: a quarter of the tile, at most 24)",
    )
    geo = parser.add_argument_group("GeoTIFF inputs")
    geo.add_argument(
        "--bands",
        type=_band_list,
        metavar="B,B,B",
        help="bands fed to the network together (default: a multispectral model's training bands, else red, green, "
        "blue by the file's colour interpretation or band names, else the first three with a notice)",
    )
    geo.add_argument(
        "--range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        dest="value_range",
        help="values mapped to the network's 0..1 (default: the dtype range for 8-bit, else a per-band 0.5-99.5 percentile stretch)",
    )
    geo.add_argument(
        "--other-bands",
        choices=("bicubic", "network"),
        default=None,
        help="bands beside red, green, blue (NIR, SWIR, ...): bicubic, or each through the RGB network as grey "
        "(default: bicubic; a raster without red, green and blue bands: network)",
    )
    geo.add_argument(
        "--alpha-as-data",
        action="store_true",
        help="upscale bands tagged alpha as data (e.g. a NIR band GDAL tagged alpha) instead of using them as a mask",
    )
    geo.add_argument(
        "--compress", choices=("deflate", "zstd"), default="deflate", help="GeoTIFF compression (default: deflate)"
    )
    geo.add_argument(
        "--co",
        type=_creation_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="GDAL creation option of the output GeoTIFF (repeatable), e.g. --co COMPRESS=LZW --co PREDICTOR=NO; "
        "it replaces fatsr's own of that name (see GDAL's COG driver, or GTiff with --no-cog)",
    )
    geo.add_argument(
        "--overviews",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="internal overviews (2x, 4x, ... averaged) in each output GeoTIFF (default: on)",
    )
    geo.add_argument(
        "--back-project",
        action="store_true",
        help="shift each scale x scale output block so that its mean equals its input pixel (exact radiometry, "
        "at the price of faint block steps where the network disagreed with the input)",
    )
    area = geo.add_mutually_exclusive_group()
    area.add_argument(
        "--window",
        type=int,
        nargs=4,
        metavar=("COL", "ROW", "WIDTH", "HEIGHT"),
        help="upscale only this window of source pixels (clipped to the raster with a warning)",
    )
    area.add_argument(
        "--bbox",
        type=float,
        nargs=4,
        metavar=("WEST", "SOUTH", "EAST", "NORTH"),
        help="upscale only this area, in --bbox-crs, snapped outward to whole source pixels",
    )
    geo.add_argument(
        "--bbox-crs", default="EPSG:4326", metavar="CRS", help="CRS of --bbox (default: EPSG:4326, longitude/latitude)"
    )
    geo.add_argument(
        "--assets",
        type=lambda text: tuple(text.split(",")),
        metavar="A,B,C",
        help="for a STAC item input: the assets (keys or eo:bands common names) stacked in this order",
    )
    geo.add_argument(
        "--no-cog",
        dest="cog",
        action="store_false",
        help="write a plain tiled GeoTIFF instead of a Cloud-Optimized GeoTIFF (no final copy)",
    )
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
    options = _raster_options(args)  # checked before anything is done
    area = _area(args)
    inputs = _inputs([*args.inputs, *args.test_img], args.assets)
    rank, world = shard()
    device = resolve_device(args.device, rank)
    target = _output_target(args.output, args.save_dir)
    _backend(args)
    precision = "float16" if args.fp16 else "bfloat16" if args.bf16 else "float32"
    spec = JobSpec(
        args.model, str(device), args.seed, args.tile, args.overlap, 0, precision, args.channels_last, args.tta,
        args.denoise, args.quality, args.uncertainty,
    )  # fmt: skip
    job = spec.prepare()
    jobs = plan_outputs(
        inputs, target, job.scale, overwrite=args.overwrite, skip_existing=args.skip_existing, shard=(rank, world)
    )
    from fatsr.inference.uncertainty import sidecar_path

    _prepare_folders([dst for _, dst in jobs] + [sidecar_path(dst) for _, dst in jobs if args.uncertainty])
    if args.dask is not None and jobs:
        if args.uncertainty:
            raise FatsrError("--uncertainty runs in this process only; drop --dask or --uncertainty")
        return _on_dask(args, spec, job, jobs, options, area)
    desc = f"upscale [{rank + 1}/{world}]" if world > 1 else "upscale"
    failed: list[Path | str] = []
    for src, dst in tqdm(jobs, desc=desc, unit="image", file=sys.stderr, disable=None, position=rank):
        if args.skip_existing and dst.exists():  # written meanwhile by another run over the same folder
            continue
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning(warnings.showwarning)
                job.file(
                    src,
                    dst,
                    options=options,
                    overwrite=args.overwrite,
                    progress=_name(src),
                    window=area,
                    assets=args.assets if isinstance(src, str) else None,
                )
        except FatsrError as exc:
            if args.skip_existing and (isinstance(exc, Busy) or dst.exists()):
                tqdm.write(f"{dst}: another run is writing it (skipped)", file=sys.stderr)
                continue
            if len(jobs) == 1:
                raise
            failed.append(src)
            tqdm.write(f"error: {message(exc, 'upscale')} (skipped)", file=sys.stderr)
            continue
        tqdm.write(str(dst), file=sys.stdout)
        if args.uncertainty:
            tqdm.write(str(sidecar_path(dst)), file=sys.stdout)
    if failed:
        names = ", ".join(_name(p) for p in failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        raise FatsrError(
            f"{len(failed)} of {len(jobs)} inputs failed ({names}, see above); the other {len(jobs) - len(failed)} were written"
        )
    return 0


def _on_dask(args: argparse.Namespace, spec: JobSpec, job: Upscaler, jobs: Any, options: Any, area: Any) -> int:
    """The jobs on Dask workers (see :mod:`fatsr.inference.distributed`)."""
    from fatsr.inference.distributed import upscale_on_dask

    if shard()[1] > 1:
        raise FatsrError("--dask runs the work on Dask workers; start it once, not under torchrun")
    upscale_on_dask(
        args.dask,
        spec,
        job,
        jobs,
        describe=lambda exc: message(exc, "upscale"),
        skip_existing=args.skip_existing,
        options=options,
        overwrite=args.overwrite,
        window=area,
        assets=args.assets,
    )
    return 0


def _show_warning(show: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that prints a clipped area as one ``warning:`` line and hands
    other warnings to ``show``."""
    from fatsr.inference.windows import AreaClipped

    def one_line(
        message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        if issubclass(category, AreaClipped):
            tqdm.write(f"warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return one_line


def _area(args: argparse.Namespace) -> Any:
    """The --window or --bbox (None: the whole scene)."""
    from fatsr.inference.windows import BBox, PixelWindow

    if args.window is not None:
        return PixelWindow(*args.window)
    if args.bbox is not None:
        west, south, east, north = args.bbox
        return BBox(west, south, east, north, args.bbox_crs)
    return None


def _inputs(specs: list[str], assets: tuple[str, ...] | None) -> list[Path | str]:
    """Local files, folders and patterns expanded (:func:`~fatsr.inputs.collect_inputs`);
    remote rasters and STAC items (every input, with ``assets``) kept as the strings they are;
    ``@LIST`` files read."""
    from fatsr.inference.sources import expand_lists, is_remote, public
    from fatsr.inference.stac import is_item

    specs = expand_lists(specs)
    if not specs:
        collect_inputs(specs)  # its error: no input given
    items = [spec for spec in specs if is_item(spec)]
    if items and assets is None:
        raise FatsrError(
            f"{public(items[0])}: a STAC item; choose its assets with --assets, e.g. --assets red,green,blue"
        )
    found: dict[Path | str, Path | str] = {}
    for spec in specs:
        if assets is not None or is_remote(spec) or is_item(spec):  # with --assets, every input is a STAC item
            found.setdefault(spec, spec)
        else:
            for path in collect_inputs([spec]):
                found.setdefault(path.resolve(), path)
    return list(found.values())


def _name(src: Path | str) -> str:
    from fatsr.inference.sources import public

    return public(src) if isinstance(src, str) else src.name


def shard() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when run alone."""
    rank, world, _ = torchrun_layout()
    return rank, world


def _backend(args: argparse.Namespace) -> str:
    onnx_file = args.model is not None and args.model.lower().endswith(".onnx")
    if args.backend == "auto":
        return "onnxruntime" if onnx_file else "pytorch"
    if args.backend == "onnxruntime" and not onnx_file:
        raise FatsrError(
            "--backend onnxruntime runs a .onnx model; make one with `fatsr export MODEL -o model.onnx` and pass --model model.onnx"
        )
    if args.backend == "pytorch" and onnx_file:
        raise FatsrError(f"{args.model} is an ONNX graph; use --backend onnxruntime (or auto)")
    return args.backend


def _quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number from 1 to 100")
    return value


def _creation_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: give a GDAL creation option as KEY=VALUE, e.g. COMPRESS=LZW")
    return key.strip().upper(), value.strip()


def _band_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give band numbers separated by commas, e.g. 3,2,1") from None


def _raster_options(args: argparse.Namespace) -> Any:
    from fatsr.inference.options import RasterOptions

    return RasterOptions(
        bands=args.bands,
        value_range=tuple(args.value_range) if args.value_range else None,
        other_bands=args.other_bands,
        alpha_as_data=args.alpha_as_data,
        compress=args.compress,
        overviews=args.overviews,
        cog=args.cog,
        back_project=args.back_project,
        creation_options=tuple(args.co),
    )


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


def plan_outputs(
    inputs: list[Path | str],
    target: tuple[Path, bool] | None,
    scale: int,
    *,
    overwrite: bool = False,
    skip_existing: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> list[tuple[Path | str, Path]]:
    """Pair each input with its output path; refuse clashes before any work is done.
    With ``skip_existing``, pairs whose output exists are left out. ``shard=(rank, world)``
    keeps every world-th pair from the rank-th (torchrun); all pairs are checked for clashes."""
    from fatsr.inference.sources import stem

    suffixes = [".tif" if isinstance(src, str) or is_raster(src) else ".png" for src in inputs]
    stems = [stem(src) if isinstance(src, str) else src.stem for src in inputs]
    if target is None:  # next to each input; a remote one's in the current folder
        outputs = [
            Path(f"{name}_x{scale}{ext}") if isinstance(src, str) else src.with_name(f"{name}_x{scale}{ext}")
            for src, name, ext in zip(inputs, stems, suffixes)
        ]
        if skip_existing:  # resuming an in-place batch: its own outputs are no inputs
            own = {dst.resolve() for dst in outputs}
            kept = [k for k, src in enumerate(inputs) if isinstance(src, str) or src.resolve() not in own]
            inputs, outputs = [inputs[k] for k in kept], [outputs[k] for k in kept]
    elif target[1]:
        outputs = [target[0] / f"{name}{ext}" for name, ext in zip(stems, suffixes)]
    elif len(inputs) == 1:
        outputs = [target[0]]
    else:
        raise FatsrError(f"-o {target[0]} names one file but there are {len(inputs)} input images; give a folder to -o")
    sources = {src.resolve(): src for src in inputs if isinstance(src, Path)}
    claimed: dict[Path, Path | str] = {}
    for src, dst in zip(inputs, outputs):
        key = dst.resolve()
        if key in sources:
            victim = "this input" if sources[key] == src else f"the input {sources[key]}"
            raise FatsrError(f"{src}: its output {dst} would replace {victim}; choose another -o")
        if key in claimed:
            raise FatsrError(
                f"{_name(claimed[key])} and {_name(src)} would both be written to {dst}; upscale them separately"
            )
        claimed[key] = src
    mine = list(zip(inputs, outputs))[shard[0] :: shard[1]]
    for _, dst in mine:
        if dst.exists() and not (overwrite or skip_existing):
            raise FatsrError(f"{dst} exists; pass --overwrite to replace it")
    return [(src, dst) for src, dst in mine if not (skip_existing and dst.exists())]


def _prepare_folders(outputs: list[Path]) -> None:
    """Create the output folders (FatsrError if not writable); remove the temporary files that
    killed runs left for these outputs."""
    names: dict[Path, list[str]] = {}
    for dst in outputs:
        names.setdefault(dst.parent, []).append(dst.name)
    for folder, mine in names.items():
        if folder.is_dir():
            remove_stale_parts(folder, mine)
    for folder in sorted({dst.parent for dst in outputs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FatsrError(f"cannot create output folder {folder} ({exc.strerror}); choose a writable -o") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise FatsrError(f"output folder {folder} is not writable; choose a writable -o")
