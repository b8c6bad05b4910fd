"""ONNX vs PyTorch on images smaller than the exported tile: the built-in model exported with
``fatsr export --tile T``, run by onnxruntime and by PyTorch (default path) on crops of
``examples/harbor55.png`` of each size (three offsets each), compared in 8-bit levels.

    python benchmarks/bench_onnx_sizes.py --tile 120 --sizes 12,24,48,72,96,108,120

The graph has a fixed tile: a smaller input is padded (reflection) to the tile, and FAT's
global attention (Fourier and LSH over all tokens) sees that padding, while PyTorch pads only
to the size rule (a multiple of 12). At the full tile the two differ only by the order of equal
hash codes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import fatsr
from fatsr.export import export_onnx
from fatsr.io import read_image
from fatsr.models.onnx_runner import load_onnx_model

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "harbor55.png"
OFFSETS = ((0, 0), (7, 13), (20, 3))


def levels(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model name or file (default: the built-in default)")
    parser.add_argument("--tile", type=int, default=120, help="exported tile (default 120, fatsr export's)")
    parser.add_argument("--sizes", default="12,24,48,72,96,108,120", help="square crop sides, comma-separated")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        onnx = load_onnx_model(export_onnx(args.model, Path(folder) / "m.onnx", tile=args.tile, seed=0))
    pytorch = fatsr.load_model(args.model, seed=0)
    image = torch.from_numpy(read_image(EXAMPLE).astype(np.float32) / 255).permute(2, 0, 1)[None]
    for size in map(int, args.sizes.split(",")):
        diffs = []
        for oy, ox in OFFSETS:
            x = image[:, :, oy : oy + size, ox : ox + size]
            with torch.inference_mode():
                diffs.append(np.abs(levels(onnx(x)) - levels(pytorch(x))).ravel())
        d = np.concatenate(diffs)
        print(
            f"tile {args.tile}, {size}x{size} crops: max {d.max():.0f} levels, mean {d.mean():.2f}, "
            f"{(d > 4).mean():.2%} of values off by more than 4"
        )


if __name__ == "__main__":
    main()
