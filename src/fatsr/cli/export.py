"""``fatsr export``: write a model as an ONNX graph for onnxruntime, checked against PyTorch."""

from __future__ import annotations

import argparse

from fatsr.export import CHECK_TOLERANCE, DEFAULT_OPSET, export_onnx, onnx_metadata

DESCRIPTION = """\
Export a model as an ONNX graph for tiles of TILE x TILE LR pixels (any batch size).
The LSH rotations of --seed become constants of the graph, so it computes what
`fatsr upscale --seed SEED --tile TILE` computes in PyTorch, except that equal hash
codes are ordered by position (ONNX has no other sort). Before the file is written,
onnxruntime runs the graph on a random tile and its output is compared with PyTorch's.
Run it with `fatsr upscale --backend onnxruntime --model OUT.onnx --tile TILE` (or less).
With --deepness the graph takes one tile at a time ((1, C, TILE, TILE) in [0, 1] in,
(1, C, scale*TILE, scale*TILE) in [0, 1] out) and carries the metadata of a
super-resolution model for the Deepness QGIS plugin (docs/qgis.md).
"""

EXAMPLES = """\
examples:
  fatsr export -o fatsr-x4.onnx                         (the built-in default model)
  fatsr export my_model.safetensors -o my_model.onnx --tile 96 --seed 0
  fatsr export fatsr-x4 -o fatsr-x4-deepness.onnx --tile 96 --deepness
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fatsr export``'s arguments."""
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help=".safetensors or .pth model, or a built-in model name (default: the shipped model)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    parser.add_argument("--tile", type=int, default=120, help="tile side in LR pixels, a multiple of 12 (default: 120)")
    parser.add_argument("--channels", type=int, choices=(1, 3, 4), help="image channels (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the LSH rotations fixed in the graph (default: 0)")
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, 14 to 20 (default: {DEFAULT_OPSET})"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT.onnx if it exists")
    parser.add_argument(
        "--deepness",
        action="store_true",
        help="for the Deepness QGIS plugin: batch 1 and its super-resolution model metadata (docs/qgis.md)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, print the check and the written file; return the exit code."""
    path = export_onnx(
        args.model,
        args.output,
        tile=args.tile,
        channels=args.channels,
        seed=args.seed,
        opset=args.opset,
        overwrite=args.overwrite,
        deepness=args.deepness,
    )
    meta = onnx_metadata(path)
    tile, channels = meta["tile"], meta["channels"]
    print(
        f"check: onnxruntime vs PyTorch on a random 1x{channels}x{tile}x{tile} tile: "
        f"max abs diff {meta['check_max_abs_diff']} (limit {CHECK_TOLERANCE:g})"
    )
    print(
        f"wrote {path}: model {meta['name']!r}, scale {meta['scale']}, {channels} channels, tile {tile}, seed {meta['seed']}"
    )
    return 0
